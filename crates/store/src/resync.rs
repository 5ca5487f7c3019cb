//! Per-handler periodic resync (client-go's resync): every period, the handler gets every
//! cached object again as `on_update(obj, obj)`.
//!
//! Ordering: the resync timer takes the writer's dispatch turn, snapshots the map and
//! enqueues the snapshot as one notification in the handler's own queue. Because the writer
//! holds that turn from changing the map until every handler has its notification, the
//! snapshot lands exactly between the events before and after it, so a handler never sees a
//! resync that disagrees with the events around it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, MissedTickBehavior};

use crate::Keyed;
use crate::control::Control;
use crate::event::Notification;
use crate::shared::Shared;

/// A handler's periodic resync.
pub(crate) struct ResyncPlan<T> {
    pub(crate) period: Duration,
    pub(crate) store: Weak<Shared<T>>,
    pub(crate) tx: mpsc::WeakSender<Notification<T>>,
    pub(crate) control: Arc<Control>,
}

impl<T: Keyed + Send + Sync + 'static> ResyncPlan<T> {
    /// Every period: take the dispatch turn (so the snapshot sits exactly between the
    /// notifications before and after it), snapshot the map, and enqueue it without waiting.
    /// A full queue skips this resync: a resync must never make the writer wait, and a handler
    /// with a full queue is busy with fresher events anyway.
    pub(crate) async fn run(self) {
        let mut ticks = tokio::time::interval_at(Instant::now() + self.period, self.period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (Some(store), Some(tx)) = (self.store.upgrade(), self.tx.upgrade()) else {
                return;
            };
            let _turn = store.dispatch.lock().await;
            // Relaxed is enough: the writer only changes the flag while holding the turn.
            if store.undelivered.load(Ordering::Relaxed) {
                self.control.resyncs_skipped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    handler = self.control.name(),
                    "writer has undelivered notifications: resync skipped"
                );
                continue;
            }
            let snapshot = {
                let _state = store.state.read();
                store.snapshot()
            };
            match tx.try_send(Notification::Resync(snapshot)) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    self.control.resyncs_skipped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(handler = %self.control.name, "handler queue full: resync skipped");
                }
                Err(TrySendError::Closed(_)) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Ev, Obj, Stalled, next, obj, recorder, take};
    use crate::{Change, HandlerOptions, StoreConfig, store};

    #[tokio::test(start_paused = true)]
    async fn resync_redelivers_the_cache_as_updates_in_queue_order() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let (rec, mut rx) = recorder();
        let period = Duration::from_secs(10);
        let h = s.register(rec, HandlerOptions::new().resync(period));
        w.replace(vec![obj("a", 1), obj("b", 1)]).await;
        take(&mut rx, 2).await;
        let start = Instant::now();
        let mut resync = take(&mut rx, 2).await;
        assert!(start.elapsed() >= period - Duration::from_secs(1));
        resync.sort_by(|x, y| x.key().cmp(y.key()));
        assert_eq!(
            resync,
            [
                Ev::Update("a".into(), 1, 1, true),
                Ev::Update("b".into(), 1, 1, true)
            ]
        );
        // A change before the next period shows up, in order, before that resync.
        w.apply(Change::Upsert(obj("a", 2))).await;
        assert_eq!(next(&mut rx).await, Ev::Update("a".into(), 1, 2, false));
        let mut resync = take(&mut rx, 2).await;
        resync.sort_by(|x, y| x.key().cmp(y.key()));
        assert_eq!(resync[0], Ev::Update("a".into(), 2, 2, true));
        assert_eq!(h.resyncs_skipped(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn resync_is_skipped_while_the_queue_is_full() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let (stalled, release, entered, _out) = Stalled::new();
        let h = s.register(
            stalled,
            HandlerOptions::new()
                .queue_capacity(1)
                .resync(Duration::from_millis(5)),
        );
        w.apply(Change::Upsert(obj("a", 1))).await;
        entered.await.unwrap();
        // The handler is stuck in its first call; this fills its one-slot queue.
        w.apply(Change::Upsert(obj("a", 2))).await;
        assert_eq!(h.queue_len(), 1);
        let waited = tokio::time::timeout(Duration::from_secs(30), async {
            while h.resyncs_skipped() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        assert!(waited.await.is_ok(), "no resync was attempted");
        assert!(h.is_running());
        release.send(()).unwrap();
    }
}
