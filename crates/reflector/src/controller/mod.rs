//! A reconcile loop on an [`Informer`]: the [`Controller`].
//!
//! Every change the informer's cache sees queues the container's id; the controller calls
//! your `reconcile` with a [`Request`] that names the container, carries its current
//! cached state, or for a delete its final known state (a [`Deleted`], the relist
//! tombstone [`Deleted::FinalStateUnknown`] included), and says why it runs
//! ([`Request::reason`]); and with the context you gave [`Controller::run`] (kube-runtime's
//! `Arc<Ctx>`: clients, settings, metrics shared by every reconcile). What the reconcile
//! returns decides when the key runs again: [`Action::Done`], [`Action::RequeueAfter`], or
//! a [`ReconcileError`] (any error, with `?`), retried with the key's backoff unless it
//! says otherwise ([`ReconcileError::retry_after`], or [`ReconcileError::terminal`]: not
//! retried, controller-runtime's `TerminalError`). In the words of client-go's
//! `workqueue` and kube-runtime's `Controller`:
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
//!   [`Controller::watches`] another informer's changes mapped to ids (a relation),
//!   [`ControllerHandle::reconcile`] one id, [`ControllerHandle::reconcile_all`];
//! - **pause**: [`ControllerHandle::pause`] stops taking new work (keys still queue)
//!   until [`ControllerHandle::resume`];
//! - **leader election**: [`Controller::with_leadership`] starts reconciles only while
//!   this replica leads (see "Leader election" below);
//! - **graceful shutdown**: [`ControllerHandle::shutdown`] (or the informer's shutdown)
//!   stops taking work, lets running reconciles finish up to
//!   [`ControllerConfig::shutdown_deadline`], and [`Controller::run`] returns a
//!   [`ShutdownReport`] of what was left.
//!
//! Each reconcile runs on its own tokio task inside a `reconcile` span with the
//! controller's name, the `id`, the `attempt` and the `reason`. The metrics (labelled
//! `controller=<name>`, named in [`crate::metrics`]) are listed in `docs/operations.md`.
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
//! # Leader election
//!
//! A controller run as several replicas, of which one may act, is given the replica's
//! [`Leadership`] ([`Controller::with_leadership`]). Every replica keeps its informer and
//! its queue (a standby's cache is warm, and keys keep being queued, deduplicated); only
//! while [`Leadership::current`] gives a term does the controller start reconciles:
//! - the check is made before each reconcile starts, against the monotonic clock: none
//!   starts once the lease can no longer be proven, even before the elector has said so;
//! - each reconcile gets the term ([`Request::term`], [`Request::fencing_token`]) and is
//!   cancelled when the term ends (by its renew deadline at the latest); a cancelled
//!   reconcile is queued again, for when this replica leads again;
//! - each new term queues every cached container (as a resync): what the previous leader
//!   left undone is done.
//!
//! # Example
//!
//! ```no_run
//! # mod hypersh { pub use hypersh_reflector::{Controller, Informer}; pub mod controller { pub use hypersh_reflector::controller::*; } pub use hypersh_watch::{Client}; pub mod watch { pub use hypersh_watch::*; } }
//! use std::sync::Arc;
//! use std::time::Duration;
//! use hypersh::controller::{Action, ControllerConfig, ReconcileError, Request};
//! use hypersh::watch::{ClientConfig, Credentials};
//! use hypersh::{Client, Controller, Informer};
//!
//! /// What every reconcile shares.
//! struct Context {
//!     greeting: String,
//! }
//!
//! async fn reconcile(req: Request, ctx: Arc<Context>) -> Result<Action, ReconcileError> {
//!     match req.container() {
//!         Some(c) => println!("{}: {} is {} ({})", ctx.greeting, req.id(), c.state(), req.reason()),
//!         None => println!("{}: {} is gone", ctx.greeting, req.id()),
//!     }
//!     Ok(Action::RequeueAfter(Duration::from_secs(300)))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::new("127.0.0.1:6443", Credentials::new("ak", "sk"))?)?;
//! let informer = Informer::builder(client).build()?;
//! let controller = Controller::new(&informer, ControllerConfig::new("printer").concurrency(4))?;
//! let context = Arc::new(Context { greeting: "hello".into() });
//! let report = controller.run(reconcile, context).await;
//! println!("left waiting at shutdown: {:?}", report.waiting);
//! # Ok(())
//! # }
//! ```

mod config;
mod leader;
mod queue;
mod relation;
mod request;

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use futures_util::stream::{BoxStream, FuturesUnordered, SelectAll};
use futures_util::{FutureExt, Stream, StreamExt};
use hypersh_election::{FencingToken, Leadership, Term};
use hypersh_store::{Deleted, Handler, HandlerHandle, Store};
use hypersh_watch::Container;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Informer;
use crate::metrics as names;
pub use config::{
    ControllerConfig, DEFAULT_AGING, DEFAULT_BACKOFF_BASE, DEFAULT_BACKOFF_MAX, DEFAULT_BURST,
    DEFAULT_CONCURRENCY, DEFAULT_QPS, DEFAULT_SHUTDOWN_DEADLINE,
};
use leader::Gate;
use queue::{Next, Outcome, Priority, Queue};
use relation::{Keys, Relation};
pub use request::{Action, Object, Reason, ReconcileError, Request, Retry};

/// How often the queue gauges are published at most (their computation walks the due
/// keys).
const GAUGE_EVERY: Duration = Duration::from_millis(250);

/// Why a controller could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The informer has stopped (shut down, or every clone dropped): its cache will not
    /// change any more. Build the controller on a running informer.
    #[error("the informer has stopped: a controller needs a running informer")]
    InformerStopped,
    /// There is no tokio runtime here: build the controller inside one (in an async
    /// function run by tokio).
    #[error("a controller must be built inside a tokio runtime")]
    NoRuntime,
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
    /// The fleet host of the informer, which every request carries.
    host: Option<Arc<str>>,
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
    fn add(&self, id: &str, object: Option<Object>, priority: Priority, reason: Reason) {
        let object = object.or_else(|| self.store.get(id).map(Object::Present));
        if self
            .queue()
            .add(id, object, priority, reason, Instant::now())
        {
            self.wake.notify_one();
        } else {
            tracing::debug!(id, "not queued: unknown to the cache, or shutting down");
        }
    }

    fn add_all(&self) {
        for c in self.store.list() {
            let id = c.id().to_owned();
            self.add(&id, Some(Object::Present(c)), Priority::Low, Reason::Resync);
        }
    }
}

/// A clonable handle on a controller: extra triggers, pause and shutdown, from anywhere.
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
    /// Queues the container `id` (ahead of the flood), with [`Reason::Trigger`]. An id
    /// the cache does not hold is ignored, unless its deletion is still queued.
    pub fn reconcile(&self, id: &str) {
        self.shared.add(id, None, Priority::High, Reason::Trigger);
    }

    /// Queues every cached container, behind live changes (as a resync does).
    pub fn reconcile_all(&self) {
        self.shared.add_all();
    }

    /// Stops taking new work: running reconciles go on, keys keep being queued (and
    /// deduplicated), and nothing new starts until [`resume`](Self::resume). A paused
    /// controller still shuts down as usual.
    pub fn pause(&self) {
        self.shared.queue().set_paused(true);
    }

    /// Takes work again after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.shared.queue().set_paused(false);
        self.shared.wake.notify_one();
    }

    /// Whether the controller is paused.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.shared.queue().is_paused()
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
    fn flood(&self, flood: bool) -> bool {
        flood || !self.handle.get().is_some_and(HandlerHandle::has_synced)
    }
}

impl Handler<Container> for Enqueue {
    fn on_add(&mut self, obj: &Arc<Container>) {
        let (priority, reason) = if self.flood(false) {
            (Priority::Low, Reason::Resync)
        } else {
            (Priority::High, Reason::Changed)
        };
        let object = Object::Present(Arc::clone(obj));
        self.shared.add(obj.id(), Some(object), priority, reason);
    }

    fn on_update(&mut self, old: &Arc<Container>, new: &Arc<Container>) {
        let (priority, reason) = if self.flood(Arc::ptr_eq(old, new)) {
            (Priority::Low, Reason::Resync)
        } else {
            (Priority::High, Reason::Changed)
        };
        let object = Object::Present(Arc::clone(new));
        self.shared.add(new.id(), Some(object), priority, reason);
    }

    fn on_delete(&mut self, obj: &Deleted<Container>) {
        let priority = if self.flood(obj.is_final_state_unknown()) {
            Priority::Low
        } else {
            Priority::High
        };
        let object = Object::Deleted(obj.clone());
        self.shared
            .add(obj.key(), Some(object), priority, Reason::Deleted);
    }
}

/// How a reconcile's task ended.
enum Ended {
    Ok(Action),
    Err {
        error: String,
        retry: Retry,
    },
    Panic(String),
    /// Cancelled: the term it ran under ended.
    Cancelled(FencingToken),
}

/// A running reconcile: its key, how it ended, how long it took.
type Running = JoinHandle<(String, Ended, Duration)>;

/// Registers a relation's handler when the controller runs.
type Relate = Box<dyn FnOnce() -> HandlerHandle + Send>;

/// A reconcile loop on an informer's cache. See the [module docs](self).
pub struct Controller {
    config: ControllerConfig,
    shared: Arc<Shared>,
    /// The handler's registration (set in `new`), removed at shutdown.
    registration: Arc<OnceLock<HandlerHandle>>,
    triggers: SelectAll<BoxStream<'static, String>>,
    /// The relations' handlers, registered when the controller runs.
    relations: Vec<Relate>,
    /// Reconciles start only while this leads (none: always).
    leadership: Option<Leadership>,
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
    /// # Errors
    /// [`Error::InformerStopped`] when the informer has stopped, [`Error::NoRuntime`]
    /// outside a tokio runtime.
    pub fn new(informer: &Informer, config: ControllerConfig) -> Result<Self, Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        if informer.shutdown_token().is_cancelled() {
            return Err(Error::InformerStopped);
        }
        names::describe_controller(&config.name);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::new(config.queue(), Instant::now())),
            wake: Notify::new(),
            store: informer.store().clone(),
            host: informer.host().map(Arc::from),
        });
        let handle = Arc::new(OnceLock::new());
        let registration = informer.register(Enqueue {
            shared: Arc::clone(&shared),
            handle: Arc::clone(&handle),
        });
        let _ = handle.set(registration);
        Ok(Self {
            config,
            shared,
            registration: handle,
            triggers: SelectAll::new(),
            relations: Vec::new(),
            leadership: None,
            stop: informer.shutdown_token().child_token(),
        })
    }

    /// Also reconciles the container each id names when `ids` yields it (ahead of the
    /// flood, with [`Reason::Trigger`]; ids the cache does not hold are ignored), as
    /// kube-runtime's `reconcile_on`. Several streams may be added.
    #[must_use]
    pub fn reconcile_on<S, I>(mut self, ids: S) -> Self
    where
        S: Stream<Item = I> + Send + 'static,
        I: Into<String> + 'static,
    {
        self.triggers.push(ids.map(Into::into).boxed());
        self
    }

    /// Also reconciles the containers `map` names whenever a container of `other`'s cache
    /// changes (added, updated, deleted; an update maps the old version too): a relation,
    /// as controller-runtime's `Watches` with `EnqueueRequestsFromMapFunc` and
    /// kube-runtime's `watches`. `other` may be another informer of the same source, or of
    /// another host. Built on [`reconcile_on`](Self::reconcile_on): the ids `map` gives
    /// wait (each once) until the controller reads them, and those this controller's
    /// cache does not hold are ignored. The handler is registered on `other` when the
    /// controller runs, and removed when it stops.
    ///
    /// ```no_run
    /// # mod hypersh { pub use hypersh_reflector::{Controller, Informer}; pub mod controller { pub use hypersh_reflector::controller::*; } }
    /// # use hypersh::{Controller, Informer};
    /// # fn relate(controller: Controller, sidecars: &Informer) -> Controller {
    /// // A proxy's containers carry `proxy.for=<id>` of the app they front: a change of a
    /// // proxy reconciles its app.
    /// controller.watches(sidecars, |proxy| proxy.label("proxy.for").map(str::to_owned))
    /// # }
    /// ```
    #[must_use]
    pub fn watches<F, I>(mut self, other: &Informer, map: F) -> Self
    where
        F: Fn(&Container) -> I + Send + 'static,
        I: IntoIterator<Item = String> + 'static,
    {
        let keys = Arc::new(Keys::default());
        let other = other.clone();
        let relation = Relation {
            map,
            keys: Arc::clone(&keys),
        };
        self.relations
            .push(Box::new(move || other.register(relation)));
        self.reconcile_on(keys.stream())
    }

    /// Starts reconciles only while `leadership` gives a term, gives each the term, and
    /// cancels it when the term ends; a new term queues every cached container. See
    /// "Leader election" in the [module docs](self).
    ///
    /// ```
    /// # mod hypersh { pub use hypersh_reflector::{Controller, Informer}; pub mod controller { pub use hypersh_reflector::controller::*; } pub use hypersh_election as election; }
    /// use hypersh::Controller;
    /// use hypersh::election::Leadership;
    ///
    /// fn gated(controller: Controller, leadership: Leadership) -> Controller {
    ///     // Each `Request` then carries `term()` and `fencing_token()`.
    ///     controller.with_leadership(leadership)
    /// }
    /// ```
    #[must_use]
    pub fn with_leadership(mut self, leadership: Leadership) -> Self {
        self.leadership = Some(leadership);
        self
    }

    /// A handle for triggers, pause and shutdown while [`run`](Self::run) runs.
    #[must_use]
    pub fn handle(&self) -> ControllerHandle {
        ControllerHandle {
            shared: Arc::clone(&self.shared),
            stop: self.stop.clone(),
        }
    }

    /// Runs `reconcile(request, context)` for every queued key until a shutdown (see
    /// [`ControllerHandle::shutdown`]; the informer's shutdown stops it too), then waits
    /// for the running reconciles up to the shutdown deadline and reports what was left.
    ///
    /// An error is logged with the key and retried as it says ([`ReconcileError`]: the
    /// key's backoff unless it asks otherwise); a panic is caught, logged and retried
    /// after the key's backoff. `context` is shared by every reconcile (pass
    /// `Arc::new(())` for none).
    pub async fn run<C, R, F, E>(self, reconcile: R, context: Arc<C>) -> ShutdownReport
    where
        C: Send + Sync + 'static,
        R: FnMut(Request, Arc<C>) -> F,
        F: Future<Output = Result<Action, E>> + Send + 'static,
        E: Into<ReconcileError> + Send + 'static,
    {
        let span = tracing::info_span!("controller", name = %self.config.name);
        self.run_loop(reconcile, context).instrument(span).await
    }

    async fn run_loop<C, R, F, E>(mut self, mut reconcile: R, context: Arc<C>) -> ShutdownReport
    where
        C: Send + Sync + 'static,
        R: FnMut(Request, Arc<C>) -> F,
        F: Future<Output = Result<Action, E>> + Send + 'static,
        E: Into<ReconcileError> + Send + 'static,
    {
        let name: Arc<str> = Arc::from(self.config.name.as_str());
        let relations: Vec<HandlerHandle> = self.relations.drain(..).map(|r| r()).collect();
        let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
        let mut gauges_at: Option<Instant> = None;
        let stop = self.stop.clone();
        let mut role = self.leadership.as_ref().map(Leadership::subscribe);
        let mut led: Option<FencingToken> = None;
        loop {
            let wait = match self.gate(role.as_mut(), &mut led) {
                Gate::Open(term) => {
                    self.dispatch(&name, &mut reconcile, &context, &mut running, term.as_ref())
                }
                Gate::Closed => None,
            };
            self.gauges(&name, &mut gauges_at, false);
            let role_changed = async {
                let changed = match role.as_mut() {
                    Some(role) => role.changed().await.is_ok(),
                    None => false,
                };
                if !changed {
                    std::future::pending::<()>().await;
                }
            };
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
                    self.shared.add(&id, None, Priority::High, Reason::Trigger);
                }
                () = self.shared.wake.notified() => {}
                () = role_changed => {}
                () = sleep => {}
            }
        }
        for relation in relations {
            relation.remove();
        }
        self.shut_down(&name, running).await
    }

    /// Starts every reconcile the queue allows now (under `term`, while it holds);
    /// returns when to look again.
    fn dispatch<C, R, F, E>(
        &self,
        name: &Arc<str>,
        reconcile: &mut R,
        context: &Arc<C>,
        running: &mut FuturesUnordered<Running>,
        term: Option<&Term>,
    ) -> Option<Instant>
    where
        R: FnMut(Request, Arc<C>) -> F,
        F: Future<Output = Result<Action, E>> + Send + 'static,
        E: Into<ReconcileError> + Send + 'static,
    {
        loop {
            // The lease is proven again before each start: none starts past the deadline
            // (the loop looks again when the elector publishes the change).
            if term.is_some_and(|t| !t.is_current()) {
                return None;
            }
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
                host: self.shared.host.clone(),
                id: work.key.clone(),
                object,
                attempt: work.attempt,
                reason: work.reason,
                term: term.cloned(),
            };
            let labels = [("controller", name.to_string())];
            metrics::histogram!(names::CONTROLLER_QUEUE_WAIT_SECONDS, &labels)
                .record(work.waited.as_secs_f64());
            let span = tracing::info_span!(
                "reconcile",
                id = %work.key,
                attempt = work.attempt,
                reason = work.reason.as_str()
            );
            let key = work.key;
            // Calling `reconcile` may panic before it returns a future: caught as well.
            let context = Arc::clone(context);
            let future = std::panic::catch_unwind(AssertUnwindSafe(|| reconcile(request, context)));
            let term = term.cloned();
            let task = async move {
                let started = Instant::now();
                let work = async move {
                    match future {
                        Ok(future) => match AssertUnwindSafe(future).catch_unwind().await {
                            Ok(Ok(action)) => Ended::Ok(action),
                            Ok(Err(e)) => {
                                let e: ReconcileError = e.into();
                                Ended::Err {
                                    error: e.to_string(),
                                    retry: e.retry(),
                                }
                            }
                            Err(payload) => Ended::Panic(panic_message(payload.as_ref())),
                        },
                        Err(payload) => Ended::Panic(panic_message(payload.as_ref())),
                    }
                };
                let ended = match term {
                    Some(term) => tokio::select! {
                        biased;
                        () = term.ended() => Ended::Cancelled(term.token()),
                        ended = work => ended,
                    },
                    None => work.await,
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
        metrics::histogram!(names::CONTROLLER_RECONCILE_DURATION_SECONDS, &labels)
            .record(took.as_secs_f64());
        metrics::counter!(names::CONTROLLER_RECONCILES_TOTAL, &labels).increment(1);
        let outcome = match ended {
            Ended::Ok(Action::Done) => Outcome::Done,
            Ended::Ok(Action::RequeueAfter(d)) => Outcome::RequeueAfter(d),
            Ended::Err { error, retry } => {
                metrics::counter!(names::CONTROLLER_RECONCILE_ERRORS_TOTAL, &labels).increment(1);
                match retry {
                    Retry::Never => {
                        metrics::counter!(names::CONTROLLER_TERMINAL_ERRORS_TOTAL, &labels)
                            .increment(1);
                        tracing::warn!(id = %key, %error, "reconcile failed; not retried (terminal error)");
                        Outcome::Terminal
                    }
                    Retry::After(delay) => {
                        tracing::warn!(id = %key, %error, ?delay, "reconcile failed; retrying");
                        Outcome::RetryAfter(delay)
                    }
                    Retry::Backoff => {
                        tracing::warn!(id = %key, %error, "reconcile failed; retrying");
                        Outcome::Failed
                    }
                }
            }
            Ended::Cancelled(token) => {
                tracing::info!(id = %key, term = %token, "reconcile cancelled: its term ended; queued again");
                Outcome::RequeueAfter(Duration::ZERO)
            }
            Ended::Panic(message) => {
                metrics::counter!(names::CONTROLLER_RECONCILE_ERRORS_TOTAL, &labels).increment(1);
                metrics::counter!(names::CONTROLLER_RECONCILE_PANICS_TOTAL, &labels).increment(1);
                tracing::error!(id = %key, panic = %message, "reconcile panicked; retrying");
                Outcome::Failed
            }
        };
        let retry = self.shared.queue().done(&key, outcome, Instant::now());
        if let Some(delay) = retry {
            metrics::counter!(names::CONTROLLER_RETRIES_TOTAL, &labels).increment(1);
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
            metrics::gauge!(names::CONTROLLER_QUEUE_DEPTH, &labels).set(depth as f64);
            metrics::gauge!(names::CONTROLLER_RUNNING, &labels).set(running as f64);
        }
        metrics::gauge!(names::CONTROLLER_OLDEST_ITEM_AGE_SECONDS, &labels)
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

/// A panic payload's message.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".to_owned())
}

#[cfg(test)]
mod leader_tests;
#[cfg(test)]
mod tests;
