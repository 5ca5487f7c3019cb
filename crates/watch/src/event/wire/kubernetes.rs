//! The Kubernetes shape of an event frame (the early API router, spec section 3a), both
//! ways: the names the decoder reads and the frame a server
//! writes ([`KubernetesFrame`]).
//!
//! ```json
//! {"Action":"ADDED","Status":"Running","Id":"d180511d","From":"busybox","Type":"container",
//!  "Actor":{"Id":"d180511d","Attributes":{"ExitCode":"","Image":"busybox","Labels":null,
//!  "Name":"test2"}},"Time":1476017460,"TimeNano":1476017460533640000}
//! ```
//!
//! `Action` is `ADDED`, `MODIFIED` or `DELETED`, `Status` a [`PodPhase`], and the labels a
//! map of their own (`null` for none), so the event describes the whole container.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::{ACTION, ACTOR, Actor, CONTAINER, TYPE};
use crate::container::{Labels, PodPhase};

/// `Status`: the phase.
pub(super) const PHASE: &str = "Status";
/// `Id`: the container id.
pub(super) const ID: &str = "Id";
/// `From`: the image.
pub(super) const FROM: &str = "From";
/// `Time`: seconds since the Unix epoch.
pub(super) const TIME: &str = "Time";
/// `TimeNano`: nanoseconds since the Unix epoch.
pub(super) const TIME_NANO: &str = "TimeNano";
/// `Actor.Id`.
pub(super) const ACTOR_ID: &str = "Id";
/// The `Name` attribute.
pub(super) const NAME: &str = "Name";
/// The `Image` attribute.
pub(super) const IMAGE: &str = "Image";
/// The `ExitCode` attribute.
pub(super) const EXIT_CODE: &str = "ExitCode";
/// The `Labels` attribute.
pub(super) const LABELS: &str = "Labels";

/// One Kubernetes-style event frame, to encode ([`KubernetesFrame::encode`]).
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::container::{Labels, PodPhase};
/// use hypersh::watch::event::{WatchEvent, kubernetes::KubernetesFrame};
///
/// let labels = Labels::new();
/// let frame = KubernetesFrame {
///     action: "ADDED",
///     phase: PodPhase::Running,
///     id: "d180511d",
///     image: "busybox",
///     name: "test2",
///     exit_code: None,
///     labels: &labels,
///     time_nano: 1_476_017_460_533_640_000,
/// };
/// let event = WatchEvent::decode(frame.encode())?;
/// assert_eq!((event.kind_str(), event.event().phase()), ("ADDED", Some(PodPhase::Running)));
/// # Ok::<(), hypersh_watch::event::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KubernetesFrame<'a> {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub action: &'a str,
    /// The phase (`Status`).
    pub phase: PodPhase,
    /// The container id, sent as `Id` and `Actor.Id`.
    pub id: &'a str,
    /// The image, sent as `From` and the `Image` attribute.
    pub image: &'a str,
    /// The container name without its leading `/` (the `Name` attribute).
    pub name: &'a str,
    /// The `ExitCode` attribute: the exit code, or `""` for none.
    pub exit_code: Option<i64>,
    /// The `Labels` attribute: an object, or `null` when there are none.
    pub labels: &'a Labels,
    /// Nanoseconds since the Unix epoch (`TimeNano`; `Time` is its whole seconds).
    pub time_nano: i64,
}

impl KubernetesFrame<'_> {
    /// The frame's JSON text.
    #[must_use]
    pub fn encode(&self) -> String {
        super::to_json(self)
    }
}

impl Serialize for KubernetesFrame<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut frame = s.serialize_struct("KubernetesFrame", 8)?;
        frame.serialize_field(ACTION, self.action)?;
        frame.serialize_field(PHASE, self.phase.as_str())?;
        frame.serialize_field(ID, self.id)?;
        frame.serialize_field(FROM, self.image)?;
        frame.serialize_field(TYPE, CONTAINER)?;
        frame.serialize_field(
            ACTOR,
            &Actor {
                id_key: ACTOR_ID,
                id: self.id,
                attributes: Attributes(self),
            },
        )?;
        frame.serialize_field(TIME, &(self.time_nano / 1_000_000_000))?;
        frame.serialize_field(TIME_NANO, &self.time_nano)?;
        frame.end()
    }
}

/// The attributes of a [`KubernetesFrame`].
struct Attributes<'f>(&'f KubernetesFrame<'f>);

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.0;
        let exit_code = f.exit_code.map(|c| c.to_string()).unwrap_or_default();
        let mut attributes = s.serialize_struct("Attributes", 4)?;
        attributes.serialize_field(EXIT_CODE, &exit_code)?;
        attributes.serialize_field(IMAGE, f.image)?;
        attributes.serialize_field(LABELS, &(!f.labels.is_empty()).then_some(f.labels))?;
        attributes.serialize_field(NAME, f.name)?;
        attributes.end()
    }
}
