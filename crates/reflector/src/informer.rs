//! The informer: a running reflector, its store, and handler registration in one value.

use std::sync::Arc;
use std::time::Duration;

use hypersh_store::{Deleted, Handler, HandlerHandle, HandlerOptions, Store, StoreConfig, store};
use hypersh_watch::{Container, Filters};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::backoff::BackoffConfig;
use crate::error::{Error, RefreshError};
use crate::ready::{AUTH_POLL, NotReady, ReadyWait};
use crate::shell::Reflector;
use crate::shell::RefreshRequest;
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
    store_config: StoreConfig<Container>,
    indexes: Vec<(String, IndexFn)>,
    name: Option<String>,
}

impl<S: Source> InformerBuilder<S> {
    /// Names the informer: its metrics carry the label `informer=<name>`, so two
    /// informers in one process (two regions, two sources) do not write the same series.
    /// Without a name the metrics carry no label.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
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

    /// Sets the store's configuration (queue capacity, full-queue policy, transform).
    pub fn store_config(mut self, config: StoreConfig<Container>) -> Self {
        self.store_config = config;
        self
    }

    /// Registers a secondary index before the first list (see
    /// `hypersh_watch::container::index` for ready-made ones).
    pub fn index(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&Container) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.indexes.push((name.into(), Box::new(f)));
        self
    }

    /// Starts the informer's reflector on a tokio task. Must be called inside a tokio
    /// runtime.
    ///
    /// # Errors
    /// [`Error::Filters`] when the filters cannot select a cache.
    pub fn build(self) -> Result<Informer, Error> {
        let (writer, cache) = store(self.store_config);
        for (name, f) in self.indexes {
            cache.add_index(name, f);
        }
        let mut reflector = Reflector::new(self.source, writer, &self.filters)?
            .backoff(self.backoff)
            .relist_every(self.relist);
        if let Some(name) = &self.name {
            reflector = reflector.name(name.clone());
        }
        let status = reflector.status();
        let refresh = reflector.refresher();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(reflector.run(shutdown.clone()));
        Ok(Informer {
            store: cache,
            status,
            _stop_on_drop: Arc::new(shutdown.clone().drop_guard()),
            shutdown,
            task: Arc::new(tokio::sync::Mutex::new(Some(task))),
            resync: self.resync,
            name: self.name.map(Arc::from),
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
/// use hypersh_reflector::Informer;
/// use hypersh_watch::{Client, ClientConfig, Credentials, Filters};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client = Client::new(ClientConfig::new("us-west-1.hyper.sh", Credentials::new("AK", "SK"))?)?;
/// let informer = Informer::builder(client)
///     .filters(Filters::new().label("app=web"))
///     .build()?;
/// informer.on_add(|c| println!("added {}", c.id));
/// informer.on_delete(|d| println!("deleted {}", d.key()));
/// informer.wait_until_ready().await;
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
    task: Arc<tokio::sync::Mutex<Option<JoinHandle<()>>>>,
    resync: Option<Duration>,
    name: Option<Arc<str>>,
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
            store_config: StoreConfig::default(),
            indexes: Vec::new(),
            name: None,
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

    /// Waits until the first full list has been applied, for ever: a wrong key or an
    /// unreachable address makes it wait until the informer is shut down. Prefer
    /// [`wait_ready_for`](Self::wait_ready_for), which says why it gave up.
    pub async fn wait_until_ready(&self) {
        self.store.wait_until_ready().await;
    }

    /// Waits at most `timeout` for the first full list.
    ///
    /// # Errors
    /// [`NotReady`], with the phase, the last error, whether the credentials are refused
    /// and how many attempts failed, when `timeout` passes first.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(informer: hypersh_reflector::Informer) {
    /// if let Err(e) = informer.wait_ready_for(Duration::from_secs(30)).await {
    ///     eprintln!("{e}"); // "... the server refuses the credentials: check the access key ..."
    /// }
    /// # }
    /// ```
    pub async fn wait_ready_for(&self, timeout: Duration) -> Result<(), NotReady> {
        self.wait_ready(ReadyWait::new(timeout)).await
    }

    /// Waits for the first full list as `wait` says (a timeout; whether to give up at
    /// once on an authentication failure).
    ///
    /// # Errors
    /// [`NotReady`] when the timeout passes first, or at the first authentication
    /// failure with [`ReadyWait::fail_on_auth`].
    pub async fn wait_ready(&self, wait: ReadyWait) -> Result<(), NotReady> {
        let started = tokio::time::Instant::now();
        let deadline = started + wait.timeout;
        let ready = self.store.wait_until_ready();
        tokio::pin!(ready);
        loop {
            let poll =
                tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + AUTH_POLL));
            tokio::select! {
                biased;
                () = &mut ready => return Ok(()),
                () = poll => {}
            }
            let status = self.status.snapshot();
            let now = tokio::time::Instant::now();
            if now >= deadline || (wait.fail_on_auth && status.auth_failing) {
                return Err(NotReady::from_status(&status, now - started));
            }
        }
    }

    /// Fetches these containers from the source now, applies what it says (a container
    /// it does not find is removed), and returns once every handler has been offered the
    /// result: a consistency barrier for a controller that acted and needs the cache to
    /// show it (see also [`Store::wait_for`], which waits for a state without asking).
    ///
    /// The fetch goes through the reflector's loop, with the same rules as a fetch for an
    /// event (events that arrive meanwhile are replayed on top of its answer). While the
    /// informer is not watching (listing, reconnecting), the request waits, and the next
    /// full list serves it. It does not time out: wrap it in `tokio::time::timeout`.
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

    /// Registers a handler with the informer's resync period. A handler registered after
    /// the cache is filled first gets a synthetic add for every container.
    pub fn register<H: Handler<Container>>(&self, handler: H) -> HandlerHandle {
        self.store.register(handler, self.handler_options())
    }

    /// Calls `f` for every container added to the cache.
    pub fn on_add(&self, f: impl FnMut(&Arc<Container>) + Send + 'static) -> HandlerHandle {
        self.register(hypersh_store::FnHandler::new().on_add(f))
    }

    /// Calls `f(old, new)` for every container that changed (and on resync).
    pub fn on_update(
        &self,
        f: impl FnMut(&Arc<Container>, &Arc<Container>) + Send + 'static,
    ) -> HandlerHandle {
        self.register(hypersh_store::FnHandler::new().on_update(f))
    }

    /// Calls `f` for every container removed, or found gone on a relist
    /// ([`Deleted::FinalStateUnknown`]).
    pub fn on_delete(&self, f: impl FnMut(&Deleted<Container>) + Send + 'static) -> HandlerHandle {
        self.register(hypersh_store::FnHandler::new().on_delete(f))
    }

    /// A token that stops the informer when cancelled.
    #[must_use]
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the reflector (closing the websocket with a close frame) and waits for it.
    /// Handler tasks end when their queues are drained and the store is dropped.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        let task = self.task.lock().await.take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "reflector task failed");
        }
    }

    fn handler_options(&self) -> HandlerOptions {
        let opts = HandlerOptions::new();
        match self.resync {
            Some(period) => opts.resync(period),
            None => opts,
        }
    }
}
