//! What goes into the core and comes out of it: the [`Input`]s the shell reports, the
//! [`Command`]s it carries out, the [`Cache`] the core changes, and the settings it is
//! built with.

use std::time::Duration;

use hypersh_store::Change;
use hypersh_watch::{Container, WatchEvent};
use tokio::time::Instant;

#[cfg(doc)]
use super::{Core, listed};
use crate::backoff::BackoffConfig;
use crate::limits::Limits;

/// Where the core reads and changes cached containers.
pub(crate) trait Cache {
    /// Looks the container `id` up once, lets `f` decide the change from the cached
    /// version (`None` when absent), and applies it; returns whether anything changed.
    fn update<F>(&mut self, id: &str, f: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>;

    /// Stores a listed container, replacing any version with its id.
    fn insert(&mut self, c: Container);
}

/// The number of a fetch, in the order the core started them (the first is 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FetchId(pub(super) u64);

/// A refresh request, numbered by the shell, which answers it when the core says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct RefreshId(pub(crate) u64);

/// The reflector's policies.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    /// The reconnect policy.
    pub(crate) backoff: BackoffConfig,
    /// The memory bounds.
    pub(crate) limits: Limits,
    /// How long after each commit the next periodic relist is due (`None`: never).
    pub(crate) relist_every: Option<Duration>,
    /// How long the reflector may be down before the shell empties the cache (`None`:
    /// keep it; see `InformerBuilder::drop_after`).
    pub(crate) drop_after: Option<Duration>,
}

/// What the shell observed. Each is handled by [`Core::step`].
#[derive(Debug)]
pub(crate) enum Input {
    /// The reflector starts.
    Start,
    /// The watch stream is open.
    WatchOpened,
    /// One event from the watch stream.
    Event(WatchEvent),
    /// A frame that could not be decoded; the stream goes on.
    FrameError(String),
    /// The list has ended without an error (the relist is the cache given).
    ListDone {
        /// When, to measure how long the session stays healthy.
        now: Instant,
    },
    /// A fetch answered: the containers found among those it asked for.
    Fetched {
        /// Which fetch.
        fetch: FetchId,
        /// What the source found (those not found are gone).
        found: Vec<Container>,
        /// When.
        now: Instant,
    },
    /// The session failed: opening the watch, the list, a fetch, or the stream (`None`:
    /// the server ended the stream without an error).
    Failed {
        /// What failed, or `None` for a stream that ended cleanly.
        error: Option<Failure>,
        /// When.
        now: Instant,
    },
    /// The backoff delay has passed.
    BackoffDone,
    /// The periodic relist is due.
    RelistTick,
    /// Fetch these containers now, whatever the cache holds, and say when the result has
    /// been committed (`Informer::refresh`, a consistency barrier).
    Refresh {
        /// The request, to answer with [`Command::Refreshed`].
        request: RefreshId,
        /// The container ids.
        ids: Vec<String>,
    },
    /// Shutdown was requested.
    Shutdown,
}

/// A failure, as the core needs to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    /// The server refused the credentials.
    pub(crate) auth: bool,
    /// The error's text, for the status and the log.
    pub(crate) text: String,
}

/// What the shell must do next, in order. Each starts or stops one thing.
#[derive(Debug, PartialEq)]
pub(crate) enum Command {
    /// Start opening the watch stream (then report [`Input::WatchOpened`] or
    /// [`Input::Failed`]).
    OpenWatch,
    /// Stop the fetches in flight and any list, and start a full list into a new relist
    /// while the stream keeps being read (each container into [`listed`] as it arrives,
    /// then report [`Input::ListDone`] or [`Input::Failed`]).
    List,
    /// Start fetching these containers by id (then report [`Input::Fetched`] or
    /// [`Input::Failed`]).
    Fetch {
        /// The fetch's number, to report with its answer.
        fetch: FetchId,
        /// The container ids.
        ids: Vec<String>,
    },
    /// Commit the relist to the store; changes go to the store directly after it.
    CommitRelist,
    /// Answer these refresh requests: what they asked for is in the store, and every
    /// handler has been offered it.
    Refreshed(Vec<RefreshId>),
    /// Start the periodic relist timer (report [`Input::RelistTick`] when it fires).
    RelistAfter(Duration),
    /// Stop the session: drop the stream, the list and its relist, the fetches and the
    /// relist timer.
    Disconnect,
    /// Make the source forget its pooled connections ([`Source::reset`]): the next
    /// session must not reuse one from before a failure.
    ///
    /// [`Source::reset`]: crate::Source::reset
    ResetSource,
    /// Start the backoff timer (report [`Input::BackoffDone`] when it fires).
    Sleep(Duration),
    /// Close the stream politely, if one is open, and stop.
    Stop,
}
