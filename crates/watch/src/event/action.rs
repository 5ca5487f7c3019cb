//! The container actions an event names, and the state each implies on each engine.

use crate::container::ContainerState;

/// Which engine sent a Docker-shaped event. Docker Engine and Podman's Docker-compatible
/// service write the same wire shape, but some actions leave a container in a different
/// state (`shared/spec/podman.md`): a source that knows its engine says so with
/// [`WatchEvent::on_engine`](crate::WatchEvent::on_engine), and
/// [`Event::changes`](crate::Event::changes) follows that engine's meaning.
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::event::{DockerAction, Engine};
/// use hypersh::watch::ContainerState;
///
/// let die = DockerAction::parse("die");
/// assert_eq!(die.state_after(Engine::Docker, ContainerState::Running), Some(ContainerState::Exited));
/// // Podman's list says `stopped` until the engine cleans the container up.
/// assert_eq!(die.state_after(Engine::Podman, ContainerState::Running), Some(ContainerState::Stopped));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Engine {
    /// Docker Engine (and anything that follows its event semantics, such as the Hyper.sh
    /// API): the default.
    #[default]
    Docker,
    /// Podman's Docker-compatible service.
    Podman,
}

impl Engine {
    /// `Docker` or `Podman`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "Docker",
            Self::Podman => "Podman",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container action, as Docker (spec section 3b) or Podman (`shared/spec/podman.md`)
/// names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DockerAction {
    /// `create`
    Create,
    /// `init` (Podman: the container is set up in the runtime, before `start`)
    Init,
    /// `start`
    Start,
    /// `restart`
    Restart,
    /// `pause`
    Pause,
    /// `unpause`
    Unpause,
    /// `stop`
    Stop,
    /// `kill`
    Kill,
    /// `die`
    Die,
    /// `cleanup` (Podman: the runtime's resources of a container that exited are freed)
    Cleanup,
    /// `oom`
    Oom,
    /// `rename`
    Rename,
    /// `update`
    Update,
    /// `destroy` (Docker), `remove` (Podman)
    Destroy,
    /// `health_status: <state>` (Docker), `health_status` with a top-level `HealthStatus`
    /// (Podman)
    HealthStatus,
    /// `exec_create: <cmd>`, `exec_start: <cmd>`, `exec_die` (Docker); `exec`,
    /// `exec_died` (Podman)
    Exec,
    /// Any other action (`attach`, `resize`, `commit`, Podman's `sync`, `mount`, ...).
    Other,
}

/// Every container action Docker emits (`docker events`), as an `event` filter names it:
/// the part before any `:` (`health_status: healthy` is `health_status`).
pub const DOCKER_CONTAINER_ACTIONS: &[&str] = &[
    "attach",
    "commit",
    "copy",
    "create",
    "destroy",
    "detach",
    "die",
    "exec_create",
    "exec_detach",
    "exec_die",
    "exec_start",
    "export",
    "health_status",
    "kill",
    "oom",
    "pause",
    "prune",
    "rename",
    "resize",
    "restart",
    "start",
    "stop",
    "top",
    "unpause",
    "update",
];

/// Every container action Podman's Docker-compatible service emits (Podman 4.3's
/// `libpod/events`), as its events endpoint names them: `died` is sent as `die`.
pub const PODMAN_CONTAINER_ACTIONS: &[&str] = &[
    "attach",
    "checkpoint",
    "cleanup",
    "commit",
    "create",
    "die",
    "exec",
    "exec_died",
    "export",
    "health_status",
    "init",
    "kill",
    "mount",
    "pause",
    "prune",
    "remove",
    "rename",
    "restart",
    "restore",
    "start",
    "stop",
    "sync",
    "unmount",
    "unpause",
];

/// An action without its `: suffix` and the spaces around it (`health_status: healthy`
/// is `health_status`).
///
/// PERFORMANCE: every event's action goes through here (the reflector parses it to apply
/// the event): a bare word, as nearly all are, is taken as it is, with no search for a
/// `:` through `str::split` nor a Unicode `trim`.
fn head(action: &str) -> &str {
    if action
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return action;
    }
    action.split(':').next().unwrap_or("").trim()
}

impl DockerAction {
    /// True when Docker or Podman emits `action` for containers (a `: suffix` is
    /// ignored): an `event` filter naming anything else matches nothing.
    #[must_use]
    pub fn is_emitted(action: &str) -> bool {
        let head = head(action);
        DOCKER_CONTAINER_ACTIONS.contains(&head) || PODMAN_CONTAINER_ACTIONS.contains(&head)
    }

    /// Parses an action string; a `: suffix` is ignored.
    #[must_use]
    pub fn parse(action: &str) -> Self {
        match head(action) {
            "create" => Self::Create,
            "init" => Self::Init,
            "start" => Self::Start,
            "restart" => Self::Restart,
            "pause" => Self::Pause,
            "unpause" => Self::Unpause,
            "stop" => Self::Stop,
            "kill" => Self::Kill,
            "die" => Self::Die,
            "cleanup" => Self::Cleanup,
            "oom" => Self::Oom,
            "rename" => Self::Rename,
            "update" => Self::Update,
            "destroy" | "remove" => Self::Destroy,
            "health_status" => Self::HealthStatus,
            h if h == "exec" || h.starts_with("exec_") => Self::Exec,
            _ => Self::Other,
        }
    }

    /// The state a container is in right after this action on Docker Engine, when the
    /// action decides it. `kill` and `oom` do not: a `die` follows them. See
    /// [`state_after`](Self::state_after) for Podman.
    #[must_use]
    pub fn implied_state(self) -> Option<ContainerState> {
        match self {
            Self::Create | Self::Init => Some(ContainerState::Created),
            Self::Start | Self::Restart | Self::Unpause => Some(ContainerState::Running),
            Self::Pause => Some(ContainerState::Paused),
            Self::Stop | Self::Die => Some(ContainerState::Exited),
            _ => None,
        }
    }

    /// The state a container that was in state `from` is in right after this action on
    /// `engine`, when the action decides it; `None` leaves the state as it is.
    ///
    /// Podman differs from Docker where its list does (`shared/spec/podman.md`):
    /// - `die` leaves the container `stopped` until the engine's `cleanup` makes it
    ///   `exited`; `stop` comes before `die` there, and also means `stopped`;
    /// - `restart` is sent first, before the container is stopped and started again: it
    ///   says nothing of the state (the `start` that follows does);
    /// - `init` sets the container up again (its list says `created`) before a `start`.
    ///
    /// `cleanup` only moves a `stopped` container to `exited`: Podman sends it again for
    /// a container that is `exited` already (a `stop` gives two).
    #[must_use]
    pub fn state_after(self, engine: Engine, from: ContainerState) -> Option<ContainerState> {
        match (engine, self) {
            (_, Self::Cleanup) => {
                (from == ContainerState::Stopped).then_some(ContainerState::Exited)
            }
            (Engine::Podman, Self::Stop | Self::Die) => Some(ContainerState::Stopped),
            (Engine::Podman, Self::Restart) => None,
            _ => self.implied_state(),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// [`head`] without its shortcut: the oracle.
    fn head_plain(action: &str) -> &str {
        action.split(':').next().unwrap_or("").trim()
    }

    #[test]
    fn a_suffix_and_spaces_are_not_the_action() {
        assert_eq!(head("health_status: healthy"), "health_status");
        assert_eq!(head(" start "), "start");
        assert_eq!(head("exec_start: sh -c 'echo : x'"), "exec_start");
        assert_eq!(head("die"), "die");
        assert_eq!(head(""), "");
    }

    proptest! {
        #[test]
        fn head_is_the_plain_split_and_trim(action in "[a-z_:0-9 \u{a0}\u{3000}\t]{0,24}") {
            prop_assert_eq!(head(&action), head_plain(&action));
        }

        #[test]
        fn head_is_the_plain_split_and_trim_of_any_text(action in any::<String>()) {
            prop_assert_eq!(head(&action), head_plain(&action));
        }
    }
}
