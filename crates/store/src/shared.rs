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

/// One store.
pub(crate) struct Shared<T> {
    /// Key -> object. Keys are shared with the indexes. Hashed with foldhash (randomly
    /// seeded per process): every apply hashes a key, container ids are 64 characters,
    /// and the default SipHash is slow on keys that long.
    pub(crate) map: DashMap<Arc<str>, Arc<T>, foldhash::fast::RandomState>,
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
        self.map.iter().map(|e| Arc::clone(e.value())).collect()
    }

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

impl<T: Keyed> Shared<T> {
    /// Caches `new` (its key, its index entries) and returns the notification for it: an
    /// add, or an update with the version it replaces. `state` is the write-locked
    /// [`Shared::state`].
    ///
    /// The map keeps `new`'s own key ([`Keyed::shared_key`]), not the old version's: with
    /// objects that share their key, the old key's allocation goes with the old version.
    pub(crate) fn upsert_locked(&self, state: &mut State<T>, new: Arc<T>) -> Notification<T> {
        let replaced = match self.map.entry(new.shared_key()) {
            Entry::Occupied(slot) => Some(slot.replace_entry(Arc::clone(&new)).1),
            Entry::Vacant(slot) => {
                slot.insert(Arc::clone(&new));
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

    /// Removes `key` (and its index entries) and returns its map key and last version.
    /// `state` is the write-locked [`Shared::state`].
    pub(crate) fn remove_locked(
        &self,
        state: &mut State<T>,
        key: &str,
    ) -> Option<(Arc<str>, Arc<T>)> {
        let (key, last) = self.map.remove(key)?;
        state.indexes.update(&key, Some(&last), None);
        self.signal_changed();
        Some((key, last))
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

    #[test]
    fn new_store_state_is_empty_and_unsynced() {
        let shared = Shared::<u8>::new(8, FullPolicy::Block, None);
        assert!(shared.snapshot().is_empty());
        let state = shared.state.read();
        assert!(!state.synced);
        assert!(state.subscribers.is_empty());
    }

    #[test]
    fn snapshot_shares_the_cached_objects() {
        let shared = Shared::<u8>::new(8, FullPolicy::Block, None);
        let one = Arc::new(1u8);
        shared.map.insert(Arc::from("a"), Arc::clone(&one));
        let snapshot = shared.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert!(Arc::ptr_eq(&snapshot[0], &one));
        shared.unsubscribe(99);
        assert!(shared.state.read().subscribers.is_empty());
    }
}
