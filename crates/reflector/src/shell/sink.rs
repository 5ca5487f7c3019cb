//! Where the core's changes go: the store, or the relist a running list fills. The sink
//! follows the core's commands: `List` starts a list into a new relist, `CommitRelist`
//! commits it and `Disconnect` drops it, and in between the store is written a batch at
//! a time.
//!
//! The list is a future the shell's one `select!` waits on beside the watch. The source
//! hands each container to it as it is decoded, and it goes into the relist at once (what
//! the filters admit: [`listed`]): decoded, compared with the cached version and, when
//! equal, dropped, one at a time. Held in a buffer for the loop instead, a chunk's
//! containers are freed together after they were allocated together, and the allocator's
//! small-block caches no longer serve them: a relist of 100k costs 2.5 % more
//! instructions. So the list future and the sink share the relist behind a lock (taken
//! once per container, never waited on: both run on the shell's task).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures_util::future::BoxFuture;
use hypersh_store::{Relist, Writer};
use hypersh_watch::{Container, Filters};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::unless_shutdown;
use crate::core::listed;
use crate::selector::Selector;
use crate::source::Source;

/// A relist the list future fills and the shell reads.
pub(super) type Shared<'w> = Arc<Mutex<Relist<'w, Container>>>;

/// Where the core's changes go.
pub(super) enum Sink<'w, E> {
    /// The store, through a writer batch per run of inputs.
    Store(&'w mut Writer<Container>),
    /// A list runs (`list`), or has ended, into this relist; the store waits for its
    /// commit.
    Relist {
        relist: Shared<'w>,
        list: Option<BoxFuture<'w, Result<(), E>>>,
        started: Instant,
    },
    /// Nowhere: a commit was cut short by shutdown, and the loop stops.
    Closed,
}

impl<'w, E: Send + 'static> Sink<'w, E> {
    /// Starts listing what `filters` select into a new relist, keeping what `selector`
    /// admits (an uncommitted relist is dropped).
    pub(super) fn start_list<S: Source<Error = E>>(
        &mut self,
        source: S,
        filters: Filters,
        selector: Selector,
    ) {
        let Some(writer) = std::mem::replace(self, Self::Closed).into_writer() else {
            return;
        };
        let relist: Shared<'w> = Arc::new(Mutex::new(writer.relist()));
        let filling = Arc::clone(&relist);
        let list = async move {
            let sink = |c| listed(&selector, c, &mut *lock(&filling));
            source.list(&filters, sink).await
        };
        *self = Self::Relist {
            relist,
            list: Some(Box::pin(list)),
            started: Instant::now(),
        };
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
            relist,
            list,
            started,
        } = std::mem::replace(self, Self::Closed)
        else {
            return true;
        };
        drop(list);
        let Some(relist) = unshare(relist) else {
            return false;
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

    /// How the list ended (never, if no list runs); the list is forgotten then.
    pub(super) async fn list_ended(&mut self) -> Result<(), E> {
        let Self::Relist {
            list: Some(running),
            ..
        } = self
        else {
            return std::future::pending().await;
        };
        let ended = running.await;
        if let Self::Relist { list, .. } = self {
            *list = None;
        }
        ended
    }
}

impl<'w, E> Sink<'w, E> {
    /// The writer, dropping an uncommitted relist (and its list) unapplied.
    fn into_writer(self) -> Option<&'w mut Writer<Container>> {
        match self {
            Self::Store(writer) => Some(writer),
            Self::Relist { relist, list, .. } => {
                drop(list);
                unshare(relist).map(Relist::cancel)
            }
            Self::Closed => None,
        }
    }
}

/// The relist, once the list that filled it is gone.
fn unshare(relist: Shared<'_>) -> Option<Relist<'_, Container>> {
    let relist =
        Arc::into_inner(relist).map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner));
    if relist.is_none() {
        // The list future holds the only other reference, and is dropped first.
        tracing::error!("a relist outlived its list: the reflector stops writing to the store");
    }
    relist
}

/// The relist, locked: never waited on, as the list and the loop run on one task.
pub(super) fn lock<'a, 'w>(relist: &'a Shared<'w>) -> MutexGuard<'a, Relist<'w, Container>> {
    // Only inserts and the core's replays run under the lock; a panic in one leaves whole
    // entries behind: keep using it.
    relist.lock().unwrap_or_else(PoisonError::into_inner)
}
