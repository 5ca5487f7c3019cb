//! The informer: a running reflector, its store, and handler registration in one value.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hypersh_store::{
    Deleted, FnHandler, Handler, HandlerHandle, HandlerOptions, Store, StoreConfig, Writer, store,
};
use hypersh_watch::{Container, Filters};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::backoff::BackoffConfig;
use crate::error::{Error, RefreshError};
use crate::limits::Limits;
use crate::ready::{AUTH_POLL, NotSynced, SyncWait};
use crate::reflector::{Reflector, RefreshRequest};
use crate::source::Source;
use crate::status::{Status, StatusHandle};

type IndexFn = Box<dyn Fn(&Container) -> Vec<String> + Send + Sync>;

/// Builds an [`Informer`]. See [`Informer::builder`].
#[must_use]
pub struct InformerBuilder<S> {
    source: S,
    filters: Filters,
    resync: Option<Duration>,
    relist: Option<Duration>,
    backoff: BackoffConfig,
    limits: Limits,
    store_config: StoreConfig<Container>,
    indexes: Vec<(String, IndexFn)>,
    name: Option<String>,
    drop_after: Option<Duration>,
    /// The fleet host this informer serves (a metrics label), if any.
    host: Option<String>,
}

impl<S: Source> InformerBuilder<S> {
    /// Names the informer: its metrics carry the label `informer=<name>`, so two
    /// informers in one process (two regions, two sources) do not write the same series.
    /// Without a name the metrics carry no label.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Once the source has been down (not connected and synced) this long, its cached
    /// containers are deleted as [`Deleted::FinalStateUnknown`] tombstones. Off (`None`)
    /// by default: a source that is down keeps its last known containers, and
    /// [`Status::down_since`] says since when.
    pub fn drop_after(mut self, after: Option<Duration>) -> Self {
        self.drop_after = after;
        self
    }

    /// Labels the metrics `host=<host>` too (a fleet's hosts).
    pub(crate) fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Caches only the containers these filters select (keys `container`, `image`,
    /// `label`).
    pub fn filters(mut self, filters: Filters) -> Self {
        self.filters = filters;
        self
    }

    /// Re-delivers every cached container to handlers registered through the informer as
    /// an update (old == new) every `period`, as client-go's resync does. Off by default.
    pub fn resync(mut self, period: Duration) -> Self {
        self.resync = Some(period);
        self
    }

    /// Relists every `period` while connected, to repair drift. Off by default; every
    /// reconnect relists anyway.
    pub fn relist(mut self, period: Duration) -> Self {
        self.relist = Some(period);
        self
    }

    /// Sets the reconnect policy (defaults as client-go's reflector).
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets the memory bounds (defaults in [`Limits`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the store's configuration (queue capacity, full-queue policy, transform).
    pub fn store_config(mut self, config: StoreConfig<Container>) -> Self {
        self.store_config = config;
        self
    }

    /// Registers a secondary index before the first list (see
    /// `hypersh::watch::container::index` for ready-made ones).
    pub fn index(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&Container) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.indexes.push((name.into(), Box::new(f)));
        self
    }

    /// Starts the informer's reflector on a tokio task. Must be called inside a tokio
    /// runtime. Describes the `hypersh_reflector_*` metrics to the installed recorder
    /// first ([`metrics::describe`](crate::metrics::describe)).
    ///
    /// # Errors
    /// [`Error::Filters`] when the filters cannot select a cache.
    pub fn build(self) -> Result<Informer, Error> {
        // Every metric has its help text and exists, at 0, from the start.
        let mut labels = crate::metrics::labels(self.name.as_deref());
        if let Some(host) = &self.host {
            labels.push(("host", host.clone()));
        }
        crate::metrics::describe_labelled(&labels);
        let (writer, cache) = store(self.store_config);
        for (name, f) in self.indexes {
            cache.add_index(name, f);
        }
        let reflector = Reflector::new(self.source, writer, &self.filters)?
            .backoff(self.backoff)
            .limits(self.limits)
            .relist_every(self.relist)
            .drop_after(self.drop_after)
            .labels(labels);
        let status = reflector.status_handle();
        let refresh = reflector.refresher();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(reflector.run_keeping_writer(shutdown.clone()));
        Ok(Informer {
            store: cache,
            status,
            _stop_on_drop: Arc::new(shutdown.clone().drop_guard()),
            shutdown,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
            resync: self.resync,
            handlers: Arc::default(),
            name: self.name.map(Arc::from),
            host: self.host.map(Arc::from),
            refresh,
        })
    }
}

/// A running list-then-watch cache of containers with event handlers.
///
/// Clones share one reflector, one cache and one status. The reflector runs on its own
/// tokio task until [`shutdown`](Self::shutdown), a cancel of
/// [`shutdown_token`](Self::shutdown_token), or the drop of the last clone (which stops
/// it without waiting; call `shutdown` to wait for the close frame to go out).
///
/// ```no_run
/// # // The facade `hypersh` re-exports these; this crate's doctests cannot depend on it.
/// # mod hypersh {
/// #     pub use hypersh_reflector::Informer;
/// #     pub use hypersh_watch::{Client, ClientConfig, Credentials, Filters};
/// # }
/// use hypersh::{Client, ClientConfig, Credentials, Filters, Informer};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(ClientConfig::new("us-west-1.hyper.sh", Credentials::new("AK", "SK"))?)?;
/// let informer = Informer::builder(client)
///     .filters(Filters::new().label("app=web"))
///     .build()?;
/// informer.on_add(|c| println!("added {}", c.id()));
/// informer.on_delete(|d| println!("deleted {}", d.key()));
/// informer.wait_synced(std::time::Duration::from_secs(30)).await?;
/// println!("{} containers", informer.store().len());
/// informer.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Informer {
    store: Store<Container>,
    status: StatusHandle,
    shutdown: CancellationToken,
    /// Cancels `shutdown` when the last clone of the informer is dropped.
    _stop_on_drop: Arc<DropGuard>,
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<Writer<Container>>>>>,
    resync: Option<Duration>,
    /// The handlers registered through the informer, for [`Informer::wait_synced`].
    handlers: Arc<Mutex<Vec<HandlerHandle>>>,
    name: Option<Arc<str>>,
    /// The fleet host this informer serves, if any.
    host: Option<Arc<str>>,
    refresh: tokio::sync::mpsc::Sender<RefreshRequest>,
}

impl std::fmt::Debug for Informer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("containers", &self.store.len())
            .field("status", &self.status.snapshot())
            .finish_non_exhaustive()
    }
}

impl Informer {
    /// Starts building an informer on `source`: a Hyper.sh
    /// [`Client`](hypersh_watch::Client), or any other [`Source`].
    pub fn builder<S: Source>(source: S) -> InformerBuilder<S> {
        InformerBuilder {
            source,
            filters: Filters::new(),
            resync: None,
            relist: None,
            backoff: BackoffConfig::default(),
            limits: Limits::default(),
            store_config: StoreConfig::default(),
            indexes: Vec::new(),
            name: None,
            drop_after: None,
            host: None,
        }
    }

    /// The cache, for queries (`get`, `list`, `by_index`).
    #[must_use]
    pub fn store(&self) -> &Store<Container> {
        &self.store
    }

    /// The reflector's status.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status.snapshot()
    }

    /// A handle on the status, to poll from elsewhere.
    #[must_use]
    pub fn status_handle(&self) -> StatusHandle {
        self.status.clone()
    }

    /// Waits until the informer has synced: the first full list is in the cache and every
    /// handler registered through the informer has been offered it (each has seen an add
    /// for every cached container; one that was removed or stopped is not waited for).
    /// It waits at most as `wait` says: a [`Duration`], or a [`SyncWait`] that can also
    /// give up at once on refused credentials.
    ///
    /// # Errors
    /// [`NotSynced`], with the phase, the last error, whether the credentials are refused
    /// and how many attempts failed, when the time passes first: an unreachable address
    /// or a wrong key does not fix itself, and the message says which it is.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(informer: hypersh_reflector::Informer) {
    /// if let Err(e) = informer.wait_synced(Duration::from_secs(30)).await {
    ///     eprintln!("{e}"); // "... the server refuses the credentials: check the access key ..."
    /// }
    /// # }
    /// ```
    pub async fn wait_synced(&self, wait: impl Into<SyncWait>) -> Result<(), NotSynced> {
        let wait = wait.into();
        let started = tokio::time::Instant::now();
        let deadline = started.checked_add(wait.timeout);
        let synced = self.synced();
        tokio::pin!(synced);
        loop {
            let poll = tokio::time::Instant::now() + AUTH_POLL;
            let until = deadline.map_or(poll, |deadline| deadline.min(poll));
            tokio::select! {
                biased;
                () = &mut synced => return Ok(()),
                () = tokio::time::sleep_until(until) => {}
            }
            let status = self.status.snapshot();
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|deadline| now >= deadline)
                || (wait.fail_on_auth && status.auth_failing)
            {
                return Err(NotSynced::from_status(&status, now - started));
            }
        }
    }

    /// The sync [`wait_synced`](Self::wait_synced) waits for, without a deadline.
    async fn synced(&self) {
        self.store.wait_synced().await;
        let handlers = self.lock_handlers().clone();
        for handler in handlers {
            // A handler that stopped can never catch up: nothing to wait for.
            let _ = handler.wait_synced().await;
        }
    }

    /// Fetches these containers from the source now, applies what it says (a container
    /// it does not find is removed), and returns once every handler has been offered the
    /// result: a consistency barrier for a controller that acted and needs the cache to
    /// show it (see also [`Store::wait_for`], which waits for a state without asking).
    ///
    /// The fetch goes through the reflector's loop, with the same rules as a fetch for an
    /// event (events that arrive meanwhile are replayed on top of its answer). Only what
    /// started after the request answers it: while the informer reconnects, the next full
    /// list serves it; during a list, its containers are fetched once that list is in. It
    /// does not time out: wrap it in `tokio::time::timeout`.
    ///
    /// # Errors
    /// [`RefreshError::Stopped`] if the informer stops first.
    ///
    /// ```no_run
    /// # async fn run(informer: hypersh_reflector::Informer) -> Result<(), hypersh_reflector::RefreshError> {
    /// // ...after starting container "4f2a...":
    /// informer.refresh(["4f2a"]).await?;
    /// let now = informer.store().get("4f2a"); // the state the server gave just now
    /// # Ok(())
    /// # }
    /// ```
    pub async fn refresh<I>(&self, ids: I) -> Result<(), RefreshError>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let (reply, done) = tokio::sync::oneshot::channel();
        let request = RefreshRequest {
            ids: ids.into_iter().map(Into::into).collect(),
            reply,
        };
        self.refresh
            .send(request)
            .await
            .map_err(|_| RefreshError::Stopped)?;
        done.await.map_err(|_| RefreshError::Stopped)
    }

    /// The informer's name ([`InformerBuilder::name`]), if it has one.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The [`Fleet`](crate::fleet::Fleet) host this informer serves, if it is one.
    #[must_use]
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Registers a handler with the informer's resync period. A handler registered after
    /// the cache is filled first gets a synthetic add for every container.
    ///
    /// One handler sees the changes in the order the cache made them: for one container,
    /// never an update after its delete.
    pub fn register<H: Handler<Container>>(&self, handler: H) -> HandlerHandle {
        let handle = self.store.register(handler, self.handler_options());
        let mut handlers = self.lock_handlers();
        handlers.retain(HandlerHandle::is_running);
        handlers.push(handle.clone());
        handle
    }

    /// Starts registering one handler made of closures: up to one each for adds, updates
    /// and deletes, called in the order the cache changed, on one task.
    ///
    /// ```no_run
    /// # async fn run(informer: hypersh_reflector::Informer) -> Result<(), hypersh_reflector::NotSynced> {
    /// let handle = informer
    ///     .handler()
    ///     .on_add(|c| println!("+ {}", c.id()))
    ///     .on_update(|old, new| println!("~ {} {} -> {}", new.id(), old.state(), new.state()))
    ///     .on_delete(|d| println!("- {}", d.key()))
    ///     .register();
    /// // The handler has seen the first list too.
    /// informer.wait_synced(std::time::Duration::from_secs(30)).await?;
    /// # drop(handle);
    /// # Ok(())
    /// # }
    /// ```
    pub fn handler(&self) -> HandlerBuilder<'_> {
        HandlerBuilder {
            informer: self,
            handler: FnHandler::new(),
        }
    }

    /// Calls `f` for every container added to the cache, on a handler of its own.
    ///
    /// Each of `on_add`, `on_update` and `on_delete` registers a separate handler, and
    /// separate handlers run independently: one may see a container's delete before
    /// another sees its last update. To see all three kinds in order, register one
    /// handler with [`handler`](Self::handler).
    pub fn on_add(&self, f: impl FnMut(&Arc<Container>) + Send + 'static) -> HandlerHandle {
        self.handler().on_add(f).register()
    }

    /// Calls `f(old, new)` for every container that changed (and on resync), on a
    /// handler of its own (see [`on_add`](Self::on_add) for the ordering).
    pub fn on_update(
        &self,
        f: impl FnMut(&Arc<Container>, &Arc<Container>) + Send + 'static,
    ) -> HandlerHandle {
        self.handler().on_update(f).register()
    }

    /// Calls `f` for every container removed, or found gone on a relist
    /// ([`Deleted::FinalStateUnknown`]), on a handler of its own (see
    /// [`on_add`](Self::on_add) for the ordering).
    pub fn on_delete(&self, f: impl FnMut(&Deleted<Container>) + Send + 'static) -> HandlerHandle {
        self.handler().on_delete(f).register()
    }

    /// A token that stops the informer when cancelled.
    #[must_use]
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the reflector (closing the websocket with a close frame) and waits for it.
    /// Handler tasks end when their queues are drained and the store is dropped.
    pub async fn shutdown(&self) {
        drop(self.stop().await);
    }

    /// Stops the reflector, then deletes every cached container (a
    /// [`Deleted::FinalStateUnknown`] tombstone each, offered to every handler): a
    /// fleet's host that is removed.
    pub(crate) async fn shutdown_and_drop(&self) {
        if let Some(mut writer) = self.stop().await {
            writer.replace(Vec::new()).await;
        }
    }

    /// Stops the reflector and gives back its writer (`None` if another call took it).
    async fn stop(&self) -> Option<Writer<Container>> {
        self.shutdown.cancel();
        let task = self.task.lock().await.take()?;
        match task.await {
            Ok(writer) => Some(writer),
            Err(e) => {
                tracing::error!(error = %e, "reflector task failed");
                None
            }
        }
    }

    fn lock_handlers(&self) -> std::sync::MutexGuard<'_, Vec<HandlerHandle>> {
        // The list holds plain tokens: a panic elsewhere cannot leave it half-written.
        self.handlers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn handler_options(&self) -> HandlerOptions {
        let opts = HandlerOptions::new();
        match self.resync {
            Some(period) => opts.resync(period),
            None => opts,
        }
    }
}

/// One handler made of closures, registered by [`register`](Self::register). See
/// [`Informer::handler`].
#[must_use = "the handler is registered by `register`"]
pub struct HandlerBuilder<'a> {
    informer: &'a Informer,
    handler: FnHandler<Container>,
}

impl std::fmt::Debug for HandlerBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerBuilder").finish_non_exhaustive()
    }
}

impl HandlerBuilder<'_> {
    /// Calls `f` for every container added to the cache.
    pub fn on_add(mut self, f: impl FnMut(&Arc<Container>) + Send + 'static) -> Self {
        self.handler = self.handler.on_add(f);
        self
    }

    /// Calls `f(old, new)` for every container that changed (and on resync).
    pub fn on_update(
        mut self,
        f: impl FnMut(&Arc<Container>, &Arc<Container>) + Send + 'static,
    ) -> Self {
        self.handler = self.handler.on_update(f);
        self
    }

    /// Calls `f` for every container removed, or found gone on a relist.
    pub fn on_delete(mut self, f: impl FnMut(&Deleted<Container>) + Send + 'static) -> Self {
        self.handler = self.handler.on_delete(f);
        self
    }

    /// Registers the handler; its calls come in the order the cache changed.
    pub fn register(self) -> HandlerHandle {
        self.informer.register(self.handler)
    }
}
