//! The runtime's state machine: the locked state, the life-cycle transitions, and event
//! emission under the lock.

use std::collections::{BTreeMap, HashMap, hash_map};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use hypersh_watch::container::{Container, ContainerBuilder, ContainerState};
use parking_lot::Mutex;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::id_index::IdIndex;
use super::list_cache::{LIST_CACHE_BYTES, ListCache};
use super::{EVENT_BUFFER, Runtime, RuntimeError, RuntimeEvent, attach, generate, status};
use crate::summary::{Listed, SummaryJson};

pub(super) struct Inner {
    pub(super) state: Mutex<State>,
    pub(super) events: broadcast::Sender<RuntimeEvent>,
    pub(super) event_count: AtomicU64,
    pub(super) churn_stop: Mutex<CancellationToken>,
    /// Containers have networks, ports and mounts (module `attach`).
    pub(super) attached: bool,
}

pub(super) struct State {
    pub(super) rng: StdRng,
    /// Containers by creation sequence number (oldest first).
    pub(super) records: BTreeMap<u64, Record>,
    /// Sequence number by full id (a lookup by prefix is one range of it).
    pub(super) ids: IdIndex,
    /// Sequence number by name (without `/`).
    pub(super) names: HashMap<String, u64>,
    /// Every container's sequence number, in no particular order, so churn can pick a
    /// random container in constant time; a record's `slot` is its index here.
    pub(super) slots: Vec<u64>,
    /// For each name that has been asked for while taken: the next suffix to try
    /// (`name_2`, `name_3`, ...). Suffixes only go up, so making a unique name skips each
    /// taken candidate once instead of probing from `_2` every time.
    pub(super) next_suffix: HashMap<String, u64>,
    /// Image id by image name: a SHA-256 each, computed once per image rather than once
    /// per container.
    pub(super) image_ids: HashMap<String, String>,
    pub(super) next_seq: u64,
    /// The population churn steers towards.
    pub(super) target: Option<usize>,
    /// The bytes of the records' list items, against their budget.
    pub(super) list_cache: ListCache,
}

impl State {
    /// Makes container `seq`'s list item if it has none (module `list_cache`): called
    /// once an operation that may have changed it is over.
    pub(super) fn settle(&mut self, seq: u64) {
        if let Some(rec) = self.records.get_mut(&seq) {
            self.list_cache.settle(rec);
        }
    }
}

pub(super) struct Record {
    /// The container; `status` is filled in when a copy leaves the runtime.
    pub(super) container: Container,
    /// When the container last started (running, paused) or finished (exited).
    pub(super) since: SystemTime,
    pub(super) exit_code: Option<i64>,
    /// Index of this container's sequence number in [`State::slots`].
    pub(super) slot: usize,
    /// This version's list item, when cached: dropped whenever `container` changes
    /// (through [`edit`], the one place that changes it) and made again by
    /// [`State::settle`].
    pub(super) summary: Option<SummaryJson>,
}

impl Record {
    /// Whether a list without `all` shows it (running, paused or restarting).
    pub(super) fn is_up(&self) -> bool {
        matches!(
            self.container.state(),
            ContainerState::Running | ContainerState::Paused | ContainerState::Restarting
        )
    }

    pub(super) fn snapshot(&self, now: SystemTime) -> Container {
        let elapsed = now.duration_since(self.since).unwrap_or_default();
        let c = &self.container;
        let status = status::status_text(c.state(), elapsed, self.exit_code.unwrap_or(0));
        c.clone().into_builder().status(&status).build()
    }

    /// The container as a list shows it at `now`: its cached item with what its status
    /// is made of, or (without one) its snapshot.
    pub(super) fn listed(&self, now: SystemTime) -> Listed {
        match &self.summary {
            Some(item) => Listed::Cached {
                item: item.clone(),
                state: self.container.state(),
                elapsed: now.duration_since(self.since).unwrap_or_default(),
                exit_code: self.exit_code.unwrap_or(0),
            },
            None => Listed::Plain(Box::new(self.snapshot(now))),
        }
    }
}

/// A life-cycle operation on an existing container.
#[derive(Clone, Debug)]
pub(super) enum Op {
    Start,
    Stop,
    Kill,
    Die(i64),
    Pause,
    Unpause,
    Restart,
    Rename(String),
    Destroy,
}

impl Op {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Kill => "kill",
            Self::Die(_) => "die",
            Self::Pause => "pause",
            Self::Unpause => "unpause",
            Self::Restart => "restart",
            Self::Rename(_) => "rename",
            Self::Destroy => "destroy",
        }
    }
}

/// Exit code of a container killed with SIGKILL.
const KILLED_EXIT_CODE: i64 = 137;

fn unix_nanos(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Inner {
    pub(super) fn new(seed: u64, attached: bool) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        Self {
            state: Mutex::new(State {
                rng: StdRng::seed_from_u64(seed),
                records: BTreeMap::new(),
                ids: IdIndex::default(),
                names: HashMap::new(),
                slots: Vec::new(),
                next_suffix: HashMap::new(),
                image_ids: HashMap::new(),
                next_seq: 0,
                target: None,
                list_cache: ListCache::new(LIST_CACHE_BYTES),
            }),
            events,
            event_count: AtomicU64::new(0),
            churn_stop: Mutex::new(CancellationToken::new()),
            attached,
        }
    }
}

impl Runtime {
    pub(super) fn run(&self, id: &str, op: Op) -> Result<(), RuntimeError> {
        let mut st = self.inner.state.lock();
        let seq = resolve(&st, id)?;
        let applied = self.apply(&mut st, seq, op, SystemTime::now());
        st.settle(seq);
        applied
    }

    /// Creates a container named exactly `name`; returns its id and sequence number.
    pub(super) fn create_locked(
        &self,
        st: &mut State,
        name: &str,
        image: &str,
        labels: BTreeMap<String, String>,
    ) -> Result<(String, u64), RuntimeError> {
        if !valid_name(name) {
            return Err(RuntimeError::InvalidName(name.to_owned()));
        }
        // One search of each index: the name's slot is taken (or refused) and a fresh id
        // drawn until one is free, before anything else changes (nothing after fails).
        let seq = st.next_seq;
        match st.names.entry(name.to_owned()) {
            hash_map::Entry::Occupied(_) => {
                return Err(RuntimeError::NameInUse(name.to_owned()));
            }
            hash_map::Entry::Vacant(slot) => {
                slot.insert(seq);
            }
        }
        let id = loop {
            let id = generate::id(&mut st.rng);
            if st.ids.insert_new(&id, seq) {
                break id;
            }
        };
        st.next_seq += 1;
        let now = SystemTime::now();
        let image_id = if let Some(image_id) = st.image_ids.get(image) {
            image_id.clone()
        } else {
            let image_id = generate::image_id(image);
            st.image_ids.insert(image.to_owned(), image_id.clone());
            image_id
        };
        let mut builder = Container::builder(&id)
            .name(name)
            .image(image)
            .image_id(&image_id)
            .command(generate::command(image))
            .created(unix_secs(now))
            .labels(labels.into_iter().collect())
            .state(ContainerState::Created);
        if self.inner.attached {
            builder = attach::for_state(builder, seq, image, ContainerState::Created)
                .mounts(attach::mounts(seq, &id, name, image));
        }
        let record = Record {
            container: builder.build(),
            since: now,
            exit_code: None,
            slot: st.slots.len(),
            summary: None,
        };
        self.emit("create", &record, None, now);
        st.slots.push(seq);
        st.records.insert(seq, record);
        Ok((id, seq))
    }

    /// Applies `op` to the container `seq` (which exists), emitting its events.
    pub(super) fn apply(
        &self,
        st: &mut State,
        seq: u64,
        op: Op,
        now: SystemTime,
    ) -> Result<(), RuntimeError> {
        use ContainerState::{Created, Exited, Paused, Running};

        if let Op::Rename(new_name) = &op {
            return self.rename_locked(st, seq, new_name, now);
        }
        let attached = self.inner.attached.then_some(seq);
        let cache = &mut st.list_cache;
        let Some(rec) = st.records.get_mut(&seq) else {
            return Err(RuntimeError::NotFound(seq.to_string()));
        };
        let state = rec.container.state();
        match (&op, state) {
            (Op::Start, Created | Exited) => {
                set_state(rec, cache, attached, Running, None, now);
                self.emit("start", rec, None, now);
            }
            (Op::Stop, Running | Paused) => {
                self.emit("kill", rec, None, now);
                set_state(rec, cache, attached, Exited, Some(0), now);
                self.emit("die", rec, None, now);
                self.emit("stop", rec, None, now);
            }
            (Op::Kill, Running) => {
                self.emit("kill", rec, None, now);
                set_state(rec, cache, attached, Exited, Some(KILLED_EXIT_CODE), now);
                self.emit("die", rec, None, now);
            }
            (Op::Die(code), Running) => {
                set_state(rec, cache, attached, Exited, Some(*code), now);
                self.emit("die", rec, None, now);
            }
            (Op::Pause, Running) => {
                edit(rec, cache, |c| c.state(Paused));
                self.emit("pause", rec, None, now);
            }
            (Op::Unpause, Paused) => {
                edit(rec, cache, |c| c.state(Running));
                self.emit("unpause", rec, None, now);
            }
            (Op::Restart, Running | Exited) => {
                set_state(rec, cache, attached, Running, None, now);
                self.emit("restart", rec, None, now);
            }
            (Op::Destroy, _) => {
                if matches!(state, Running | Paused) {
                    self.emit("kill", rec, None, now);
                    set_state(rec, cache, attached, Exited, Some(KILLED_EXIT_CODE), now);
                    self.emit("die", rec, None, now);
                }
                self.emit("destroy", rec, None, now);
                let name = rec.container.name().unwrap_or_default().to_owned();
                let id = rec.container.id().to_owned();
                let slot = rec.slot;
                cache.forget(rec);
                st.records.remove(&seq);
                st.ids.remove(&id);
                st.names.remove(&name);
                // The last slot moves into the freed one.
                st.slots.swap_remove(slot);
                if let Some(moved) = st.slots.get(slot).copied()
                    && let Some(moved) = st.records.get_mut(&moved)
                {
                    moved.slot = slot;
                }
            }
            _ => {
                return Err(RuntimeError::InvalidTransition {
                    id: rec.container.id().to_string(),
                    action: op.name(),
                    state,
                });
            }
        }
        Ok(())
    }

    fn rename_locked(
        &self,
        st: &mut State,
        seq: u64,
        new_name: &str,
        now: SystemTime,
    ) -> Result<(), RuntimeError> {
        if !valid_name(new_name) {
            return Err(RuntimeError::InvalidName(new_name.to_owned()));
        }
        match st.names.get(new_name) {
            Some(owner) if *owner == seq => {
                return Err(RuntimeError::InvalidName(new_name.to_owned()));
            }
            Some(_) => return Err(RuntimeError::NameInUse(new_name.to_owned())),
            None => {}
        }
        let Some(rec) = st.records.get_mut(&seq) else {
            return Err(RuntimeError::NotFound(seq.to_string()));
        };
        let old = rec.container.name().unwrap_or_default().to_owned();
        edit(rec, &mut st.list_cache, |c| c.names([new_name]));
        self.emit("rename", rec, Some(old.clone()), now);
        st.names.remove(&old);
        st.names.insert(new_name.to_owned(), seq);
        Ok(())
    }

    /// Broadcasts one event. Called with the state lock held.
    fn emit(&self, action: &'static str, rec: &Record, old_name: Option<String>, now: SystemTime) {
        self.inner.event_count.fetch_add(1, Ordering::SeqCst);
        // Nobody is watching (populating a runtime before the router serves it): the
        // event would be dropped, so its copy of the container is not made.
        if self.inner.events.receiver_count() == 0 {
            return;
        }
        // No receiver is not an error: nobody is watching.
        let _ = self.inner.events.send(RuntimeEvent {
            action,
            container: rec.snapshot(now),
            exit_code: rec.exit_code,
            time_nano: unix_nanos(now),
            old_name,
        });
    }
}

/// Replaces `rec`'s container with a changed copy of it, and drops its list item (made
/// again by [`State::settle`]).
fn edit(
    rec: &mut Record,
    cache: &mut ListCache,
    change: impl FnOnce(ContainerBuilder) -> ContainerBuilder,
) {
    cache.forget(rec);
    let c = &mut rec.container;
    *c = change(std::mem::take(c).into_builder()).build();
}

/// Moves container `seq` into `state`, with the addresses and ports it lists there
/// (`Some(seq)`; `None` for a runtime without them).
fn set_state(
    rec: &mut Record,
    cache: &mut ListCache,
    seq: Option<u64>,
    state: ContainerState,
    exit_code: Option<i64>,
    now: SystemTime,
) {
    match seq {
        Some(seq) => {
            let image = rec.container.image().to_owned();
            edit(rec, cache, |c| {
                attach::for_state(c.state(state), seq, &image, state)
            });
        }
        None => edit(rec, cache, |c| c.state(state)),
    }
    rec.since = now;
    if exit_code.is_some() {
        rec.exit_code = exit_code;
    }
}

/// Docker-like name check: non-empty, no `/`, printable ASCII without spaces.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

/// `name` itself when free (a random `adjective_surname` when empty or invalid), else the
/// first free `name_K` from the name's next suffix on (`name_2` the first time).
///
/// Amortised O(1): the suffix counter of a name only goes up, so each taken candidate is
/// skipped once, however many containers share the name. (Probing from `_2` every time
/// made populating N containers from a few hundred generated names quadratic.) A suffix
/// freed by a destroy or a rename is not handed out again for that name, which Docker does
/// not promise either.
pub(super) fn unique_name(st: &mut State, name: &str) -> String {
    let mut base = name.trim_start_matches('/').to_owned();
    if !valid_name(&base) {
        base = generate::name(&mut st.rng);
    }
    if !st.names.contains_key(&base) {
        return base;
    }
    let next = st.next_suffix.entry(base.clone()).or_insert(2);
    loop {
        let candidate = format!("{base}_{next}");
        *next += 1;
        if !st.names.contains_key(&candidate) {
            return candidate;
        }
    }
}

/// Finds a container by full id, name (with or without `/`), or unique id prefix
/// (O(log n): [`IdIndex::unique_prefix`]).
pub(super) fn resolve(st: &State, id: &str) -> Result<u64, RuntimeError> {
    if let Some(seq) = st.ids.get(id) {
        return Ok(seq);
    }
    if let Some(seq) = st.names.get(id.trim_start_matches('/')) {
        return Ok(*seq);
    }
    st.ids
        .unique_prefix(id)
        .ok_or_else(|| RuntimeError::NotFound(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_dockers() {
        assert!(valid_name("web_1.a-b"));
        assert!(!valid_name(""));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
    }

    #[test]
    fn resolve_by_id_name_or_unique_prefix() {
        let rt = Runtime::new(0);
        let ids: Vec<String> = (0..40)
            .map(|i| rt.create(&format!("c{i}"), "busybox", BTreeMap::new()))
            .collect();
        let st = rt.inner.state.lock();
        let seq_of = |id: &str| st.ids.get(id).unwrap();
        assert_eq!(resolve(&st, &ids[3]), Ok(seq_of(&ids[3])));
        assert_eq!(resolve(&st, "c7"), Ok(seq_of(&ids[7])));
        assert_eq!(resolve(&st, "/c7"), Ok(seq_of(&ids[7])));
        assert_eq!(resolve(&st, &ids[5][..20]), Ok(seq_of(&ids[5])));
        // With 40 random ids, some single hex digit prefixes more than one: ambiguous.
        let ambiguous = (0..16u8)
            .map(|d| format!("{d:x}"))
            .find(|p| ids.iter().filter(|id| id.starts_with(p.as_str())).count() > 1)
            .unwrap();
        assert!(matches!(
            resolve(&st, &ambiguous),
            Err(RuntimeError::NotFound(_))
        ));
        assert!(matches!(resolve(&st, ""), Err(RuntimeError::NotFound(_))));
    }
}
