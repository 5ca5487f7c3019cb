//! [`Batch`]: several changes applied by the [`Writer`] under one dispatch turn, told to
//! each handler together; and [`stage`], the one step every change goes through.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::OwnedMutexGuard;

use crate::dispatch::Outbox;
use crate::event::Notification;
use crate::shared::{Shared, State};
use crate::{Change, Deleted, Keyed, Writer};

/// Changes the [`Writer`] applies together (see [`Writer::batch`]).
///
/// Each [`apply`](Self::apply) changes the map and the indexes at once, so readers (and
/// the code building the next change) see it; the handlers are told on
/// [`commit`](Self::commit), one queue entry per handler for up to 64 changes instead of
/// one per change. Handlers see the same notifications, in the same order, as with one
/// [`Writer::apply`] per change.
///
/// The batch holds the writer's dispatch turn: resyncs wait for it, so keep it short (the
/// reflector uses one per run of ready events). Dropping it without committing keeps its
/// notifications: the writer's next call delivers them first, as for a cancelled `apply`.
///
/// ```
/// # mod hypersh { pub mod store { pub use hypersh_store::*; } }
/// use hypersh::store::{Change, Keyed, StoreConfig, store};
///
/// #[derive(Debug, Clone, PartialEq)]
/// struct Job(String, u32);
///
/// impl Keyed for Job {
///     fn key(&self) -> &str {
///         &self.0
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (mut writer, reader) = store::<Job>(StoreConfig::default());
/// let mut batch = writer.batch().await;
/// batch.apply(Change::Upsert(Job("a".into(), 1)));
/// // Already in the store, before any handler hears of it.
/// assert_eq!(reader.get("a").map(|j| j.1), Some(1));
/// batch.apply(Change::Upsert(Job("a".into(), 2)));
/// batch.commit().await;
/// assert_eq!(reader.get("a").map(|j| j.1), Some(2));
/// # }
/// ```
pub struct Batch<'a, T> {
    writer: &'a mut Writer<T>,
    _turn: OwnedMutexGuard<()>,
}

impl<'a, T> Batch<'a, T> {
    /// A batch of `writer`'s, which holds the dispatch `turn`.
    pub(crate) fn new(writer: &'a mut Writer<T>, turn: OwnedMutexGuard<()>) -> Self {
        Self {
            writer,
            _turn: turn,
        }
    }
}

impl<T: Keyed + PartialEq + Send + Sync + 'static> Batch<'_, T> {
    /// Applies one change now (see [`Writer::apply`] for what each change does); its
    /// notification waits for [`commit`](Self::commit).
    pub fn apply(&mut self, change: Change<T>) {
        let change = self.writer.transformed_change(change);
        let Writer { shared, outbox, .. } = &mut *self.writer;
        drop(stage(shared, outbox, change));
    }

    /// Changes the object cached under `key` as `f` decides from it: `f` sees the cached
    /// object (`None` when the key is not cached), borrowed, and returns the change to
    /// apply, if any. Returns whether `f` returned a change, which is applied as by
    /// [`apply`](Self::apply).
    ///
    /// This is for a writer that derives each new version from the cached one, as the
    /// reflector does for each event, without a reference count per read. The entry is
    /// read-locked while `f` runs: keep `f` short, and do not use the store from it.
    ///
    /// ```
    /// # mod hypersh { pub mod store { pub use hypersh_store::*; } }
    /// use hypersh::store::{Change, Keyed, StoreConfig, store};
    ///
    /// #[derive(Debug, Clone, PartialEq)]
    /// struct Job(String, u32);
    ///
    /// impl Keyed for Job {
    ///     fn key(&self) -> &str {
    ///         &self.0
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let (mut writer, reader) = store::<Job>(StoreConfig::default());
    /// writer.apply(Change::Upsert(Job("a".into(), 1))).await;
    /// let mut batch = writer.batch().await;
    /// let bump = |job: Option<&Job>| job.map(|j| Change::Upsert(Job(j.0.clone(), j.1 + 1)));
    /// assert!(batch.update("a", bump));
    /// assert!(!batch.update("b", bump), "not cached: no change");
    /// batch.commit().await;
    /// assert_eq!(reader.get("a").map(|j| j.1), Some(2));
    /// # }
    /// ```
    pub fn update(&mut self, key: &str, f: impl FnOnce(Option<&T>) -> Option<Change<T>>) -> bool {
        // The entry's shard lock is released at the end of this statement, before the
        // change takes it again.
        let change = match self.writer.shared.map.get(key) {
            Some(entry) => f(Some(entry.key().object())),
            None => f(None),
        };
        let Some(change) = change else {
            return false;
        };
        self.apply(change);
        true
    }

    /// Delivers the batch's notifications and ends it. With
    /// [`FullPolicy::Block`](crate::FullPolicy::Block) this waits for room in full
    /// queues; it is cancel-safe as [`Writer::apply`] is.
    pub async fn commit(self) {
        let Writer { shared, outbox, .. } = self.writer;
        outbox.flush(shared).await;
    }
}

impl<T> fmt::Debug for Batch<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("pending", &self.writer.outbox.len())
            .finish_non_exhaustive()
    }
}

/// Applies `change` to the map and the indexes, under the state lock, and queues its
/// notification in `outbox`. Returns the notification when no handler takes it (or the
/// change did nothing), for the caller to drop after the lock.
pub(crate) fn stage<T: Keyed + Send + Sync + 'static>(
    shared: &Shared<T>,
    outbox: &mut Outbox<T>,
    change: Change<T>,
) -> Option<Notification<T>> {
    let mut state = shared.state.write();
    let state = &mut *state;
    let note = match change {
        Change::Upsert(obj) => shared.upsert_locked(state, Arc::new(obj)),
        Change::Delete(key) => match shared.remove_locked(state, &key) {
            Some(old) => Notification::Delete(Deleted::Known(old)),
            None => return None,
        },
    };
    queue(shared, outbox, state, note)
}

/// Queues `note` for the subscribers in `state`, and records that the outbox holds
/// something; returns it when no handler takes it.
fn queue<T: Send + Sync + 'static>(
    shared: &Shared<T>,
    outbox: &mut Outbox<T>,
    state: &State<T>,
    note: Notification<T>,
) -> Option<Notification<T>> {
    let unsent = outbox.push(note, &state.subscribers);
    if unsent.is_none() {
        // Relaxed: read by resync timers under the dispatch turn, which this caller holds.
        shared.undelivered.store(true, Ordering::Relaxed);
    }
    unsent
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::testutil::{Ev, Obj, obj, recorder, tagged, take};
    use crate::{Change, HandlerOptions, Keyed, StoreConfig, store};

    #[tokio::test(start_paused = true)]
    async fn a_batch_is_visible_at_once_and_delivered_in_order_in_few_queue_entries() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let (rec, mut rx) = recorder();
        let h = s.register(rec, HandlerOptions::default());
        let mut batch = w.batch().await;
        for v in 0..100 {
            batch.apply(Change::Upsert(obj("a", v)));
            assert_eq!(
                s.get("a").map(|o| o.v),
                Some(v),
                "visible before the commit"
            );
        }
        batch.apply(Change::Delete("a".into()));
        batch.apply(Change::Delete("never".into()));
        assert_eq!(h.queue_len(), 0, "nothing is delivered before the commit");
        batch.commit().await;
        // 101 notifications: 64 in one entry, 37 in another. The handler task has not run.
        assert_eq!(h.queue_len(), 2);
        let got = take(&mut rx, 101).await;
        assert_eq!(got[0], Ev::Add("a".into(), 0));
        for v in 1..100 {
            assert_eq!(got[v as usize], Ev::Update("a".into(), v - 1, v, false));
        }
        assert_eq!(got[100], Ev::Delete("a".into(), 99, false));
        assert!(s.get("a").is_none());
    }

    #[tokio::test]
    async fn update_applies_what_the_cached_object_decides_as_apply_would() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        s.add_index("tag", |o: &Obj| o.tags.clone());
        let (rec, mut rx) = recorder();
        s.register(rec, HandlerOptions::default());
        w.apply(Change::Upsert(tagged("a", 1, &["x"]))).await;
        let mut batch = w.batch().await;
        let bump = |o: Option<&Obj>| o.map(|o| Change::Upsert(tagged(&o.id, o.v + 1, &["y"])));
        assert!(batch.update("a", bump));
        assert_eq!(s.get("a").map(|o| o.v), Some(2), "visible at once");
        assert_eq!(s.index_keys("tag", "y").unwrap(), ["a"]);
        assert!(s.index_keys("tag", "x").unwrap().is_empty());
        assert!(!batch.update("a", |_| None), "no change");
        assert!(
            !batch.update("m", bump),
            "not cached, and no change for that"
        );
        assert!(batch.update("m", |o| {
            assert!(o.is_none());
            Some(Change::Upsert(obj("m", 1)))
        }));
        assert!(
            batch.update("a", |_| Some(Change::Upsert(obj("c", 7)))),
            "another key"
        );
        assert!(batch.update("m", |_| Some(Change::Delete("m".into()))));
        batch.commit().await;
        assert_eq!(
            take(&mut rx, 5).await,
            [
                Ev::Add("a".into(), 1),
                Ev::Update("a".into(), 1, 2, false),
                Ev::Add("m".into(), 1),
                Ev::Add("c".into(), 7),
                Ev::Delete("m".into(), 1, false),
            ]
        );
        assert_eq!(s.keys(), ["a", "c"]);
    }

    #[tokio::test]
    async fn update_runs_the_transform_and_caches_the_new_version_itself() {
        #[derive(Debug, PartialEq)]
        struct Named(Arc<str>, u32);

        impl Keyed for Named {
            fn key(&self) -> &str {
                &self.0
            }
            fn shared_key(&self) -> Arc<str> {
                Arc::clone(&self.0)
            }
        }

        let config = StoreConfig::default().transform(|n: Named| Named(n.0, n.1 * 10));
        let (mut w, s) = store::<Named>(config);
        w.apply(Change::Upsert(Named("a".into(), 1))).await;
        let mut batch = w.batch().await;
        assert!(batch.update("a", |n| {
            n.map(|n| Change::Upsert(Named(Arc::clone(&n.0), n.1 + 1)))
        }));
        batch.commit().await;
        assert_eq!(s.get("a").map(|n| n.1), Some(110), "transformed");

        let (mut w, s) = store::<Named>(StoreConfig::default());
        w.apply(Change::Upsert(Named("a".into(), 1))).await;
        let first = s.get("a");
        let mut batch = w.batch().await;
        assert!(batch.update("a", |n| {
            n.map(|n| Change::Upsert(Named(Arc::clone(&n.0), 2)))
        }));
        batch.commit().await;
        let second = s.get("a");
        assert_eq!(second.as_ref().map(|n| n.1), Some(2));
        // The map holds the new version as its key, and lets the old one go.
        assert!(first.is_some_and(|first| Arc::strong_count(&first) == 1));
        // A new allocation of the key: the map holds it too.
        let fresh: Arc<str> = Arc::from("a");
        let mut batch = w.batch().await;
        assert!(batch.update("a", |_| Some(Change::Upsert(Named(Arc::clone(&fresh), 3)))));
        batch.commit().await;
        assert!(
            s.get("a")
                .is_some_and(|n| n.1 == 3 && Arc::ptr_eq(&n.0, &fresh))
        );
        assert!(second.is_some_and(|second| Arc::strong_count(&second) == 1));
        // Under another key it is an upsert of that key, and the cached one stays.
        let mut batch = w.batch().await;
        assert!(batch.update("a", |_| Some(Change::Upsert(Named("b".into(), 4)))));
        batch.commit().await;
        assert_eq!(s.keys(), ["a", "b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_batch_is_delivered_by_the_next_call_and_holds_off_resyncs() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let (rec, mut rx) = recorder();
        let h = s.register(rec, HandlerOptions::new().resync(Duration::from_secs(1)));
        {
            let mut batch = w.batch().await;
            batch.apply(Change::Upsert(obj("a", 1)));
            batch.apply(Change::Upsert(obj("b", 1)));
        }
        assert_eq!(w.pending(), 1, "one entry for both");
        assert!(w.shared.undelivered.load(Ordering::Relaxed));
        // A resync now would overtake the two adds: it is skipped.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert_eq!(h.resyncs_skipped(), 1);
        w.apply(Change::Upsert(obj("a", 2))).await;
        assert_eq!(w.pending(), 0);
        assert_eq!(
            take(&mut rx, 3).await,
            [
                Ev::Add("a".into(), 1),
                Ev::Add("b".into(), 1),
                Ev::Update("a".into(), 1, 2, false),
            ]
        );
        assert!(!w.shared.undelivered.load(Ordering::Relaxed));
    }
}
