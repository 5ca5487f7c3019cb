//! Handler registration: a handler joins the subscriber list atomically with a snapshot of
//! the cache, gets its own bounded queue and task, and a [`HandlerHandle`] to control it.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::runtime::Handle;
use tokio::sync::mpsc;

use crate::control::{Control, Status, StopReason};
use crate::event::Notification;
use crate::resync::ResyncPlan;
use crate::shared::{Shared, Subscriber};
use crate::task::Task;
use crate::{Error, Handler, HandlerOptions, Keyed};

/// The type-erased link from a [`HandlerHandle`] back to its store and queue.
trait Link: Send + Sync {
    fn unsubscribe(&self);
    fn queue_len(&self) -> usize;
}

struct StoreLink<T> {
    id: u64,
    store: Weak<Shared<T>>,
    tx: mpsc::WeakSender<Notification<T>>,
}

impl<T: Send + Sync + 'static> Link for StoreLink<T> {
    fn unsubscribe(&self) {
        if let Some(store) = self.store.upgrade() {
            store.unsubscribe(self.id);
        }
    }

    fn queue_len(&self) -> usize {
        self.tx
            .upgrade()
            .map_or(0, |tx| tx.max_capacity() - tx.capacity())
    }
}

/// The registration of one handler, returned by [`Store::register`](crate::Store::register).
///
/// Dropping the handle does **not** remove the handler (as in client-go, the registration is
/// only a token): the handler runs until [`remove`](Self::remove) is called, it is evicted
/// (see [`FullPolicy::Evict`](crate::FullPolicy::Evict)), or the store and its writer are
/// dropped (then it finishes the events already queued and stops). Clones are tokens of the
/// same registration.
#[derive(Clone)]
pub struct HandlerHandle {
    control: Arc<Control>,
    link: Arc<dyn Link>,
    capacity: usize,
}

impl HandlerHandle {
    /// The handler's name (from [`HandlerOptions::name`] or generated).
    pub fn name(&self) -> &str {
        self.control.name()
    }

    /// Unregisters the handler and stops its task. Idempotent. Events still queued are
    /// dropped; a handler method already running finishes, and no other is called afterwards.
    /// A writer waiting for room in this handler's queue is released once the task stops.
    pub fn remove(&self) {
        self.link.unsubscribe();
        self.control.stop(StopReason::Removed);
    }

    /// Whether the handler has caught up: it received an add for every object the store held
    /// when it registered, and the store has synced (if the handler registered before the
    /// first relist, the relist's events have been delivered to it too).
    pub fn has_synced(&self) -> bool {
        self.control.status.borrow().synced
    }

    /// Waits until [`has_synced`](Self::has_synced) is true.
    ///
    /// # Errors
    /// [`Error::HandlerStopped`] if the handler stopped first.
    pub async fn wait_synced(&self) -> Result<(), Error> {
        let mut rx = self.control.status.subscribe();
        // The sender lives in `self.control`, so `wait_for` cannot fail; if it did, the
        // handler could never sync, which is what "stopped" reports.
        let status = rx
            .wait_for(|s| s.synced || s.stopped.is_some())
            .await
            .map(|s| *s)
            .unwrap_or(Status {
                synced: false,
                stopped: Some(StopReason::Finished),
            });
        if status.synced {
            Ok(())
        } else {
            Err(Error::HandlerStopped {
                name: self.name().to_owned(),
            })
        }
    }

    /// How many entries wait in the handler's queue (0 once it stopped). An entry is one
    /// notification, or up to 64 from one [`Batch`](crate::Batch) or relist.
    pub fn queue_len(&self) -> usize {
        self.link.queue_len()
    }

    /// The capacity of the handler's queue.
    pub fn queue_capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the handler is still registered and running.
    pub fn is_running(&self) -> bool {
        !self.control.is_stopped()
    }

    /// Whether the handler was evicted because its queue was full under
    /// [`FullPolicy::Evict`](crate::FullPolicy::Evict).
    pub fn was_evicted(&self) -> bool {
        self.control.status.borrow().stopped == Some(StopReason::Evicted)
    }

    /// How many handler calls panicked (each was logged and skipped).
    pub fn panic_count(&self) -> u64 {
        self.control.panics.load(Ordering::Relaxed)
    }

    /// How many resyncs were skipped: the queue was full at the resync time, or the writer
    /// still had notifications to deliver from a cancelled call.
    pub fn resyncs_skipped(&self) -> u64 {
        self.control.resyncs_skipped.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for HandlerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = *self.control.status.borrow();
        f.debug_struct("HandlerHandle")
            .field("name", &self.name())
            .field("synced", &status.synced)
            .field("stopped", &status.stopped)
            .field("queue_len", &self.queue_len())
            .field("queue_capacity", &self.capacity)
            .finish()
    }
}

/// Registers `handler`: see [`Store::register`](crate::Store::register).
pub(crate) fn register<T, H>(
    shared: &Arc<Shared<T>>,
    handler: H,
    opts: HandlerOptions,
) -> Result<HandlerHandle, Error>
where
    T: Keyed + Send + Sync + 'static,
    H: Handler<T>,
{
    let runtime = match &shared.runtime {
        Some(handle) => handle.clone(),
        None => Handle::try_current().map_err(|_| Error::NoRuntime)?,
    };
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let name: Arc<str> = opts
        .name
        .map_or_else(|| format!("handler-{id}").into(), Into::into);
    let capacity = opts.queue_capacity.unwrap_or(shared.queue_capacity).max(1);
    let policy = opts.full_policy.unwrap_or(shared.full_policy);
    let (tx, rx) = mpsc::channel(capacity);
    let weak_tx = tx.downgrade();
    let control = Arc::new(Control::new(name));

    // Snapshot and subscribe under one write lock: every change is either in the snapshot or
    // notified through the queue, never both, never neither.
    let (snapshot, store_synced) = {
        let mut state = shared.state.write();
        let snapshot = shared.snapshot();
        let mut subscribers = state.subscribers.to_vec();
        subscribers.push(Arc::new(Subscriber {
            id,
            tx,
            policy,
            control: Arc::clone(&control),
        }));
        state.subscribers = subscribers.into();
        (snapshot, state.synced)
    };

    let resync = opts.resync.map(|period| ResyncPlan {
        period,
        store: Arc::downgrade(shared),
        tx: weak_tx.clone(),
        control: Arc::clone(&control),
    });
    let task = Task::new(handler, Arc::clone(&control));
    let join = runtime.spawn(task.run(rx, snapshot, store_synced, resync));
    let _ = control.task.set(join.abort_handle());
    // A stop that raced with the spawn (eviction by a concurrent writer) must still abort.
    if control.is_stopped() {
        join.abort();
    }
    Ok(HandlerHandle {
        control,
        link: Arc::new(StoreLink {
            id,
            store: Arc::downgrade(shared),
            tx: weak_tx,
        }),
        capacity,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;
    use crate::testutil::{Ev, Obj, next, obj, recorder, replay};
    use crate::{Change, Deleted, Store, StoreConfig, Writer, store};

    fn new_store() -> (Writer<Obj>, Store<Obj>) {
        store(StoreConfig::default())
    }

    #[tokio::test(start_paused = true)]
    async fn late_handler_gets_synthetic_adds_then_live_events() {
        let (mut w, s) = new_store();
        w.replace((0..500).map(|i| obj(&format!("k{i:03}"), 1)))
            .await;
        let (rec, mut rx) = recorder();
        let h = s.register(rec, HandlerOptions::new().name("late"));
        assert_eq!(h.name(), "late");
        h.wait_synced().await.unwrap();
        assert!(h.has_synced());
        // Exactly one add per cached object is already queued.
        let mut adds = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            adds.push(ev);
        }
        adds.sort_by(|x, y| x.key().cmp(y.key()));
        let want: Vec<Ev> = (0..500).map(|i| Ev::Add(format!("k{i:03}"), 1)).collect();
        assert_eq!(adds, want);
        w.apply(Change::Upsert(obj("k000", 2))).await;
        assert_eq!(next(&mut rx).await, Ev::Update("k000".into(), 1, 2, false));
    }

    #[tokio::test(start_paused = true)]
    async fn early_handler_syncs_once_the_first_relist_is_delivered() {
        let (mut w, s) = new_store();
        let (rec, mut rx) = recorder();
        let h = s.register(rec, HandlerOptions::default());
        w.apply(Change::Upsert(obj("x", 1))).await;
        assert_eq!(next(&mut rx).await, Ev::Add("x".into(), 1));
        assert!(!h.has_synced(), "the store has not synced yet");
        w.replace(vec![obj("a", 1), obj("b", 1)]).await;
        h.wait_synced().await.unwrap();
        // Everything the relist produced was delivered before the handler counted as synced.
        let mut seen = Vec::new();
        while let Ok(ev) = rx.try_recv() {
            seen.push(ev);
        }
        assert_eq!(
            seen,
            [
                Ev::Add("a".into(), 1),
                Ev::Add("b".into(), 1),
                Ev::Delete("x".into(), 1, true)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn removed_handler_gets_nothing_more() {
        let (mut w, s) = new_store();
        let (rec, mut rx) = recorder();
        let h = s.register(rec, HandlerOptions::default());
        w.apply(Change::Upsert(obj("a", 1))).await;
        assert_eq!(next(&mut rx).await, Ev::Add("a".into(), 1));
        w.apply(Change::Upsert(obj("a", 2))).await;
        h.remove();
        h.remove();
        assert_eq!(s.handler_count(), 0);
        assert!(!h.is_running() && !h.was_evicted());
        w.apply(Change::Upsert(obj("a", 3))).await;
        // The queued update is dropped with the task; the channel closes.
        assert_eq!(rx.recv().await, None);
        assert_eq!(h.queue_len(), 0);
        assert_eq!(
            h.wait_synced().await,
            Err(Error::HandlerStopped {
                name: h.name().to_owned()
            })
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_handle_keeps_the_handler() {
        let (mut w, s) = new_store();
        let (rec, mut rx) = recorder();
        drop(s.register(rec, HandlerOptions::default()));
        w.apply(Change::Upsert(obj("a", 1))).await;
        assert_eq!(next(&mut rx).await, Ev::Add("a".into(), 1));
        assert_eq!(s.handler_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn handler_task_ends_when_the_store_is_dropped() {
        struct DropSignal(Option<oneshot::Sender<()>>);
        impl Handler<Obj> for DropSignal {}
        impl Drop for DropSignal {
            fn drop(&mut self) {
                if let Some(tx) = self.0.take() {
                    let _ = tx.send(());
                }
            }
        }
        let (w, s) = new_store();
        let (tx, dropped) = oneshot::channel();
        let h = s.register(DropSignal(Some(tx)), HandlerOptions::default());
        drop((w, s));
        // The handler is dropped with its task, which ends once the queue closes.
        let ended = tokio::time::timeout(Duration::from_secs(30), dropped).await;
        assert_eq!(ended, Ok(Ok(())));
        assert!(!h.is_running());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registration_races_with_the_writer_without_missing_or_doubling() {
        let (w, s) = new_store();
        let writer = tokio::spawn(async move {
            let mut w = w;
            for v in 0..3_000u32 {
                let key = format!("k{}", v % 37);
                if v % 11 == 0 {
                    w.apply(Change::Delete(key)).await;
                } else {
                    w.apply(Change::Upsert(obj(&key, v))).await;
                }
            }
            w
        });
        // Register while the writer runs.
        while s.len() < 20 {
            tokio::task::yield_now().await;
        }
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::default());
        let mut w = writer.await.unwrap();
        w.apply(Change::Upsert(obj("sentinel", 0))).await;
        let mut state = HashMap::new();
        loop {
            let ev = next(&mut rx).await;
            if ev.key() == "sentinel" {
                break;
            }
            replay(&mut state, &ev);
        }
        let want: HashMap<String, u32> = s
            .list()
            .iter()
            .filter(|o| o.id != "sentinel")
            .map(|o| (o.id.clone(), o.v))
            .collect();
        assert_eq!(state, want);
    }

    #[test]
    fn registering_outside_a_runtime_is_an_error_unless_one_is_configured() {
        let (_w, s) = new_store();
        let (rec, _rx) = recorder();
        assert_eq!(
            s.try_register(rec, HandlerOptions::default()).err(),
            Some(Error::NoRuntime)
        );

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (mut w, s) = store(StoreConfig::default().runtime(rt.handle().clone()));
        let (rec, mut rx) = recorder();
        let h = s.try_register(rec, HandlerOptions::default()).unwrap();
        assert!(format!("{h:?}").contains("queue_capacity: 1024"));
        rt.block_on(async {
            w.apply(Change::Upsert(obj("a", 1))).await;
            assert_eq!(next(&mut rx).await, Ev::Add("a".into(), 1));
        });
    }

    #[tokio::test(start_paused = true)]
    async fn closure_helpers_register_one_callback_each() {
        let (mut w, s) = new_store();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (t1, t2, t3) = (tx.clone(), tx.clone(), tx);
        let _a = s.on_add(move |o: &Arc<Obj>| t1.send(format!("add {}", o.id)).unwrap());
        let _u = s.on_update(move |_: &Arc<Obj>, n: &Arc<Obj>| {
            t2.send(format!("update {}", n.id)).unwrap();
        });
        let _d =
            s.on_delete(move |d: &Deleted<Obj>| t3.send(format!("delete {}", d.key())).unwrap());
        w.apply(Change::Upsert(obj("a", 1))).await;
        w.apply(Change::Upsert(obj("a", 2))).await;
        w.apply(Change::Delete("a".into())).await;
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(rx.recv().await.unwrap());
        }
        got.sort();
        assert_eq!(got, ["add a", "delete a", "update a"]);
        assert_eq!(s.handler_count(), 3);
    }
}
