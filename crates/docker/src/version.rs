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
    /// The newest API this source asks for: a daemon that speaks a newer one is addressed
    /// as this version (Docker answers older versions as they were). Tested on 1.41.
    pub const MAXIMUM: Self = Self::new(1, 45);

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

    /// The version to address a daemon that speaks `server` with: `server`, capped at
    /// [`MAXIMUM`](Self::MAXIMUM).
    ///
    /// # Errors
    /// [`DockerError::ApiTooOld`] when `server` is older than [`MINIMUM`](Self::MINIMUM).
    pub fn negotiate(server: Self) -> Result<Self, DockerError> {
        if server < Self::MINIMUM {
            return Err(DockerError::ApiTooOld {
                server,
                minimum: Self::MINIMUM,
            });
        }
        Ok(server.min(Self::MAXIMUM))
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
        assert_eq!(ApiVersion::negotiate(v("1.41")).unwrap(), v("1.41"));
        assert_eq!(
            ApiVersion::negotiate(v("1.51")).unwrap(),
            ApiVersion::MAXIMUM
        );
        let old = ApiVersion::negotiate(v("1.23")).unwrap_err();
        assert!(old.to_string().contains("1.23"), "{old}");
        assert!(old.to_string().contains("1.24"), "{old}");
        for bad in ["", "1", "x.y", "1.", "1.41.0"] {
            assert!(ApiVersion::parse(bad).is_err(), "{bad:?}");
        }
    }
}
