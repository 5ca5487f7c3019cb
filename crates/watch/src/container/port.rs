//! [`Port`]: one entry of a container's `Ports` in the list.

use std::fmt;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::de::{lenient_u16, null_as_default};
use super::shared::{Record, text_heap};

/// A port of a container, as the list's `Ports` describes it: the container's port
/// (`PrivatePort`), its protocol (`Type`), and where the host publishes it (`IP`,
/// `PublicPort`), if it does.
///
/// Docker lists a running container's exposed and published ports (a port published on
/// all addresses twice: `0.0.0.0` and `::`) and none for a stopped one; Podman lists the
/// published ones in every state, without `IP` when bound to all addresses.
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::container::{Port, PortType};
///
/// let web = Port::new(80, PortType::Tcp).published("0.0.0.0", 8080);
/// assert_eq!(web.private_port(), 80);
/// assert_eq!(web.public_port(), Some(8080));
/// assert_eq!(web.ip(), Some("0.0.0.0"));
/// assert_eq!(web.to_string(), "0.0.0.0:8080->80/tcp");
/// let exposed = Port::new(6379, PortType::Tcp);
/// assert_eq!((exposed.public_port(), exposed.ip()), (None, None));
/// assert_eq!(exposed.to_string(), "6379/tcp");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Port {
    /// The host address the port is published on; empty when not given.
    #[serde(
        rename = "IP",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "SmolStr::is_empty"
    )]
    pub(super) ip: SmolStr,
    /// The port inside the container.
    #[serde(rename = "PrivatePort", default, deserialize_with = "lenient_u16")]
    pub(super) private_port: u16,
    /// The host port; 0 when not published (Docker omits it then).
    #[serde(
        rename = "PublicPort",
        default,
        deserialize_with = "lenient_u16",
        skip_serializing_if = "is_zero"
    )]
    pub(super) public_port: u16,
    /// The protocol.
    #[serde(rename = "Type", default, deserialize_with = "null_as_default")]
    pub(super) port_type: PortType,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(port: &u16) -> bool {
    *port == 0
}

impl Port {
    /// A port of the container, not published.
    #[must_use]
    pub fn new(private_port: u16, port_type: PortType) -> Self {
        Self {
            ip: SmolStr::default(),
            private_port,
            public_port: 0,
            port_type,
        }
    }

    /// This port, published on the host address `ip` (empty: not given) and port
    /// `public_port`.
    #[must_use]
    pub fn published(mut self, ip: &str, public_port: u16) -> Self {
        self.ip = SmolStr::new(ip);
        self.public_port = public_port;
        self
    }

    /// The port inside the container (`PrivatePort`).
    #[inline]
    #[must_use]
    pub fn private_port(&self) -> u16 {
        self.private_port
    }

    /// The host port it is published on (`PublicPort`), if it is.
    #[inline]
    #[must_use]
    pub fn public_port(&self) -> Option<u16> {
        (self.public_port != 0).then_some(self.public_port)
    }

    /// The host address it is published on (`IP`: `0.0.0.0`, `::`, `127.0.0.1`), if the
    /// engine says (Podman leaves it out for all addresses).
    #[inline]
    #[must_use]
    pub fn ip(&self) -> Option<&str> {
        (!self.ip.is_empty()).then_some(self.ip.as_str())
    }

    /// The protocol (`Type`).
    #[inline]
    #[must_use]
    pub fn port_type(&self) -> PortType {
        self.port_type
    }
}

impl fmt::Display for Port {
    /// As `docker ps` shows it: `0.0.0.0:8080->80/tcp`, `[::]:8080->80/tcp`, `6379/tcp`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(public) = self.public_port() {
            match self.ip() {
                Some(ip) if ip.contains(':') => write!(f, "[{ip}]:{public}->")?,
                Some(ip) => write!(f, "{ip}:{public}->")?,
                None => write!(f, "{public}->")?,
            }
        }
        write!(f, "{}/{}", self.private_port, self.port_type)
    }
}

impl Record for Port {
    fn scratch() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Self>>> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<Port>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        &SCRATCH
    }

    const LIST: &'static str = "Ports";

    fn heap_bytes(&self) -> usize {
        text_heap(&self.ip)
    }

    /// By container port and protocol, then host address and port (as `docker ps`).
    fn normalize(ports: &mut Vec<Self>) {
        ports.sort_by(|a, b| {
            (a.private_port, a.port_type.as_str(), &a.ip, a.public_port).cmp(&(
                b.private_port,
                b.port_type.as_str(),
                &b.ip,
                b.public_port,
            ))
        });
    }
}

/// A port's protocol, as the list's `Type` spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PortType {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// A protocol this library does not know (or none was given).
    #[default]
    #[serde(other)]
    Unknown,
}

impl PortType {
    /// The lower-case name used on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for PortType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
