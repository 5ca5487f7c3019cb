//! Docker API versions (`1.41`) and the range this source speaks.

use std::fmt;

use crate::error::DockerError;

/// A Docker Engine API version, `major.minor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// `1` for every Docker Engine so far.
    pub major: u16,
    /// The minor version (`41` for Docker 20.10).
    pub minor: u16,
}

impl ApiVersion {
    /// The oldest API this source accepts: 1.24 (Docker 1.12), the first with every
    /// event field and action it reads (`Type`, `Action`, `Actor`, `health_status`) and
    /// the array form of `filters`.
    pub const MINIMUM: Self = Self::new(1, 24);
    /// The newest API this source asks for, the newest Docker's API reference documents
    /// (v1.57): a daemon that speaks a newer one is addressed as this version (Docker
    /// answers older versions as they were), unless it no longer accepts it (see
    /// [`negotiate`](Self::negotiate)). Run against 1.41 (Docker 20.10, Podman 4.3);
    /// the event and list shapes of 1.52 and later are tested from the reference.
    pub const MAXIMUM: Self = Self::new(1, 57);

    /// `major.minor`.
    #[must_use]
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// Parses `1.41`.
    ///
    /// # Errors
    /// [`DockerError::BadVersion`] when `s` is not two dot-separated numbers.
    pub fn parse(s: &str) -> Result<Self, DockerError> {
        let bad = || DockerError::BadVersion {
            value: s.chars().take(32).collect(),
        };
        let (major, minor) = s.trim().split_once('.').ok_or_else(bad)?;
        Ok(Self::new(
            major.parse().map_err(|_| bad())?,
            minor.parse().map_err(|_| bad())?,
        ))
    }

    /// The version to address a daemon with whose newest API is `server` and oldest
    /// `server_min` (when known): `server`, capped at [`MAXIMUM`](Self::MAXIMUM); but when
    /// the daemon no longer accepts even that (Docker 29 refuses anything below 1.44),
    /// its oldest, with a warning to log: the events and lists of an API newer than this
    /// source knows may carry what it does not read.
    ///
    /// # Errors
    /// [`DockerError::ApiTooOld`] when `server` is older than [`MINIMUM`](Self::MINIMUM).
    pub fn negotiate(
        server: Self,
        server_min: Option<Self>,
    ) -> Result<(Self, Option<String>), DockerError> {
        if server < Self::MINIMUM {
            return Err(DockerError::ApiTooOld {
                server,
                minimum: Self::MINIMUM,
            });
        }
        match server_min {
            Some(min) if min > Self::MAXIMUM => Ok((
                min,
                Some(format!(
                    "the daemon's oldest API version, {min}, is newer than the newest this \
                     client knows, {}: speaking {min}",
                    Self::MAXIMUM
                )),
            )),
            _ => Ok((server.min(Self::MAXIMUM), None)),
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for ApiVersion {
    type Err = DockerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_within_the_supported_range() {
        let v = |s| ApiVersion::parse(s).unwrap();
        assert!(v("1.9") < v("1.24"));
        assert_eq!(
            ApiVersion::negotiate(v("1.41"), None).unwrap(),
            (v("1.41"), None)
        );
        assert_eq!(
            ApiVersion::negotiate(v("1.99"), Some(v("1.44"))).unwrap(),
            (ApiVersion::MAXIMUM, None)
        );
        let (newer, warning) = ApiVersion::negotiate(v("1.99"), Some(v("1.90"))).unwrap();
        assert_eq!(newer, v("1.90"));
        assert!(warning.is_some());
        let old = ApiVersion::negotiate(v("1.23"), None).unwrap_err();
        assert!(old.to_string().contains("1.23"), "{old}");
        assert!(old.to_string().contains("1.24"), "{old}");
        for bad in ["", "1", "x.y", "1.", "1.41.0"] {
            assert!(ApiVersion::parse(bad).is_err(), "{bad:?}");
        }
    }
}
