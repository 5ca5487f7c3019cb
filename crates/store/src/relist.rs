//! [`Relist`]: a relist fed one object at a time, so a large list never exists twice in
//! memory (once decoded, once cached).
//!
//! Each object is compared with the cached version as it arrives: an equal one is dropped
//! at once and only its key is remembered; a new or changed one is held until
//! [`Relist::commit`], which applies everything atomically (readers see the whole relist or
//! none of it) with the same notifications as [`Writer::replace`](crate::Writer::replace).
//! A relist of an unchanged cache therefore costs a set of keys, not a second copy.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;

use crate::event::Notification;
use crate::{Deleted, Keyed, Writer};

/// A relist in progress on a [`Writer`]: [`insert`](Self::insert) every listed object, then
/// [`commit`](Self::commit). Dropping it without committing changes nothing.
///
/// Between the two, [`get`](Self::get), [`remove`](Self::remove) and
/// [`retain`](Self::retain) read and edit the relist's own view (what the store will hold
/// after the commit), so events that arrived during the list can be replayed on top of it.
pub struct Relist<'w, T> {
    writer: &'w mut Writer<T>,
    /// Every listed key and what the commit does with it. Hashed with foldhash, as the
    /// store's map: every listed key is hashed here, and keys are 64-character ids, on
    /// which the default SipHash is slow.
    listed: HashMap<Arc<str>, Listed, foldhash::fast::RandomState>,
    /// New or changed objects in first-seen order (`None`: no longer a change).
    changed: Vec<Option<Arc<T>>>,
    /// How many listed keys are cached: when that is every cached key, none vanished and
    /// the commit need not look for them.
    listed_cached: usize,
}

/// A listed key, as the commit will treat it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Listed {
    /// The listed object equals the cached one, which stays.
    Unchanged,
    /// The object's new version is `changed[at]`; `cached` tells whether the key is
    /// cached now (an update) or not (an add).
    Changed { at: usize, cached: bool },
}

impl Listed {
    /// Whether the key is cached now.
    fn is_cached(self) -> bool {
        match self {
            Self::Unchanged => true,
            Self::Changed { cached, .. } => cached,
        }
    }
}

impl<T> fmt::Debug for Relist<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relist")
            .field("listed", &self.listed.len())
            .field("changed", &self.changed.len())
            .finish_non_exhaustive()
    }
}

impl<'w, T: Keyed + PartialEq + Send + Sync + 'static> Relist<'w, T> {
    pub(crate) fn new(writer: &'w mut Writer<T>) -> Self {
        // A relist usually lists what is cached: one allocation for the keys, not a
        // table regrown (and copied) a dozen times on the way to a million.
        let listed = HashMap::with_capacity_and_hasher(writer.shared.map.len(), Default::default());
        Self {
            writer,
            listed,
            changed: Vec::new(),
            listed_cached: 0,
        }
    }

    /// How many distinct keys have been listed (and not removed).
    pub fn len(&self) -> usize {
        self.listed.len()
    }

    /// Whether nothing has been listed yet.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    /// Adds one listed object (after the store's transform). If its key was listed before,
    /// this version replaces the earlier one.
    ///
    /// A listed object first shares what it can with its cached version
    /// ([`Keyed::share_unchanged`]), so that a changed object held until the commit costs
    /// only what changed.
    pub fn insert(&mut self, obj: T) {
        let mut obj = self.writer.transformed(obj);
        let cached = self.writer.shared.map.get(obj.key()).map(|e| {
            let cached = e.key().object();
            obj.share_unchanged(cached);
            let same = **cached == obj;
            (cached.shared_key(), same)
        });
        let (key, same, cached) = match cached {
            Some((key, same)) => (key, same, true),
            None => (obj.shared_key(), false, false),
        };
        match self.listed.entry(key) {
            Entry::Occupied(mut seen) => match (*seen.get(), same) {
                (Listed::Changed { at, .. }, true) => {
                    self.changed[at] = None;
                    seen.insert(Listed::Unchanged);
                }
                (Listed::Changed { at, .. }, false) => self.changed[at] = Some(Arc::new(obj)),
                (Listed::Unchanged, true) => {}
                (Listed::Unchanged, false) => {
                    self.changed.push(Some(Arc::new(obj)));
                    let at = self.changed.len() - 1;
                    seen.insert(Listed::Changed { at, cached });
                }
            },
            Entry::Vacant(slot) => {
                self.listed_cached += usize::from(cached);
                if same {
                    slot.insert(Listed::Unchanged);
                } else {
                    self.changed.push(Some(Arc::new(obj)));
                    let at = self.changed.len() - 1;
                    slot.insert(Listed::Changed { at, cached });
                }
            }
        }
    }

    /// The version of `key` the store will hold after the commit, as listed so far: `None`
    /// when the key has not been listed (or was removed).
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        match self.listed.get(key)? {
            // Listed unchanged: the cached version stays.
            Listed::Unchanged => self.cached(key),
            Listed::Changed { at, .. } => self.changed[*at].clone(),
        }
    }

    /// The version of `key` the store holds now, before this relist is committed.
    pub fn cached(&self, key: &str) -> Option<Arc<T>> {
        self.writer
            .shared
            .map
            .get(key)
            .map(|e| Arc::clone(e.key().object()))
    }

    /// Forgets a listed key: if cached, the commit removes it (a tombstone).
    pub fn remove(&mut self, key: &str) {
        let Some(listed) = self.listed.remove(key) else {
            return;
        };
        self.listed_cached -= usize::from(listed.is_cached());
        if let Listed::Changed { at, .. } = listed {
            self.changed[at] = None;
        }
    }

    /// Keeps only the listed objects for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let dropped: Vec<Arc<str>> = self
            .listed
            .keys()
            .filter(|key| self.get(key).is_some_and(|obj| !keep(&obj)))
            .cloned()
            .collect();
        for key in dropped {
            self.remove(&key);
        }
    }

    /// Applies the relist and marks the store synced, as
    /// [`Writer::replace`](crate::Writer::replace) does: `on_add` for new keys and
    /// `on_update(old, new)` for changed objects, in first-listed order, then
    /// `on_delete(Deleted::FinalStateUnknown(last))` for cached keys that were not listed,
    /// in key order. Readers see it all at once.
    ///
    /// Returns the writer, for a caller that keeps it behind the relist while the relist
    /// runs. Cancel safety as for [`Writer::apply`](crate::Writer::apply).
    pub async fn commit(self) -> &'w mut Writer<T> {
        let Self {
            writer,
            listed,
            changed,
            listed_cached,
        } = self;
        let shared = Arc::clone(&writer.shared);
        let _turn = shared.dispatch.lock().await;
        writer.outbox.flush(&shared).await;

        // The vanished objects themselves: their keys are borrowed from them. The writer
        // is borrowed by the relist, so the map is as it was when the keys were counted:
        // when every cached key was listed, none vanished.
        let mut vanished: Vec<Arc<T>> = if listed_cached == shared.map.len() {
            Vec::new()
        } else {
            shared
                .map
                .iter()
                .filter(|e| !listed.contains_key(e.key().object().key()))
                .map(|e| Arc::clone(e.key().object()))
                .collect()
        };
        vanished.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        let new_keys = listed.len() - listed_cached;
        drop(listed);
        {
            let mut state = shared.state.write();
            let state = &mut *state;
            shared.reserve(state, new_keys);
            for new in changed.into_iter().flatten() {
                let note = shared.upsert_locked(state, new);
                writer.outbox.push(note, &state.subscribers);
            }
            for gone in vanished {
                if let Some(last) = shared.remove_locked(state, gone.key()) {
                    let tombstone = Deleted::FinalStateUnknown(last);
                    writer
                        .outbox
                        .push(Notification::Delete(tombstone), &state.subscribers);
                }
            }
            if !state.synced {
                state.synced = true;
                // Handlers registered before now catch up when they reach this marker.
                writer.outbox.push(Notification::Synced, &state.subscribers);
                shared.ready.set();
            }
        }
        writer.outbox.flush(&shared).await;
        writer
    }

    /// Drops the relist unapplied (the store does not change) and returns the writer, as
    /// [`commit`](Self::commit) does.
    pub fn cancel(self) -> &'w mut Writer<T> {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Ev, Obj, next, obj, recorder, take};
    use crate::{Change, HandlerOptions, StoreConfig, store};

    #[tokio::test(start_paused = true)]
    async fn an_unchanged_relist_keeps_the_cached_objects_and_notifies_nothing() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        w.replace(vec![obj("a", 1), obj("b", 1)]).await;
        let a_before = s.get("a");
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::default());
        assert_eq!(take(&mut rx, 2).await.len(), 2, "the synthetic adds");

        let mut relist = w.relist();
        relist.insert(obj("a", 1));
        relist.insert(obj("b", 1));
        assert_eq!(relist.len(), 2);
        assert!(relist.changed.iter().all(Option::is_none));
        assert_eq!(relist.listed_cached, 2, "both listed keys are cached");
        assert!(matches!((&a_before, relist.get("a")), (Some(x), Some(y)) if Arc::ptr_eq(x, &y)));
        relist.commit().await;
        w.apply(Change::Upsert(obj("sentinel", 0))).await;
        assert_eq!(next(&mut rx).await, Ev::Add("sentinel".into(), 0));
        assert!(matches!((a_before, s.get("a")), (Some(x), Some(y)) if Arc::ptr_eq(&x, &y)));
    }

    #[tokio::test(start_paused = true)]
    async fn edits_before_the_commit_are_what_the_store_gets() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        w.replace(vec![obj("a", 1), obj("b", 1), obj("c", 1)]).await;
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::default());
        take(&mut rx, 3).await;

        let mut relist = w.relist();
        relist.insert(obj("a", 2));
        relist.insert(obj("b", 1));
        relist.insert(obj("d", 1));
        relist.insert(obj("e", 1));
        // A duplicate that goes back to the cached version is no change.
        relist.insert(obj("a", 1));
        assert_eq!(relist.get("d").map(|o| o.v), Some(1));
        assert!(relist.get("c").is_none(), "c was not listed");
        assert_eq!(relist.cached("c").map(|o| o.v), Some(1), "but it is cached");
        assert!(relist.cached("d").is_none(), "d is listed, not cached yet");
        relist.remove("e");
        relist.insert(obj("b", 5));
        relist.retain(|o| o.v != 5);
        assert!(relist.get("b").is_none());
        assert!(!relist.is_empty());
        relist.commit().await;
        assert_eq!(
            take(&mut rx, 3).await,
            [
                Ev::Add("d".into(), 1),
                Ev::Delete("b".into(), 1, true),
                Ev::Delete("c".into(), 1, true),
            ]
        );
        assert_eq!(s.keys(), ["a", "d"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_relist_changes_nothing_and_the_first_commit_syncs() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let mut relist = w.relist();
        relist.insert(obj("a", 1));
        drop(relist);
        assert!(s.is_empty());
        assert!(!s.has_synced());
        let mut relist = w.relist();
        relist.insert(obj("a", 1));
        relist.commit().await;
        assert!(s.has_synced());
        assert_eq!(s.keys(), ["a"]);
    }

    /// An object whose body can be shared between versions.
    #[derive(Debug, PartialEq)]
    struct Doc {
        id: String,
        body: Arc<str>,
        v: u32,
    }

    impl Keyed for Doc {
        fn key(&self) -> &str {
            &self.id
        }

        fn share_unchanged(&mut self, older: &Self) {
            if self.body == older.body {
                self.body = Arc::clone(&older.body);
            }
        }
    }

    fn doc(id: &str, body: &str, v: u32) -> Doc {
        Doc {
            id: id.to_owned(),
            body: Arc::from(body),
            v,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_listed_object_shares_unchanged_parts_with_its_cached_version() {
        let (mut w, s) = store::<Doc>(StoreConfig::default());
        w.replace(vec![doc("a", "same", 1), doc("b", "old", 1)])
            .await;
        let cached_a = s.get("a").unwrap();

        let mut relist = w.relist();
        relist.insert(doc("a", "same", 2));
        relist.insert(doc("b", "new", 2));
        relist.insert(doc("c", "same", 1));
        let listed_a = relist.get("a").unwrap();
        assert_eq!(listed_a.v, 2);
        assert!(Arc::ptr_eq(&listed_a.body, &cached_a.body));
        let cached_b = relist.cached("b").unwrap();
        assert!(!Arc::ptr_eq(&relist.get("b").unwrap().body, &cached_b.body));
        assert!(!Arc::ptr_eq(&relist.get("c").unwrap().body, &cached_a.body));
        relist.commit().await;
        assert!(Arc::ptr_eq(&s.get("a").unwrap().body, &cached_a.body));
        assert_eq!(&*s.get("b").unwrap().body, "new");
    }
}
