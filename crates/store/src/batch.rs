//! [`Batch`]: several changes applied by the [`Writer`] under one dispatch turn, told to
//! each handler together; and [`stage`], the one step every change goes through.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::OwnedMutexGuard;

use crate::dispatch::Outbox;
use crate::event::Notification;
use crate::shared::Shared;
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
/// use hypersh_store::{Change, Keyed, StoreConfig, store};
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
            Some((_, old)) => Notification::Delete(Deleted::Known(old)),
            None => return None,
        },
    };
    let unsent = outbox.push(note, &state.subscribers);
    if unsent.is_none() {
        // Relaxed: read by resync timers under the dispatch turn, which this caller holds.
        shared.undelivered.store(true, Ordering::Relaxed);
    }
    unsent
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::testutil::{Ev, Obj, obj, recorder, take};
    use crate::{Change, HandlerOptions, StoreConfig, store};

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
