//! Where the daemon listens: `unix:///path`, `tcp://host:port` or
//! `ssh://[user@]host[:port][/socket]` (`DOCKER_HOST`'s forms).

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
    /// A host reached with `ssh`, where `docker system dial-stdio` relays the connection
    /// to its daemon (`ssh://me@build-1:2222`), as the `docker` CLI does.
    Ssh(SshHost),
}

/// The `ssh://[user@]host[:port][/socket]` of a [`DockerHost::Ssh`]: who to log in as
/// (else ssh's default), where, and the daemon's socket on that host (else the remote
/// `docker` CLI's default, its `DOCKER_HOST`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SshHost {
    user: Option<String>,
    /// Never empty; an IPv6 address without its brackets.
    host: String,
    port: Option<u16>,
    socket: Option<PathBuf>,
}

impl SshHost {
    /// The user to log in as, when the URL names one.
    #[must_use]
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The host name or address (an IPv6 address without brackets).
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The ssh port, when the URL gives one.
    #[must_use]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The daemon's socket on the remote host, when the URL gives a path.
    #[must_use]
    pub fn socket(&self) -> Option<&std::path::Path> {
        self.socket.as_deref()
    }

    /// Parses what follows `ssh://`.
    fn parse(rest: &str) -> Result<Self, &'static str> {
        if rest.contains(['?', '#']) {
            return Err("an ssh URL takes no query or fragment");
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((user, _)) if user.contains(':') => {
                return Err("a password in an ssh URL is not supported: use a key or ssh-agent");
            }
            Some(("", _)) => return Err("the user before @ is empty"),
            Some((user, hostport)) => (Some(user.to_owned()), hostport),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or("an IPv6 address lacks its ]")?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or("expected :port after ]")?),
                ),
            }
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("expected ssh://[user@]host[:port]");
        }
        let port = port
            .map(|p| p.parse::<u16>().map_err(|_| "the ssh port is not a number"))
            .transpose()?;
        let socket = path.trim_end_matches('/');
        Ok(Self {
            user,
            host: host.to_owned(),
            port,
            socket: (!socket.is_empty()).then(|| PathBuf::from(socket)),
        })
    }
}

impl fmt::Display for SshHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ssh://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if let Some(socket) = &self.socket {
            write!(f, "{}", socket.display())?;
        }
        Ok(())
    }
}

impl DockerHost {
    /// Parses `unix:///path`, `tcp://host:port` (also `http://host:port`),
    /// `ssh://[user@]host[:port][/socket]`, or a bare absolute path (a socket).
    ///
    /// # Errors
    /// [`DockerError::InvalidHost`] for another scheme (`https://`: use `tcp://` with TLS
    /// settings, as the `docker` CLI; `npipe://`: not supported), an empty path, a TCP
    /// address without a port, or an ssh URL with a password, a query or no host.
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
        if let Some(rest) = url.strip_prefix("ssh://") {
            return SshHost::parse(rest).map(Self::Ssh).map_err(invalid);
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
                "expected unix:///path, tcp://host:port or ssh://[user@]host[:port] (npipe is not supported)",
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
            Self::Unix(_) | Self::Ssh(_) => "docker",
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
            Self::Ssh(s) => s.fmt(f),
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
            "ssh://",
            "ssh://me:pw@h",
            "ssh://@h",
            "ssh://h:port",
            "ssh://h?x=1",
            "ssh://[::1",
            "",
        ] {
            assert!(DockerHost::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            DockerHost::parse(DEFAULT_HOST).unwrap().to_string(),
            DEFAULT_HOST
        );
    }

    #[test]
    fn parses_ssh_urls_as_the_docker_cli() {
        let ssh = |url: &str| match DockerHost::parse(url).unwrap() {
            DockerHost::Ssh(s) => s,
            other => panic!("{url}: {other:?}"),
        };
        let s = ssh("ssh://me@build-1:2222");
        assert_eq!(
            (s.user(), s.host(), s.port(), s.socket()),
            (Some("me"), "build-1", Some(2222), None)
        );
        let s = ssh("ssh://build-1");
        assert_eq!((s.user(), s.port()), (None, None));
        let s = ssh("ssh://me@[::1]:22/run/user/1000/docker.sock");
        assert_eq!(s.host(), "::1");
        assert_eq!(
            s.socket(),
            Some(std::path::Path::new("/run/user/1000/docker.sock"))
        );
        for url in [
            "ssh://me@build-1:2222",
            "ssh://build-1",
            "ssh://me@[::1]:22/run/docker.sock",
        ] {
            assert_eq!(DockerHost::parse(url).unwrap().to_string(), url);
        }
        let err = DockerHost::parse("ssh://me:secret@h").unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
    }
}
