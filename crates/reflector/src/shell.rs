//! The reflector's I/O: it runs a [`Source`] and the store's writer as the [`Core`]
//! decides, and reports its status.
//!
//! Everything here carries out a [`Command`] or turns what the source said into an
//! [`Input`]; no decision about the cache is taken here. The scheduling code (runs of
//! ready events, the order of the `select!` arms, when the task yields) is in the
//! section marked "Performance" at the end of the watch loop's helpers.

use std::collections::{BTreeSet, VecDeque};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use hypersh_store::{Batch, Change, Relist, Store, Writer};
use hypersh_watch::{Container, Filters, WatchEvent};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::BackoffConfig;
use crate::core::{Cache, Command, Core, Failure, Input, State};
use crate::error::Error;
use crate::limits::Limits;
use crate::metrics as names;
use crate::selector::Selector;
use crate::source::{Source, SourceError};
use crate::status::{Status, StatusHandle};

/// Keeps a [`Writer<Container>`] in step with a [`Source`].
///
/// Build it, take its [`StatusHandle`], then `run` it on a task until the token is
/// cancelled. The [`Informer`](crate::Informer) does all of this for you.
pub struct Reflector<S: Source> {
    source: S,
    writer: Writer<Container>,
    core: Core,
    /// The reconnect policy the core was built with.
    backoff: BackoffConfig,
    relist_every: Option<Duration>,
    status: StatusHandle,
    /// The status as last published, and the metrics' labels.
    published: Published,
    /// Refresh requests ([`Informer::refresh`](crate::Informer::refresh)), read while
    /// watching; the sender is handed out by [`refresher`](Self::refresher).
    refresh_rx: mpsc::Receiver<RefreshRequest>,
    refresh_tx: mpsc::Sender<RefreshRequest>,
    /// Refreshes waiting for their fetch (or a list) to be applied.
    waiters: Vec<Waiter>,
    /// Fetches started so far, and lists started so far: a waiter is served by one
    /// started after its request.
    fetches_started: u64,
    lists_started: u64,
}

/// How many refresh requests may wait to be read (while the reflector lists or backs
/// off); past that, `Informer::refresh` waits for room.
const REFRESH_QUEUE: usize = 64;

/// A request to fetch some containers now and say when the result has been offered to
/// the handlers.
#[derive(Debug)]
pub(crate) struct RefreshRequest {
    pub(crate) ids: Vec<String>,
    pub(crate) reply: oneshot::Sender<()>,
}

/// A refresh in progress.
#[derive(Debug)]
struct Waiter {
    /// Ids not yet applied by a fetch started after the request.
    remaining: BTreeSet<String>,
    /// The value of `fetches_started` at the request: later fetches count.
    fetches_before: u64,
    /// The value of `lists_started` at the request: a later list serves every id.
    lists_before: u64,
    reply: oneshot::Sender<()>,
}

/// What [`publish`] keeps between calls: the status as last published (to count the
/// metrics by difference) and the labels every metric of this reflector carries (the
/// informer's name, when it has one: two informers in one process then do not write
/// the same series).
#[derive(Debug, Default)]
struct Published {
    status: Status,
    labels: Vec<(&'static str, String)>,
}

impl<S: Source> std::fmt::Debug for Reflector<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reflector")
            .field("endpoint", &self.source.endpoint())
            .field("state", self.core.state())
            .finish_non_exhaustive()
    }
}

/// A fetch in flight: the ids it asked for and the answer.
type Fetch<E> = BoxFuture<'static, (u64, Vec<String>, Result<Vec<Container>, E>)>;

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
            core: Core::new(
                Selector::new(filters)?,
                &BackoffConfig::default(),
                Limits::default(),
            ),
            backoff: BackoffConfig::default(),
            relist_every: None,
            status: StatusHandle::default(),
            published: Published::default(),
            refresh_rx,
            refresh_tx,
            waiters: Vec::new(),
            fetches_started: 0,
            lists_started: 0,
        })
    }

    /// Sets the reconnect policy.
    #[must_use]
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.core = Core::new(self.core.selector().clone(), &backoff, self.core.limits());
        self.backoff = backoff;
        self
    }

    /// Sets the memory bounds ([`Limits`]).
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.core = Core::new(self.core.selector().clone(), &self.backoff, limits);
        self
    }

    /// Relists every `period` while connected, to repair drift (off by default).
    #[must_use]
    pub fn relist_every(mut self, period: Option<Duration>) -> Self {
        self.relist_every = period;
        self
    }

    /// Labels this reflector's metrics with `informer=<name>` (without a name they carry
    /// no label).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.published.labels = crate::metrics::labels(Some(&name.into()));
        self
    }

    /// Where to send refresh requests.
    pub(crate) fn refresher(&self) -> mpsc::Sender<RefreshRequest> {
        self.refresh_tx.clone()
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

    /// Runs until `shutdown` is cancelled, then closes the watch (a websocket close
    /// frame for the Hyper.sh source). Everything it logs is inside a `reflector` span
    /// naming the endpoint.
    pub async fn run(self, shutdown: CancellationToken) {
        let span = tracing::info_span!("reflector", endpoint = %self.source.endpoint());
        self.run_loop(shutdown).instrument(span).await;
    }

    async fn run_loop(mut self, shutdown: CancellationToken) {
        let mut stream: Option<S::Watch> = None;
        let mut commands: VecDeque<Command> = self.step(Input::Start, &mut NoCache).into();
        metrics::gauge!(names::CONNECTED, &self.published.labels).set(0.0);
        loop {
            let next = match commands.pop_front() {
                Some(Command::OpenWatch) => self.open_watch(&mut stream, &shutdown).await,
                Some(Command::List) => match stream.as_mut() {
                    Some(watch) => self.sync(watch, &shutdown).await,
                    None => Vec::new(),
                },
                Some(Command::Sleep(delay)) => {
                    stream = None;
                    self.source.reset();
                    self.back_off(delay, &shutdown).await
                }
                Some(Command::Stop) => {
                    if let Some(watch) = stream.as_mut() {
                        S::close(watch).await;
                    }
                    break;
                }
                // Fetches start in the watch loop; a commit happens in `sync`.
                first @ (Some(Command::Fetch(_) | Command::CommitRelist) | None) => {
                    match (stream.as_mut(), self.core.state()) {
                        (Some(watch), State::Watching(_)) => {
                            let mut start: Vec<Command> = first.into_iter().collect();
                            start.extend(commands.drain(..));
                            self.watch(watch, start, &shutdown).await
                        }
                        // Nothing left to do: only a core that stopped gets here.
                        _ => break,
                    }
                }
            };
            commands.extend(next);
        }
        self.publish();
        metrics::gauge!(names::CONNECTED, &self.published.labels).set(0.0);
        tracing::debug!("reflector stopped");
    }

    /// Steps the core and publishes the status.
    fn step<C: Cache>(&mut self, input: Input, cache: &mut C) -> Vec<Command> {
        let commands = self.core.step(input, cache);
        self.publish();
        commands
    }

    async fn open_watch(
        &mut self,
        stream: &mut Option<S::Watch>,
        shutdown: &CancellationToken,
    ) -> Vec<Command> {
        let input = tokio::select! {
            () = shutdown.cancelled() => Input::Shutdown,
            opened = self.source.watch(self.core.selector().watch_filters()) => match opened {
                Ok(watch) => {
                    *stream = Some(watch);
                    self.core.set_server(self.source.server());
                    Input::WatchOpened
                }
                Err(e) => failed(&e),
            },
        };
        self.step(input, &mut NoCache)
    }

    async fn back_off(&mut self, delay: Duration, shutdown: &CancellationToken) -> Vec<Command> {
        let input = tokio::select! {
            () = shutdown.cancelled() => Input::Shutdown,
            () = tokio::time::sleep(delay) => Input::BackoffDone,
        };
        self.step(input, &mut NoCache)
    }

    /// Lists while the core buffers the watch's events, fetches what the core asks for,
    /// and commits the relist. Returns the commands that follow the commit (or a failure).
    ///
    /// The list is decoded as it arrives straight into a store relist, which keeps only
    /// the containers that differ from the cache: a relist into a full cache never holds
    /// a second copy of it.
    #[tracing::instrument(name = "sync", skip_all)]
    async fn sync(&mut self, stream: &mut S::Watch, shutdown: &CancellationToken) -> Vec<Command> {
        let started = Instant::now();
        self.lists_started += 1;
        let list_number = self.lists_started;
        let Self {
            source,
            writer,
            core,
            status,
            published,
            ..
        } = self;
        let mut relist = writer.relist();
        let filters = core.selector().list_filters().clone();
        let listed = {
            let list = source.list(&filters, |c| relist.insert(c));
            tokio::pin!(list);
            loop {
                let input = tokio::select! {
                    biased;
                    () = shutdown.cancelled() => Input::Shutdown,
                    r = &mut list => match r {
                        Ok(()) => break Ok(()),
                        Err(e) => failed(&e),
                    },
                    item = stream.next() => stream_input(item),
                };
                let commands = core.step(input, &mut NoCache);
                publish(core, status, published);
                if !commands.is_empty() {
                    break Err(commands);
                }
            }
        };
        if let Err(commands) = listed {
            return commands;
        }
        let listed_count = relist.len();
        let mut commands = core.step(
            Input::ListDone {
                now: Instant::now(),
            },
            &mut relist,
        );
        if let [Command::Fetch(asked)] = &mut commands[..] {
            let asked = std::mem::take(asked);
            let found = {
                let fetch = source.fetch(&asked);
                tokio::pin!(fetch);
                loop {
                    let input = tokio::select! {
                        biased;
                        () = shutdown.cancelled() => Input::Shutdown,
                        r = &mut fetch => match r {
                            Ok(found) => break found,
                            Err(e) => failed(&e),
                        },
                        item = stream.next() => stream_input(item),
                    };
                    let commands = core.step(input, &mut NoCache);
                    publish(core, status, published);
                    if !commands.is_empty() {
                        return commands;
                    }
                }
            };
            let now = Instant::now();
            commands = core.step(Input::Fetched { asked, found, now }, &mut relist);
        }
        publish(core, status, published);
        let Some(Command::CommitRelist) = commands.first() else {
            return commands;
        };
        commands.remove(0);
        // Without filters every listed container is kept: no need to look at each.
        if !core.selector().admits_all() {
            relist.retain(|c| core.selector().admits(c));
        }
        // Committing may wait for busy handlers (backpressure): not past a shutdown.
        if unless_shutdown(relist.commit(), shutdown).await.is_none() {
            let commands = core.step(Input::Shutdown, &mut NoCache);
            publish(core, status, published);
            return commands;
        }
        tracing::info!(
            containers = listed_count,
            elapsed = ?started.elapsed(),
            "cache synced from a full list"
        );
        // A list started after a refresh's request serves all of it.
        self.serve_refreshes(|w| {
            if w.lists_before < list_number {
                w.remaining.clear();
            }
        });
        commands
    }

    /// Applies events as they arrive and runs the fetches the core asks for, until the
    /// core asks for something else (a relist, a backoff, a stop).
    async fn watch(
        &mut self,
        stream: &mut S::Watch,
        mut commands: Vec<Command>,
        shutdown: &CancellationToken,
    ) -> Vec<Command> {
        let mut fetching: FuturesUnordered<Fetch<S::Error>> = FuturesUnordered::new();
        let mut relist = self.relist_every.map(|p| {
            let mut i = tokio::time::interval_at(Instant::now() + p, p);
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        metrics::gauge!(names::CONNECTED, &self.published.labels).set(1.0);
        // One shutdown waiter for the whole phase, not a new one per event.
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            let leave = commands.iter().position(|a| {
                matches!(
                    a,
                    Command::OpenWatch | Command::List | Command::Sleep(_) | Command::Stop
                )
            });
            let rest = leave.map(|n| commands.split_off(n));
            for command in commands.drain(..) {
                if let Command::Fetch(ids) = command {
                    let fetch = self.start_fetch(ids).await;
                    fetching.push(fetch);
                }
            }
            if let Some(rest) = rest {
                metrics::gauge!(names::CONNECTED, &self.published.labels).set(0.0);
                return rest;
            }
            tokio::select! {
                biased;
                () = &mut cancelled => commands = self.step(Input::Shutdown, &mut NoCache),
                Some((number, asked, answer)) = fetching.next(), if !fetching.is_empty() => {
                    commands = match answer {
                        Ok(found) => self.apply_fetched(number, asked, found, shutdown).await,
                        Err(e) => self.step(failed(&e), &mut NoCache),
                    };
                }
                Some(request) = self.refresh_rx.recv() => commands = self.refresh(request),
                item = stream.next() => commands = self.handle_ready(item, stream, shutdown).await,
                _ = tick(relist.as_mut()) => commands = self.step(Input::RelistTick, &mut NoCache),
            }
        }
    }

    /// Registers a refresh and asks the core to fetch its ids.
    fn refresh(&mut self, request: RefreshRequest) -> Vec<Command> {
        let RefreshRequest { ids, reply } = request;
        if ids.is_empty() {
            let _ = reply.send(());
            return Vec::new();
        }
        self.waiters.push(Waiter {
            remaining: ids.iter().cloned().collect(),
            fetches_before: self.fetches_started,
            lists_before: self.lists_started,
            reply,
        });
        self.step(Input::Refresh(ids), &mut NoCache)
    }

    /// Lets `served` update each waiter, then answers those with nothing left.
    fn serve_refreshes(&mut self, mut served: impl FnMut(&mut Waiter)) {
        if self.waiters.is_empty() {
            return;
        }
        for w in &mut self.waiters {
            served(w);
        }
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.remaining.is_empty());
        self.waiters = waiting;
        for w in done {
            // The caller may have given up: nothing to do then.
            let _ = w.reply.send(());
        }
    }

    /// Applies a fetch's answer in one writer batch.
    async fn apply_fetched(
        &mut self,
        number: u64,
        asked: Vec<String>,
        found: Vec<Container>,
        shutdown: &CancellationToken,
    ) -> Vec<Command> {
        let now = Instant::now();
        let Self { writer, core, .. } = self;
        // Taking the turn may wait for a busy handler: not past a shutdown.
        let Some(mut batch) = unless_shutdown(writer.batch(), shutdown).await else {
            return self.step(Input::Shutdown, &mut NoCache);
        };
        let served: Vec<String> = if self.waiters.is_empty() {
            Vec::new()
        } else {
            asked.clone()
        };
        let commands = core.step(Input::Fetched { asked, found, now }, &mut batch);
        if unless_shutdown(batch.commit(), shutdown).await.is_none() {
            return self.step(Input::Shutdown, &mut NoCache);
        }
        self.publish();
        // The handlers have been offered the answer: refreshes it serves are done.
        self.serve_refreshes(|w| {
            if w.fetches_before < number {
                for id in &served {
                    w.remaining.remove(id);
                }
            }
        });
        commands
    }

    /// Publishes the core's status to the handle and the metrics.
    fn publish(&mut self) {
        publish(&self.core, &self.status, &mut self.published);
    }
}

// Performance: the watch loop's scheduling. Events that are ready are handled in runs
// (one writer batch, one status update per run); a fetch's request is sent before the
// run goes on; after a full run the task lets the handlers run.

/// The most events handled in one run when several are ready: up to this many, the
/// loop does not look at anything else and the status is updated once.
const READY_RUN: usize = 64;

impl<S: Source> Reflector<S> {
    /// Handles `first` and whatever else the stream has ready, in one writer batch (each
    /// handler is told of the run in one queue entry). The run ends early at the first
    /// command, so a fetch's list call starts now rather than after the rest of the run.
    async fn handle_ready(
        &mut self,
        first: Option<Result<WatchEvent, S::Error>>,
        stream: &mut S::Watch,
        shutdown: &CancellationToken,
    ) -> Vec<Command> {
        let Self {
            writer,
            core,
            status,
            published,
            ..
        } = self;
        // Taking the turn (and delivering what a cancelled commit left) may wait for a
        // busy handler: not past a shutdown.
        let Some(mut batch) = unless_shutdown(writer.batch(), shutdown).await else {
            return self.step(Input::Shutdown, &mut NoCache);
        };
        let mut commands = Vec::new();
        let mut item = Some(first);
        let mut run = 0;
        while let Some(next) = item {
            match next {
                Some(Ok(event)) => {
                    tracing::trace!(
                        target: "hypersh_reflector::events",
                        id = event.id(),
                        action = event.event().action(),
                        "event received"
                    );
                    commands.extend(core.event(event, &mut batch));
                }
                other => commands = core.step(stream_input(other), &mut batch),
            }
            run += 1;
            item = if run < READY_RUN && commands.is_empty() {
                stream.next().now_or_never()
            } else {
                None
            };
        }
        // The changes are in the store; telling the handlers may wait for a busy one.
        if unless_shutdown(batch.commit(), shutdown).await.is_none() {
            return self.step(Input::Shutdown, &mut NoCache);
        }
        publish(core, status, published);
        if run == READY_RUN {
            let_others_run().await;
        }
        commands
    }

    /// Starts fetching `ids`. The request goes out before this returns: the future is
    /// polled once, which hands the request to its HTTP connection, and the task yields
    /// so that the connection (another task, on this thread with a current-thread
    /// runtime) writes it now rather than after the next run of events.
    async fn start_fetch(&mut self, ids: Vec<String>) -> Fetch<S::Error> {
        let source = self.source.clone();
        self.fetches_started += 1;
        let number = self.fetches_started;
        let mut fetch: Fetch<S::Error> = Box::pin(async move {
            let answer = source.fetch(&ids).await;
            (number, ids, answer)
        });
        if let Some(answer) = fetch.as_mut().now_or_never() {
            return Box::pin(std::future::ready(answer));
        }
        tokio::task::yield_now().await;
        fetch
    }
}

/// Lets the tasks that are ready (the handlers, on this thread with a current-thread
/// runtime) run before this one goes on: it goes to the back of the run queue. Unlike
/// `tokio::task::yield_now`, it does not make the runtime poll for I/O first.
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

// End of the performance section.

/// Copies the core's status to the handle, counting the metrics by difference.
fn publish(core: &Core, handle: &StatusHandle, published: &mut Published) {
    let Published {
        status: published,
        labels,
    } = published;
    let now = core.status();
    if now == published {
        return;
    }
    let counters = [
        (
            names::EVENTS_TOTAL,
            now.events_received,
            published.events_received,
        ),
        (
            names::EVENTS_APPLIED_TOTAL,
            now.events_applied,
            published.events_applied,
        ),
        (names::RELISTS_TOTAL, now.relists, published.relists),
        (
            names::RECONNECTS_TOTAL,
            now.reconnects,
            published.reconnects,
        ),
        (names::FETCHES_TOTAL, now.fetches, published.fetches),
        (
            names::DECODE_ERRORS_TOTAL,
            now.decode_errors,
            published.decode_errors,
        ),
        (names::FAILURES_TOTAL, now.failures, published.failures),
        (
            names::AUTH_FAILURES_TOTAL,
            now.auth_failures,
            published.auth_failures,
        ),
        (names::OVERFLOWS_TOTAL, now.overflows, published.overflows),
    ];
    for (name, now, before) in counters {
        if now > before {
            metrics::counter!(name, &*labels).increment(now - before);
        }
    }
    let last_event_at = if now.events_received > published.events_received {
        Some(SystemTime::now())
    } else {
        published.last_event_at
    };
    published.clone_from(now);
    published.last_event_at = last_event_at;
    handle.update(|s| s.clone_from(published));
}

/// The input a stream item makes.
fn stream_input<E: SourceError>(item: Option<Result<WatchEvent, E>>) -> Input {
    match item {
        Some(Ok(event)) => Input::Event(event),
        Some(Err(e)) if e.is_frame_error() => Input::FrameError(e.to_string()),
        Some(Err(e)) => failed(&e),
        None => Input::Failed {
            error: None,
            now: Instant::now(),
        },
    }
}

/// The input a failure makes.
fn failed<E: SourceError>(error: &E) -> Input {
    Input::Failed {
        error: Some(Failure {
            auth: error.is_auth(),
            text: error.to_string(),
        }),
        now: Instant::now(),
    }
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

/// The cache of inputs that do not change it.
struct NoCache;

impl Cache for NoCache {
    fn update<F>(&mut self, _: &str, _: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>,
    {
        false
    }
}

/// While watching, the core changes the store through a writer batch.
impl Cache for Batch<'_, Container> {
    fn update<F>(&mut self, id: &str, f: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>,
    {
        Batch::update(self, id, f)
    }
}

/// While listing, the core replays events onto the relist.
impl Cache for Relist<'_, Container> {
    fn update<F>(&mut self, id: &str, f: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>,
    {
        let listed = self.get(id);
        match f(listed.as_deref()) {
            Some(Change::Upsert(c)) => {
                self.insert(c);
                true
            }
            Some(Change::Delete(key)) => {
                self.remove(&key);
                true
            }
            None => false,
        }
    }
}
