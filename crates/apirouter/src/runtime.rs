//! The simulated container runtime: the truth the router serves.
//!
//! A [`Runtime`] holds containers and moves them through Docker's life cycle. Every change
//! is broadcast as one or more [`RuntimeEvent`]s *while the state lock is held*, so a
//! subscriber that subscribed before it listed never misses a change: each change is either
//! in the list or in the events that follow it (or both).
//!
//! Life cycle (and the Docker actions each step emits, in Docker's order):
//!
//! | call | from | to | events |
//! | --- | --- | --- | --- |
//! | [`create`](Runtime::create) | - | created | `create` |
//! | [`start`](Runtime::start) | created, exited | running | `start` |
//! | [`stop`](Runtime::stop) | running, paused | exited (0) | `kill`, `die`, `stop` |
//! | [`kill`](Runtime::kill) | running | exited (137) | `kill`, `die` |
//! | [`die`](Runtime::die) | running | exited (code) | `die` |
//! | [`pause`](Runtime::pause) | running | paused | `pause` |
//! | [`unpause`](Runtime::unpause) | paused | running | `unpause` |
//! | [`restart`](Runtime::restart) | running, exited | running | `restart` |
//! | [`rename`](Runtime::rename) | any | same | `rename` |
//! | [`destroy`](Runtime::destroy) | any | gone | (`kill`, `die` if running or paused), `destroy` |
//!
//! Any other transition is a [`RuntimeError::InvalidTransition`] and changes nothing.
//! Labels are fixed at create, as in Docker. Ids are 64 hex characters from the seeded
//! generator; names are unique. Containers have networks, ports and mounts as Docker
//! lists them (module `attach`): addresses and ports while running or paused, none when
//! created or stopped.

mod attach;
mod churn;
mod generate;
mod id_index;
mod list_cache;
mod machine;
pub(crate) mod status;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use hypersh_watch::container::{Container, ContainerState};
use tokio::sync::broadcast;

pub use attach::network_mode;
pub use list_cache::LIST_CACHE_BYTES;
use machine::{Inner, Op, Record, State, resolve, unique_name};

use crate::summary::Listed;

/// How many events a subscriber may fall behind before it lags (and the router disconnects
/// that watch client, which then relists).
pub const EVENT_BUFFER: usize = 16_384;

/// One change of one container, as the runtime broadcasts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeEvent {
    /// The Docker action: `create`, `start`, `kill`, `die`, `stop`, `pause`, `unpause`,
    /// `restart`, `rename` or `destroy`.
    pub action: &'static str,
    /// The container right after the action (for `destroy`, as it was last seen; for the
    /// `kill` that precedes a `die`, still running). Its `Status` text is computed at the
    /// time of the event.
    pub container: Container,
    /// The container's last exit code after the action: `Some` once it has exited at least
    /// once (kept across a later `start`), `None` before. On `die` it is the code it died with.
    pub exit_code: Option<i64>,
    /// Event time, nanoseconds since the Unix epoch.
    pub time_nano: i64,
    /// On `rename`: the previous name (without the leading `/`).
    pub old_name: Option<String>,
}

/// Why a runtime operation was refused. The state is unchanged when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// No container has this id, id prefix or name.
    #[error("no such container: {0}")]
    NotFound(String),
    /// The action is not valid in the container's current state.
    #[error("cannot {action} container {id}: it is {state}")]
    InvalidTransition {
        /// The container id.
        id: String,
        /// The refused action.
        action: &'static str,
        /// The state the container is in.
        state: ContainerState,
    },
    /// Another container already has this name.
    #[error("the container name {0:?} is already in use")]
    NameInUse(String),
    /// The name is empty, contains `/`, or is the container's current name.
    #[error("invalid container name {0:?}")]
    InvalidName(String),
}

/// The simulated containers. Cheap to clone: clones share the same state.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl Runtime {
    /// The length of every container id the runtime makes: 64 hex digits, as Docker's.
    pub const ID_LEN: usize = 64;

    /// An empty runtime whose ids, names and churn come from `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Arc::new(Inner::new(seed, true)),
        }
    }

    /// Like [`Runtime::new`], with containers that have no networks, ports or mounts (the
    /// same ids, names, labels and actions). A start or a stop of one then changes nothing
    /// an event does not carry, so an informer never fetches one for it: the `--emit`
    /// benchmark's runtime, whose frames do not move the runtime (a fetch would read a
    /// truth the frames contradict), and whose stream measures the event path alone.
    #[must_use]
    pub fn without_attachments(seed: u64) -> Self {
        Self {
            inner: Arc::new(Inner::new(seed, false)),
        }
    }

    /// Creates a container (state `created`, event `create`) and returns its id.
    ///
    /// An empty `name` gets a random `adjective_surname` one; a name already in use gets
    /// the next free `_2`, `_3`, ... suffix, in amortised constant time (use
    /// [`Runtime::try_create`] to be told instead). A leading `/` is dropped.
    pub fn create(&self, name: &str, image: &str, labels: BTreeMap<String, String>) -> String {
        let mut st = self.inner.state.lock();
        let name = unique_name(&mut st, name);
        // `unique_name` returns a free, valid name, so the error case is not reached.
        match self.create_locked(&mut st, &name, image, labels) {
            Ok((id, seq)) => {
                st.settle(seq);
                id
            }
            Err(_) => String::new(),
        }
    }

    /// Creates a container with exactly this name (a leading `/` is dropped).
    ///
    /// # Errors
    /// [`RuntimeError::NameInUse`] or [`RuntimeError::InvalidName`].
    pub fn try_create(
        &self,
        name: &str,
        image: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<String, RuntimeError> {
        let mut st = self.inner.state.lock();
        let (id, seq) = self.create_locked(&mut st, name.trim_start_matches('/'), image, labels)?;
        st.settle(seq);
        Ok(id)
    }

    /// Starts a created or exited container: event `start`.
    ///
    /// # Errors
    /// Unknown container or invalid transition.
    pub fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, Op::Start)
    }

    /// Stops a running or paused container with exit code 0: events `kill`, `die`, `stop`.
    ///
    /// # Errors
    /// Unknown container or invalid transition.
    pub fn stop(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, Op::Stop)
    }

    /// Kills a running container (exit code 137): events `kill`, `die`.
    ///
    /// # Errors
    /// Unknown container or invalid transition.
    pub fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, Op::Kill)
    }

    /// The main process of a running container exits with `exit_code`: event `die`.
    ///
    /// # Errors
    /// Unknown container or invalid transition.
    pub fn die(&self, id: &str, exit_code: i64) -> Result<(), RuntimeError> {
        self.run(id, Op::Die(exit_code))
    }

    /// Pauses a running container: event `pause`.
    ///
    /// # Errors
    /// Unknown container or invalid transition.
    pub fn pause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, Op::Pause)
    }

    /// Unpauses a paused container: event `unpause`.
    ///
    /// # Errors
    /// Unknown container or invalid transition.
    pub fn unpause(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, Op::Unpause)
    }

    /// Restarts a running or exited container: one event `restart` (Docker also emits
    /// `die` and `start`; this runtime keeps it simple).
    ///
    /// # Errors
    /// Unknown container or invalid transition.
    pub fn restart(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, Op::Restart)
    }

    /// Renames a container in any state: event `rename` with the old name.
    ///
    /// # Errors
    /// Unknown container, a name in use, or an invalid name.
    pub fn rename(&self, id: &str, new_name: &str) -> Result<(), RuntimeError> {
        self.run(id, Op::Rename(new_name.trim_start_matches('/').to_owned()))
    }

    /// Removes a container in any state: event `destroy`, preceded by `kill` and `die`
    /// (exit code 137) when it is running or paused.
    ///
    /// # Errors
    /// Unknown container.
    pub fn destroy(&self, id: &str) -> Result<(), RuntimeError> {
        self.run(id, Op::Destroy)
    }

    /// The containers, newest first, like Docker's list: running and paused ones only
    /// unless `all`.
    #[must_use]
    pub fn list(&self, all: bool) -> Vec<Container> {
        self.list_matching(all, |_, _| true)
    }

    /// Like [`Runtime::list`], only the containers `keep` accepts (given each one's last
    /// exit code). The others are not copied: a list filtered by id stays cheap however
    /// many containers the runtime holds.
    #[must_use]
    pub fn list_matching(
        &self,
        all: bool,
        keep: impl Fn(&Container, Option<i64>) -> bool,
    ) -> Vec<Container> {
        let st = self.inner.state.lock();
        snapshots(st.records.values().rev(), all, keep)
    }

    /// Up to `n` containers in any state, taken evenly over the whole list (newest
    /// first): every container when there are at most `n`. The others are not copied.
    #[must_use]
    pub fn list_spread(&self, n: usize) -> Vec<Container> {
        let st = self.inner.state.lock();
        if n == 0 {
            return Vec::new();
        }
        let step = st.records.len().div_ceil(n).max(1);
        snapshots(st.records.values().rev().step_by(step), true, |_, _| true)
    }

    /// Like [`Runtime::list_matching`], among the containers with these full ids only,
    /// found through the id index instead of by going through every container: an
    /// informer's fetch of a few created containers stays cheap however many the runtime
    /// holds. Unknown and repeated ids are skipped; the order is the list's (newest
    /// first).
    #[must_use]
    pub fn list_ids(
        &self,
        all: bool,
        ids: &[&str],
        keep: impl Fn(&Container, Option<i64>) -> bool,
    ) -> Vec<Container> {
        let st = self.inner.state.lock();
        let seqs = list_order(&st, ids);
        snapshots(seqs.iter().filter_map(|seq| st.records.get(seq)), all, keep)
    }

    /// A list answer's snapshot, as it is written: the first `limit` (all when `None`) of
    /// the containers [`Runtime::list_matching`] (`ids` `None`) or [`Runtime::list_ids`]
    /// would copy, each as its cached list item and what its status is made of, taken at
    /// one instant under the state lock. The same bytes as serialising those copies
    /// (`summary::Summary`), without copying the containers or serialising them again.
    pub(crate) fn list_summaries(
        &self,
        all: bool,
        ids: Option<&[&str]>,
        limit: Option<usize>,
        keep: impl Fn(&Container, Option<i64>) -> bool,
    ) -> Vec<Listed> {
        self.list_summaries_at(SystemTime::now, all, ids, limit, keep)
    }

    /// [`Runtime::list_summaries`] at the instant `now` returns (called under the lock).
    fn list_summaries_at(
        &self,
        now: impl FnOnce() -> SystemTime,
        all: bool,
        ids: Option<&[&str]>,
        limit: Option<usize>,
        keep: impl Fn(&Container, Option<i64>) -> bool,
    ) -> Vec<Listed> {
        let st = self.inner.state.lock();
        let now = now();
        let shown = |r: &&Record| (all || r.is_up()) && keep(&r.container, r.exit_code);
        let limit = limit.unwrap_or(usize::MAX);
        match ids {
            Some(ids) => list_order(&st, ids)
                .iter()
                .filter_map(|seq| st.records.get(seq))
                .filter(shown)
                .take(limit)
                .map(|r| r.listed(now))
                .collect(),
            None => {
                // Room for every container (a few dozen bytes each): growing the vector
                // by doubling moved a list of 1M entries several times over.
                let mut listed = Vec::with_capacity(st.records.len().min(limit));
                listed.extend(
                    st.records
                        .values()
                        .rev()
                        .filter(shown)
                        .take(limit)
                        .map(|r| r.listed(now)),
                );
                listed
            }
        }
    }

    /// Bytes of serialised list items the runtime holds (at most [`LIST_CACHE_BYTES`]).
    #[must_use]
    pub fn list_cache_bytes(&self) -> usize {
        self.inner.state.lock().list_cache.used()
    }

    /// One container by full id, unique id prefix or name.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<Container> {
        let st = self.inner.state.lock();
        let seq = resolve(&st, id).ok()?;
        st.records.get(&seq).map(|r| r.snapshot(SystemTime::now()))
    }

    /// The last exit code of a container, if it exists and has exited at least once.
    #[must_use]
    pub fn exit_code(&self, id: &str) -> Option<i64> {
        let st = self.inner.state.lock();
        let seq = resolve(&st, id).ok()?;
        st.records.get(&seq).and_then(|r| r.exit_code)
    }

    /// How many containers exist (in any state).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.state.lock().records.len()
    }

    /// True when no container exists.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A receiver of every event from now on. It holds up to [`EVENT_BUFFER`] events;
    /// a receiver that falls further behind gets `Lagged`.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<RuntimeEvent> {
        self.inner.events.subscribe()
    }

    /// How many events the runtime has emitted since it was made.
    #[must_use]
    pub fn event_count(&self) -> u64 {
        self.inner.event_count.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("containers", &self.len())
            .field("events", &self.event_count())
            .finish_non_exhaustive()
    }
}

/// The sequence numbers of the containers with these full ids, in list order (newest
/// first), unknown and repeated ids left out.
fn list_order(st: &State, ids: &[&str]) -> Vec<u64> {
    let mut seqs: Vec<u64> = ids.iter().filter_map(|id| st.ids.get(id)).collect();
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    seqs.dedup();
    seqs
}

/// Copies of the `records` a list shows: up ones only unless `all`, and those `keep`
/// accepts (given each one's last exit code), with their status text as of now.
fn snapshots<'r>(
    records: impl Iterator<Item = &'r Record>,
    all: bool,
    keep: impl Fn(&Container, Option<i64>) -> bool,
) -> Vec<Container> {
    snapshots_at(SystemTime::now(), records, all, keep)
}

/// [`snapshots`] with the status text as of `now`.
fn snapshots_at<'r>(
    now: SystemTime,
    records: impl Iterator<Item = &'r Record>,
    all: bool,
    keep: impl Fn(&Container, Option<i64>) -> bool,
) -> Vec<Container> {
    records
        .filter(|r| (all || r.is_up()) && keep(&r.container, r.exit_code))
        .map(|r| r.snapshot(now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn drain(rx: &mut broadcast::Receiver<RuntimeEvent>) -> Vec<RuntimeEvent> {
        std::iter::from_fn(|| rx.try_recv().ok()).collect()
    }

    fn actions(events: &[RuntimeEvent]) -> Vec<&'static str> {
        events.iter().map(|e| e.action).collect()
    }

    #[test]
    fn life_cycle_emits_dockers_events_in_order() {
        let rt = Runtime::new(1);
        let mut rx = rt.subscribe();
        let id = rt.create("web", "nginx:1.25", labels(&[("app", "web")]));
        assert_eq!(id.len(), 64);
        rt.start(&id).unwrap();
        rt.pause(&id).unwrap();
        rt.unpause(&id).unwrap();
        rt.stop(&id).unwrap();
        rt.restart(&id).unwrap();
        rt.kill(&id).unwrap();
        rt.start(&id).unwrap();
        rt.die(&id, 3).unwrap();
        rt.rename(&id, "web2").unwrap();
        rt.start(&id).unwrap();
        rt.destroy(&id).unwrap();
        let events = drain(&mut rx);
        assert_eq!(
            actions(&events),
            [
                "create", "start", "pause", "unpause", "kill", "die", "stop", "restart", "kill",
                "die", "start", "die", "rename", "start", "kill", "die", "destroy"
            ]
        );
        assert_eq!(rt.event_count(), 17);
        let die = &events[5];
        assert_eq!(die.container.state(), ContainerState::Exited);
        assert_eq!(die.exit_code, Some(0));
        assert_eq!(
            events[4].container.state(),
            ContainerState::Running,
            "kill precedes the change"
        );
        assert_eq!(events[9].exit_code, Some(137));
        assert_eq!(events[11].exit_code, Some(3));
        let rename = &events[12];
        assert_eq!(rename.old_name.as_deref(), Some("web"));
        assert_eq!(rename.container.name(), Some("web2"));
        assert_eq!(
            events[15].exit_code,
            Some(137),
            "destroying a running one kills it"
        );
        assert!(
            events
                .iter()
                .all(|e| { e.container.labels().iter().eq([("app", "web")]) })
        );
        assert!(events.iter().all(|e| e.time_nano > 0));
        assert!(rt.get(&id).is_none());
        assert!(rt.is_empty());
    }

    #[test]
    fn a_runtime_without_attachments_has_the_same_containers_bare() {
        let (attached, bare) = (Runtime::new(5), Runtime::without_attachments(5));
        attached.populate(40);
        bare.populate(40);
        let (a, b) = (attached.list(true), bare.list(true));
        assert!(
            a.iter()
                .any(|c| !c.networks().is_empty() && !c.mounts().is_empty())
        );
        assert!(
            b.iter()
                .all(|c| c.networks().is_empty() && c.ports().is_empty() && c.mounts().is_empty())
        );
        let strip = |c: &Container| {
            c.clone()
                .into_builder()
                .ports([])
                .networks([])
                .mounts([])
                .status("")
                .created(0)
                .build()
        };
        assert_eq!(
            a.iter().map(strip).collect::<Vec<_>>(),
            b.iter().map(strip).collect::<Vec<_>>()
        );
    }

    #[test]
    fn invalid_transitions_change_nothing() {
        let rt = Runtime::new(1);
        let id = rt.create("a", "busybox", BTreeMap::new());
        let before = rt.event_count();
        assert!(matches!(
            rt.pause(&id),
            Err(RuntimeError::InvalidTransition {
                action: "pause",
                state: ContainerState::Created,
                ..
            })
        ));
        assert!(rt.stop(&id).is_err());
        assert!(rt.kill(&id).is_err());
        assert!(rt.die(&id, 1).is_err());
        assert!(rt.unpause(&id).is_err());
        assert!(rt.restart(&id).is_err());
        rt.start(&id).unwrap();
        assert!(rt.start(&id).is_err());
        assert!(rt.unpause(&id).is_err());
        rt.stop(&id).unwrap();
        assert!(rt.pause(&id).is_err(), "pause of a stopped container");
        assert_eq!(rt.get(&id).unwrap().state(), ContainerState::Exited);
        assert_eq!(rt.event_count(), before + 4);
        assert_eq!(rt.start("nope"), Err(RuntimeError::NotFound("nope".into())));
    }

    #[test]
    fn names_are_unique() {
        let rt = Runtime::new(1);
        let a = rt.create("/same", "busybox", BTreeMap::new());
        let b = rt.create("same", "busybox", BTreeMap::new());
        assert_eq!(rt.get(&a).unwrap().name(), Some("same"));
        assert_eq!(rt.get(&b).unwrap().name(), Some("same_2"));
        assert_eq!(
            rt.try_create("same", "busybox", BTreeMap::new()),
            Err(RuntimeError::NameInUse("same".into()))
        );
        assert_eq!(
            rt.rename(&b, "same"),
            Err(RuntimeError::NameInUse("same".into()))
        );
        assert!(matches!(
            rt.rename(&b, "same_2"),
            Err(RuntimeError::InvalidName(_))
        ));
        assert!(matches!(
            rt.rename(&b, ""),
            Err(RuntimeError::InvalidName(_))
        ));
        rt.rename(&a, "other").unwrap();
        rt.rename(&b, "same").unwrap();
        assert_eq!(rt.get("same").unwrap().id(), b, "lookup by name");
        assert_eq!(rt.get(&a[..12]).unwrap().id(), a, "lookup by id prefix");
        let random = rt.create("", "busybox", BTreeMap::new());
        assert!(
            rt.get(&random)
                .unwrap()
                .name()
                .is_some_and(|n| n.contains('_'))
        );
    }

    /// Guards against a quadratic path in creating, naming, finding or listing
    /// containers: 200 000 from a few hundred generated names take a few seconds in a
    /// debug build (they took minutes when each name probed its suffixes from `_2`).
    #[test]
    fn two_hundred_thousand_containers_are_listed_once_with_unique_names() {
        const N: usize = 200_000;
        let rt = Runtime::new(19);
        rt.populate(N);
        assert_eq!(rt.len(), N);
        let listed = rt.list(true);
        assert_eq!(listed.len(), N);
        let ids: std::collections::HashSet<&str> = listed.iter().map(Container::id).collect();
        assert_eq!(ids.len(), N, "every container listed once");
        let names: std::collections::HashSet<&str> =
            listed.iter().filter_map(Container::name).collect();
        assert_eq!(names.len(), N, "every name unique");
        // Docker-like: adjective_surname, with a numeric suffix once that is taken.
        for name in &names {
            let mut parts = name.split('_');
            let (Some(adjective), Some(surname)) = (parts.next(), parts.next()) else {
                panic!("{name} is not adjective_surname");
            };
            assert!(!adjective.is_empty() && !surname.is_empty(), "{name}");
            assert!(
                parts.all(|suffix| suffix.parse::<u64>().is_ok_and(|k| k >= 2)),
                "{name}"
            );
        }
        // Lookups by id prefix, name and full id through the indexes.
        for c in listed.iter().step_by(997) {
            let name = c.name().unwrap_or_default();
            assert_eq!(
                rt.get(&c.id()[..16]).map(|g| g.id().to_owned()),
                Some(c.id().to_owned())
            );
            assert_eq!(
                rt.get(name).map(|g| g.id().to_owned()),
                Some(c.id().to_owned())
            );
        }
        assert_eq!(rt.list_spread(1000).len(), 1000);
        // Churn picks containers in constant time: a thousand actions stay cheap.
        for _ in 0..1000 {
            rt.churn_once();
        }
        let after = rt.list(true);
        let names: std::collections::HashSet<&str> =
            after.iter().filter_map(Container::name).collect();
        assert_eq!(names.len(), after.len(), "names stay unique under churn");
    }

    #[test]
    fn list_is_newest_first_and_hides_stopped_unless_all() {
        let rt = Runtime::new(1);
        let a = rt.create("a", "busybox", BTreeMap::new());
        let b = rt.create("b", "busybox", BTreeMap::new());
        let c = rt.create("c", "busybox", BTreeMap::new());
        rt.start(&a).unwrap();
        rt.start(&c).unwrap();
        rt.pause(&c).unwrap();
        let ids = |v: Vec<Container>| {
            v.into_iter()
                .map(|c| c.id().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(rt.list(true)), [c.clone(), b.clone(), a.clone()]);
        assert_eq!(ids(rt.list(false)), [c.clone(), a.clone()]);
        let only_b = rt.list_matching(true, |x, _| x.id() == b);
        assert_eq!(ids(only_b), std::slice::from_ref(&b));
        assert!(
            rt.list_matching(false, |x, _| x.id() == b).is_empty(),
            "b is not up"
        );
        assert_eq!(
            ids(rt.list_ids(true, &[&a, "unknown", &b, &a], |_, _| true)),
            [b.clone(), a.clone()],
            "newest first, unknown and repeated ids skipped"
        );
        assert_eq!(
            ids(rt.list_ids(false, &[&a, &b], |_, _| true)),
            std::slice::from_ref(&a)
        );
        assert!(rt.list_ids(true, &[&a], |_, _| false).is_empty());
        let listed = rt.list(true);
        assert_eq!(listed[0].status(), "Up Less than a second (Paused)");
        assert_eq!(listed[1].status(), "Created");
        assert_eq!(listed[2].status(), "Up Less than a second");
        rt.die(&a, 2).unwrap();
        assert_eq!(
            rt.get(&a).unwrap().status(),
            "Exited (2) Less than a second ago"
        );
        assert_eq!(rt.exit_code(&a), Some(2));
        assert_eq!(rt.exit_code(&b), None);
    }
}
