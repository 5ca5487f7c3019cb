//! The Docker shape of an event frame (the published API, spec section 3b), both ways:
//! the names the decoder reads and the frame a server writes
//! ([`DockerFrame`]).
//!
//! ```json
//! {"status":"start","id":"f29698ca","from":"busybox","Type":"container","Action":"start",
//!  "Actor":{"ID":"f29698ca","Attributes":{"exitCode":"0","image":"busybox","name":"test4",
//!  "sh_hyper_instancetype":"s4"}},"time":1476375774,"timeNano":1476375774255155116}
//! ```
//!
//! The attributes are the container's labels flattened beside `image`, `name` (without
//! a leading `/`) and `exitCode`, so a label cannot be told apart from them.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::{ACTION, ACTOR, Actor, CONTAINER, TYPE};

/// `status`: the action again (older Docker clients read it).
pub(super) const STATUS: &str = "status";
/// `id`: the container id.
pub(super) const ID: &str = "id";
/// `from`: the image.
pub(super) const FROM: &str = "from";
/// `time`: seconds since the Unix epoch.
pub(super) const TIME: &str = "time";
/// `timeNano`: nanoseconds since the Unix epoch.
pub(super) const TIME_NANO: &str = "timeNano";
/// `Actor.ID`.
pub(super) const ACTOR_ID: &str = "ID";
/// The `name` attribute.
pub(super) const NAME: &str = "name";
/// The `image` attribute.
pub(super) const IMAGE: &str = "image";
/// The `exitCode` attribute.
pub(super) const EXIT_CODE: &str = "exitCode";

/// One Docker-style event frame, to encode ([`DockerFrame::encode`]).
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::event::{WatchEvent, docker::DockerFrame};
///
/// let frame = DockerFrame {
///     action: "die",
///     id: "f29698ca",
///     image: "busybox",
///     name: "test4",
///     exit_code: Some(137),
///     attributes: [("app", "web".into())].into(),
///     time_nano: 1_476_375_774_255_155_116,
/// };
/// let event = WatchEvent::decode(frame.encode())?;
/// assert_eq!((event.id(), event.event().exit_code()), ("f29698ca", Some(137)));
/// assert_eq!(event.event().attributes()["app"], "web");
/// # Ok::<(), hypersh_watch::event::DecodeError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerFrame<'a> {
    /// The Docker action (`start`, `health_status: healthy`), sent as `Action` and
    /// `status`.
    pub action: &'a str,
    /// The container id, sent as `id` and `Actor.ID`.
    pub id: &'a str,
    /// The image, sent as `from` and the `image` attribute.
    pub image: &'a str,
    /// The container name without its leading `/` (the `name` attribute).
    pub name: &'a str,
    /// The `exitCode` attribute, when the action has one (Docker sends it on `die`).
    pub exit_code: Option<i64>,
    /// The labels, and any other attribute of the action (`oldName` on `rename`):
    /// flattened beside `image`, `name` and `exitCode`, which win over a key of theirs.
    pub attributes: BTreeMap<&'a str, Cow<'a, str>>,
    /// Nanoseconds since the Unix epoch (`timeNano`; `time` is its whole seconds).
    pub time_nano: i64,
}

impl DockerFrame<'_> {
    /// The frame's JSON text.
    #[must_use]
    pub fn encode(&self) -> String {
        super::to_json(self)
    }
}

impl Serialize for DockerFrame<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut attributes = self.attributes.clone();
        attributes.insert(IMAGE, Cow::Borrowed(self.image));
        attributes.insert(NAME, Cow::Borrowed(self.name));
        if let Some(code) = self.exit_code {
            attributes.insert(EXIT_CODE, Cow::Owned(code.to_string()));
        }
        let mut frame = s.serialize_struct("DockerFrame", 8)?;
        frame.serialize_field(STATUS, self.action)?;
        frame.serialize_field(ID, self.id)?;
        frame.serialize_field(FROM, self.image)?;
        frame.serialize_field(TYPE, CONTAINER)?;
        frame.serialize_field(ACTION, self.action)?;
        frame.serialize_field(
            ACTOR,
            &Actor {
                id_key: ACTOR_ID,
                id: self.id,
                attributes,
            },
        )?;
        frame.serialize_field(TIME, &(self.time_nano / 1_000_000_000))?;
        frame.serialize_field(TIME_NANO, &self.time_nano)?;
        frame.end()
    }
}
