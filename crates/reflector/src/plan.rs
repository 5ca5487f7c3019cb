//! What one event means for a cached container. A pure function: the core decides with
//! it, the shell does the I/O.

use hypersh_watch::container::{ContainerState, PodPhase};
use hypersh_watch::event::Shape;
use hypersh_watch::{Container, WatchEvent};

/// The effect of one event on the cache.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Plan {
    /// Store this (changed) container.
    Upsert(Container),
    /// Store this (changed) container, then fetch it: the event started or stopped a
    /// container whose addresses and ports the engine changes then, which no event
    /// carries.
    UpsertThenFetch(Container),
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
/// [`phase_decides`]): those are fetched too. An event that starts or stops a container
/// attached to a network is applied and the container fetched as well (see
/// [`moves_addresses`]).
pub(crate) fn plan(event: &WatchEvent, cached: Option<&Container>) -> Plan {
    match (event, cached) {
        (WatchEvent::Deleted(_), _) => Plan::Delete,
        (WatchEvent::Added(_) | WatchEvent::Modified(_), None) => Plan::Fetch,
        (WatchEvent::Added(e) | WatchEvent::Modified(e), Some(c))
            if e.shape == Shape::Kubernetes && !phase_decides(e.phase, c) =>
        {
            Plan::Fetch
        }
        (WatchEvent::Added(e) | WatchEvent::Modified(e), Some(c)) => match e.changes(c) {
            None => Plan::Nothing,
            Some(next) if moves_addresses(c, &next) => Plan::UpsertThenFetch(next),
            Some(next) => Plan::Upsert(next),
        },
    }
}

/// Whether the change from `cached` to `next` is one after which the engine lists other
/// networks or ports for the container, which no event carries: it starts (from created
/// or stopped) or stops, and it has ports or a network the change rewrites. Docker and
/// Podman give a container its addresses when it starts and take them back when it stops
/// (a restart may give another address); Docker lists ports only while a container runs,
/// and a network's `NetworkID` from its first start on (`none` and `host` too, which
/// never have an address). Pausing changes none of it.
fn moves_addresses(cached: &Container, next: &Container) -> bool {
    fn up(state: ContainerState) -> bool {
        matches!(
            state,
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }
    let starts = match (up(cached.state()), up(next.state())) {
        (false, true) => true,
        (true, false) => false,
        _ => return false,
    };
    !cached.ports().is_empty()
        || cached
            .networks()
            .iter()
            .any(|n| !matches!(n.name(), "none" | "host") || (starts && n.network_id().is_empty()))
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
    use hypersh_watch::container::Network;

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

    #[test]
    fn a_start_or_stop_of_an_attached_container_is_applied_then_fetched() {
        let on = |name: &str, state| {
            container("a", state)
                .into_builder()
                .network(Network::new(name))
                .build()
        };
        let created = on("bridge", ContainerState::Created);
        let Plan::UpsertThenFetch(started) = plan(&docker("start", "a"), Some(&created)) else {
            panic!("a start gives addresses the event does not carry")
        };
        assert_eq!(started.state(), ContainerState::Running);
        let running = on("bridge", ContainerState::Running);
        assert!(matches!(
            plan(&docker("die", "a"), Some(&running)),
            Plan::UpsertThenFetch(c) if c.state() == ContainerState::Exited
        ));
        assert!(matches!(
            plan(&k8s("MODIFIED", "a", "Failed"), Some(&running)),
            Plan::UpsertThenFetch(_)
        ));
        // Pausing, renaming, or no address to learn: applied alone.
        assert!(matches!(
            plan(&docker("pause", "a"), Some(&running)),
            Plan::Upsert(_)
        ));
        for name in ["none", "host"] {
            // Its id arrives at the first start; it never has an address.
            assert!(matches!(
                plan(
                    &docker("start", "a"),
                    Some(&on(name, ContainerState::Created))
                ),
                Plan::UpsertThenFetch(_)
            ));
            let known = |state| {
                container("a", state)
                    .into_builder()
                    .network(Network::new(name).with_network_id("2a5b66f9"))
                    .build()
            };
            assert!(matches!(
                plan(&docker("start", "a"), Some(&known(ContainerState::Exited))),
                Plan::Upsert(_)
            ));
            assert!(matches!(
                plan(&docker("die", "a"), Some(&known(ContainerState::Running))),
                Plan::Upsert(_)
            ));
        }
        assert!(matches!(
            plan(
                &docker("start", "a"),
                Some(&container("a", ContainerState::Created))
            ),
            Plan::Upsert(_)
        ));
        // Ports alone (Podman lists published ports of a stopped container) are enough.
        let published = container("a", ContainerState::Running)
            .into_builder()
            .port(hypersh_watch::container::Port::new(80, Default::default()))
            .build();
        assert!(matches!(
            plan(&docker("kill", "a"), Some(&published)),
            Plan::Nothing
        ));
        assert!(matches!(
            plan(&docker("die", "a"), Some(&published)),
            Plan::UpsertThenFetch(_)
        ));
    }
}
