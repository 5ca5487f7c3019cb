//! Where the daemon listens: `unix:///path` or `tcp://host:port` (`DOCKER_HOST`'s forms).

use std::fmt;
use std::path::PathBuf;

use crate::error::DockerError;

/// The default endpoint when neither a URL nor `DOCKER_HOST` is given.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A Docker daemon address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DockerHost {
    /// A Unix socket path (`unix:///var/run/docker.sock`).
    Unix(PathBuf),
    /// A TCP address, `host:port` (`tcp://127.0.0.1:2375`); TLS is the source's setting
    /// (`DOCKER_TLS_VERIFY`, [`DockerTls`](crate::DockerTls)), as for the `docker` CLI.
    Tcp(String),
}

impl DockerHost {
    /// Parses `unix:///path`, `tcp://host:port` (also `http://host:port`), or a bare
    /// absolute path (a socket).
    ///
    /// # Errors
    /// [`DockerError::InvalidHost`] for another scheme (`https://`: use `tcp://` with TLS
    /// settings, as the `docker` CLI; `npipe://`: not supported), an empty path, or a TCP
    /// address without a port.
    pub fn parse(url: &str) -> Result<Self, DockerError> {
        let url = url.trim();
        let invalid = |reason: &str| DockerError::InvalidHost {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = url.strip_prefix("unix://") {
            if path.is_empty() || !path.starts_with('/') {
                return Err(invalid("expected an absolute socket path: unix:///path"));
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if url.starts_with('/') {
            return Ok(Self::Unix(PathBuf::from(url)));
        }
        if url.starts_with("https://") {
            return Err(invalid(
                "for TLS use tcp://host:port with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, as the docker CLI",
            ));
        }
        let Some(rest) = url
            .strip_prefix("tcp://")
            .or_else(|| url.strip_prefix("http://"))
        else {
            return Err(invalid(
                "expected unix:///path or tcp://host:port (npipe is not supported)",
            ));
        };
        let authority = rest.trim_end_matches('/');
        let port_ok = authority
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok || authority.contains('/') {
            return Err(invalid("expected tcp://host:port"));
        }
        Ok(Self::Tcp(authority.to_owned()))
    }

    /// `DOCKER_HOST` when it is set and not empty, else [`DEFAULT_HOST`]. (TLS is read
    /// apart: [`DockerTls::from_env`](crate::DockerTls::from_env).)
    ///
    /// # Errors
    /// As [`parse`](Self::parse), for a `DOCKER_HOST` it cannot read.
    pub fn from_env() -> Result<Self, DockerError> {
        match std::env::var("DOCKER_HOST") {
            Ok(v) if !v.trim().is_empty() => Self::parse(&v),
            _ => Self::parse(DEFAULT_HOST),
        }
    }

    /// The value of the `Host` header.
    pub(crate) fn authority(&self) -> &str {
        match self {
            // Docker ignores it on a socket; any valid name will do.
            Self::Unix(_) => "docker",
            Self::Tcp(a) => a,
        }
    }
}

impl Default for DockerHost {
    fn default() -> Self {
        Self::Unix(PathBuf::from("/var/run/docker.sock"))
    }
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

impl std::str::FromStr for DockerHost {
    type Err = DockerError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_docker_host_forms() {
        assert_eq!(
            DockerHost::parse("unix:///var/run/docker.sock").unwrap(),
            DockerHost::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            DockerHost::parse("/tmp/d.sock").unwrap(),
            DockerHost::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            DockerHost::parse("tcp://127.0.0.1:2375").unwrap(),
            DockerHost::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            DockerHost::parse("tcp://[::1]:2375/").unwrap(),
            DockerHost::Tcp("[::1]:2375".into())
        );
        for bad in [
            "unix://",
            "unix://rel",
            "tcp://host",
            "tcp://:2375",
            "https://h:2376",
            "ssh://me@h",
            "",
        ] {
            assert!(DockerHost::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            DockerHost::parse(DEFAULT_HOST).unwrap().to_string(),
            DEFAULT_HOST
        );
    }
}
