//! The [`Reflector`]: a source, a store's writer and the reflector's settings, run by the
//! shell (`shell.rs`) around the core (`core.rs`).

use std::time::Duration;

use hypersh_store::{Store, Writer};
use hypersh_watch::{Container, Filters};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::BackoffConfig;
use crate::core::Settings;
use crate::error::Error;
use crate::limits::Limits;
use crate::selector::Selector;
use crate::shell::{Publisher, Shell};
use crate::source::Source;
use crate::status::StatusHandle;

/// Keeps a [`Writer<Container>`] in step with a [`Source`].
///
/// Build it, take its [`StatusHandle`], then `run` it on a task until the token is
/// cancelled. The [`Informer`](crate::Informer) does all of this for you.
pub struct Reflector<S: Source> {
    source: S,
    writer: Writer<Container>,
    selector: Selector,
    settings: Settings,
    status: StatusHandle,
    labels: Vec<(&'static str, String)>,
    /// Refresh requests ([`Informer::refresh`](crate::Informer::refresh)); the sender is
    /// handed out by [`refresher`](Self::refresher).
    refresh_rx: mpsc::Receiver<RefreshRequest>,
    refresh_tx: mpsc::Sender<RefreshRequest>,
}

/// How many refresh requests may wait to be read; past that, `Informer::refresh` waits
/// for room.
const REFRESH_QUEUE: usize = 64;

/// A request to fetch some containers now and say when the result has been offered to
/// the handlers.
#[derive(Debug)]
pub(crate) struct RefreshRequest {
    pub(crate) ids: Vec<String>,
    pub(crate) reply: oneshot::Sender<()>,
}

impl<S: Source> std::fmt::Debug for Reflector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflector")
            .field("endpoint", &self.source.endpoint())
            .finish_non_exhaustive()
    }
}

impl<S: Source> Reflector<S> {
    /// A reflector for the containers `filters` selects (keys `container`, `image`,
    /// `label`; an empty set selects everything).
    ///
    /// # Errors
    /// [`Error::Filters`] for other keys.
    pub fn new(source: S, writer: Writer<Container>, filters: &Filters) -> Result<Self, Error> {
        let (refresh_tx, refresh_rx) = mpsc::channel(REFRESH_QUEUE);
        Ok(Self {
            source,
            writer,
            selector: Selector::new(filters)?,
            settings: Settings::default(),
            status: StatusHandle::default(),
            labels: Vec::new(),
            refresh_rx,
            refresh_tx,
        })
    }

    /// Sets the reconnect policy.
    #[must_use]
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.settings.backoff = backoff;
        self
    }

    /// Sets the memory bounds ([`Limits`]).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// Relists every `period` while connected, to repair drift (off by default).
    #[must_use]
    pub fn relist_every(mut self, period: Option<Duration>) -> Self {
        self.settings.relist_every = period;
        self
    }

    /// Empties the cache (tombstones) once the reflector has been down this long
    /// (`None`, the default: keep the last known containers).
    #[must_use]
    pub fn drop_after(mut self, after: Option<Duration>) -> Self {
        self.settings.drop_after = after;
        self
    }

    /// Labels this reflector's metrics with these labels (the informer's name, a fleet's
    /// host).
    #[must_use]
    pub(crate) fn labels(mut self, labels: Vec<(&'static str, String)>) -> Self {
        self.labels = labels;
        self
    }

    /// Labels this reflector's metrics with `informer=<name>` (without a name they carry
    /// no label).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.labels = crate::metrics::labels(Some(&name.into()));
        self
    }

    /// Where to send refresh requests.
    pub(crate) fn refresher(&self) -> mpsc::Sender<RefreshRequest> {
        self.refresh_tx.clone()
    }

    /// A handle on the status of this reflector, readable while it runs.
    #[must_use]
    pub fn status_handle(&self) -> StatusHandle {
        self.status.clone()
    }

    /// The store this reflector fills.
    #[must_use]
    pub fn store(&self) -> Store<Container> {
        self.writer.store()
    }

    /// Runs until `shutdown` is cancelled, then closes the watch (a websocket close
    /// frame for the Hyper.sh source). Everything it logs is inside a `reflector` span
    /// naming the endpoint.
    pub async fn run(self, shutdown: CancellationToken) {
        drop(self.run_keeping_writer(shutdown).await);
    }

    /// [`run`](Self::run), giving back the store's writer at the end (a fleet empties
    /// a removed host's cache with it).
    pub(crate) async fn run_keeping_writer(self, shutdown: CancellationToken) -> Writer<Container> {
        let span = tracing::info_span!("reflector", endpoint = %self.source.endpoint());
        let Self {
            source,
            mut writer,
            selector,
            settings,
            status,
            labels,
            refresh_rx,
            refresh_tx,
        } = self;
        // Requests can no longer come once every informer clone is gone.
        drop(refresh_tx);
        let publisher = Publisher::new(status, labels);
        let shell = Shell::new(
            source,
            &mut writer,
            selector,
            &settings,
            publisher,
            refresh_rx,
            shutdown,
        );
        shell.run().instrument(span).await;
        writer
    }
}
