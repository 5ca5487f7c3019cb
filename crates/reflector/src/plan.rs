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
/// [`phase_decides`]): those are fetched too. An event that starts a container attached
/// to a network, or stops one with ports, is applied and the container fetched as well
/// (see [`moves_addresses`]).
pub(crate) fn plan(event: &WatchEvent, cached: Option<&Container>) -> Plan {
    match (event, cached) {
        (WatchEvent::Deleted(_), _) => Plan::Delete,
        (WatchEvent::Added(_) | WatchEvent::Modified(_), None) => Plan::Fetch,
        (WatchEvent::Added(e) | WatchEvent::Modified(e), Some(c))
            if e.shape() == Shape::Kubernetes && !phase_decides(e.phase(), c) =>
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

/// Whether the change from `cached` to `next` is one after which the engine lists what no
/// event carries. When a container starts (from created or stopped) the engine gives it
/// an address on each network but `none` and `host` (a restart may give another one),
/// and a network its `NetworkID` at the first start (`none` and `host` too). When it
/// stops, the addresses go, which [`Event::changes`](hypersh_watch::Event::changes)
/// applies itself; its ports go too on Docker but stay on Podman: fetched when it has
/// some. Pausing and unpausing change none of it.
fn moves_addresses(cached: &Container, next: &Container) -> bool {
    match (cached.state().is_running(), next.state().is_running()) {
        (false, true) => cached
            .networks()
            .iter()
            .any(|n| !matches!(n.name(), "none" | "host") || n.network_id().is_empty()),
        (true, false) => !cached.ports().is_empty(),
        _ => false,
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
    use hypersh_watch::container::{Network, Port, PortType};

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
    fn a_start_of_an_attached_container_is_applied_then_fetched() {
        let on = |network: Network, state| {
            container("a", state)
                .into_builder()
                .network(network)
                .build()
        };
        let created = on(Network::new("bridge"), ContainerState::Created);
        let Plan::UpsertThenFetch(started) = plan(&docker("start", "a"), Some(&created)) else {
            panic!("a start gives addresses the event does not carry")
        };
        assert_eq!(started.state(), ContainerState::Running);
        let stopped = on(
            Network::new("bridge").with_network_id("17e4"),
            ContainerState::Exited,
        );
        assert!(matches!(
            plan(&docker("restart", "a"), Some(&stopped)),
            Plan::UpsertThenFetch(_)
        ));
        assert!(matches!(
            plan(&k8s("MODIFIED", "a", "Running"), Some(&stopped)),
            Plan::UpsertThenFetch(_)
        ));
        for name in ["none", "host"] {
            // Its id arrives at the first start; it never has an address.
            assert!(matches!(
                plan(
                    &docker("start", "a"),
                    Some(&on(Network::new(name), ContainerState::Created))
                ),
                Plan::UpsertThenFetch(_)
            ));
            let known = Network::new(name).with_network_id("2a5b66f9");
            assert!(matches!(
                plan(
                    &docker("start", "a"),
                    Some(&on(known, ContainerState::Exited))
                ),
                Plan::Upsert(_)
            ));
        }
        // No network at all (Podman's `--network none`, the emit benchmark's runtime).
        assert!(matches!(
            plan(
                &docker("start", "a"),
                Some(&container("a", ContainerState::Created))
            ),
            Plan::Upsert(_)
        ));
    }

    #[test]
    fn a_stop_takes_the_addresses_off_and_fetches_only_for_ports() {
        let running = container("a", ContainerState::Running)
            .into_builder()
            .network(
                Network::new("bridge")
                    .with_network_id("17e4")
                    .with_ip_address("172.17.0.2")
                    .with_gateway("172.17.0.1")
                    .with_mac_address("02:42:ac:11:00:02"),
            )
            .build();
        let Plan::Upsert(stopped) = plan(&docker("die", "a"), Some(&running)) else {
            panic!("a stop without ports is applied alone")
        };
        assert_eq!(stopped.state(), ContainerState::Exited);
        assert_eq!(
            stopped.networks(),
            [Network::new("bridge").with_network_id("17e4")]
        );
        let Plan::Upsert(failed) = plan(&k8s("MODIFIED", "a", "Failed"), Some(&running)) else {
            panic!("a stop in the Kubernetes shape too")
        };
        assert_eq!(failed.networks()[0].ip(), None);
        // Pausing keeps them.
        let Plan::Upsert(paused) = plan(&docker("pause", "a"), Some(&running)) else {
            panic!("a pause changes the state")
        };
        assert_eq!(paused.networks(), running.networks());
        // Docker lists no port once stopped, Podman keeps them: fetched to know.
        let published = running
            .clone()
            .into_builder()
            .port(Port::new(80, PortType::Tcp).published("0.0.0.0", 8080))
            .build();
        assert!(matches!(
            plan(&docker("kill", "a"), Some(&published)),
            Plan::Nothing
        ));
        let Plan::UpsertThenFetch(died) = plan(&docker("die", "a"), Some(&published)) else {
            panic!("a stop with ports is fetched")
        };
        assert_eq!(died.networks()[0].ip_address(), "");
    }
}
