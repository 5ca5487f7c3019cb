//! What one event means for the cache, and how a list is merged with the events that
//! arrived while it was being fetched. Pure functions: the loop does the I/O.

use std::collections::BTreeSet;
use std::sync::Arc;

use hypersh_store::Relist;
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
            if e.shape == Shape::Kubernetes && !phase_decides(e.phase, c) =>
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

/// Where a [`Merge`] replays events: the containers listed so far (in the reflector, a
/// store [`Relist`], which keeps only the listed containers that differ from the cache).
pub(crate) trait Listed {
    /// The listed version of a container (after the replays so far).
    fn get(&self, id: &str) -> Option<Arc<Container>>;
    /// Records a new version of a container.
    fn upsert(&mut self, c: Container);
    /// Forgets a container.
    fn remove(&mut self, id: &str);
}

impl Listed for Relist<'_, Container> {
    fn get(&self, id: &str) -> Option<Arc<Container>> {
        Relist::get(self, id)
    }

    fn upsert(&mut self, c: Container) {
        self.insert(c);
    }

    fn remove(&mut self, id: &str) {
        Relist::remove(self, id);
    }
}

/// A list snapshot with the events buffered during the list replayed on top.
///
/// Events carry full state, so replaying one that is older than the list is safe: the
/// last state-deciding event wins, and only the net result reaches the store (and so the
/// handlers) through the relist's commit.
#[derive(Debug)]
pub(crate) struct Merge<'a, L> {
    listed: &'a mut L,
    fetch: BTreeSet<String>,
}

impl<'a, L: Listed> Merge<'a, L> {
    pub(crate) fn new(listed: &'a mut L) -> Self {
        Self {
            listed,
            fetch: BTreeSet::new(),
        }
    }

    /// Replays one buffered event.
    pub(crate) fn apply(&mut self, event: &WatchEvent) {
        let id = event.id();
        if self.fetch.contains(id) {
            // The fetch happens after every buffered event: it will see a newer state
            // than this event, unless the container is gone.
            if matches!(event, WatchEvent::Deleted(_)) {
                self.fetch.remove(id);
                self.listed.remove(id);
            }
            return;
        }
        let listed = self.listed.get(id);
        match plan(event, listed.as_deref()) {
            Plan::Upsert(c) => self.listed.upsert(c),
            Plan::Delete => self.listed.remove(id),
            Plan::Fetch => {
                self.fetch.insert(id.to_owned());
            }
            Plan::Nothing => {}
        }
    }

    /// The ids to fetch.
    pub(crate) fn to_fetch(&self) -> Vec<String> {
        self.fetch.iter().cloned().collect()
    }

    /// Adds fetched containers (only those asked for).
    pub(crate) fn add_fetched(&mut self, fetched: Vec<Container>) {
        for c in fetched {
            if self.fetch.remove(c.id()) {
                self.listed.upsert(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::selector::Selector;
    use hypersh_watch::ContainerState;

    /// A plain map as the listed containers.
    #[derive(Debug, Default)]
    struct Map(HashMap<String, Container>);

    impl Map {
        fn of(list: Vec<Container>) -> Self {
            Self(list.into_iter().map(|c| (c.id().to_string(), c)).collect())
        }

        fn admitted(self, selector: &Selector) -> Vec<Container> {
            self.0
                .into_values()
                .filter(|c| selector.admits(c))
                .collect()
        }
    }

    impl Listed for Map {
        fn get(&self, id: &str) -> Option<Arc<Container>> {
            self.0.get(id).cloned().map(Arc::new)
        }

        fn upsert(&mut self, c: Container) {
            self.0.insert(c.id().to_string(), c);
        }

        fn remove(&mut self, id: &str) {
            self.0.remove(id);
        }
    }

    fn docker(action: &str, id: &str) -> WatchEvent {
        WatchEvent::decode(format!(
            r#"{{"Type":"container","Action":"{action}","id":"{id}","Actor":{{"Attributes":{{"name":"n-{id}"}}}}}}"#
        ))
        .unwrap()
    }

    fn k8s(action: &str, id: &str, phase: &str) -> WatchEvent {
        WatchEvent::decode(format!(
            r#"{{"Action":"{action}","Id":"{id}","Status":"{phase}","Type":"container","Actor":{{"Attributes":{{"Name":"n-{id}","Image":"busybox","Labels":null}}}}}}"#
        ))
        .unwrap()
    }

    fn container(id: &str, state: ContainerState) -> Container {
        Container::builder(id)
            .name(&format!("n-{id}"))
            .image("busybox")
            .state(state)
            .build()
    }

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
    fn merge_replays_buffered_events_to_the_net_state() {
        let list = vec![
            container("a", ContainerState::Running),
            container("b", ContainerState::Exited),
        ];
        let mut listed = Map::of(list);
        let mut m = Merge::new(&mut listed);
        // Older than the list, then newer: the last one wins.
        m.apply(&docker("die", "a"));
        m.apply(&docker("start", "a"));
        m.apply(&docker("destroy", "b"));
        m.apply(&docker("create", "c"));
        m.apply(&docker("start", "c"));
        m.apply(&docker("create", "d"));
        m.apply(&docker("destroy", "d"));
        assert_eq!(m.to_fetch(), vec!["c".to_owned()]);
        m.add_fetched(vec![
            container("c", ContainerState::Running),
            container("zz", ContainerState::Running),
        ]);
        let mut out = listed.admitted(&Selector::default());
        out.sort_by(|x, y| x.id().cmp(y.id()));
        let ids: Vec<_> = out.iter().map(|c| (c.id(), c.state())).collect();
        assert_eq!(
            ids,
            [
                ("a", ContainerState::Running),
                ("c", ContainerState::Running)
            ]
        );
    }

    #[test]
    fn a_delete_cancels_a_pending_fetch_of_a_listed_container() {
        let mut listed = Map::of(vec![container("a", ContainerState::Running)]);
        let mut m = Merge::new(&mut listed);
        m.apply(&k8s("MODIFIED", "a", "Running"));
        assert_eq!(m.to_fetch(), vec!["a".to_owned()]);
        m.apply(&k8s("DELETED", "a", "Succeeded"));
        assert!(m.to_fetch().is_empty());
        assert!(listed.admitted(&Selector::default()).is_empty());
    }

    #[test]
    fn kubernetes_restart_is_delete_then_fetch() {
        let mut listed = Map::of(vec![container("a", ContainerState::Exited)]);
        let mut m = Merge::new(&mut listed);
        m.apply(&k8s("DELETED", "a", "Succeeded"));
        m.apply(&k8s("ADDED", "a", "Running"));
        assert_eq!(m.to_fetch(), vec!["a".to_owned()]);
    }
}
