//! [`Mount`]: one entry of a container's `Mounts` in the list.

use std::fmt;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use super::de::null_as_default;
use super::shared::{Record, text_heap};

/// A mount of a container, as the list's `Mounts` describes it: what is mounted
/// (`Type`, `Source`), where in the container (`Destination`), and whether it is
/// writable (`RW`).
///
/// The list's other fields of a mount (`Name`, `Driver`, `Mode`, `Propagation`) are not
/// kept: a local volume's name is in its `Source`
/// (`/var/lib/docker/volumes/NAME/_data`), and the rest is configuration rather than
/// what a controller acts on.
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::container::{Mount, MountType};
///
/// let conf = Mount::new(MountType::Bind, "/srv/web", "/usr/share/nginx/html").with_rw(false);
/// assert_eq!(conf.mount_type(), MountType::Bind);
/// assert_eq!(conf.source(), "/srv/web");
/// assert_eq!(conf.destination(), "/usr/share/nginx/html");
/// assert!(!conf.rw());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mount {
    /// What kind of mount.
    #[serde(rename = "Type", default, deserialize_with = "null_as_default")]
    pub(super) mount_type: MountType,
    /// The host path, volume path or other source; empty for a tmpfs.
    #[serde(rename = "Source", default, deserialize_with = "null_as_default")]
    pub(super) source: SmolStr,
    /// The path in the container.
    #[serde(rename = "Destination", default, deserialize_with = "null_as_default")]
    pub(super) destination: SmolStr,
    /// Writable.
    #[serde(rename = "RW", default, deserialize_with = "null_as_default")]
    pub(super) rw: bool,
}

impl Mount {
    /// A writable mount of `source` at `destination` in the container.
    #[must_use]
    pub fn new(mount_type: MountType, source: &str, destination: &str) -> Self {
        Self {
            mount_type,
            source: SmolStr::new(source),
            destination: SmolStr::new(destination),
            rw: true,
        }
    }

    /// This mount, writable (`true`) or read-only.
    #[must_use]
    pub fn with_rw(mut self, rw: bool) -> Self {
        self.rw = rw;
        self
    }

    /// What kind of mount (`Type`).
    #[inline]
    #[must_use]
    pub fn mount_type(&self) -> MountType {
        self.mount_type
    }

    /// What is mounted (`Source`): the host path of a bind mount, the data directory of a
    /// volume; empty for a tmpfs.
    #[inline]
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Where it is mounted in the container (`Destination`).
    #[inline]
    #[must_use]
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// Whether the container may write to it (`RW`).
    #[inline]
    #[must_use]
    pub fn rw(&self) -> bool {
        self.rw
    }
}

impl Record for Mount {
    fn scratch() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Self>>> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<Mount>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        &SCRATCH
    }

    const LIST: &'static str = "Mounts";

    fn heap_bytes(&self) -> usize {
        text_heap(&self.source) + text_heap(&self.destination)
    }

    /// By destination (one mount a path), then source.
    fn normalize(mounts: &mut Vec<Self>) {
        mounts.sort_by(|a, b| (&a.destination, &a.source).cmp(&(&b.destination, &b.source)));
    }
}

/// What kind of mount, as the list's `Type` spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MountType {
    /// A host path (`-v /host:/path`, `--mount type=bind`).
    Bind,
    /// A volume (`-v name:/path`).
    Volume,
    /// An image's content (API 1.48 and later).
    Image,
    /// A tmpfs in memory.
    Tmpfs,
    /// A Windows named pipe.
    Npipe,
    /// A Swarm cluster volume.
    Cluster,
    /// A kind this library does not know (or none was given).
    #[default]
    #[serde(other)]
    Unknown,
}

impl MountType {
    /// The lower-case name used on the wire.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Volume => "volume",
            Self::Image => "image",
            Self::Tmpfs => "tmpfs",
            Self::Npipe => "npipe",
            Self::Cluster => "cluster",
            Self::Unknown => "unknown",
        }
    }
}

impl fmt::Display for MountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
