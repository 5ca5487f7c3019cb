//! The list-then-watch loop, as an explicit state machine:
//! `Connecting → Listing → Watching → (Backoff → Connecting)`.
//!
//! - **Connecting**: open the signed websocket first, so nothing falls in the gap
//!   between list and watch (the API has no resource version and no replay).
//! - **Listing**: list while buffering the watch's events; merge them onto the list
//!   and `replace` the store, so deletes missed while away become tombstones and
//!   handlers see only the net change per container.
//! - **Watching**: apply events as they arrive; fetch containers an event cannot
//!   describe, up to four list calls at a time, while events keep being applied; relist
//!   periodically if asked.
//! - **Backoff**: after a failure, wait (exponential, full jitter; the maximum for
//!   authentication failures), then reconnect.

mod fetch;

use std::task::Poll;
use std::time::{Duration, SystemTime};

use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use hypersh_store::{Store, Writer};
use hypersh_watch::{Client, Container, Error as WatchError, EventStream, Filters, WatchEvent};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::BackoffConfig;
use crate::error::Error;
use crate::live::Live;
use crate::plan::Merge;
use crate::selector::Selector;
use crate::status::{Phase, StatusHandle};
use fetch::{Fetch, MAX_FETCHES, fetch};

/// The most events handled in one go when several are ready: up to this many, the
/// loop does not look at anything else and the status is updated once.
const READY_RUN: usize = 64;

/// Keeps a [`Writer<Container>`] in step with the API router.
///
/// Build it, take its [`StatusHandle`], then `run` it on a task until the token is
/// cancelled. The [`Informer`](crate::Informer) does all of this for you.
pub struct Reflector {
    client: Client,
    writer: Writer<Container>,
    selector: Selector,
    backoff: BackoffConfig,
    relist_every: Option<Duration>,
    status: StatusHandle,
    /// Fetches pending and in flight, held events, and a reader of the store.
    live: Live,
    /// Live events applied since the status last heard of them.
    tally: Tally,
}

/// Live events not yet in the status.
#[derive(Debug, Default)]
struct Tally {
    received: u64,
    applied: u64,
}

/// Why one connection (session) ended.
enum End {
    /// Shutdown was requested.
    Shutdown,
    /// The connection ended or failed; reconnect.
    Broken {
        error: Option<WatchError>,
        healthy_for: Duration,
    },
}

impl Reflector {
    /// A reflector for the containers `filters` selects (keys `container`, `image`,
    /// `label`; an empty set selects everything).
    ///
    /// # Errors
    /// [`Error::Filters`] for other keys.
    pub fn new(
        client: Client,
        writer: Writer<Container>,
        filters: &Filters,
    ) -> Result<Self, Error> {
        Ok(Self {
            client,
            live: Live::new(writer.store()),
            writer,
            selector: Selector::new(filters)?,
            backoff: BackoffConfig::default(),
            relist_every: None,
            status: StatusHandle::default(),
            tally: Tally::default(),
        })
    }

    /// Sets the reconnect policy.
    #[must_use]
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Relists every `period` while connected, to repair drift (off by default).
    #[must_use]
    pub fn relist_every(mut self, period: Option<Duration>) -> Self {
        self.relist_every = period;
        self
    }

    /// The status of this reflector, readable while it runs.
    #[must_use]
    pub fn status(&self) -> StatusHandle {
        self.status.clone()
    }

    /// The store this reflector fills.
    #[must_use]
    pub fn store(&self) -> Store<Container> {
        self.writer.store()
    }

    /// Runs until `shutdown` is cancelled. Closes the websocket with a close frame when
    /// one is open. Everything it logs is inside a `reflector` span naming the endpoint.
    pub async fn run(self, shutdown: CancellationToken) {
        let span = tracing::info_span!(
            "reflector",
            endpoint = %self.client.config().endpoint().authority()
        );
        self.run_loop(shutdown).instrument(span).await;
    }

    async fn run_loop(mut self, shutdown: CancellationToken) {
        let mut backoff = self.backoff.build();
        let mut sessions: u64 = 0;
        let mut last_logged: Option<String> = None;
        loop {
            let end = self.session(&shutdown, &mut sessions).await;
            let (error, healthy_for) = match end {
                End::Shutdown => break,
                End::Broken { error, healthy_for } => (error, healthy_for),
            };
            let auth = error.as_ref().is_some_and(WatchError::is_auth);
            let text = error
                .as_ref()
                .map_or_else(|| "server closed the watch".to_owned(), ToString::to_string);
            // Log once per change of error, not once per attempt.
            let kind = error_kind(error.as_ref());
            if last_logged.as_deref() != Some(kind.as_str()) {
                if auth {
                    tracing::error!(error = %text, "authentication failed; retrying at the maximum backoff");
                } else {
                    tracing::warn!(error = %text, "watch ended; reconnecting");
                }
                last_logged = Some(kind);
            } else {
                tracing::debug!(error = %text, "watch ended again");
            }
            if error.is_some() {
                metrics::counter!("hypersh_reflector_failures_total").increment(1);
            }
            if auth {
                metrics::counter!("hypersh_reflector_auth_failures_total").increment(1);
            }
            self.status.update(|s| {
                s.connected = false;
                s.phase = Phase::Backoff;
                s.auth_failing = auth;
                if error.is_some() {
                    s.failures += 1;
                }
                s.last_error = Some(text);
            });
            metrics::gauge!("hypersh_reflector_connected").set(0.0);
            if healthy_for >= backoff.config().reset_after {
                backoff.reset();
                last_logged = None;
            }
            let delay = if auth {
                backoff.auth_delay()
            } else {
                backoff.next_delay()
            };
            tracing::debug!(?delay, "backing off");
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.status.update(|s| {
            s.phase = Phase::Stopped;
            s.connected = false;
        });
        metrics::gauge!("hypersh_reflector_connected").set(0.0);
        tracing::debug!("reflector stopped");
    }

    /// One connection: connect, sync, watch until it breaks.
    #[tracing::instrument(name = "session", skip_all, fields(n = *sessions + 1))]
    async fn session(&mut self, shutdown: &CancellationToken, sessions: &mut u64) -> End {
        self.status.update(|s| s.phase = Phase::Connecting);
        let watch = self.client.watch(self.selector.watch_filters());
        let mut stream = tokio::select! {
            () = shutdown.cancelled() => return End::Shutdown,
            r = watch => match r {
                Ok(stream) => stream,
                Err(e) => return broken(e, Duration::ZERO),
            },
        };
        *sessions += 1;
        if *sessions > 1 {
            metrics::counter!("hypersh_reflector_reconnects_total").increment(1);
            self.status.update(|s| s.reconnects += 1);
        }

        if let Some(end) = self.sync(&mut stream, shutdown).await {
            return end;
        }
        let connected_at = Instant::now();
        self.status.update(|s| {
            s.connected = true;
            s.synced = true;
            s.auth_failing = false;
            s.phase = Phase::Watching;
        });
        metrics::gauge!("hypersh_reflector_connected").set(1.0);

        let mut relist = self.relist_every.map(|p| {
            let mut i = tokio::time::interval_at(Instant::now() + p, p);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        let mut fetching: FuturesUnordered<Fetch> = FuturesUnordered::new();
        // One shutdown waiter for the whole session, not a new one per event.
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            if fetching.len() < MAX_FETCHES && !self.live.pending.is_empty() {
                let fetch = self.start_fetch().await;
                fetching.push(fetch);
            }
            tokio::select! {
                biased;
                () = &mut cancelled => {
                    stream.close().await;
                    return End::Shutdown;
                }
                Some((asked, answer)) = fetching.next(), if !fetching.is_empty() => {
                    let end = match answer {
                        // Applying may wait for a busy handler: not past a shutdown.
                        Ok(answer) => unless_shutdown(self.apply_fetched(&asked, answer), shutdown)
                            .await
                            .map_or(Some(End::Shutdown), |()| None),
                        Err(e) => Some(broken(e, connected_at.elapsed())),
                    };
                    match end {
                        Some(End::Shutdown) => {
                            stream.close().await;
                            return End::Shutdown;
                        }
                        Some(end) => return end,
                        None => {}
                    }
                }
                item = stream.next() => {
                    let can_fetch = fetching.len() < MAX_FETCHES;
                    if let Some(end) = self.on_run(item, &mut stream, can_fetch, shutdown, connected_at).await {
                        return end;
                    }
                }
                _ = tick(relist.as_mut()) => {
                    tracing::debug!("periodic relist");
                    // The list covers whatever was being fetched.
                    fetching.clear();
                    if let Some(end) = self.sync(&mut stream, shutdown).await {
                        return end;
                    }
                    self.status.update(|s| s.phase = Phase::Watching);
                }
            }
        }
    }

    /// Handles `first` and whatever else the stream has ready (a bounded run, so fetch
    /// answers, relists and shutdown are not kept waiting): the events go into one writer
    /// batch, so each handler is told of them in one queue entry, and into one status
    /// update. When `can_fetch`, the run ends early at the first container that must be
    /// fetched, so its list call starts now rather than after the rest of the run.
    /// `Some` when the session ends.
    async fn on_run(
        &mut self,
        first: Option<Result<WatchEvent, WatchError>>,
        stream: &mut EventStream,
        can_fetch: bool,
        shutdown: &CancellationToken,
        connected_at: Instant,
    ) -> Option<End> {
        let Self {
            writer,
            live,
            status,
            tally,
            ..
        } = self;
        // Taking the turn (and delivering what a cancelled commit left) may wait for a
        // busy handler: not past a shutdown.
        let Some(mut batch) = unless_shutdown(writer.batch(), shutdown).await else {
            stream.close().await;
            return Some(End::Shutdown);
        };
        let mut end = None;
        let mut item = Some(first);
        let mut run = 0;
        while let Some(next) = item {
            match next {
                None => {
                    end = Some(End::Broken {
                        error: None,
                        healthy_for: connected_at.elapsed(),
                    });
                    break;
                }
                Some(Ok(event)) => {
                    tracing::trace!(
                        target: "hypersh_reflector::events",
                        id = event.id(),
                        action = event.event().action(),
                        "event received"
                    );
                    tally.received += 1;
                    if live.apply(&mut batch, event) {
                        tally.applied += 1;
                    }
                }
                Some(Err(e)) if e.is_frame_error() => frame_error(status, &e),
                Some(Err(e)) => {
                    end = Some(broken(e, connected_at.elapsed()));
                    break;
                }
            }
            run += 1;
            let fetch_now = can_fetch && !live.pending.is_empty();
            item = if run < READY_RUN && !fetch_now {
                stream.next().now_or_never()
            } else {
                None
            };
        }
        // The changes are in the store; telling the handlers may wait for a busy one
        // (backpressure): not past a shutdown. The writer keeps what was not delivered.
        let delivered = unless_shutdown(batch.commit(), shutdown).await.is_some();
        self.report_tally();
        if !delivered {
            stream.close().await;
            return Some(End::Shutdown);
        }
        if run >= READY_RUN {
            // More may be ready: let the handlers (on this thread, with a current-thread
            // runtime) take this run's changes before the next run, rather than when the
            // runtime's budget runs out, several runs later.
            let_others_run().await;
        }
        end
    }

    /// Lists while buffering the watch, merges, and replaces the store. `None` on
    /// success, else how the session ends.
    ///
    /// The list is decoded as it arrives straight into a store relist, which keeps only
    /// the containers that differ from the cache: a relist into a full cache never holds
    /// a second copy of it.
    #[tracing::instrument(name = "sync", skip_all)]
    async fn sync(
        &mut self,
        stream: &mut EventStream,
        shutdown: &CancellationToken,
    ) -> Option<End> {
        self.live.clear();
        let Self {
            client,
            writer,
            selector,
            status,
            ..
        } = self;
        status.update(|s| s.phase = Phase::Listing);
        let started = Instant::now();
        let mut relist = writer.relist();
        let mut buffered = Vec::new();
        {
            // The relist shares what did not change with the cached version of each
            // listed container, so its copy of a changed container costs little.
            let list = client.list_containers_into(selector.list_filters(), |c| {
                relist.insert(c);
            });
            tokio::pin!(list);
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.cancelled() => {
                        stream.close().await;
                        return Some(End::Shutdown);
                    }
                    r = &mut list => match r {
                        Ok(_) => break,
                        Err(e) => return Some(broken(e, Duration::ZERO)),
                    },
                    item = stream.next() => match item {
                        Some(Ok(event)) => {
                            received(status);
                            buffered.push(event);
                        }
                        Some(Err(e)) if e.is_frame_error() => frame_error(status, &e),
                        Some(Err(e)) => return Some(broken(e, Duration::ZERO)),
                        None => return Some(End::Broken { error: None, healthy_for: Duration::ZERO }),
                    },
                }
            }
        }
        let listed_count = relist.len();
        let mut merge = Merge::new(&mut relist);
        for event in &buffered {
            merge.apply(event);
        }
        let to_fetch = merge.to_fetch();
        if !to_fetch.is_empty() {
            match fetch(client, status, &to_fetch).await {
                Ok(fetched) => merge.add_fetched(fetched),
                Err(e) => return Some(broken(e, Duration::ZERO)),
            }
        }
        relist.retain(|c| selector.admits(c));
        // Committing may wait for busy handlers (backpressure): not past a shutdown.
        if unless_shutdown(relist.commit(), shutdown).await.is_none() {
            stream.close().await;
            return Some(End::Shutdown);
        }
        metrics::counter!("hypersh_reflector_relists_total").increment(1);
        status.update(|s| s.relists += 1);
        tracing::info!(
            containers = listed_count,
            buffered = buffered.len(),
            fetched = to_fetch.len(),
            elapsed = ?started.elapsed(),
            "cache synced from a full list"
        );
        None
    }

    /// Reports the live events counted since the last report, and the changes they made
    /// to the cache, in one status update and one increment of each metric.
    fn report_tally(&mut self) {
        let Tally { received, applied } = std::mem::take(&mut self.tally);
        if received == 0 {
            return;
        }
        metrics::counter!("hypersh_reflector_events_total").increment(received);
        metrics::counter!("hypersh_reflector_events_applied_total").increment(applied);
        let now = SystemTime::now();
        self.status.update(|s| {
            s.events_received += received;
            s.last_event_at = Some(now);
            s.events_applied += applied;
        });
    }
}

/// Counts one received event.
fn received(status: &StatusHandle) {
    metrics::counter!("hypersh_reflector_events_total").increment(1);
    let now = SystemTime::now();
    status.update(|s| {
        s.events_received += 1;
        s.last_event_at = Some(now);
    });
}

/// Logs and counts a frame that could not be decoded.
fn frame_error(status: &StatusHandle, e: &WatchError) {
    tracing::warn!(error = %e, "skipping a frame that could not be decoded");
    metrics::counter!("hypersh_reflector_decode_errors_total").increment(1);
    status.update(|s| s.decode_errors += 1);
}

/// Runs `work` unless shutdown comes first (`None` then). Most work finishes at its first
/// poll, and then no shutdown waiter is registered.
async fn unless_shutdown<F: Future>(work: F, shutdown: &CancellationToken) -> Option<F::Output> {
    tokio::pin!(work);
    if let Some(done) = work.as_mut().now_or_never() {
        return Some(done);
    }
    tokio::select! {
        done = work => Some(done),
        () = shutdown.cancelled() => None,
    }
}

fn broken(error: WatchError, healthy_for: Duration) -> End {
    End::Broken {
        error: Some(error),
        healthy_for,
    }
}

/// A coarse kind of error, to log each kind once until it changes.
fn error_kind(error: Option<&WatchError>) -> String {
    match error {
        None => "closed".to_owned(),
        Some(WatchError::Auth { status, .. }) => format!("auth-{status}"),
        Some(WatchError::Status { status, .. }) => format!("status-{status}"),
        Some(WatchError::Timeout { what, .. }) => format!("timeout-{what}"),
        Some(WatchError::Idle(_)) => "idle".to_owned(),
        Some(other) => {
            let text = other.to_string();
            text.split(':').next().unwrap_or_default().to_owned()
        }
    }
}

/// Lets the tasks that are ready (the handlers, on this thread with a current-thread
/// runtime) run before this one goes on: it goes to the back of the run queue. Unlike
/// `tokio::task::yield_now`, which also makes the runtime poll for I/O first: a system
/// call per run of events, which the runtime makes anyway every few dozen tasks.
async fn let_others_run() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}

/// Ticks the interval if there is one; never completes otherwise.
async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
