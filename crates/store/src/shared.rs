//! The state shared by a store's writer, its readers and its handler tasks.
//!
//! Locking rules (in acquisition order; nothing is ever held across an `.await` except the
//! dispatch turn, and no lock is held while a handler runs):
//! 1. `dispatch` (async mutex): the writer holds it from applying a change until every handler
//!    has been offered the resulting notifications; a resync timer holds it while it takes
//!    its snapshot and enqueues it. So a resync snapshot never gets ahead of, or behind, the
//!    notifications in the same queue.
//! 2. `state` (`parking_lot::RwLock`): the writer holds it for writing while it changes the
//!    map and the indexes together; `list`, `len` and index queries hold it for reading, so
//!    they never see half an update (half a relist included). Registration holds it for
//!    writing while it snapshots the map and joins the subscriber list, so a new handler
//!    neither misses nor doubles an event.
//! 3. The dashmap's shard locks, briefly, inside either of the above or alone for `get`.
//!
//! `changed` (a `Notify`, not a lock) is signalled by the writer under `state`, after the
//! map changed, and only while someone waits in [`Store::wait_for`](crate::Store::wait_for)
//! (`watchers > 0`); a waiter holds no lock while it waits.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;
use parking_lot::RwLock;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::control::Control;
use crate::event::Notification;
use crate::index::Indexes;
use crate::ready::Latch;
use crate::{FullPolicy, Keyed};

/// A handler's entry in the store's subscriber list.
pub(crate) struct Subscriber<T> {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::Sender<Notification<T>>,
    pub(crate) policy: FullPolicy,
    pub(crate) control: Arc<Control>,
}

/// The registered handlers, copied on write so the writer can take them with one `Arc` clone.
pub(crate) type Subscribers<T> = Arc<[Arc<Subscriber<T>>]>;

/// Everything behind the apply lock.
pub(crate) struct State<T> {
    pub(crate) indexes: Indexes<T>,
    pub(crate) subscribers: Subscribers<T>,
    /// Set by the first `replace`; read under this lock by registration.
    pub(crate) synced: bool,
}

/// A cached object as its own map key: hashed and compared by its [`Keyed::key`], and
/// found by a `&str` through `Borrow`. A map slot is then one pointer, not a key and a
/// value: at a million objects the table is a third of the size (8 bytes a slot against
/// 24, about 19 bytes an object against 52 at the table's fill there).
pub(crate) struct ByKey<T>(pub(crate) Arc<T>);

impl<T> ByKey<T> {
    /// The cached object.
    pub(crate) fn object(&self) -> &Arc<T> {
        &self.0
    }
}

impl<T: Keyed> Hash for ByKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes: `Borrow<str>` requires the same hash for the same key.
        self.0.key().hash(state);
    }
}

impl<T: Keyed> PartialEq for ByKey<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<T: Keyed> Eq for ByKey<T> {}

impl<T: Keyed> Borrow<str> for ByKey<T> {
    fn borrow(&self) -> &str {
        self.0.key()
    }
}

/// The cached objects, each its own key (see [`ByKey`]). Hashed with foldhash (randomly
/// seeded per process): every apply hashes a key, container ids are 64 characters, and
/// the default SipHash is slow on keys that long.
pub(crate) type Map<T> = DashMap<ByKey<T>, (), foldhash::fast::RandomState>;

/// One store.
pub(crate) struct Shared<T> {
    /// The cached objects, by key.
    pub(crate) map: Map<T>,
    pub(crate) state: RwLock<State<T>>,
    /// The dispatch turn (an `Arc` so a writer [`Batch`](crate::Batch) can own it).
    pub(crate) dispatch: Arc<tokio::sync::Mutex<()>>,
    pub(crate) ready: Latch,
    pub(crate) queue_capacity: usize,
    pub(crate) full_policy: FullPolicy,
    pub(crate) runtime: Option<Handle>,
    pub(crate) next_id: AtomicU64,
    /// Set while the writer's outbox holds notifications not yet offered to every handler
    /// (normally only inside `apply`/`replace`; it stays set if such a call is cancelled).
    /// Read by resync timers under the dispatch turn: a snapshot taken then would overtake
    /// those notifications, so the resync is skipped instead.
    pub(crate) undelivered: AtomicBool,
    /// Woken after every change while `watchers > 0` (see `Store::wait_for`).
    pub(crate) changed: tokio::sync::Notify,
    /// How many `Store::wait_for` calls wait: the writer signals `changed` only then.
    pub(crate) watchers: AtomicUsize,
}

impl<T> Shared<T> {
    /// Removes handler `id` from the subscriber list (no-op if it is not there).
    pub(crate) fn unsubscribe(&self, id: u64) {
        let mut state = self.state.write();
        if state.subscribers.iter().any(|s| s.id == id) {
            state.subscribers = state
                .subscribers
                .iter()
                .filter(|s| s.id != id)
                .cloned()
                .collect();
        }
    }
}

impl<T: Keyed> Shared<T> {}

impl<T: Keyed> Shared<T> {
    pub(crate) fn new(
        queue_capacity: usize,
        full_policy: FullPolicy,
        runtime: Option<Handle>,
    ) -> Self {
        Self {
            map: DashMap::default(),
            state: RwLock::new(State {
                indexes: Indexes::default(),
                subscribers: Arc::new([]),
                synced: false,
            }),
            dispatch: Arc::new(tokio::sync::Mutex::new(())),
            ready: Latch::default(),
            queue_capacity,
            full_policy,
            runtime,
            next_id: AtomicU64::new(1),
            undelivered: AtomicBool::new(false),
            changed: tokio::sync::Notify::new(),
            watchers: AtomicUsize::new(0),
        }
    }

    /// Every cached object. The caller holds `state` (or the dispatch turn) so the map cannot
    /// change underneath.
    pub(crate) fn snapshot(&self) -> Vec<Arc<T>> {
        self.map
            .iter()
            .map(|e| Arc::clone(e.key().object()))
            .collect()
    }

    /// Caches `new` (its key, its index entries) and returns the notification for it: an
    /// add, or an update with the version it replaces. `state` is the write-locked
    /// [`Shared::state`].
    ///
    /// The map holds `new` itself as the key (see [`ByKey`]).
    pub(crate) fn upsert_locked(&self, state: &mut State<T>, new: Arc<T>) -> Notification<T> {
        let replaced = match self.map.entry(ByKey(Arc::clone(&new))) {
            Entry::Occupied(slot) => Some(slot.replace_entry(()).0.0),
            Entry::Vacant(slot) => {
                slot.insert(());
                None
            }
        };
        if !state.indexes.is_empty() {
            state
                .indexes
                .update(&new.shared_key(), replaced.as_deref(), Some(&new));
        }
        self.signal_changed();
        match replaced {
            Some(old) => Notification::Update(old, new),
            None => Notification::Add(new),
        }
    }

    /// Makes room for `additional` more objects before a batch of inserts (a relist's
    /// commit), so that each shard's table grows once instead of doubling its way there:
    /// each doubling hashes every key again, a pointer chase to each object's key (a
    /// first list of a million spent about 0.4 s of its commit so). Each shard takes its
    /// share plus 1/16 for the keys' uneven spread. `state` is the write-locked
    /// [`Shared::state`] (the lock order: state, then the map's shards).
    pub(crate) fn reserve(&self, _state: &mut State<T>, additional: usize) {
        let shards = self.map.shards();
        let share = additional.div_ceil(shards.len().max(1));
        let share = share.saturating_add(share / 16);
        for shard in shards {
            // The map's own hash of a key, as its lookups compute it (`hash_u64`).
            shard
                .write()
                .reserve(share, |entry| self.map.hasher().hash_one(&entry.0));
        }
    }

    /// Removes `key` (and its index entries) and returns its last version. `state` is
    /// the write-locked [`Shared::state`].
    pub(crate) fn remove_locked(&self, state: &mut State<T>, key: &str) -> Option<Arc<T>> {
        let (ByKey(last), ()) = self.map.remove(key)?;
        if !state.indexes.is_empty() {
            state.indexes.update(&last.shared_key(), Some(&last), None);
        }
        self.signal_changed();
        Some(last)
    }

    /// Wakes the [`Store::wait_for`](crate::Store::wait_for) callers, if any: the map has
    /// just changed. Costs one atomic load when nobody waits.
    pub(crate) fn signal_changed(&self) {
        // SeqCst pairs with the waiter's increment: either the writer sees the waiter, or
        // the waiter's first look at the map sees the change.
        if self.watchers.load(Ordering::SeqCst) > 0 {
            self.changed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::{Obj, obj};

    #[test]
    fn new_store_state_is_empty_and_unsynced() {
        let shared = Shared::<Obj>::new(8, FullPolicy::Block, None);
        assert!(shared.snapshot().is_empty());
        let state = shared.state.read();
        assert!(!state.synced);
        assert!(state.subscribers.is_empty());
    }

    #[test]
    fn snapshot_shares_the_cached_objects() {
        let shared = Shared::<Obj>::new(8, FullPolicy::Block, None);
        let one = Arc::new(obj("a", 1));
        shared.map.insert(ByKey(Arc::clone(&one)), ());
        let snapshot = shared.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert!(Arc::ptr_eq(&snapshot[0], &one));
        shared.unsubscribe(99);
        assert!(shared.state.read().subscribers.is_empty());
    }

    #[test]
    fn an_object_is_found_by_its_key_and_an_upsert_makes_the_new_version_the_key() {
        let shared = Shared::<Obj>::new(8, FullPolicy::Block, None);
        let hasher = shared.map.hasher();
        // `Borrow<str>` finds an entry only if both hash alike.
        assert_eq!(
            hasher.hash_one(ByKey(Arc::new(obj("a", 1)))),
            hasher.hash_one("a")
        );
        let mut state = shared.state.write();
        let first = Arc::new(obj("a", 1));
        assert!(matches!(
            shared.upsert_locked(&mut state, Arc::clone(&first)),
            Notification::Add(_)
        ));
        let second = Arc::new(obj("a", 2));
        match shared.upsert_locked(&mut state, Arc::clone(&second)) {
            Notification::Update(old, new) => {
                assert!(Arc::ptr_eq(&old, &first) && Arc::ptr_eq(&new, &second));
            }
            _ => panic!("an update"),
        }
        let held = shared.map.get("a").map(|e| Arc::clone(e.key().object()));
        assert!(
            held.is_some_and(|held| Arc::ptr_eq(&held, &second)),
            "the newest is the key"
        );
        assert_eq!(Arc::strong_count(&first), 1, "the old version is not held");
        let last = shared.remove_locked(&mut state, "a");
        assert!(last.is_some_and(|last| Arc::ptr_eq(&last, &second)));
        assert!(shared.map.is_empty());
        assert!(shared.remove_locked(&mut state, "a").is_none());
    }

    /// Reserving re-places what the shards hold with the map's own hash (every object is
    /// still found), and makes room for more: inserting half as many again (whatever the
    /// keys' spread over this machine's shards) grows no shard.
    #[test]
    fn reserve_keeps_every_object_found_and_makes_room_for_the_rest() {
        let shared = Shared::<Obj>::new(8, FullPolicy::Block, None);
        let mut state = shared.state.write();
        for i in 0..1_000 {
            drop(shared.upsert_locked(&mut state, Arc::new(obj(&format!("k{i}"), 1))));
        }
        let more = 50_000;
        shared.reserve(&mut state, more);
        for i in 0..1_000 {
            assert!(shared.map.contains_key(format!("k{i}").as_str()), "k{i}");
        }
        let capacities = || -> Vec<usize> {
            shared
                .map
                .shards()
                .iter()
                .map(|s| s.read().capacity())
                .collect()
        };
        let reserved = capacities();
        for i in 1_000..1_000 + more / 2 {
            drop(shared.upsert_locked(&mut state, Arc::new(obj(&format!("k{i}"), 1))));
        }
        assert_eq!(capacities(), reserved, "no shard grew");
        assert_eq!(shared.map.len(), 1_000 + more / 2);
        assert!(shared.map.contains_key("k25999"));
    }
}
