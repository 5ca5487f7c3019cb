//! The writer's outbox: notifications waiting to be offered to the handlers' queues.
//!
//! Notifications queued one after the other for the same handlers, and not offered yet,
//! travel as one queue entry ([`Notification::Batch`], up to [`MAX_BATCH`]): a writer
//! batch or a relist costs each handler one send and one wake-up, not one per change.
//!
//! Keeping them in the writer (rather than in a future's local variables) makes `apply` and
//! `replace` cancel-safe: if their future is dropped while waiting for room in a full queue,
//! what was not delivered yet stays here and goes out first on the next call (or
//! [`Writer::flush`](crate::Writer::flush)).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc::error::TrySendError;

use crate::FullPolicy;
use crate::event::Notification;
use crate::shared::{Shared, Subscribers};

/// The most notifications one queue entry carries.
pub(crate) const MAX_BATCH: usize = 64;

/// One notification (or batch) and the handlers it is for (those subscribed when it was
/// produced).
struct Delivery<T> {
    note: Notification<T>,
    targets: Subscribers<T>,
    /// Whether every target has been offered the notification without waiting.
    offered: bool,
    /// Targets (indexes into `targets`) whose queue was full under [`FullPolicy::Block`].
    waiting: VecDeque<usize>,
}

/// Notifications produced by the writer and not yet in every target queue, oldest first.
pub(crate) struct Outbox<T> {
    queue: VecDeque<Delivery<T>>,
}

impl<T> Default for Outbox<T> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
        }
    }
}

impl<T> Delivery<T> {
    /// The notes of this (not yet offered) delivery as a growable batch, if it has room
    /// for one more: a single note becomes a batch of one.
    fn batch_with_room(&mut self) -> Option<&mut Vec<Notification<T>>> {
        match self.note {
            // A resync snapshot travels alone.
            Notification::Resync(_) => return None,
            Notification::Batch(_) => {}
            _ => {
                // A single note becomes a batch of one (`Synced` only holds its place).
                let mut notes = Vec::with_capacity(MAX_BATCH);
                notes.push(std::mem::replace(&mut self.note, Notification::Synced));
                self.note = Notification::Batch(Arc::new(notes));
            }
        }
        match &mut self.note {
            // Not offered yet, so not shared: `get_mut` succeeds.
            Notification::Batch(notes) => Arc::get_mut(notes).filter(|n| n.len() < MAX_BATCH),
            _ => None,
        }
    }
}

impl<T> Outbox<T> {
    /// Queue entries not yet delivered to every target.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

impl<T: Send + Sync + 'static> Outbox<T> {
    /// Queues `note` for `targets`, in the same entry as the previous note when that one
    /// is for the same handlers, not offered yet, and not full. Without targets there is
    /// nothing to do: the note is handed back, for the caller to drop where it suits it.
    pub(crate) fn push(
        &mut self,
        note: Notification<T>,
        targets: &Subscribers<T>,
    ) -> Option<Notification<T>> {
        if targets.is_empty() {
            return Some(note);
        }
        if let Some(last) = self.queue.back_mut()
            && !last.offered
            && Arc::ptr_eq(&last.targets, targets)
            && let Some(notes) = last.batch_with_room()
        {
            notes.push(note);
            return None;
        }
        self.queue.push_back(Delivery {
            note,
            targets: Arc::clone(targets),
            offered: false,
            waiting: VecDeque::new(),
        });
        None
    }

    /// Delivers everything, in order. Each notification is first offered to every target
    /// without waiting, so a full queue does not delay the other handlers; then the writer
    /// waits for room in the full queues whose policy is [`FullPolicy::Block`], and evicts
    /// the handlers whose policy is [`FullPolicy::Evict`]. Stopped handlers are skipped.
    pub(crate) async fn flush(&mut self, shared: &Shared<T>) {
        if self.queue.is_empty() {
            return;
        }
        shared.undelivered.store(true, Ordering::Relaxed);
        while let Some(delivery) = self.queue.front_mut() {
            if !delivery.offered {
                for (i, sub) in delivery.targets.iter().enumerate() {
                    if sub.control.is_stopped() {
                        continue;
                    }
                    match sub.tx.try_send(delivery.note.clone()) {
                        Ok(()) | Err(TrySendError::Closed(_)) => {}
                        Err(TrySendError::Full(_)) => match sub.policy {
                            FullPolicy::Block => delivery.waiting.push_back(i),
                            FullPolicy::Evict => {
                                shared.unsubscribe(sub.id);
                                sub.control.evict();
                            }
                        },
                    }
                }
                delivery.offered = true;
            }
            while let Some(&i) = delivery.waiting.front() {
                if let Some(sub) = delivery.targets.get(i)
                    && !sub.control.is_stopped()
                {
                    tracing::debug!(
                        handler = sub.control.name(),
                        "handler queue full: writer waits"
                    );
                    // Cancel-safe: nothing is sent unless the permit is granted.
                    if let Ok(permit) = sub.tx.reserve().await {
                        permit.send(delivery.note.clone());
                    }
                }
                delivery.waiting.pop_front();
            }
            self.queue.pop_front();
        }
        shared.undelivered.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Ev, Obj, Stalled, obj, recorder, take};
    use crate::{Change, HandlerOptions, StoreConfig, store};

    #[test]
    fn nothing_is_queued_without_targets() {
        let mut outbox = Outbox::<Obj>::default();
        outbox.push(Notification::Synced, &Subscribers::from(Vec::new()));
        assert_eq!(outbox.len(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_handler_does_not_delay_another() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let (stalled, release, entered, mut stalled_rx) = Stalled::new();
        let slow = s.register(
            stalled,
            HandlerOptions::new().name("slow").queue_capacity(64),
        );
        let (rec, mut rx) = recorder();
        let _fast = s.register(rec, HandlerOptions::new().name("fast"));
        for v in 0..10 {
            w.apply(Change::Upsert(obj(&format!("k{v}"), v))).await;
        }
        entered.await.unwrap();
        let got = take(&mut rx, 10).await;
        assert_eq!(got.len(), 10);
        // The slow one holds k0 and has the other nine queued.
        assert_eq!(slow.queue_len(), 9);
        assert!(stalled_rx.try_recv().is_err());
        release.send(()).unwrap();
        let got = take(&mut stalled_rx, 10).await;
        assert_eq!(got[0], Ev::Add("k0".into(), 0));
        assert_eq!(got[9], Ev::Add("k9".into(), 9));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_blocks_the_writer_but_others_still_get_that_event() {
        let (w, s) = store::<Obj>(StoreConfig::default());
        let (stalled, release, entered, mut stalled_rx) = Stalled::new();
        let slow = s.register(stalled, HandlerOptions::new().queue_capacity(2));
        let (rec, mut rx) = recorder();
        let _fast = s.register(rec, HandlerOptions::default());
        let writer = tokio::spawn(async move {
            let mut w = w;
            for v in 0..6 {
                w.apply(Change::Upsert(obj(&format!("k{v}"), v))).await;
            }
        });
        entered.await.unwrap();
        // slow holds k0, queues k1 and k2; k3 is offered to fast, then the writer waits.
        let got = take(&mut rx, 4).await;
        assert_eq!(got[3], Ev::Add("k3".into(), 3));
        assert_eq!(slow.queue_len(), 2);
        assert!(!writer.is_finished());
        assert!(
            rx.try_recv().is_err(),
            "k4 must wait for room in the slow queue"
        );
        release.send(()).unwrap();
        writer.await.unwrap();
        assert_eq!(take(&mut rx, 2).await[1], Ev::Add("k5".into(), 5));
        assert_eq!(take(&mut stalled_rx, 6).await[5], Ev::Add("k5".into(), 5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn evict_policy_drops_the_slow_handler_and_never_blocks() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let (stalled, release, entered, mut stalled_rx) = Stalled::new();
        let slow = s.register(
            stalled,
            HandlerOptions::new()
                .queue_capacity(1)
                .full_policy(FullPolicy::Evict),
        );
        let (rec, mut rx) = recorder();
        let _fast = s.register(rec, HandlerOptions::default());
        w.apply(Change::Upsert(obj("k0", 0))).await;
        entered.await.unwrap();
        for v in 1..5 {
            w.apply(Change::Upsert(obj(&format!("k{v}"), v))).await;
        }
        assert!(slow.was_evicted());
        assert!(!slow.is_running());
        assert_eq!(s.handler_count(), 1);
        assert_eq!(take(&mut rx, 5).await[4], Ev::Add("k4".into(), 4));
        release.send(()).unwrap();
        // It finishes the call it was in, and is called no more.
        assert_eq!(stalled_rx.recv().await, Some(Ev::Add("k0".into(), 0)));
        assert_eq!(stalled_rx.recv().await, None);
        assert!(slow.wait_synced().await.is_ok() || !slow.has_synced());
    }
}
