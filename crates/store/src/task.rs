//! A handler's task: it first delivers the synthetic adds of its registration snapshot, then
//! drains its queue in order, calling the handler under `catch_unwind` so a panic is logged
//! (with the object's key) and the next event still gets delivered.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

use crate::control::{Control, StopReason};
use crate::event::Notification;
use crate::resync::ResyncPlan;
use crate::{Handler, Keyed};

/// How many objects a handler task delivers from a snapshot (registration or resync) before
/// it yields to the runtime, so 100k synthetic adds do not monopolise a worker.
const SNAPSHOT_YIELD_EVERY: usize = 256;

/// Marks the handler stopped when its task ends, however it ends (including abort before
/// the first poll: the guard is owned by the task's future).
struct FinishGuard(Arc<Control>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.stop(StopReason::Finished);
    }
}

/// A handler and its bookkeeping, owned by the handler's task.
pub(crate) struct Task<H> {
    handler: H,
    control: Arc<Control>,
    _finish: FinishGuard,
}

impl<H> Task<H> {
    pub(crate) fn new(handler: H, control: Arc<Control>) -> Self {
        Self {
            handler,
            _finish: FinishGuard(Arc::clone(&control)),
            control,
        }
    }

    pub(crate) async fn run<T>(
        mut self,
        mut rx: mpsc::Receiver<Notification<T>>,
        snapshot: Vec<Arc<T>>,
        store_synced: bool,
        resync: Option<ResyncPlan<T>>,
    ) where
        T: Keyed + Send + Sync + 'static,
        H: Handler<T>,
    {
        // Aborted with this task (on remove, eviction, or when the store goes away).
        let _resync = resync.map(|plan| AbortOnDropHandle::new(tokio::spawn(plan.run())));
        for (i, obj) in snapshot.iter().enumerate() {
            if self.control.is_stopped() {
                return;
            }
            self.call("add", obj.key(), |h| h.on_add(obj));
            if i % SNAPSHOT_YIELD_EVERY == SNAPSHOT_YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(snapshot);
        if store_synced {
            self.control.mark_synced();
        }
        while let Some(note) = rx.recv().await {
            // An abort only takes effect when the task yields, and `recv` on a non-empty
            // queue does not yield: check explicitly so a removed handler is never called.
            if self.control.is_stopped() {
                return;
            }
            match note {
                Notification::Resync(all) => {
                    for (i, obj) in all.iter().enumerate() {
                        if self.control.is_stopped() {
                            return;
                        }
                        self.call("resync", obj.key(), |h| h.on_update(obj, obj));
                        if i % SNAPSHOT_YIELD_EVERY == SNAPSHOT_YIELD_EVERY - 1 {
                            tokio::task::yield_now().await;
                        }
                    }
                }
                // At most `MAX_BATCH` (64) notes: delivered without yielding.
                Notification::Batch(notes) => {
                    for note in notes.iter() {
                        if self.control.is_stopped() {
                            return;
                        }
                        self.deliver(note);
                    }
                }
                note => self.deliver(&note),
            }
        }
    }

    /// Delivers one change (or the synced marker) to the handler.
    fn deliver<T: Keyed>(&mut self, note: &Notification<T>)
    where
        H: Handler<T>,
    {
        match note {
            Notification::Add(obj) => self.call("add", obj.key(), |h| h.on_add(obj)),
            Notification::Update(old, new) => {
                self.call("update", new.key(), |h| h.on_update(old, new));
            }
            Notification::Delete(gone) => self.call("delete", gone.key(), |h| h.on_delete(gone)),
            Notification::Synced => self.control.mark_synced(),
            // Never inside a batch, and handled by `run` otherwise.
            Notification::Resync(_) | Notification::Batch(_) => {}
        }
    }

    /// Calls the handler; a panic is counted, logged with the key, and otherwise ignored.
    fn call(&mut self, event: &'static str, key: &str, f: impl FnOnce(&mut H)) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(&mut self.handler))) {
            self.control.panics.fetch_add(1, Ordering::Relaxed);
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(non-string panic payload)");
            tracing::error!(
                handler = %self.control.name,
                key,
                event,
                panic = message,
                "event handler panicked; skipping this event"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::testutil::{Ev, Obj, next, obj, recorder};
    use crate::{Change, HandlerOptions, StoreConfig, store};

    #[tokio::test(start_paused = true)]
    async fn events_for_one_key_arrive_in_order_through_a_small_queue() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::new().queue_capacity(4));
        for v in 0..1_000 {
            w.apply(Change::Upsert(obj("k", v))).await;
        }
        w.apply(Change::Delete("k".into())).await;
        assert_eq!(next(&mut rx).await, Ev::Add("k".into(), 0));
        for v in 1..1_000 {
            assert_eq!(next(&mut rx).await, Ev::Update("k".into(), v - 1, v, false));
        }
        assert_eq!(next(&mut rx).await, Ev::Delete("k".into(), 999, false));
    }

    /// A `MakeWriter` collecting log output.
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_panicking_handler_is_logged_with_the_key_and_keeps_receiving() {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let logs = logs.clone();
                move || logs.clone()
            })
            .with_ansi(false)
            .finish();
        // Current-thread runtime: the handler task runs on this thread, under this subscriber.
        let _log_guard = crate::testutil::capture_logs(subscriber);

        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let h = s.on_add(move |o: &Arc<Obj>| {
            assert!(o.id != "poison", "cannot handle {}", o.id);
            let _ = tx.send(o.id.clone());
        });
        for id in ["a", "poison", "b"] {
            w.apply(Change::Upsert(obj(id, 1))).await;
        }
        assert_eq!(rx.recv().await.as_deref(), Some("a"));
        assert_eq!(rx.recv().await.as_deref(), Some("b"));
        assert_eq!(h.panic_count(), 1);
        assert!(h.is_running());
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("ERROR"), "{text}");
        assert!(
            text.contains("key=\"poison\"") || text.contains("key=poison"),
            "{text}"
        );
        assert!(text.contains("cannot handle poison"), "{text}");
    }
}
