//! The Docker container actions an event names, and the state each implies.

use crate::container::ContainerState;

/// A Docker container action (spec section 3b).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DockerAction {
    /// `create`
    Create,
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
    /// `oom`
    Oom,
    /// `rename`
    Rename,
    /// `update`
    Update,
    /// `destroy`
    Destroy,
    /// `health_status: <state>`
    HealthStatus,
    /// `exec_create: <cmd>`, `exec_start: <cmd>`, `exec_die`, ...
    Exec,
    /// Any other action (`attach`, `resize`, `commit`, ...).
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

impl DockerAction {
    /// True when Docker emits `action` for containers (a `: suffix` is ignored): an
    /// `event` filter naming anything else matches nothing.
    #[must_use]
    pub fn is_emitted(action: &str) -> bool {
        let head = action.split(':').next().unwrap_or("").trim();
        DOCKER_CONTAINER_ACTIONS.contains(&head)
    }

    /// Parses an action string; a `: suffix` is ignored.
    #[must_use]
    pub fn parse(action: &str) -> Self {
        let head = action.split(':').next().unwrap_or("").trim();
        match head {
            "create" => Self::Create,
            "start" => Self::Start,
            "restart" => Self::Restart,
            "pause" => Self::Pause,
            "unpause" => Self::Unpause,
            "stop" => Self::Stop,
            "kill" => Self::Kill,
            "die" => Self::Die,
            "oom" => Self::Oom,
            "rename" => Self::Rename,
            "update" => Self::Update,
            "destroy" => Self::Destroy,
            "health_status" => Self::HealthStatus,
            h if h.starts_with("exec_") => Self::Exec,
            _ => Self::Other,
        }
    }

    /// The state a container is in right after this action, when the action decides it.
    /// `kill` and `oom` do not: a `die` follows them.
    #[must_use]
    pub fn implied_state(self) -> Option<ContainerState> {
        match self {
            Self::Create => Some(ContainerState::Created),
            Self::Start | Self::Restart | Self::Unpause => Some(ContainerState::Running),
            Self::Pause => Some(ContainerState::Paused),
            Self::Stop | Self::Die => Some(ContainerState::Exited),
            _ => None,
        }
    }
}
