//! A reconcile loop on an [`Informer`]: the [`Controller`].
//!
//! Every change the informer's cache sees queues the container's id; the controller calls
//! your `reconcile` with a [`Request`] that names the container and carries its current
//! cached state, or for a delete its final known state (a [`Deleted`], the relist
//! tombstone [`Deleted::FinalStateUnknown`] included). What the reconcile returns
//! ([`Action::Done`], [`Action::RequeueAfter`], or an error) decides when the key runs
//! again. In the words of client-go's `workqueue` and kube-runtime's `Controller`:
//!
//! - **dedupe**: a key waiting is queued once, with its latest state;
//! - **per-key serialization**: one key never reconciles twice at once; a change that
//!   arrives during a reconcile is reconciled again after it;
//! - **bounded concurrency** ([`ControllerConfig::concurrency`]);
//! - **retries**: an error (or a panic, caught and logged with the key) is retried after a
//!   per-key exponential backoff (client-go's 5 ms doubling up to 1000 s) and an overall
//!   token bucket (client-go's 10 per second, burst 100), the later of the two;
//! - **priorities without starvation**: changes seen on the watch go before the flood of
//!   the first list, a late registration's synthetic adds, a resync, a relist's tombstones
//!   and [`reconcile_all`](ControllerHandle::reconcile_all); a waiting flood item is
//!   ordered as if it became due one aging period ([`ControllerConfig::aging`]) later, so
//!   none waits for ever (see "Priority" below);
//! - **extra triggers**: [`Controller::reconcile_on`] a stream of ids,
//!   [`ControllerHandle::reconcile`] one id, [`ControllerHandle::reconcile_all`];
//! - **graceful shutdown**: [`ControllerHandle::shutdown`] (or the informer's shutdown)
//!   stops taking work, lets running reconciles finish up to
//!   [`ControllerConfig::shutdown_deadline`], and [`Controller::run`] returns a
//!   [`ShutdownReport`] of what was left.
//!
//! Each reconcile runs on its own tokio task inside a `reconcile` span with the
//! controller's name, the `id` and the `attempt`. The metrics (labelled
//! `controller=<name>`) are listed in `docs/operations.md`.
//!
//! # Priority
//!
//! The store's handler calls do not say where a change came from; the controller tells
//! the flood apart from what it can see, without a guess about timing:
//! - an `on_update` whose `old` and `new` are the same `Arc` is a resync;
//! - calls made before the controller's handler has synced (its
//!   [`HandlerHandle::has_synced`]) are the synthetic adds of a late registration or the
//!   first list;
//! - a [`Deleted::FinalStateUnknown`] comes from a relist.
//!
//! Everything else goes first. A relist after a reconnect only notifies what differs from
//! the cache (it is no flood): its adds and updates are changes the controller missed
//! while disconnected, and go first too.
//!
//! # Example
//!
//! ```no_run
//! # mod hypersh { pub mod reflector { pub use hypersh_reflector::*; } pub mod watch { pub use hypersh_watch::*; } pub mod store { pub use hypersh_store::*; } }
//! use std::time::Duration;
//! use hypersh::reflector::controller::{Action, Controller, ControllerConfig, Request};
//! use hypersh::reflector::Informer;
//! use hypersh::watch::{Client, ClientConfig, Credentials};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::new("127.0.0.1:6443", Credentials::new("ak", "sk"))?)?;
//! let informer = Informer::builder(client).build()?;
//! let controller = Controller::new(&informer, ControllerConfig::new("printer").concurrency(4));
//! let report = controller
//!     .run(|req: Request| async move {
//!         match req.container() {
//!             Some(c) => println!("{} is {}", req.id(), c.state()),
//!             None => println!("{} is gone", req.id()),
//!         }
//!         Ok::<_, std::io::Error>(Action::RequeueAfter(Duration::from_secs(300)))
//!     })
//!     .await;
//! println!("left waiting at shutdown: {:?}", report.waiting);
//! # Ok(())
//! # }
//! ```

mod queue;

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_util::stream::{BoxStream, FuturesUnordered, SelectAll};
use futures_util::{FutureExt, Stream, StreamExt};
use hypersh_store::{Deleted, Handler, HandlerHandle, Store};
use hypersh_watch::Container;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Informer;
use queue::{Limits, Next, Outcome, Priority, Queue};

/// How many reconciles run at once by default: controller-runtime's
/// `MaxConcurrentReconciles` default.
pub const DEFAULT_CONCURRENCY: usize = 1;
/// The first retry delay of a key: client-go's `DefaultControllerRateLimiter`
/// (`ItemExponentialFailureRateLimiter(5*time.Millisecond, 1000*time.Second)`).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(5);
/// The longest retry delay of a key (client-go's, as above).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(1000);
/// Retries per second over all keys: client-go's `DefaultControllerRateLimiter`
/// (`BucketRateLimiter{rate.NewLimiter(rate.Limit(10), 100)}`).
pub const DEFAULT_QPS: f64 = 10.0;
/// Retries allowed at once above the rate (client-go's, as above).
pub const DEFAULT_BURST: u32 = 100;
/// How much later a flood item (first list, resync, ...) is ordered than a live change
/// that became due at the same time; also the longest a flood item waits behind live
/// changes that arrive after it. Chosen here (client-go's queue has no priorities, and
/// controller-runtime's priority queue has no aging: it starved initial-list items,
/// controller-runtime#3496).
pub const DEFAULT_AGING: Duration = Duration::from_secs(5);
/// How long running reconciles may take to finish at shutdown: controller-runtime's
/// `GracefulShutdownTimeout` default.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// How often the queue gauges are published at most (their computation walks the due
/// keys).
const GAUGE_EVERY: Duration = Duration::from_millis(250);

/// A controller's settings. Every default is one of this module's `DEFAULT_*` consts.
#[derive(Clone, Debug)]
#[must_use]
pub struct ControllerConfig {
    name: String,
    concurrency: usize,
    backoff_base: Duration,
    backoff_max: Duration,
    qps: f64,
    burst: u32,
    aging: Duration,
    shutdown_deadline: Duration,
}

impl ControllerConfig {
    /// The defaults, for a controller called `name` (the `controller` label of its
    /// metrics, and its logs' span field).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            concurrency: DEFAULT_CONCURRENCY,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            qps: DEFAULT_QPS,
            burst: DEFAULT_BURST,
            aging: DEFAULT_AGING,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
        }
    }

    /// Runs at most `n` reconciles at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// A key's retry delay after `n` failures in a row is `base * 2^(n-1)`, at most `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// Retries over all keys are limited to `qps` per second, `burst` at once; a `qps` of
    /// 0 (or not finite) turns the overall limit off.
    pub fn rate_limit(mut self, qps: f64, burst: u32) -> Self {
        self.qps = qps;
        self.burst = burst.max(1);
        self
    }

    /// Sets the aging period (see [`DEFAULT_AGING`]).
    pub fn aging(mut self, aging: Duration) -> Self {
        self.aging = aging;
        self
    }

    /// How long running reconciles may take to finish at shutdown.
    pub fn shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.shutdown_deadline = deadline;
        self
    }

    /// The controller's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    fn limits(&self) -> Limits {
        Limits {
            concurrency: self.concurrency,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            qps: self.qps,
            burst: self.burst,
            aging: self.aging,
        }
    }
}

/// What a reconcile asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// The container is as it should be: reconcile it again only when it changes.
    Done,
    /// Reconcile it again after this long (or sooner, if it changes).
    RequeueAfter(Duration),
}

/// The state a [`Request`] carries.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Object {
    /// The container is cached: its current version.
    Present(Arc<Container>),
    /// The container was deleted: its final known state
    /// ([`Deleted::FinalStateUnknown`] when the deletion was missed and found by a relist).
    Deleted(Deleted<Container>),
}

/// One reconcile's input: which container, and what the cache knows of it.
#[derive(Clone, Debug)]
pub struct Request {
    id: String,
    object: Object,
    attempt: u32,
}

impl Request {
    /// The container's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the cache knows of it.
    #[must_use]
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// The cached container, unless it was deleted.
    #[must_use]
    pub fn container(&self) -> Option<&Arc<Container>> {
        match &self.object {
            Object::Present(c) => Some(c),
            Object::Deleted(_) => None,
        }
    }

    /// The deletion, if the container was deleted.
    #[must_use]
    pub fn deleted(&self) -> Option<&Deleted<Container>> {
        match &self.object {
            Object::Deleted(d) => Some(d),
            Object::Present(_) => None,
        }
    }

    /// The last version known: the cached one, or the final known state.
    #[must_use]
    pub fn last(&self) -> &Arc<Container> {
        match &self.object {
            Object::Present(c) => c,
            Object::Deleted(d) => d.last(),
        }
    }

    /// 1 for the first try, then one more for each retry after an error or a panic (a
    /// success or a requeue starts again at 1).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// What [`Controller::run`] returns after a shutdown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Keys that were waiting (queued, or due for a retry or requeue), sorted.
    pub waiting: Vec<String>,
    /// Keys whose reconcile was still running at the deadline and was aborted, sorted.
    pub abandoned: Vec<String>,
    /// Reconciles that were running at shutdown and finished before the deadline.
    pub finished: usize,
}

/// What the handler, the triggers and the loop share.
struct Shared {
    queue: Mutex<Queue<Object>>,
    /// Woken when the queue gains work.
    wake: Notify,
    store: Store<Container>,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue<Object>> {
        // The queue is changed by short, non-panicking calls: a poisoned lock still holds
        // a consistent queue.
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `id`: with `object`, or the cache's version, or the state already queued.
    fn add(&self, id: &str, object: Option<Object>, priority: Priority) {
        let object = object.or_else(|| self.store.get(id).map(Object::Present));
        if self.queue().add(id, object, priority, Instant::now()) {
            self.wake.notify_one();
        } else {
            tracing::debug!(id, "not queued: unknown to the cache, or shutting down");
        }
    }

    fn add_all(&self) {
        for c in self.store.list() {
            let id = c.id().to_owned();
            self.add(&id, Some(Object::Present(c)), Priority::Low);
        }
    }
}

/// A clonable handle on a controller: extra triggers and shutdown, from anywhere.
#[derive(Clone)]
pub struct ControllerHandle {
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl fmt::Debug for ControllerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerHandle")
            .field("waiting", &self.shared.queue().depth())
            .finish_non_exhaustive()
    }
}

impl ControllerHandle {
    /// Queues the container `id` (ahead of the flood). An id the cache does not hold is
    /// ignored, unless its deletion is still queued.
    pub fn reconcile(&self, id: &str) {
        self.shared.add(id, None, Priority::High);
    }

    /// Queues every cached container, behind live changes (as a resync does).
    pub fn reconcile_all(&self) {
        self.shared.add_all();
    }

    /// Stops the controller: no new reconcile starts, running ones get the shutdown
    /// deadline, and [`Controller::run`] returns.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// How many keys wait.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.shared.queue().depth()
    }
}

/// Feeds the store's notifications into the queue.
struct Enqueue {
    shared: Arc<Shared>,
    /// Its own registration, set just after `register` returns.
    handle: Arc<OnceLock<HandlerHandle>>,
}

impl Enqueue {
    /// Live changes go first; calls before this handler synced are the initial flood.
    fn priority(&self, flood: bool) -> Priority {
        let synced = self.handle.get().is_some_and(HandlerHandle::has_synced);
        if flood || !synced {
            Priority::Low
        } else {
            Priority::High
        }
    }
}

impl Handler<Container> for Enqueue {
    fn on_add(&mut self, obj: &Arc<Container>) {
        let priority = self.priority(false);
        self.shared
            .add(obj.id(), Some(Object::Present(Arc::clone(obj))), priority);
    }

    fn on_update(&mut self, old: &Arc<Container>, new: &Arc<Container>) {
        let priority = self.priority(Arc::ptr_eq(old, new));
        self.shared
            .add(new.id(), Some(Object::Present(Arc::clone(new))), priority);
    }

    fn on_delete(&mut self, obj: &Deleted<Container>) {
        let priority = self.priority(obj.is_final_state_unknown());
        self.shared
            .add(obj.key(), Some(Object::Deleted(obj.clone())), priority);
    }
}

/// How a reconcile's task ended.
enum Ended {
    Ok(Action),
    Err(String),
    Panic(String),
}

/// A running reconcile: its key, how it ended, how long it took.
type Running = JoinHandle<(String, Ended, Duration)>;

/// A reconcile loop on an informer's cache. See the [module docs](self).
pub struct Controller {
    config: ControllerConfig,
    shared: Arc<Shared>,
    /// The handler's registration (set in `new`), removed at shutdown.
    registration: Arc<OnceLock<HandlerHandle>>,
    triggers: SelectAll<BoxStream<'static, String>>,
    stop: CancellationToken,
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("name", &self.config.name)
            .field("waiting", &self.shared.queue().depth())
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// A controller on `informer`'s cache. It registers a handler at once (with the
    /// informer's resync period), so the queue fills with every cached container (behind
    /// live changes) until [`run`](Self::run) takes them. It stops with the informer.
    ///
    /// # Panics
    /// Outside a tokio runtime, as [`Informer::register`] does.
    pub fn new(informer: &Informer, config: ControllerConfig) -> Self {
        describe_metrics(&config.name);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new(config.limits(), Instant::now())),
            wake: Notify::new(),
            store: informer.store().clone(),
        });
        let handle = Arc::new(OnceLock::new());
        let registration = informer.register(Enqueue {
            shared: Arc::clone(&shared),
            handle: Arc::clone(&handle),
        });
        let _ = handle.set(registration);
        Self {
            config,
            shared,
            registration: handle,
            triggers: SelectAll::new(),
            stop: informer.shutdown_token().child_token(),
        }
    }

    /// Also reconciles the container each id names when `ids` yields it (ahead of the
    /// flood; ids the cache does not hold are ignored), as kube-runtime's
    /// `reconcile_on`. Several streams may be added.
    pub fn reconcile_on<S, I>(mut self, ids: S) -> Self
    where
        S: Stream<Item = I> + Send + 'static,
        I: Into<String> + 'static,
    {
        self.triggers.push(ids.map(Into::into).boxed());
        self
    }

    /// A handle for triggers and shutdown while [`run`](Self::run) runs.
    #[must_use]
    pub fn handle(&self) -> ControllerHandle {
        ControllerHandle {
            shared: Arc::clone(&self.shared),
            stop: self.stop.clone(),
        }
    }

    /// Runs `reconcile` for every queued key until a shutdown (see
    /// [`ControllerHandle::shutdown`]; the informer's shutdown stops it too), then waits
    /// for the running reconciles up to the shutdown deadline and reports what was left.
    ///
    /// An `Err` is logged with the key and retried after the key's backoff; so is a
    /// panic, which is caught.
    pub async fn run<R, F, E>(self, reconcile: R) -> ShutdownReport
    where
        R: FnMut(Request) -> F,
        F: Future<Output = Result<Action, E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let span = tracing::info_span!("controller", name = %self.config.name);
        self.run_loop(reconcile).instrument(span).await
    }

    async fn run_loop<R, F, E>(mut self, mut reconcile: R) -> ShutdownReport
    where
        R: FnMut(Request) -> F,
        F: Future<Output = Result<Action, E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        let name: Arc<str> = Arc::from(self.config.name.as_str());
        let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
        let mut gauges_at: Option<Instant> = None;
        let stop = self.stop.clone();
        loop {
            let wait = self.dispatch(&name, &mut reconcile, &mut running);
            self.gauges(&name, &mut gauges_at, false);
            let sleep = async {
                match wait {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                Some(joined) = running.next(), if !running.is_empty() => {
                    self.finished(&name, joined);
                }
                Some(id) = self.triggers.next(), if !self.triggers.is_empty() => {
                    self.shared.add(&id, None, Priority::High);
                }
                () = self.shared.wake.notified() => {}
                () = sleep => {}
            }
        }
        self.shut_down(&name, running).await
    }

    /// Starts every reconcile the queue allows now; returns when to look again.
    fn dispatch<R, F, E>(
        &self,
        name: &Arc<str>,
        reconcile: &mut R,
        running: &mut FuturesUnordered<Running>,
    ) -> Option<Instant>
    where
        R: FnMut(Request) -> F,
        F: Future<Output = Result<Action, E>> + Send + 'static,
        E: fmt::Display + Send + 'static,
    {
        loop {
            let next = self.shared.queue().next(Instant::now());
            let work = match next {
                Next::Run(work) => work,
                Next::Wait(at) => return at,
            };
            // The freshest state: the cache's, else what was queued (a deletion).
            let object = match self.shared.store.get(&work.key) {
                Some(c) => Object::Present(c),
                None => work.state,
            };
            let request = Request {
                id: work.key.clone(),
                object,
                attempt: work.attempt,
            };
            let labels = [("controller", name.to_string())];
            metrics::histogram!("hypersh_controller_queue_wait_seconds", &labels)
                .record(work.waited.as_secs_f64());
            let span = tracing::info_span!("reconcile", id = %work.key, attempt = work.attempt);
            let key = work.key;
            // Calling `reconcile` may panic before it returns a future: caught as well.
            let future = std::panic::catch_unwind(AssertUnwindSafe(|| reconcile(request)));
            let task = async move {
                let started = Instant::now();
                let ended = match future {
                    Ok(future) => match AssertUnwindSafe(future).catch_unwind().await {
                        Ok(Ok(action)) => Ended::Ok(action),
                        Ok(Err(e)) => Ended::Err(e.to_string()),
                        Err(payload) => Ended::Panic(panic_message(payload.as_ref())),
                    },
                    Err(payload) => Ended::Panic(panic_message(payload.as_ref())),
                };
                (key, ended, started.elapsed())
            };
            running.push(tokio::spawn(task.instrument(span)));
        }
    }

    /// Records a reconcile's end in the queue, the log and the metrics.
    fn finished(
        &self,
        name: &Arc<str>,
        joined: Result<(String, Ended, Duration), tokio::task::JoinError>,
    ) {
        let Ok((key, ended, took)) = joined else {
            // Only an abort at the shutdown deadline ends a task without its result, and
            // the loop no longer looks at them then.
            return;
        };
        let labels = [("controller", name.to_string())];
        metrics::histogram!("hypersh_controller_reconcile_duration_seconds", &labels)
            .record(took.as_secs_f64());
        metrics::counter!("hypersh_controller_reconciles_total", &labels).increment(1);
        let outcome = match ended {
            Ended::Ok(Action::Done) => Outcome::Done,
            Ended::Ok(Action::RequeueAfter(d)) => Outcome::RequeueAfter(d),
            Ended::Err(error) => {
                metrics::counter!("hypersh_controller_reconcile_errors_total", &labels)
                    .increment(1);
                tracing::warn!(id = %key, %error, "reconcile failed; retrying");
                Outcome::Failed
            }
            Ended::Panic(message) => {
                metrics::counter!("hypersh_controller_reconcile_errors_total", &labels)
                    .increment(1);
                metrics::counter!("hypersh_controller_reconcile_panics_total", &labels)
                    .increment(1);
                tracing::error!(id = %key, panic = %message, "reconcile panicked; retrying");
                Outcome::Failed
            }
        };
        let retry = self.shared.queue().done(&key, outcome, Instant::now());
        if let Some(delay) = retry {
            metrics::counter!("hypersh_controller_retries_total", &labels).increment(1);
            tracing::debug!(id = %key, ?delay, "retry scheduled");
        }
    }

    /// Publishes the queue gauges (at most every [`GAUGE_EVERY`] unless `now_anyway`).
    fn gauges(&self, name: &Arc<str>, last: &mut Option<Instant>, now_anyway: bool) {
        let now = Instant::now();
        if !now_anyway && last.is_some_and(|at| now.saturating_duration_since(at) < GAUGE_EVERY) {
            return;
        }
        *last = Some(now);
        let (depth, oldest, running) = {
            let q = self.shared.queue();
            (q.depth(), q.oldest(now), q.running())
        };
        let labels = [("controller", name.to_string())];
        #[allow(clippy::cast_precision_loss)] // gauges of counts well below 2^52
        {
            metrics::gauge!("hypersh_controller_queue_depth", &labels).set(depth as f64);
            metrics::gauge!("hypersh_controller_running", &labels).set(running as f64);
        }
        metrics::gauge!("hypersh_controller_oldest_item_age_seconds", &labels)
            .set(oldest.as_secs_f64());
    }

    /// Stops taking work, waits for what runs up to the deadline, and reports.
    async fn shut_down(
        self,
        name: &Arc<str>,
        mut running: FuturesUnordered<Running>,
    ) -> ShutdownReport {
        self.shared.queue().shut_down();
        if let Some(registration) = self.registration.get() {
            registration.remove();
        }
        let in_flight = running.len();
        let deadline = Instant::now() + self.config.shutdown_deadline;
        let mut finished = 0;
        while !running.is_empty() {
            tokio::select! {
                Some(joined) = running.next() => {
                    finished += 1;
                    self.finished(name, joined);
                }
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let abandoned = self.shared.queue().running_keys();
        for task in &running {
            task.abort();
        }
        let report = ShutdownReport {
            waiting: self.shared.queue().waiting_keys(),
            abandoned,
            finished,
        };
        let mut last = None;
        self.gauges(name, &mut last, true);
        tracing::info!(
            in_flight,
            finished,
            abandoned = report.abandoned.len(),
            waiting = report.waiting.len(),
            "controller stopped"
        );
        report
    }
}

/// Registers the metrics' descriptions and creates the counters at 0, so a scrape shows
/// them before the first reconcile.
fn describe_metrics(name: &str) {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "hypersh_controller_queue_depth",
        "Keys waiting in the controller's queue (due or not)"
    );
    describe_gauge!("hypersh_controller_running", "Reconciles running");
    describe_gauge!(
        "hypersh_controller_oldest_item_age_seconds",
        Unit::Seconds,
        "How long the longest-waiting due key has waited"
    );
    describe_histogram!(
        "hypersh_controller_reconcile_duration_seconds",
        Unit::Seconds,
        "How long reconciles take"
    );
    describe_histogram!(
        "hypersh_controller_queue_wait_seconds",
        Unit::Seconds,
        "How long a key waited in the queue before its reconcile started"
    );
    let counters = [
        (
            "hypersh_controller_reconciles_total",
            "Reconciles finished (any outcome)",
        ),
        (
            "hypersh_controller_reconcile_errors_total",
            "Reconciles that returned an error or panicked",
        ),
        (
            "hypersh_controller_reconcile_panics_total",
            "Reconciles that panicked",
        ),
        (
            "hypersh_controller_retries_total",
            "Retries scheduled after a failure",
        ),
    ];
    let labels = [("controller", name.to_owned())];
    for (metric, help) in counters {
        describe_counter!(metric, help);
        metrics::counter!(metric, &labels).increment(0);
    }
}

/// A panic payload's message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".to_owned())
}

#[cfg(test)]
mod tests;
