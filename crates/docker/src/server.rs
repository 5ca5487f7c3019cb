//! Which engine serves the source, and the API version to speak to it: asked at the start
//! of every session (a daemon may be upgraded, or replaced by another engine, between
//! two), from `GET /_ping`'s headers and, when they do not say enough, `GET /version`.

use std::fmt;
use std::time::Duration;

use http::HeaderMap;

use crate::engine::Engine;
use crate::error::DockerError;
use crate::transport::Transport;
use crate::version::ApiVersion;

/// The largest `/_ping` or `/version` answer read.
const MAX_VERSION_BODY: usize = 64 * 1024;

/// What serves a [`DockerSource`](crate::DockerSource): the engine, its version, and the
/// API version requests are made with. Its text is what the informer's status shows
/// ([`Status::server`](hypersh_reflector::Status::server)): `Podman 4.3.1 (API 1.41)`,
/// `Docker 20.10.24 (API 1.41)`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerVersion {
    /// Docker Engine or Podman: told by Podman's `Libpod-Api-Version` header (or its
    /// `Server: Libpod/...` header, or a `/version` component named `Podman Engine`).
    pub engine: Engine,
    /// The engine's own version (`20.10.24`, `4.3.1`), when it says.
    pub version: Option<String>,
    /// The newest API version the daemon speaks (its `Api-Version`).
    pub server_api: Option<ApiVersion>,
    /// The API version requests are made with (the path prefix `/v1.41`).
    pub api_version: ApiVersion,
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.engine.as_str())?;
        if let Some(v) = &self.version {
            write!(f, " {v}")?;
        }
        write!(f, " (API {})", self.api_version)
    }
}

/// What `GET /_ping` said in its headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ping {
    /// `Api-Version`, as sent.
    pub(crate) api_version: Option<String>,
    /// `Libpod-Api-Version` (Podman only).
    pub(crate) libpod_api_version: Option<String>,
    /// `Server` (`Docker/20.10.24 (linux)`, `Libpod/4.3.1 (linux)`).
    pub(crate) server: Option<String>,
}

impl Ping {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        Self {
            api_version: text("api-version"),
            libpod_api_version: text("libpod-api-version"),
            server: text("server"),
        }
    }

    fn is_podman(&self) -> bool {
        self.libpod_api_version.is_some()
            || self
                .server
                .as_deref()
                .is_some_and(|s| s.starts_with("Libpod/"))
    }

    /// The engine's version from the headers: Podman's `Libpod-Api-Version` (its own
    /// version), else the `Server` header's `Docker/20.10.24` or `Libpod/4.3.1`.
    fn engine_version(&self) -> Option<String> {
        if let Some(v) = &self.libpod_api_version {
            return Some(v.clone());
        }
        let server = self.server.as_deref()?;
        let (product, rest) = server.split_once('/')?;
        if !matches!(product, "Docker" | "Libpod") {
            return None;
        }
        let version = rest.split_whitespace().next()?;
        (!version.is_empty()).then(|| version.to_owned())
    }
}

/// What `GET /version` said (the fields read).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct Version {
    #[serde(rename = "Version", default)]
    pub(crate) version: Option<String>,
    #[serde(rename = "ApiVersion", default)]
    pub(crate) api_version: Option<String>,
    #[serde(rename = "MinAPIVersion", default)]
    pub(crate) min_api_version: Option<String>,
    #[serde(rename = "Components", default)]
    pub(crate) components: Option<Vec<Component>>,
}

/// One of `/version`'s `Components`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct Component {
    #[serde(rename = "Name", default)]
    pub(crate) name: String,
    #[serde(rename = "Version", default)]
    pub(crate) version: String,
}

impl Version {
    fn podman_component(&self) -> Option<&Component> {
        self.components
            .iter()
            .flatten()
            .find(|c| c.name == "Podman Engine")
    }
}

/// The outcome of a handshake: what serves the source, and a warning to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Negotiated {
    pub(crate) server: ServerVersion,
    pub(crate) warning: Option<String>,
}

/// Whether `/version` must be asked after `ping`: for the daemon's version when the
/// headers do not give it, and for its oldest API when its newest is newer than ours (it
/// might refuse ours).
pub(crate) fn needs_version(ping: &Ping, pinned: Option<ApiVersion>) -> bool {
    let api = ping
        .api_version
        .as_deref()
        .and_then(|v| ApiVersion::parse(v).ok());
    let unsure_api = pinned.is_none() && api.is_none_or(|v| v > ApiVersion::MAXIMUM);
    unsure_api || ping.engine_version().is_none()
}

/// Decides the engine and the API version from what the daemon said (`version` is
/// `None` when `/version` was not asked, or did not answer).
///
/// # Errors
/// [`DockerError::ApiTooOld`] when the daemon's newest API is older than
/// [`ApiVersion::MINIMUM`]; [`DockerError::BadVersion`] when it does not say its API
/// version (and none was pinned).
pub(crate) fn negotiate(
    ping: &Ping,
    version: Option<&Version>,
    pinned: Option<ApiVersion>,
) -> Result<Negotiated, DockerError> {
    let podman_component = version.and_then(Version::podman_component);
    let engine = if ping.is_podman() || podman_component.is_some() {
        Engine::Podman
    } else {
        Engine::Docker
    };
    let engine_version = ping.engine_version().or_else(|| {
        podman_component
            .map(|c| c.version.clone())
            .filter(|v| !v.is_empty())
            .or_else(|| version.and_then(|v| v.version.clone()))
    });
    let server_api = match ping
        .api_version
        .as_deref()
        .or_else(|| version.and_then(|v| v.api_version.as_deref()))
    {
        Some(v) => Some(ApiVersion::parse(v)?),
        None => None,
    };
    let min_api = version
        .and_then(|v| v.min_api_version.as_deref())
        .and_then(|v| ApiVersion::parse(v).ok());
    let (api_version, warning) = match (pinned, server_api) {
        (Some(pinned), _) => (pinned, None),
        (None, None) => {
            return Err(DockerError::BadVersion {
                value: String::new(),
            });
        }
        (None, Some(server)) => ApiVersion::negotiate(server, min_api)?,
    };
    Ok(Negotiated {
        server: ServerVersion {
            engine,
            version: engine_version,
            server_api,
            api_version,
        },
        warning,
    })
}

/// Asks the daemon who it is (`/_ping`, then `/version` if needed) and decides.
pub(crate) async fn handshake(
    transport: &Transport,
    timeout: Duration,
    pinned: Option<ApiVersion>,
) -> Result<Negotiated, DockerError> {
    let (headers, _) = transport
        .get_body("/_ping", timeout, MAX_VERSION_BODY)
        .await?;
    let ping = Ping::from_headers(&headers);
    if !needs_version(&ping, pinned) {
        return negotiate(&ping, None, pinned);
    }
    // Under the daemon's own newest version when it said it: unversioned paths are
    // deprecated on newer engines.
    let path = match ping
        .api_version
        .as_deref()
        .and_then(|v| ApiVersion::parse(v).ok())
    {
        Some(v) => format!("/v{v}/version"),
        None => "/version".to_owned(),
    };
    let version = match transport.get_body(&path, timeout, MAX_VERSION_BODY).await {
        Ok((_, body)) => match serde_json::from_slice::<Version>(&body) {
            Ok(v) => Some(v),
            Err(_) if ping.api_version.is_none() && pinned.is_none() => {
                return Err(DockerError::BadVersion {
                    value: String::from_utf8_lossy(&body).chars().take(32).collect(),
                });
            }
            Err(_) => None,
        },
        // `/_ping` said enough to go on without it (a proxy may allow `/_ping` only).
        Err(e) if ping.api_version.is_some() || pinned.is_some() => {
            tracing::debug!(error = %e, "GET /version failed; going on with /_ping's headers");
            None
        }
        Err(e) => return Err(e),
    };
    negotiate(&ping, version.as_ref(), pinned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(api: &str, libpod: Option<&str>, server: &str) -> Ping {
        Ping {
            api_version: Some(api.to_owned()),
            libpod_api_version: libpod.map(str::to_owned),
            server: Some(server.to_owned()),
        }
    }

    #[test]
    fn tells_podman_from_docker_by_the_headers() {
        // Read off the engines on this machine.
        let podman = ping("1.41", Some("4.3.1"), "Libpod/4.3.1 (linux)");
        assert!(!needs_version(&podman, None));
        let n = negotiate(&podman, None, None).unwrap();
        assert_eq!(n.server.engine, Engine::Podman);
        assert_eq!(n.server.to_string(), "Podman 4.3.1 (API 1.41)");
        assert_eq!(n.warning, None);
        let docker = ping("1.41", None, "Docker/20.10.24+dfsg1 (linux)");
        let n = negotiate(&docker, None, None).unwrap();
        assert_eq!(n.server.engine, Engine::Docker);
        assert_eq!(n.server.to_string(), "Docker 20.10.24+dfsg1 (API 1.41)");
        // Pinned: the daemon's version is not checked.
        let n = negotiate(&docker, None, Some(ApiVersion::new(1, 30))).unwrap();
        assert_eq!(n.server.api_version, ApiVersion::new(1, 30));
        assert_eq!(n.server.server_api, Some(ApiVersion::new(1, 41)));
    }

    #[test]
    fn falls_back_on_version_when_the_headers_are_silent() {
        let silent = Ping::default();
        assert!(needs_version(&silent, None));
        let body: Version = serde_json::from_str(
            r#"{"Platform":{"Name":"linux/amd64/debian-12"},"Components":[{"Name":"Podman Engine","Version":"4.3.1","Details":{"APIVersion":"4.3.1","MinAPIVersion":"4.0.0"}}],"Version":"4.3.1","ApiVersion":"1.41","MinAPIVersion":"1.24"}"#,
        )
        .unwrap();
        let n = negotiate(&silent, Some(&body), None).unwrap();
        assert_eq!(n.server.to_string(), "Podman 4.3.1 (API 1.41)");
        let e = negotiate(&silent, None, None).unwrap_err();
        assert!(matches!(e, DockerError::BadVersion { .. }), "{e}");
        // A newer daemon than we know: /version for its minimum.
        let newer = ping("1.60", None, "Docker/40.0.0 (linux)");
        assert!(needs_version(&newer, None));
        assert!(!needs_version(&newer, Some(ApiVersion::new(1, 41))));
    }

    #[test]
    fn speaks_the_newest_both_know_or_the_daemons_oldest_with_a_warning() {
        let version = |api: &str, min: &str| Version {
            version: Some("40.0.0".to_owned()),
            api_version: Some(api.to_owned()),
            min_api_version: Some(min.to_owned()),
            components: None,
        };
        let docker = |api: &str| ping(api, None, "Docker/40.0.0 (linux)");
        // Docker 29: newest 1.52, oldest 1.44.
        let n = negotiate(&docker("1.52"), Some(&version("1.52", "1.44")), None).unwrap();
        assert_eq!(n.server.api_version, ApiVersion::new(1, 52));
        assert_eq!(n.warning, None);
        // Newer than we know, still speaking ours.
        let n = negotiate(&docker("1.70"), Some(&version("1.70", "1.44")), None).unwrap();
        assert_eq!(n.server.api_version, ApiVersion::MAXIMUM);
        assert_eq!(n.warning, None);
        // Its oldest is newer than our newest: its oldest, with a warning.
        let n = negotiate(&docker("1.70"), Some(&version("1.70", "1.60")), None).unwrap();
        assert_eq!(n.server.api_version, ApiVersion::new(1, 60));
        let warning = n.warning.unwrap();
        assert!(
            warning.contains("1.60") && warning.contains("1.57"),
            "{warning}"
        );
        // Too old.
        let e = negotiate(&docker("1.19"), None, None).unwrap_err();
        assert!(matches!(e, DockerError::ApiTooOld { .. }), "{e}");
    }
}
