//! What one event means for a cached container. A pure function: the core decides with
//! it, the shell does the I/O.

use hypersh_watch::container::PodPhase;
use hypersh_watch::event::Shape;
use hypersh_watch::{Container, WatchEvent};

/// The effect of one event on the cache.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Plan {
    /// Store this (changed) container.
    Upsert(Container),
    /// Remove the container.
    Delete,
    /// The cache does not hold the container and the event does not describe all of it:
    /// fetch it with a filtered list.
    Fetch,
    /// Nothing changes (an `exec_*` or `kill` event, a repeated state).
    Nothing,
}

/// Decides what `event` does to `cached`.
///
/// A container the cache lacks is always fetched, in both shapes: Docker-style events mix
/// labels with other attributes, and neither shape carries `Command`, `Created` or
/// `ImageID`. Later events update the fetched container's state and name, except
/// Kubernetes-style events whose phase does not decide the state (see
/// [`phase_decides`]): those are fetched too.
pub(crate) fn plan(event: &WatchEvent, cached: Option<&Container>) -> Plan {
    match (event, cached) {
        (WatchEvent::Deleted(_), _) => Plan::Delete,
        (WatchEvent::Added(_) | WatchEvent::Modified(_), None) => Plan::Fetch,
        (WatchEvent::Added(e) | WatchEvent::Modified(e), Some(c))
            if e.shape() == Shape::Kubernetes && !phase_decides(e.phase(), c) =>
        {
            Plan::Fetch
        }
        (WatchEvent::Added(e) | WatchEvent::Modified(e), Some(c)) => {
            e.changes(c).map_or(Plan::Nothing, Plan::Upsert)
        }
    }
}

/// Whether a Kubernetes-style phase tells the container's state without doubt, given
/// the cached container. A phase is coarser than a state: `Running` covers running and
/// paused, `Pending` covers created and restarting, and an event whose phase equals the
/// cached one says that something changed without saying what (pause, unpause, rename).
/// Only a move into `Running` (from another phase: a start) or into `Succeeded`/`Failed`
/// (the container stopped) decides the state.
fn phase_decides(phase: Option<PodPhase>, cached: &Container) -> bool {
    let was = cached.state().phase(0);
    match phase {
        Some(PodPhase::Running) => was != PodPhase::Running,
        Some(PodPhase::Succeeded | PodPhase::Failed) => {
            !matches!(was, PodPhase::Succeeded | PodPhase::Failed)
        }
        Some(PodPhase::Pending) | None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{container, docker, k8s};
    use hypersh_watch::ContainerState;

    #[test]
    fn plans() {
        let running = container("a", ContainerState::Running);
        assert_eq!(plan(&docker("create", "a"), None), Plan::Fetch);
        assert_eq!(plan(&docker("start", "a"), None), Plan::Fetch);
        assert_eq!(plan(&docker("destroy", "a"), Some(&running)), Plan::Delete);
        assert_eq!(plan(&docker("destroy", "a"), None), Plan::Delete);
        assert_eq!(plan(&docker("start", "a"), Some(&running)), Plan::Nothing);
        assert_eq!(
            plan(&docker("exec_start: ls", "a"), Some(&running)),
            Plan::Nothing
        );
        let Plan::Upsert(paused) = plan(&docker("pause", "a"), Some(&running)) else {
            panic!("pause must change the state")
        };
        assert_eq!(paused.state(), ContainerState::Paused);
        assert_eq!(plan(&k8s("ADDED", "a", "Running"), None), Plan::Fetch);
        // Same phase: something changed that the phase cannot show (pause, rename).
        assert_eq!(
            plan(&k8s("MODIFIED", "a", "Running"), Some(&running)),
            Plan::Fetch
        );
        let exited = container("a", ContainerState::Exited);
        let Plan::Upsert(started) = plan(&k8s("ADDED", "a", "Running"), Some(&exited)) else {
            panic!("a move into Running decides the state")
        };
        assert_eq!(started.state(), ContainerState::Running);
        let Plan::Upsert(stopped) = plan(&k8s("MODIFIED", "a", "Failed"), Some(&running)) else {
            panic!("a move into Failed decides the state")
        };
        assert_eq!(stopped.state(), ContainerState::Exited);
        assert_eq!(
            plan(&k8s("MODIFIED", "a", "Pending"), Some(&exited)),
            Plan::Fetch
        );
    }
}
