//! Event frames from `/events/ws`, in both wire shapes, decoded into [`WatchEvent`].
//!
//! Two shapes exist (spec section 3):
//! - **Kubernetes style** (the early API router): `Action` is `ADDED`, `MODIFIED` or
//!   `DELETED`, `Status` is a phase, `Actor.Attributes` holds `Image`, `Name`, `ExitCode`
//!   and a `Labels` object. Such an event describes the whole container.
//! - **Docker style** (the published API): `Action` is a Docker action (`create`, `start`,
//!   `die`, ...), and `Actor.Attributes` flattens the labels beside `image`, `name` and
//!   `exitCode`, so labels cannot be told apart from those keys. `create` maps to
//!   [`WatchEvent::Added`], `destroy` (Podman: `remove`) to [`WatchEvent::Deleted`],
//!   everything else to [`WatchEvent::Modified`]. Podman writes this shape too, with
//!   actions of its own and some that leave a container in another state (see
//!   [`Engine`] and [`WatchEvent::on_engine`]). Since API 1.52 Docker leaves out the
//!   deprecated `status`, `id` and `from`: the event is read from `Type`, `Action` and
//!   `Actor` alone.
//!
//! ```
//! # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
//! use hypersh::watch::event::{DockerAction, WatchEvent};
//!
//! let frame = r#"{"status":"start","id":"f29698ca","from":"busybox","Type":"container",
//!   "Action":"start","Actor":{"ID":"f29698ca","Attributes":{"image":"busybox","name":"test4"}},
//!   "time":1476375774,"timeNano":1476375774255155116}"#;
//! let event = WatchEvent::decode(frame)?;
//! assert!(matches!(event, WatchEvent::Modified(_)));
//! assert_eq!(event.id(), "f29698ca");
//! assert_eq!(event.event().docker_action(), Some(DockerAction::Start));
//! # Ok::<(), hypersh_watch::event::DecodeError>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use serde::de;
use smol_str::{SmolStr, format_smolstr};

use crate::container::{Container, Labels, PodPhase};

mod action;
mod text;
pub(crate) mod utf8;
mod wire;

pub use action::{DOCKER_CONTAINER_ACTIONS, DockerAction, Engine, PODMAN_CONTAINER_ACTIONS};
use text::{Parts, Strings};
pub(crate) use utf8::Utf8Frame;
use wire::{EventSeed, WireEvent};
pub use wire::{docker, kubernetes};

/// The three kinds of change a watch reports, each carrying the decoded [`Event`].
#[derive(Clone, Debug, PartialEq)]
pub enum WatchEvent {
    /// A container appeared (`ADDED`, or Docker `create`).
    Added(Event),
    /// A container changed (`MODIFIED`, or any other Docker action).
    Modified(Event),
    /// A container went away (`DELETED`, or Docker `destroy`). In the Kubernetes shape a
    /// `start` of a stopped container is reported as `DELETED` then `ADDED` for the same id,
    /// so a `Deleted` is not always a final removal.
    Deleted(Event),
}

impl WatchEvent {
    /// Decodes one text frame. The frame is kept in the event ([`Event::raw`]).
    ///
    /// # Errors
    /// [`DecodeError`] when the frame is not JSON, lacks an id, or is not a container event.
    pub fn decode(frame: impl Into<Bytes>) -> Result<Self, DecodeError> {
        let frame = Utf8Frame::try_from(frame.into()).map_err(|_| DecodeError::NotUtf8)?;
        Self::decode_frame(frame).map_err(|(e, _)| e)
    }

    /// Decodes a frame known to be UTF-8 (a websocket text frame). The event is made with
    /// its frame in one step; on failure the frame comes back with the error.
    pub(crate) fn decode_frame(frame: Utf8Frame) -> Result<Self, (DecodeError, Utf8Frame)> {
        let ((kind, fields), strings) = Strings::decode(frame, parse)?;
        let event = Event::new(strings, fields);
        Ok(match kind {
            Kind::Added => Self::Added(event),
            Kind::Modified => Self::Modified(event),
            Kind::Deleted => Self::Deleted(event),
        })
    }

    /// The event, whatever its kind.
    #[must_use]
    pub fn event(&self) -> &Event {
        match self {
            Self::Added(e) | Self::Modified(e) | Self::Deleted(e) => e,
        }
    }

    /// Consumes the watch event and returns the event.
    #[must_use]
    pub fn into_event(self) -> Event {
        match self {
            Self::Added(e) | Self::Modified(e) | Self::Deleted(e) => e,
        }
    }

    /// The container id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.event().id()
    }

    /// The memory this event keeps while it is held: itself, its frame and its decoded
    /// labels ([`Labels::kept_bytes`]). A frame cut from a larger read buffer may keep
    /// that buffer alive too; this counts the frame only.
    #[must_use]
    pub fn kept_bytes(&self) -> usize {
        let e = self.event();
        size_of::<Self>() + e.raw().len() + e.labels().map_or(0, Labels::kept_bytes)
    }

    /// The event as sent by `engine`: its Docker action then means what it means on that
    /// engine (see [`DockerAction::state_after`]). A source that knows which engine it
    /// talks to calls this on every event; decoding assumes [`Engine::Docker`].
    ///
    /// ```
    /// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
    /// use hypersh::watch::event::Engine;
    /// use hypersh::watch::{Container, ContainerState, WatchEvent};
    ///
    /// let die = WatchEvent::decode(r#"{"Type":"container","Action":"die","Actor":{"ID":"c1"}}"#)?;
    /// let running = Container::builder("c1").state(ContainerState::Running).build();
    /// let on_podman = die.on_engine(Engine::Podman);
    /// let stopped = on_podman.event().changes(&running).expect("die changes the state");
    /// assert_eq!(stopped.state(), ContainerState::Stopped);
    /// # Ok::<(), hypersh_watch::event::DecodeError>(())
    /// ```
    #[must_use]
    pub fn on_engine(mut self, engine: Engine) -> Self {
        match &mut self {
            Self::Added(e) | Self::Modified(e) | Self::Deleted(e) => e.engine = engine,
        }
        self
    }

    /// `ADDED`, `MODIFIED` or `DELETED`.
    #[must_use]
    pub fn kind_str(&self) -> &'static str {
        match self {
            Self::Added(_) => "ADDED",
            Self::Modified(_) => "MODIFIED",
            Self::Deleted(_) => "DELETED",
        }
    }
}

/// Which wire shape a frame uses (spec section 3): the one enum for both directions, the
/// shape a decoded event came in and the shape a server writes. It parses from, and
/// displays as, the CLI spelling `docker` or `k8s`.
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::event::Shape;
///
/// assert_eq!("k8s".parse(), Ok(Shape::Kubernetes));
/// assert_eq!(Shape::default().to_string(), "docker");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Shape {
    /// `Action` is a Docker action (`start`, `die`, ...): the published API, and the
    /// default. Frames are written by [`docker::DockerFrame`].
    #[default]
    Docker,
    /// `Action` is `ADDED`, `MODIFIED` or `DELETED` and `Status` a phase: the early API
    /// router. Frames are written by [`kubernetes::KubernetesFrame`].
    Kubernetes,
}

impl Shape {
    /// The CLI spelling: `docker` or `k8s`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Kubernetes => "k8s",
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Shape {
    type Err = UnknownShape;

    /// `docker`, or `k8s` / `kubernetes` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "docker" => Ok(Self::Docker),
            "k8s" | "kubernetes" => Ok(Self::Kubernetes),
            _ => Err(UnknownShape(s.to_owned())),
        }
    }
}

/// The error of parsing a [`Shape`]: the text is not a shape's name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event shape {0:?}: use docker or k8s")]
#[non_exhaustive]
pub struct UnknownShape(pub String);

/// Which [`WatchEvent`] a frame makes.
enum Kind {
    Added,
    Modified,
    Deleted,
}

/// One decoded container event, in a form common to both shapes.
///
/// The event keeps its frame ([`Event::raw`]), and its strings (the id, the action, the
/// image and the name) as places in it: decoding copies none of them. Everything is read
/// through accessors, as a [`Container`]'s fields are: [`Event::id`], [`Event::action`],
/// [`Event::image`], [`Event::name`], [`Event::shape`], [`Event::phase`],
/// [`Event::labels`], [`Event::exit_code`], [`Event::time_nano`].
#[derive(Clone, PartialEq)]
pub struct Event {
    /// The frame, and the id, action, image and name as places in it.
    strings: Strings,
    shape: Shape,
    phase: Option<PodPhase>,
    labels: Option<Labels>,
    exit_code: Option<i64>,
    time_nano: i64,
    engine: Engine,
}

impl Event {
    /// The shape of the frame this came from.
    #[must_use]
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The phase (`Status`) of a Kubernetes-style event.
    #[must_use]
    pub fn phase(&self) -> Option<PodPhase> {
        self.phase
    }

    /// The labels, when the event carries them unambiguously (Kubernetes shape only;
    /// `Labels: null` there means no labels). `None` for Docker-style events, whose labels
    /// are mixed into [`Event::attributes`].
    #[must_use]
    pub fn labels(&self) -> Option<&Labels> {
        self.labels.as_ref()
    }

    /// The exit code, when the event carries a non-empty one.
    #[must_use]
    pub fn exit_code(&self) -> Option<i64> {
        self.exit_code
    }

    /// The event's time in nanoseconds since the Unix epoch (from `timeNano`, else
    /// `time`).
    #[must_use]
    pub fn time_nano(&self) -> i64 {
        self.time_nano
    }

    /// The engine that sent it, which decides what a Docker action means for the
    /// container's state: [`Engine::Docker`] unless a source said otherwise
    /// ([`WatchEvent::on_engine`]).
    #[must_use]
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The full container id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.strings.id()
    }

    /// The action as sent: a Docker action (`start`, `health_status: healthy`) or
    /// `ADDED`/`MODIFIED`/`DELETED`.
    #[must_use]
    pub fn action(&self) -> &str {
        self.strings.action()
    }

    /// The image, from `from`/`From` or the `image` attribute.
    #[must_use]
    pub fn image(&self) -> Option<&str> {
        self.strings.image()
    }

    /// The container name (without a leading `/`), if the event names it.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.strings.name()
    }

    /// The frame this event was decoded from, as received.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        self.strings.frame_bytes()
    }

    /// The frame as text (frames are checked to be UTF-8 when decoded).
    #[must_use]
    pub fn raw_str(&self) -> &str {
        self.strings.frame()
    }

    /// The actor attributes with string, number or boolean values (numbers and booleans
    /// as JSON spells them), read again from the frame on each call: decoding keeps only
    /// the attributes an event needs (name, image, exit code, Kubernetes labels), so the
    /// common path does not pay for the rest.
    #[must_use]
    pub fn attributes(&self) -> BTreeMap<String, String> {
        wire::attributes_of(self.raw_str())
    }

    /// The Docker action, parsed; `None` for Kubernetes-style events.
    #[must_use]
    pub fn docker_action(&self) -> Option<DockerAction> {
        (self.shape == Shape::Docker).then(|| DockerAction::parse(self.action()))
    }

    /// Builds the whole container from the event, when the event carries enough to do so
    /// (Kubernetes shape: name, image, labels and phase). Docker-style events return `None`:
    /// their labels cannot be separated from other attributes, so a container first seen
    /// in one must be fetched with a filtered list call.
    #[must_use]
    pub fn to_container(&self) -> Option<Container> {
        let phase = self.phase?;
        Some(Container {
            id: Arc::from(self.id()),
            names: self
                .name()
                .iter()
                .map(|n| format_smolstr!("/{n}"))
                .collect(),
            image: self.image().map(SmolStr::new).unwrap_or_default(),
            labels: Arc::new(self.labels.clone().unwrap_or_default()),
            state: phase.state(),
            ..Container::default()
        })
    }

    /// Applies what this event says to a cached copy of its container and returns the
    /// result: the state implied by a Docker action (or the phase of a Kubernetes-style
    /// event, keeping `paused` while the phase stays `Running`) and a new name on `rename`.
    /// When the state changes, `status` becomes Docker's status text for the new state
    /// without the age (`Up`, `Exited (137)`); when the container stops, its networks lose
    /// their addresses, gateways and MAC addresses, as the engines list them then. Fields
    /// the event does not speak of (ports, mounts, the networks' names and ids) are kept.
    /// See [`Event::changes`] to learn whether anything changed without building a copy.
    #[must_use]
    pub fn apply_to(&self, cached: &Container) -> Container {
        self.changes(cached).unwrap_or_else(|| cached.clone())
    }

    /// The new version of `cached` this event makes, or `None` when it changes nothing:
    /// what [`Event::apply_to`] returns when that differs from `cached`. Each field is
    /// decided first, and the container is copied only when one changes.
    ///
    /// ```
    /// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
    /// use hypersh::watch::{Container, ContainerState, WatchEvent};
    ///
    /// let event = WatchEvent::decode(r#"{"status":"start","id":"c1","Type":"container"}"#)?;
    /// let stopped = Container::builder("c1").state(ContainerState::Exited).build();
    /// let running = event.event().changes(&stopped).expect("a start changes the state");
    /// assert_eq!(running.state(), ContainerState::Running);
    /// assert!(event.event().changes(&running).is_none(), "started already");
    /// # Ok::<(), hypersh_watch::event::DecodeError>(())
    /// ```
    #[must_use]
    pub fn changes(&self, cached: &Container) -> Option<Container> {
        let exit_code = self.exit_code.unwrap_or(0);
        let (state, name, labels, image) = match self.shape {
            Shape::Docker => (
                self.docker_action()
                    .and_then(|a| a.state_after(self.engine, cached.state)),
                self.name().filter(|_| self.action() == "rename"),
                None,
                None,
            ),
            Shape::Kubernetes => (
                self.phase
                    .filter(|phase| cached.state.phase(exit_code) != *phase)
                    .map(PodPhase::state),
                self.name(),
                self.labels.as_ref().filter(|l| **l != *cached.labels),
                self.image().filter(|i| *i != cached.image),
            ),
        };
        let state = state.filter(|s| *s != cached.state);
        let name = name.filter(|n| !has_only_name(cached, n));
        if state.is_none() && name.is_none() && labels.is_none() && image.is_none() {
            return None;
        }
        let mut next = cached.clone();
        if let Some(state) = state {
            next.state = state;
            next.status = state.summary(exit_code);
            if cached.state.is_running() && !state.is_running() {
                next.release_addresses();
            }
        }
        if let Some(name) = name {
            next.names = Arc::from([format_smolstr!("/{name}")]);
        }
        if let Some(labels) = labels {
            next.labels = Arc::new(labels.clone());
        }
        if let Some(image) = image {
            next.image = SmolStr::new(image);
        }
        Some(next)
    }
}

/// Whether `c`'s only name is `name` (stored with its leading `/`).
fn has_only_name(c: &Container, name: &str) -> bool {
    matches!(&*c.names, [only] if only.strip_prefix('/') == Some(name))
}

/// Why a frame could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame is not valid UTF-8.
    #[error("frame is not valid UTF-8")]
    NotUtf8,
    /// The frame is not a JSON event object.
    #[error("frame is not a JSON event: {0}")]
    Json(#[source] serde_json::Error),
    /// The frame is a JSON array, not an event object.
    #[error("frame is a JSON array, not an event object")]
    NotObject,
    /// Neither `id`, `Id` nor `Actor.ID` holds a non-empty id.
    #[error("event has no container id")]
    MissingId,
    /// The event is about something other than a container (`Type` is `image`, ...).
    #[error("event type {0:?} is not a container event")]
    NotContainer(String),
    /// The frame has no `Action` nor `status`.
    #[error("event has no action")]
    MissingAction,
}

/// Decodes the text of a frame into the event's fields and its strings (borrowed from
/// the text where it spells them without escapes).
fn parse(text: &str) -> Result<((Kind, Fields), Parts<'_>), DecodeError> {
    // The fast path takes the frames servers send; serde reads any other and decides
    // every error.
    let mut wire = WireEvent::default();
    if wire::scan(text, &mut wire) {
        return from_wire(&mut wire);
    }
    // serde would read a JSON array as the struct's fields in order: refuse it here.
    if text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('[')
    {
        return Err(DecodeError::NotObject);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let seed = EventSeed {
        build: |mut wire| from_wire(&mut wire),
    };
    let built = de::DeserializeSeed::deserialize(seed, &mut de).map_err(DecodeError::Json)?;
    // Trailing characters make the frame bad JSON, whatever the event says.
    de.end().map_err(DecodeError::Json)?;
    built
}

/// The fields of an [`Event`] besides its strings.
struct Fields {
    shape: Shape,
    phase: Option<PodPhase>,
    labels: Option<Labels>,
    exit_code: Option<i64>,
    time_nano: i64,
}

impl Event {
    /// The event made of its frame with its strings, and its other fields.
    fn new(strings: Strings, fields: Fields) -> Self {
        let Fields {
            shape,
            phase,
            labels,
            exit_code,
            time_nano,
        } = fields;
        Self {
            strings,
            shape,
            phase,
            labels,
            exit_code,
            time_nano,
            engine: Engine::Docker,
        }
    }
}

/// Reads the event out of its wire form: which kind it is, its fields, and its strings.
/// It takes what it keeps out of `wire` (which the fast path fills in place: moving it
/// would copy it).
fn from_wire<'a>(wire: &mut WireEvent<'a>) -> Result<((Kind, Fields), Parts<'a>), DecodeError> {
    use std::mem::take;
    if !wire.kind.is_empty() && wire.kind != "container" {
        return Err(DecodeError::NotContainer(take(&mut wire.kind).into_owned()));
    }
    let id = if wire.id.is_empty() {
        take(&mut wire.actor.id)
    } else {
        take(&mut wire.id)
    };
    if id.is_empty() {
        return Err(DecodeError::MissingId);
    }
    let action = if wire.action.is_empty() {
        take(&mut wire.docker_status)
    } else {
        take(&mut wire.action)
    };
    if action.is_empty() {
        return Err(DecodeError::MissingAction);
    }
    let shape = match &*action {
        "ADDED" | "MODIFIED" | "DELETED" => Shape::Kubernetes,
        _ => Shape::Docker,
    };
    let kind = match (shape, &*action) {
        (Shape::Kubernetes, "ADDED") | (Shape::Docker, "create") => Kind::Added,
        (Shape::Kubernetes, "DELETED") | (Shape::Docker, "destroy" | "remove") => Kind::Deleted,
        _ => Kind::Modified,
    };
    let attributes = &mut wire.actor.attributes;
    let exit_code = attributes.exit_code();
    let image = if wire.from.is_empty() {
        attributes.take_image()
    } else {
        Some(take(&mut wire.from))
    };
    let (phase, labels) = match shape {
        Shape::Kubernetes => (
            wire.phase,
            Some(attributes.labels.take().unwrap_or_default()),
        ),
        Shape::Docker => (None, None),
    };
    let time_nano = if wire.time_nano != 0 {
        wire.time_nano
    } else {
        wire.time.saturating_mul(1_000_000_000)
    };
    let fields = Fields {
        shape,
        phase,
        labels,
        exit_code,
        time_nano,
    };
    let parts = Parts {
        id,
        action,
        image,
        name: attributes.take_name(),
    };
    Ok(((kind, fields), parts))
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id())
            .field("shape", &self.shape)
            .field("action", &self.action())
            .field("phase", &self.phase)
            .field("image", &self.image())
            .field("name", &self.name())
            .field("labels", &self.labels)
            .field("exit_code", &self.exit_code)
            .field("time_nano", &self.time_nano)
            .field("engine", &self.engine)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::ContainerState;

    const K8S: &str = r#"{"Action":"ADDED","Actor":{"Attributes":{"ExitCode":"","Image":"busybox",
        "Labels":null,"Name":"test2"},"Id":"d180511d"},"From":"busybox","Id":"d180511d",
        "Status":"Running","Time":1.47601746e+09,"TimeNano":1.47601746053364e+18,"Type":"container"}"#;

    const DOCKER: &str = r#"{"status":"start","id":"f29698ca","from":"busybox","Type":"container",
        "Action":"start","Actor":{"ID":"f29698ca","Attributes":{"exitCode":"0","image":"busybox",
        "name":"test4","sh_hyper_instancetype":"s4","test2":"test2"}},"time":1476375774,
        "timeNano":1476375774255155116}"#;

    #[test]
    fn decodes_the_seed_kubernetes_frame_with_float_times() {
        let ev = WatchEvent::decode(K8S).unwrap();
        let WatchEvent::Added(e) = &ev else {
            panic!("expected Added, got {ev:?}")
        };
        assert_eq!(e.shape, Shape::Kubernetes);
        assert_eq!(e.id(), "d180511d");
        assert_eq!(e.phase, Some(PodPhase::Running));
        assert_eq!(e.name(), Some("test2"));
        assert_eq!(e.image(), Some("busybox"));
        assert_eq!(e.labels, Some(Labels::default()));
        assert_eq!(e.exit_code, None);
        // A float TimeNano keeps f64 precision only (about 16 digits).
        assert_eq!(e.time_nano, 1.476_017_460_533_64e18 as i64);
        assert_eq!(e.raw_str(), K8S);
        let c = e.to_container().unwrap();
        assert_eq!(*c.names, ["/test2"]);
        assert_eq!(c.state, ContainerState::Running);
    }

    #[test]
    fn decodes_the_spec_docker_frame() {
        let ev = WatchEvent::decode(DOCKER).unwrap();
        let WatchEvent::Modified(e) = &ev else {
            panic!("expected Modified, got {ev:?}")
        };
        assert_eq!(e.shape, Shape::Docker);
        assert_eq!(e.id(), "f29698ca");
        assert_eq!(e.docker_action(), Some(DockerAction::Start));
        assert_eq!(e.name(), Some("test4"));
        assert_eq!(e.exit_code, Some(0));
        assert_eq!(e.labels, None, "docker labels are ambiguous");
        assert_eq!(e.attributes()["test2"], "test2");
        assert_eq!(e.time_nano, 1_476_375_774_255_155_116);
        assert!(e.to_container().is_none());
    }

    #[test]
    fn maps_docker_actions_to_kinds() {
        for (action, kind) in [
            ("create", "ADDED"),
            ("destroy", "DELETED"),
            ("die", "MODIFIED"),
            ("health_status: healthy", "MODIFIED"),
            ("exec_start: sh -c ls", "MODIFIED"),
            ("something_new", "MODIFIED"),
        ] {
            let frame = format!(r#"{{"Type":"container","Action":"{action}","id":"abc"}}"#);
            assert_eq!(
                WatchEvent::decode(frame).unwrap().kind_str(),
                kind,
                "{action}"
            );
        }
        assert_eq!(
            DockerAction::parse("health_status: healthy"),
            DockerAction::HealthStatus
        );
        assert_eq!(DockerAction::parse("exec_die"), DockerAction::Exec);
    }

    #[test]
    fn kubernetes_kinds_and_labels() {
        let frame = r#"{"Action":"DELETED","Id":"x","Status":"Succeeded","Type":"container",
            "Actor":{"Attributes":{"ExitCode":"0","Labels":{"app":"web","n":3}}}}"#;
        let ev = WatchEvent::decode(frame).unwrap();
        assert_eq!(ev.kind_str(), "DELETED");
        let e = ev.event();
        assert_eq!(e.exit_code, Some(0));
        let labels = e.labels.as_ref().unwrap();
        assert_eq!(labels.get("app"), Some("web"));
        assert_eq!(labels.get("n"), Some("3"));
    }

    #[test]
    fn strings_read_back_from_the_frame_or_unescaped() {
        let frame = r#"{"Action":"rename","id":"a\"b","from":"nginx",
            "Actor":{"Attributes":{"name":"caf\u00e9"}}}"#;
        let ev = WatchEvent::decode(frame).unwrap();
        let e = ev.event();
        assert_eq!(e.id(), "a\"b");
        assert_eq!(e.action(), "rename");
        assert_eq!(e.image(), Some("nginx"));
        assert_eq!(e.name(), Some("caf\u{e9}"));
        assert_eq!(ev.clone(), ev);
        let debug = format!("{e:?}");
        assert!(debug.contains(r#"id: "a\"b""#), "{debug}");
    }

    #[test]
    fn shapes_parse_and_display_their_cli_spelling() {
        assert_eq!("docker".parse(), Ok(Shape::Docker));
        assert_eq!("K8S".parse(), Ok(Shape::Kubernetes));
        assert_eq!("kubernetes".parse(), Ok(Shape::Kubernetes));
        let e = "yaml".parse::<Shape>().unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"unknown event shape "yaml": use docker or k8s"#
        );
        assert_eq!(Shape::Kubernetes.to_string(), "k8s");
        assert_eq!(Shape::default(), Shape::Docker);
    }

    #[test]
    fn an_array_is_refused_after_json_whitespace_only() {
        assert!(matches!(
            WatchEvent::decode(" \t\r\n[1]"),
            Err(DecodeError::NotObject)
        ));
        assert!(matches!(
            WatchEvent::decode("\u{a0}[1]"),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn id_falls_back_to_the_actor() {
        let ev = WatchEvent::decode(r#"{"Action":"stop","Actor":{"ID":"z9"}}"#).unwrap();
        assert_eq!(ev.id(), "z9");
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert!(matches!(
            WatchEvent::decode("not json"),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            WatchEvent::decode("[1,2]"),
            Err(DecodeError::NotObject)
        ));
        assert!(matches!(
            WatchEvent::decode("{not json"),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            WatchEvent::decode(r#"{"Action":"start","id":""}"#),
            Err(DecodeError::MissingId)
        ));
        assert!(matches!(
            WatchEvent::decode(r#"{"Type":"image","Action":"pull","id":"busybox"}"#),
            Err(DecodeError::NotContainer(t)) if t == "image"
        ));
        assert!(matches!(
            WatchEvent::decode(r#"{"id":"a"}"#),
            Err(DecodeError::MissingAction)
        ));
        assert!(matches!(
            WatchEvent::decode(Bytes::from_static(b"{\"id\":\"\xff\"}")),
            Err(DecodeError::NotUtf8)
        ));
        assert!(matches!(
            WatchEvent::decode(r#"{"Action":"start","id":"a","time":"soon"}"#),
            Err(DecodeError::Json(_))
        ));
    }

    #[test]
    fn docker_actions_update_a_cached_container() {
        let cached = Container {
            id: "f29698ca".into(),
            names: vec!["/old".into()].into(),
            state: ContainerState::Exited,
            labels: Arc::new(Labels::from_iter([("a", "b")])),
            ..Container::default()
        };
        let started = WatchEvent::decode(DOCKER)
            .unwrap()
            .into_event()
            .apply_to(&cached);
        assert_eq!(started.state, ContainerState::Running);
        assert_eq!(started.status, "Up");
        assert_eq!(*started.names, ["/old"], "start does not rename");
        assert_eq!(started.labels, cached.labels);

        let rename = r#"{"Action":"rename","id":"f29698ca","Actor":{"Attributes":{"name":"new","oldName":"/old"}}}"#;
        let renamed = WatchEvent::decode(rename)
            .unwrap()
            .into_event()
            .apply_to(&started);
        assert_eq!(*renamed.names, ["/new"]);
        assert_eq!(renamed.state, ContainerState::Running);

        let kill = r#"{"Action":"kill","id":"f29698ca"}"#;
        let killed = WatchEvent::decode(kill)
            .unwrap()
            .into_event()
            .apply_to(&renamed);
        assert_eq!(
            killed.state,
            ContainerState::Running,
            "kill alone decides nothing"
        );
    }

    /// A Podman container's life as its events tell it (`shared/spec/podman.md`), on
    /// each engine's meaning: the states its list shows after each.
    #[test]
    fn podman_actions_follow_podman_states() {
        let frame = |action: &str| {
            format!(
                r#"{{"status":"{action}","id":"p1","from":"localhost/bb:1","Type":"container","Action":"{action}","Actor":{{"ID":"p1","Attributes":{{"app":"web","containerExitCode":"0","image":"localhost/bb:1","name":"web","podId":""}}}},"scope":"local","time":1796632903,"timeNano":1796632903534600265}}"#
            )
        };
        let mut c = Container {
            id: "p1".into(),
            names: vec!["/web".into()].into(),
            ..Container::default()
        };
        let steps = [
            ("create", ContainerState::Created),
            ("init", ContainerState::Created),
            ("start", ContainerState::Running),
            ("exec", ContainerState::Running),
            ("exec_died", ContainerState::Running),
            ("health_status", ContainerState::Running),
            ("sync", ContainerState::Running),
            // `podman restart`: restart first, then it stops and starts again.
            ("restart", ContainerState::Running),
            ("stop", ContainerState::Stopped),
            ("die", ContainerState::Stopped),
            ("init", ContainerState::Created),
            ("start", ContainerState::Running),
            // `podman stop`: no stop event; cleanup twice.
            ("kill", ContainerState::Running),
            ("die", ContainerState::Stopped),
            ("cleanup", ContainerState::Exited),
            ("cleanup", ContainerState::Exited),
            // A restart of an exited container.
            ("restart", ContainerState::Exited),
            ("init", ContainerState::Created),
            ("start", ContainerState::Running),
        ];
        for (action, state) in steps {
            let ev = WatchEvent::decode(frame(action))
                .unwrap()
                .on_engine(Engine::Podman);
            let kind = if action == "create" {
                "ADDED"
            } else {
                "MODIFIED"
            };
            assert_eq!(ev.kind_str(), kind, "{action}");
            c = ev.event().apply_to(&c);
            assert_eq!(c.state, state, "after {action}");
        }
        let removed = WatchEvent::decode(frame("remove")).unwrap();
        assert!(matches!(removed, WatchEvent::Deleted(_)));
        assert_eq!(removed.event().docker_action(), Some(DockerAction::Destroy));
        // On Docker's meaning, die is exited at once, and cleanup of an exited one is
        // nothing.
        let die = WatchEvent::decode(frame("die")).unwrap();
        let running = Container {
            state: ContainerState::Running,
            ..c.clone()
        };
        assert_eq!(die.event().apply_to(&running).state, ContainerState::Exited);
        assert_eq!(
            die.clone().on_engine(Engine::Podman).event().engine(),
            Engine::Podman
        );
        // A health check's result is top-level on Podman: decoded, and no state change.
        let health = frame("health_status").replace(
            r#""timeNano":1796632903534600265}"#,
            r#""timeNano":1796632903534600265,"HealthStatus":"starting"}"#,
        );
        let ev = WatchEvent::decode(health)
            .unwrap()
            .on_engine(Engine::Podman);
        assert_eq!(ev.event().docker_action(), Some(DockerAction::HealthStatus));
        assert!(ev.event().changes(&running).is_none());
    }

    /// API 1.52 and later: no `status`, `id` nor `from` (Docker's API reference,
    /// `EventMessage`): the event is read from `Type`, `Action` and `Actor`.
    #[test]
    fn events_without_the_deprecated_fields_decode() {
        let frame = r#"{"Type":"container","Action":"die","Actor":{"ID":"ede54ee1afda366ab42f824e8a5ffd195155d853ceaec74a927f249ea270c743","Attributes":{"com.example.some-label":"some-label-value","exitCode":"137","image":"alpine:latest","name":"my-container"}},"scope":"local","time":1629574695,"timeNano":1629574695515050000}"#;
        let ev = WatchEvent::decode(frame).unwrap();
        let e = ev.event();
        assert_eq!(
            e.id(),
            "ede54ee1afda366ab42f824e8a5ffd195155d853ceaec74a927f249ea270c743"
        );
        assert_eq!(e.docker_action(), Some(DockerAction::Die));
        assert_eq!(e.image(), Some("alpine:latest"));
        assert_eq!(e.name(), Some("my-container"));
        assert_eq!(e.exit_code, Some(137));
        assert_eq!(e.time_nano, 1_629_574_695_515_050_000);
        let destroy = frame.replace(r#""Action":"die""#, r#""Action":"destroy""#);
        assert!(matches!(
            WatchEvent::decode(destroy).unwrap(),
            WatchEvent::Deleted(_)
        ));
        // Empty deprecated fields, as some versions write them, fall back the same way.
        let empty = frame.replace(r#"{"Type""#, r#"{"status":"","id":"","from":"","Type""#);
        let ev = WatchEvent::decode(empty).unwrap();
        assert_eq!(ev.event().image(), Some("alpine:latest"));
        assert_eq!(ev.id(), e.id());
    }

    #[test]
    fn kubernetes_phase_keeps_paused_while_running() {
        let paused = Container {
            id: "d180511d".into(),
            state: ContainerState::Paused,
            ..Container::default()
        };
        let e = WatchEvent::decode(K8S.replace("ADDED", "MODIFIED"))
            .unwrap()
            .into_event();
        assert_eq!(e.apply_to(&paused).state, ContainerState::Paused);
        let stopped = e.apply_to(&Container {
            state: ContainerState::Exited,
            ..paused.clone()
        });
        assert_eq!(stopped.state, ContainerState::Running);
    }

    #[test]
    fn changes_agrees_with_apply_to_and_a_second_application_changes_nothing() {
        let base = Container {
            id: "d180511d".into(),
            names: Arc::from([SmolStr::new("/test2")]),
            image: "busybox".into(),
            ..Container::default()
        };
        let frames = [
            K8S.to_owned(),
            K8S.replace("Running", "Failed"),
            K8S.replace("\"Name\":\"test2\"", "\"Name\":\"other\""),
            K8S.replace("\"Labels\":null", "\"Labels\":{\"a\":\"b\"}"),
            DOCKER.to_owned(),
            DOCKER.replace("\"start\"", "\"kill\""),
            DOCKER.replace("\"start\"", "\"rename\""),
        ];
        for state in [
            ContainerState::Created,
            ContainerState::Running,
            ContainerState::Paused,
            ContainerState::Exited,
        ] {
            let cached = Container {
                state,
                ..base.clone()
            };
            for frame in &frames {
                let e = WatchEvent::decode(frame.clone()).unwrap().into_event();
                let next = e.apply_to(&cached);
                assert_eq!(
                    e.changes(&cached).is_none(),
                    next == cached,
                    "{frame} on {state:?}"
                );
                assert!(e.changes(&next).is_none(), "{frame} twice on {state:?}");
            }
        }
    }
}
