//! The reflector's I/O: one loop that carries out the [`Core`]'s commands and turns what
//! happens into its inputs.
//!
//! One `select!` waits on everything that can happen: shutdown, a fetch's answer, the
//! watch opening, containers from the list, a refresh request, the watch stream, the
//! backoff and relist timers. Each outcome becomes an [`Input`]; each [`Command`] starts or
//! stops one of those things. The loop decides nothing about the cache: the core does.
//! Where the core's changes go ([`Sink`]) follows the commands: a relist from `List` to
//! `CommitRelist`, the store (a writer batch per run of inputs) otherwise. The scheduling
//! code (runs of ready events, when a fetch's request goes out, when the task yields) is
//! the section marked "Performance" at the end.

mod cache;
mod publish;
mod sink;

pub(crate) use publish::Publisher;

use std::collections::{HashMap, VecDeque};
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::Poll;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use hypersh_store::Writer;
use hypersh_watch::{Container, WatchEvent};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::core::{Cache, Command, Core, Failure, FetchId, Input, RefreshId, Settings};
use crate::reflector::RefreshRequest;
use crate::selector::Selector;
use crate::source::{Source, SourceError};
use cache::NoCache;
use sink::Sink;

/// A fetch in flight and its answer.
type Fetch<E> = BoxFuture<'static, (FetchId, Result<Vec<Container>, E>)>;

/// The loop's state: what runs, and what answers it owes.
pub(crate) struct Shell<'w, S: Source> {
    source: S,
    /// The user's filters: the watch's and the list's, and what enters the relist.
    selector: Selector,
    core: Core,
    sink: Sink<'w, S::Error>,
    watch: Option<S::Watch>,
    opening: Option<BoxFuture<'static, Result<S::Watch, S::Error>>>,
    fetches: FuturesUnordered<Fetch<S::Error>>,
    backoff: Option<Pin<Box<Sleep>>>,
    relist: Option<Pin<Box<Sleep>>>,
    requests: mpsc::Receiver<RefreshRequest>,
    /// The refresh requests not answered yet, by the number the core knows them by.
    replies: HashMap<RefreshId, oneshot::Sender<()>>,
    last_request: u64,
    publisher: Publisher,
    shutdown: CancellationToken,
    /// How long the reflector may be down before the cache is emptied (`None`: keep it).
    drop_after: Option<std::time::Duration>,
    /// Where the reflector is in that count.
    down: Down,
}

/// The count towards emptying the cache of a reflector that is down.
enum Down {
    /// Connected (or no `drop_after`): nothing counts.
    Up,
    /// Down: the cache is emptied when this fires.
    Since(Pin<Box<Sleep>>),
    /// Down, and the cache was emptied: nothing more until the next connection.
    Dropped,
}

impl<'w, S: Source> Shell<'w, S> {
    pub(crate) fn new(
        source: S,
        writer: &'w mut Writer<Container>,
        selector: Selector,
        settings: &Settings,
        publisher: Publisher,
        requests: mpsc::Receiver<RefreshRequest>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            core: Core::new(selector.clone(), settings, fastrand::Rng::new()),
            selector,
            source,
            sink: Sink::Store(writer),
            watch: None,
            opening: None,
            fetches: FuturesUnordered::new(),
            backoff: None,
            relist: None,
            requests,
            replies: HashMap::new(),
            last_request: 0,
            publisher,
            shutdown,
            drop_after: settings.drop_after,
            down: Down::Up,
        }
    }

    /// Runs until the core stops.
    pub(crate) async fn run(mut self) {
        let shutdown = self.shutdown.clone();
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let mut commands = self.core.step(Input::Start, &mut NoCache);
        while commands.is_empty() || self.execute(commands).await.is_continue() {
            self.publisher.publish(self.core.status());
            self.count_down();
            commands = tokio::select! {
                biased;
                () = &mut cancelled => self.core.step(Input::Shutdown, &mut NoCache),
                Some((fetch, answer)) = self.fetches.next(), if !self.fetches.is_empty() => {
                    match answer {
                        Ok(found) => {
                            let now = Instant::now();
                            self.step_in_sink(Input::Fetched { fetch, found, now }).await
                        }
                        Err(e) => self.core.step(failed(&e), &mut NoCache),
                    }
                }
                opened = fire(&mut self.opening), if self.opening.is_some() => {
                    let input = match opened {
                        Ok(watch) => {
                            self.watch = Some(watch);
                            self.core.set_server(self.source.server());
                            Input::WatchOpened
                        }
                        Err(e) => failed(&e),
                    };
                    self.core.step(input, &mut NoCache)
                }
                ended = self.sink.list_ended(), if self.sink.is_listing() => match ended {
                    Ok(()) => self.step_in_sink(Input::ListDone { now: Instant::now() }).await,
                    Err(e) => self.core.step(failed(&e), &mut NoCache),
                },
                Some(RefreshRequest { ids, reply }) = self.requests.recv() => {
                    self.last_request += 1;
                    let request = RefreshId(self.last_request);
                    self.replies.retain(|_, reply| !reply.is_closed());
                    self.replies.insert(request, reply);
                    self.core.step(Input::Refresh { request, ids }, &mut NoCache)
                }
                item = next_event::<S>(&mut self.watch) => self.handle_ready(item).await,
                () = fire(&mut self.backoff), if self.backoff.is_some() => {
                    self.core.step(Input::BackoffDone, &mut NoCache)
                }
                () = fire(&mut self.relist), if self.relist.is_some() => {
                    self.core.step(Input::RelistTick, &mut NoCache)
                }
                () = down_for_long(&mut self.down) => self.drop_cache().await,
            };
        }
        self.publisher.publish(self.core.status());
        tracing::debug!("reflector stopped");
    }

    /// Starts counting towards `drop_after` when the reflector is not connected, and
    /// stops when it is.
    fn count_down(&mut self) {
        let Some(after) = self.drop_after else {
            return;
        };
        if self.core.status().connected {
            self.down = Down::Up;
        } else if matches!(self.down, Down::Up) {
            self.down = Down::Since(Box::pin(tokio::time::sleep(after)));
        }
    }

    /// The reflector has been down for `drop_after`: every cached container becomes a
    /// [`Deleted::FinalStateUnknown`](hypersh_store::Deleted) tombstone. A list that runs
    /// at that moment (the source answers again) is let be: the count starts over.
    async fn drop_cache(&mut self) -> Vec<Command> {
        let Sink::Store(writer) = &mut self.sink else {
            self.down = Down::Up;
            return Vec::new();
        };
        tracing::warn!(
            after = ?self.drop_after,
            containers = writer.store().len(),
            "down for drop_after: dropping the cached containers"
        );
        self.down = Down::Dropped;
        if unless_shutdown(writer.replace(Vec::new()), &self.shutdown)
            .await
            .is_none()
        {
            return self.core.step(Input::Shutdown, &mut NoCache);
        }
        Vec::new()
    }

    /// Carries out `commands` in order; breaks on `Stop`.
    async fn execute(&mut self, commands: Vec<Command>) -> ControlFlow<()> {
        let mut commands = VecDeque::from(commands);
        while let Some(command) = commands.pop_front() {
            match command {
                Command::OpenWatch => {
                    let source = self.source.clone();
                    let filters = self.selector.watch_filters().clone();
                    self.opening = Some(Box::pin(async move { source.watch(&filters).await }));
                }
                Command::List => {
                    self.fetches.clear();
                    let source = self.source.clone();
                    let filters = self.selector.list_filters().clone();
                    self.sink.start_list(source, filters, self.selector.clone());
                }
                Command::Fetch { fetch, ids } => {
                    let fetch = start_fetch(self.source.clone(), fetch, ids).await;
                    self.fetches.push(fetch);
                }
                Command::CommitRelist => {
                    if !self.sink.commit(&self.shutdown).await {
                        commands = self.core.step(Input::Shutdown, &mut NoCache).into();
                    }
                }
                Command::Refreshed(requests) => {
                    for request in requests {
                        if let Some(reply) = self.replies.remove(&request) {
                            // The caller may have given up: nothing to do then.
                            let _ = reply.send(());
                        }
                    }
                }
                Command::RelistAfter(period) => {
                    self.relist = Some(Box::pin(tokio::time::sleep(period)));
                }
                Command::Disconnect => {
                    self.watch = None;
                    self.opening = None;
                    self.fetches.clear();
                    self.relist = None;
                    self.sink.stop_list();
                }
                Command::ResetSource => self.source.reset(),
                Command::Sleep(delay) => {
                    self.backoff = Some(Box::pin(tokio::time::sleep(delay)));
                }
                Command::Stop => {
                    if let Some(watch) = self.watch.as_mut() {
                        S::close(watch).await;
                    }
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Steps the core with an input that carries containers, on the sink: a writer batch
    /// (committed before the commands are carried out) or the relist.
    async fn step_in_sink(&mut self, input: Input) -> Vec<Command> {
        match &mut self.sink {
            Sink::Store(writer) => {
                // Taking the turn may wait for a busy handler: not past a shutdown.
                let Some(mut batch) = unless_shutdown(writer.batch(), &self.shutdown).await else {
                    return self.core.step(Input::Shutdown, &mut NoCache);
                };
                let commands = self.core.step(input, &mut batch);
                if unless_shutdown(batch.commit(), &self.shutdown)
                    .await
                    .is_none()
                {
                    return self.core.step(Input::Shutdown, &mut NoCache);
                }
                commands
            }
            Sink::Relist { relist, .. } => self.core.step(input, &mut *sink::lock(relist)),
            Sink::Closed => self.core.step(input, &mut NoCache),
        }
    }
}

/// What `slot` gives when it completes (then it is emptied); never completes when empty.
async fn fire<F: Future + Unpin>(slot: &mut Option<F>) -> F::Output {
    match slot {
        Some(future) => {
            let out = future.await;
            *slot = None;
            out
        }
        None => std::future::pending().await,
    }
}

/// Fires when the reflector has been down for `drop_after`; never otherwise.
async fn down_for_long(down: &mut Down) {
    match down {
        Down::Since(sleep) => sleep.await,
        Down::Up | Down::Dropped => std::future::pending().await,
    }
}

/// The next item of the watch stream (`None`: it ended); never, if no watch is open.
async fn next_event<S: Source>(
    watch: &mut Option<S::Watch>,
) -> Option<Result<WatchEvent, S::Error>> {
    match watch {
        Some(watch) => watch.next().await,
        None => std::future::pending().await,
    }
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

// Performance: the watch's scheduling. Events that are ready are handled in runs (one
// writer batch, one status update per run); a fetch's request is sent before the run
// goes on; after a full run the task lets the handlers run.

/// The most events handled in one run when several are ready: up to this many, the
/// loop does not look at anything else and the status is updated once.
const READY_RUN: usize = 64;

impl<S: Source> Shell<'_, S> {
    /// Handles `first` and whatever else the stream has ready, in one writer batch (each
    /// handler is told of the run in one queue entry). The run ends early at the first
    /// command, so a fetch's list call starts now rather than after the rest of the run.
    async fn handle_ready(&mut self, first: Option<Result<WatchEvent, S::Error>>) -> Vec<Command> {
        let Some(watch) = self.watch.as_mut() else {
            return Vec::new();
        };
        let (commands, run) = match &mut self.sink {
            Sink::Store(writer) => {
                // Taking the turn (and delivering what a cancelled commit left) may wait for
                // a busy handler: not past a shutdown.
                let Some(mut batch) = unless_shutdown(writer.batch(), &self.shutdown).await else {
                    return self.core.step(Input::Shutdown, &mut NoCache);
                };
                let ran = run_ready::<S, _>(&mut self.core, &mut batch, first, watch);
                // The changes are in the store; telling the handlers may wait for a busy one.
                if unless_shutdown(batch.commit(), &self.shutdown)
                    .await
                    .is_none()
                {
                    return self.core.step(Input::Shutdown, &mut NoCache);
                }
                ran
            }
            Sink::Relist { relist, .. } => {
                run_ready::<S, _>(&mut self.core, &mut *sink::lock(relist), first, watch)
            }
            Sink::Closed => run_ready::<S, _>(&mut self.core, &mut NoCache, first, watch),
        };
        if run == READY_RUN {
            let_others_run().await;
        }
        commands
    }
}

/// Starts fetching `ids`. The request goes out before this returns: the future is polled
/// once, which hands the request to its HTTP connection, and the task yields so that the
/// connection (another task, on this thread with a current-thread runtime) writes it now
/// rather than after the next run of events.
async fn start_fetch<S: Source>(source: S, fetch: FetchId, ids: Vec<String>) -> Fetch<S::Error> {
    let mut future: Fetch<S::Error> = Box::pin(async move {
        let answer = source.fetch(&ids).await;
        (fetch, answer)
    });
    if let Some(answer) = future.as_mut().now_or_never() {
        return Box::pin(std::future::ready(answer));
    }
    tokio::task::yield_now().await;
    future
}

/// Steps the core with `first` and the stream's ready items, up to [`READY_RUN`] and
/// until the first command; returns the commands and how many items it took.
fn run_ready<S: Source, C: Cache>(
    core: &mut Core,
    cache: &mut C,
    first: Option<Result<WatchEvent, S::Error>>,
    watch: &mut S::Watch,
) -> (Vec<Command>, usize) {
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
                commands.extend(core.event(event, cache));
            }
            other => commands = core.step(stream_input(other), cache),
        }
        run += 1;
        item = if run < READY_RUN && commands.is_empty() {
            watch.next().now_or_never()
        } else {
            None
        };
    }
    (commands, run)
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
