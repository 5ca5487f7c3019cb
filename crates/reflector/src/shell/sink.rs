//! Where the core's changes go: the store, or the relist a running list fills. The sink
//! follows the core's commands: `List` starts a list into a new relist, `CommitRelist`
//! commits it and `Disconnect` drops it, and in between the store is written a batch at
//! a time.
//!
//! A list is read as a stream of the containers it hands over, so that the shell's one
//! `select!` reads it beside the watch: the source's sink fills a buffer, and each poll of
//! the stream hands over what the source decoded in that poll of the list (what arrived:
//! a few HTTP chunks), then, once, how the list ended.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use hypersh_store::{Relist, Writer};
use hypersh_watch::{Container, Filters};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::unless_shutdown;
use crate::source::Source;

/// What a running list yields.
pub(super) enum Listed<E> {
    /// Containers the source decoded, in order.
    Containers(Vec<Container>),
    /// The list ended (after its last containers).
    Done(Result<(), E>),
}

/// Where the core's changes go.
pub(super) enum Sink<'w, E> {
    /// The store, through a writer batch per run of inputs.
    Store(&'w mut Writer<Container>),
    /// A list runs (`list`), or has ended, into this relist; the store waits for its
    /// commit.
    Relist {
        relist: Relist<'w, Container>,
        list: Option<BoxStream<'static, Listed<E>>>,
        started: Instant,
    },
    /// Nowhere: a commit was cut short by shutdown, and the loop stops.
    Closed,
}

impl<E: Send + 'static> Sink<'_, E> {
    /// Starts listing what `filters` select into a new relist (an uncommitted one is
    /// dropped).
    pub(super) fn start_list<S: Source<Error = E>>(&mut self, source: S, filters: Filters) {
        if let Some(writer) = std::mem::replace(self, Self::Closed).into_writer() {
            *self = Self::Relist {
                relist: writer.relist(),
                list: Some(list(source, filters)),
                started: Instant::now(),
            };
        }
    }

    /// Drops an uncommitted relist, and its list: the store is written directly again.
    pub(super) fn stop_list(&mut self) {
        if let Some(writer) = std::mem::replace(self, Self::Closed).into_writer() {
            *self = Self::Store(writer);
        }
    }

    /// Commits the relist. Committing may wait for busy handlers (backpressure): not past
    /// a shutdown, which leaves the sink closed and returns `false`.
    pub(super) async fn commit(&mut self, shutdown: &CancellationToken) -> bool {
        let Self::Relist {
            relist, started, ..
        } = std::mem::replace(self, Self::Closed)
        else {
            return true;
        };
        let listed = relist.len();
        let Some(writer) = unless_shutdown(relist.commit(), shutdown).await else {
            return false;
        };
        *self = Self::Store(writer);
        tracing::info!(containers = listed, elapsed = ?started.elapsed(), "cache synced from a full list");
        true
    }

    /// Whether a list runs.
    pub(super) fn is_listing(&self) -> bool {
        matches!(self, Self::Relist { list: Some(_), .. })
    }

    /// The list's next item (never, if no list runs); the list is forgotten once it
    /// has said how it ended.
    pub(super) async fn next_listed(&mut self) -> Listed<E> {
        let Self::Relist {
            list: Some(running),
            ..
        } = self
        else {
            return std::future::pending().await;
        };
        match running.next().await {
            Some(Listed::Containers(containers)) => Listed::Containers(containers),
            Some(Listed::Done(result)) => {
                if let Self::Relist { list, .. } = self {
                    *list = None;
                }
                Listed::Done(result)
            }
            // The stream ends only after `Done`, when it is no longer polled.
            None => std::future::pending().await,
        }
    }
}

impl<'w, E> Sink<'w, E> {
    /// The writer, dropping an uncommitted relist (and its list) unapplied.
    fn into_writer(self) -> Option<&'w mut Writer<Container>> {
        match self {
            Self::Store(writer) => Some(writer),
            Self::Relist { relist, .. } => Some(relist.cancel()),
            Self::Closed => None,
        }
    }
}

/// Starts listing what `filters` select, as a stream.
fn list<S: Source>(source: S, filters: Filters) -> BoxStream<'static, Listed<S::Error>> {
    let buffer: Arc<Mutex<Vec<Container>>> = Arc::default();
    let sink = {
        let buffer = Arc::clone(&buffer);
        move |c| lock(&buffer).push(c)
    };
    let mut running = Some(Box::pin(async move { source.list(&filters, sink).await }));
    let mut ended = None;
    Box::pin(stream::poll_fn(move |cx| {
        if let Some(list) = running.as_mut()
            && let Poll::Ready(result) = list.as_mut().poll(cx)
        {
            ended = Some(result);
            running = None;
        }
        let containers = std::mem::take(&mut *lock(&buffer));
        if !containers.is_empty() {
            return Poll::Ready(Some(Listed::Containers(containers)));
        }
        match ended.take() {
            Some(result) => Poll::Ready(Some(Listed::Done(result))),
            None if running.is_none() => Poll::Ready(None),
            None => Poll::Pending,
        }
    }))
}

fn lock(buffer: &Mutex<Vec<Container>>) -> std::sync::MutexGuard<'_, Vec<Container>> {
    // Only pushes and takes happen under the lock: a poisoned one holds whole containers.
    buffer.lock().unwrap_or_else(PoisonError::into_inner)
}
