//! The reflector's decisions, as a state machine without I/O.
//!
//! [`Core::step`] takes one [`Input`] (what the shell saw: a watch that opened, an event,
//! a list that ended, a fetch's answer, a failure, a timer, a refresh request; the
//! containers a list hands over go straight to [`listed`]) and returns the [`Command`]s the shell must carry out, each
//! of which starts or stops one thing (open a watch, list, fetch some ids, commit the
//! relist, answer refreshes, disconnect, reset the source, sleep, stop). Changes to the
//! cache go through the small [`Cache`] trait: the store's writer batch while watching,
//! the store's relist while listing, a `HashMap` in the tests. Nothing here awaits, reads
//! a clock, draws a random number it was not given, or touches a socket, so every branch
//! is tested with scripted inputs (`core/tests.rs`).
//!
//! The states, and what moves between them:
//!
//! ```text
//!  Connecting --WatchOpened--> Listing::Running --ListDone--> Watching{pending, fetches, held}
//!      ^                          |   (ids to fetch first: Listing::Fetching, then Fetched)
//!      |                          |   (too many events: Listing::Overflowed, then List again)
//!      |                          |                              |  RelistTick: Listing again
//!   BackoffDone <----------- Backoff <------- Failed ------------+
//! ```
//!
//! The watch is opened before the list, so no event falls between the two (the API has
//! no resource version and no replay). Events that arrive while listing are buffered and
//! replayed on top of the list, with the same rules as live events, so only the net change
//! reaches the store and its handlers. Only what the user's filters admit enters the
//! cache: the listed containers, the fetched ones and the versions events make are all
//! checked here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hypersh_store::{Change, Keyed};
use hypersh_watch::{Container, WatchEvent};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::limits::Limits;
use crate::plan::{Plan, plan};
use crate::selector::Selector;
use crate::status::{Phase, Status};

mod held;
mod messages;
mod refresh;
#[cfg(test)]
mod tests;

use held::Held;
pub(crate) use messages::{Cache, Command, Failure, FetchId, Input, RefreshId, Settings};
use refresh::Refreshes;

/// How many fetches may be in flight at once while watching: a create waits for its own
/// list call, not for the one before it.
pub(crate) const MAX_FETCHES: usize = 4;

/// Where the loop is, with what it holds there.
#[derive(Debug)]
pub(crate) enum State {
    /// Opening the watch.
    Connecting,
    /// The watch is open and a full list runs or has run.
    Listing(Listing),
    /// Events are applied as they arrive.
    Watching(Watching),
    /// Waiting before the next attempt.
    Backoff,
    /// Shut down.
    Stopped,
}

/// The phases of a list.
#[derive(Debug)]
pub(crate) enum Listing {
    /// The list runs; events are buffered, in order.
    Running {
        /// Events received since the list started.
        buffered: Held,
    },
    /// The list has ended and the buffered events named containers it could not
    /// describe: they are fetched before the relist is committed.
    Fetching {
        /// The fetch.
        fetch: FetchId,
        /// The ids it asked for and has not answered.
        ids: BTreeSet<String>,
        /// Events received since the list ended.
        buffered: Held,
    },
    /// More events arrived than [`Limits::max_buffered_events`] (or their bytes passed
    /// [`Limits::max_buffered_bytes`]): they were dropped, and
    /// this list cannot be brought up to date. Once the list (`None`) or its fetch ends,
    /// the list is taken again.
    Overflowed {
        /// The fetch that runs, if the list had ended.
        fetch: Option<FetchId>,
    },
}

/// What the watch phase keeps between events.
#[derive(Debug, Default)]
pub(crate) struct Watching {
    /// Containers an event named that must be fetched (the cache lacks them, or the
    /// event cannot say what changed), waiting for a free fetch. A fetch takes every
    /// pending container: a burst of creates costs a few list calls, not one each.
    pending: BTreeSet<String>,
    /// The containers the fetches in flight ask for.
    in_flight: BTreeSet<String>,
    /// The fetches in flight, with the ids each asked for.
    fetches: BTreeMap<FetchId, Vec<String>>,
    /// Events about containers in flight, received while their fetch runs, in order:
    /// the answer may predate them, so they are replayed on top of it.
    held: Held,
    /// Containers a refresh asked for, until their fetch answers: one it does not find is
    /// removed from the cache (a fetch for an event leaves that to the event stream).
    refreshing: BTreeSet<String>,
}

/// The reflector's state machine.
#[derive(Debug)]
pub(crate) struct Core {
    state: State,
    selector: Selector,
    backoff: Backoff,
    limits: Limits,
    relist_every: Option<Duration>,
    status: Status,
    /// Watches opened so far.
    sessions: u64,
    /// Lists started so far: the number of the current (or last) one.
    lists: u64,
    /// The last fetch started.
    last_fetch: FetchId,
    /// Refresh requests not served yet.
    refreshes: Refreshes,
    /// When the current session reached [`State::Watching`].
    watching_since: Option<Instant>,
    /// The start of the last failure logged, to log each kind once until it changes.
    last_logged: Option<String>,
}

impl Core {
    /// A core for `selector` with `settings`; `rng` draws the backoff's jitter.
    pub(crate) fn new(selector: Selector, settings: &Settings, rng: fastrand::Rng) -> Self {
        Self {
            state: State::Connecting,
            selector,
            backoff: settings.backoff.build_with(rng),
            limits: settings.limits,
            relist_every: settings.relist_every,
            status: Status::default(),
            sessions: 0,
            lists: 0,
            last_fetch: FetchId::default(),
            refreshes: Refreshes::default(),
            watching_since: None,
            last_logged: None,
        }
    }

    /// The current state.
    #[cfg(test)]
    pub(crate) fn state(&self) -> &State {
        &self.state
    }

    /// The status as of the last step.
    pub(crate) fn status(&self) -> &Status {
        &self.status
    }

    /// Records what serves the watch that just opened (see [`Status::server`]).
    pub(crate) fn set_server(&mut self, server: Option<String>) {
        self.status.server = server;
    }

    /// The user's filters.
    #[cfg(test)]
    pub(crate) fn selector(&self) -> &Selector {
        &self.selector
    }

    /// Handles one input; `cache` is the relist while listing, the store's batch while
    /// watching (it is not used in the other states, nor by inputs without containers).
    pub(crate) fn step<C: Cache>(&mut self, input: Input, cache: &mut C) -> Vec<Command> {
        match input {
            Input::Start => self.connect(),
            Input::BackoffDone if matches!(self.state, State::Backoff) => self.connect(),
            Input::BackoffDone => Vec::new(),
            Input::WatchOpened => self.watch_opened(),
            Input::Event(event) => self.event(event, cache).into_iter().collect(),
            Input::FrameError(text) => {
                tracing::warn!(error = %text, "skipping a frame that could not be decoded");
                self.status.decode_errors += 1;
                Vec::new()
            }
            Input::ListDone { now } => self.list_done(cache, now),
            Input::Fetched { fetch, found, now } => self.fetched(fetch, found, cache, now),
            Input::Failed { error, now } => self.failed(error, now),
            Input::RelistTick => self.relist_tick(),
            Input::Refresh { request, ids } => self.refresh(request, ids),
            Input::Shutdown => {
                self.state = State::Stopped;
                self.status.phase = Phase::Stopped;
                self.status.connected = false;
                self.refreshes.clear();
                vec![Command::Stop]
            }
        }
    }

    fn connect(&mut self) -> Vec<Command> {
        if matches!(self.state, State::Stopped) {
            return Vec::new();
        }
        self.state = State::Connecting;
        self.status.phase = Phase::Connecting;
        vec![Command::OpenWatch]
    }

    fn watch_opened(&mut self) -> Vec<Command> {
        if !matches!(self.state, State::Connecting) {
            return Vec::new();
        }
        self.sessions += 1;
        if self.sessions > 1 {
            self.status.reconnects += 1;
        }
        self.start_list()
    }

    fn start_list(&mut self) -> Vec<Command> {
        self.lists += 1;
        self.state = State::Listing(Listing::Running {
            buffered: Held::default(),
        });
        self.status.phase = Phase::Listing;
        vec![Command::List]
    }

    /// One event. In the watch phase this is the hot path: the container read and
    /// changed through `cache`, and a command only when a fetch can start.
    pub(crate) fn event<C: Cache>(&mut self, event: WatchEvent, cache: &mut C) -> Option<Command> {
        self.status.events_received += 1;
        match &mut self.state {
            State::Watching(w) => {
                let id = event.id();
                if w.in_flight.contains(id) {
                    if let Err(bound) = w.held.push(event, &self.limits) {
                        return self.overflow_to_relist(format!(
                            "{}: relisting",
                            bound.describe("held for fetches")
                        ));
                    }
                    return None;
                }
                if apply(&event, &self.selector, &mut w.pending, cache) {
                    self.status.events_applied += 1;
                }
                if w.pending.len() + w.in_flight.len() > self.limits.max_pending_fetches {
                    let max = self.limits.max_pending_fetches;
                    return self.overflow_to_relist(format!(
                        "more than {max} containers to fetch: relisting instead \
                         (raise Limits::max_pending_fetches)"
                    ));
                }
                start_fetch(w, &mut self.last_fetch, &mut self.status)
            }
            State::Listing(listing) => {
                let (Listing::Running { buffered } | Listing::Fetching { buffered, .. }) = listing
                else {
                    return None;
                };
                let Err(bound) = buffered.push(event, &self.limits) else {
                    return None;
                };
                let fetch = match listing {
                    Listing::Fetching { fetch, .. } => Some(*fetch),
                    _ => None,
                };
                // The events buffered so far are dropped here, with their memory.
                *listing = Listing::Overflowed { fetch };
                self.overflow(format!(
                    "{}: the list is taken again when it ends",
                    bound.describe("arrived during the list")
                ));
                None
            }
            // No stream is open in these states: a late event is dropped.
            State::Connecting | State::Backoff | State::Stopped => None,
        }
    }

    fn list_done<C: Cache>(&mut self, relist: &mut C, now: Instant) -> Vec<Command> {
        let buffered = match &mut self.state {
            State::Listing(Listing::Running { buffered }) => buffered.take(),
            State::Listing(Listing::Overflowed { fetch: None }) => return self.start_list(),
            _ => return Vec::new(),
        };
        let mut to_fetch = BTreeSet::new();
        for event in &buffered {
            apply(event, &self.selector, &mut to_fetch, relist);
        }
        // Replayed: their memory goes before the fetch or the commit.
        drop(buffered);
        if to_fetch.is_empty() {
            return self.commit(BTreeSet::new(), now);
        }
        let ids: Vec<String> = to_fetch.iter().cloned().collect();
        self.status.fetches += ids.len() as u64;
        let fetch = next(&mut self.last_fetch);
        self.state = State::Listing(Listing::Fetching {
            fetch,
            ids: to_fetch,
            buffered: Held::default(),
        });
        vec![Command::Fetch { fetch, ids }]
    }

    fn fetched<C: Cache>(
        &mut self,
        fetch: FetchId,
        found: Vec<Container>,
        cache: &mut C,
        now: Instant,
    ) -> Vec<Command> {
        let Self {
            state,
            selector,
            status,
            refreshes,
            last_fetch,
            ..
        } = self;
        match state {
            State::Listing(Listing::Overflowed { fetch: Some(f) }) if *f == fetch => {
                self.start_list()
            }
            State::Listing(Listing::Fetching {
                fetch: f,
                ids,
                buffered,
            }) if *f == fetch => {
                for c in found {
                    if ids.remove(c.id()) {
                        let id = c.id().to_owned();
                        let admitted = selector.admits(&c);
                        cache.update(&id, |cached| {
                            if admitted {
                                Some(Change::Upsert(c))
                            } else {
                                removal(cached, &id)
                            }
                        });
                    }
                }
                // A container the fetch did not find is left to the events (a buffered
                // delete removed it, or one will come); what arrived during the fetch is
                // newer than its answer: replay it on top.
                let mut pending = BTreeSet::new();
                for event in buffered.take() {
                    apply(&event, selector, &mut pending, cache);
                }
                self.commit(pending, now)
            }
            State::Watching(w) => {
                let Some(asked) = w.fetches.remove(&fetch) else {
                    return Vec::new();
                };
                let asked_ids: BTreeSet<&str> = asked.iter().map(String::as_str).collect();
                w.in_flight.retain(|id| !asked_ids.contains(id.as_str()));
                let mut applied = 0;
                let found_ids: BTreeSet<String> = found.iter().map(|c| c.id().to_owned()).collect();
                for c in found {
                    if !asked_ids.contains(c.id()) {
                        continue;
                    }
                    let admitted = selector.admits(&c);
                    let id = c.id().to_owned();
                    let changed = cache.update(&id, |cached| match cached {
                        Some(cached) if *cached == c => None,
                        Some(cached) if admitted => {
                            // The new version keeps what did not change in the cached one.
                            let mut c = c;
                            c.share_unchanged(cached);
                            Some(Change::Upsert(c))
                        }
                        Some(_) => Some(Change::Delete(id.clone())),
                        None if admitted => Some(Change::Upsert(c)),
                        None => None,
                    });
                    applied += u64::from(changed);
                }
                // A refreshed container the fetch did not find is gone (unless it is
                // to be fetched again: then that answer decides).
                for &id in &asked_ids {
                    if w.pending.contains(id) || !w.refreshing.remove(id) {
                        continue;
                    }
                    if !found_ids.contains(id) {
                        applied += u64::from(cache.update(id, |cached| removal(cached, id)));
                    }
                }
                let replay = w.held.take_if(|e| asked_ids.contains(e.id()));
                for event in replay {
                    applied += u64::from(apply(&event, selector, &mut w.pending, cache));
                }
                status.events_applied += applied;
                let mut commands = Vec::new();
                let served = refreshes.fetched(fetch, &asked);
                if !served.is_empty() {
                    commands.push(Command::Refreshed(served));
                }
                commands.extend(start_fetch(w, last_fetch, status));
                commands
            }
            // A fetch of an earlier session or phase: the list that followed covers it.
            _ => Vec::new(),
        }
    }

    /// Ends a sync: the relist is committed, the refreshes it serves are answered, then
    /// the watch phase begins with `pending` (containers that events during the sync's
    /// fetch named, and those refreshes asked for during the list) to fetch.
    fn commit(&mut self, mut pending: BTreeSet<String>, now: Instant) -> Vec<Command> {
        let mut commands = vec![Command::CommitRelist];
        self.status.relists += 1;
        self.status.phase = Phase::Watching;
        self.status.connected = true;
        self.status.synced = true;
        self.status.auth_failing = false;
        self.watching_since.get_or_insert(now);
        let served = self.refreshes.listed(self.lists);
        if !served.is_empty() {
            commands.push(Command::Refreshed(served));
        }
        // A request made during the list may be newer than the list: fetch its ids.
        let refreshing: BTreeSet<String> =
            self.refreshes.made_during(self.lists).cloned().collect();
        pending.extend(refreshing.iter().cloned());
        if let Some(period) = self.relist_every {
            commands.push(Command::RelistAfter(period));
        }
        let mut watching = Watching {
            pending,
            refreshing,
            ..Watching::default()
        };
        commands.extend(start_fetch(
            &mut watching,
            &mut self.last_fetch,
            &mut self.status,
        ));
        self.state = State::Watching(watching);
        commands
    }

    /// Records that a bound was passed: counted, logged, and the last error says which.
    fn overflow(&mut self, text: String) {
        tracing::warn!("{text}");
        self.status.overflows += 1;
        self.status.last_error = Some(text);
    }

    /// A bound was passed while watching: relist rather than grow.
    fn overflow_to_relist(&mut self, text: String) -> Option<Command> {
        self.overflow(text);
        self.start_list().pop()
    }

    /// Records a refresh request. While watching its ids are fetched at once, ahead of
    /// anything the cache holds (an id whose fetch is in flight is fetched again after
    /// it: that answer may predate the request); otherwise the next list serves it, or,
    /// during a list, a fetch after its commit.
    fn refresh(&mut self, request: RefreshId, ids: Vec<String>) -> Vec<Command> {
        if matches!(self.state, State::Stopped) {
            return Vec::new();
        }
        if ids.is_empty() {
            return vec![Command::Refreshed(vec![request])];
        }
        self.refreshes
            .add(request, ids.iter().cloned(), self.last_fetch, self.lists);
        let State::Watching(w) = &mut self.state else {
            return Vec::new();
        };
        for id in ids {
            w.refreshing.insert(id.clone());
            w.pending.insert(id);
        }
        start_fetch(w, &mut self.last_fetch, &mut self.status)
            .into_iter()
            .collect()
    }

    fn relist_tick(&mut self) -> Vec<Command> {
        if !matches!(self.state, State::Watching(_)) {
            return Vec::new();
        }
        tracing::debug!("periodic relist");
        self.start_list()
    }

    fn failed(&mut self, error: Option<Failure>, now: Instant) -> Vec<Command> {
        if matches!(self.state, State::Stopped | State::Backoff) {
            return Vec::new();
        }
        let healthy_for = self
            .watching_since
            .take()
            .map_or(Duration::ZERO, |since| now.saturating_duration_since(since));
        if healthy_for >= self.backoff.config().reset_after {
            self.backoff.reset();
            self.last_logged = None;
        }
        let auth = error.as_ref().is_some_and(|e| e.auth);
        let text = error
            .as_ref()
            .map_or_else(|| "server closed the watch".to_owned(), |e| e.text.clone());
        self.log_failure(&text, auth, self.status.synced);
        if error.is_some() {
            self.status.failures += 1;
        }
        if auth {
            self.status.auth_failures += 1;
        }
        self.status.connected = false;
        self.status.auth_failing = auth;
        self.status.last_error = Some(text);
        self.status.phase = Phase::Backoff;
        self.state = State::Backoff;
        let delay = if auth {
            self.backoff.auth_delay()
        } else {
            self.backoff.next_delay()
        };
        tracing::debug!(?delay, "backing off");
        // A pooled connection from the failed session may be half dead: forget them all.
        vec![
            Command::Disconnect,
            Command::ResetSource,
            Command::Sleep(delay),
        ]
    }

    /// Logs a failure once per kind (its text up to the first `:`), until the kind
    /// changes or a healthy session resets the backoff.
    /// `ever_synced`: a session got as far as a synced cache (a watch that opened but
    /// whose list failed is not a connection that ended).
    fn log_failure(&mut self, text: &str, auth: bool, ever_synced: bool) {
        let kind = text.split(':').next().unwrap_or(text);
        if self.last_logged.as_deref() == Some(kind) {
            tracing::debug!(error = %text, "failed again");
            return;
        }
        self.last_logged = Some(kind.to_owned());
        if auth {
            tracing::error!(error = %text, "authentication failed; retrying at the maximum backoff");
        } else if ever_synced {
            tracing::warn!(error = %text, "watch ended; reconnecting");
        } else {
            tracing::warn!(error = %text, "could not connect; retrying");
        }
    }
}

/// A container the list handed over: into the relist if the selector admits it. The shell
/// calls it for each container as the source decodes it (the list's hot path), while the
/// core is listing.
pub(crate) fn listed<C: Cache>(selector: &Selector, c: Container, relist: &mut C) {
    if selector.admits(&c) {
        relist.insert(c);
    }
}

/// The number of the next fetch.
fn next(last: &mut FetchId) -> FetchId {
    last.0 += 1;
    *last
}

/// Starts a fetch of every pending container if fewer than [`MAX_FETCHES`] run.
fn start_fetch(w: &mut Watching, last: &mut FetchId, status: &mut Status) -> Option<Command> {
    if w.pending.is_empty() || w.fetches.len() >= MAX_FETCHES {
        return None;
    }
    // A container in flight stays pending (only a refresh puts one there): it is fetched
    // again once its answer is in, so events during the new fetch are held for it.
    let ids: Vec<String> = if w.pending.iter().any(|id| w.in_flight.contains(id)) {
        let (ids, busy): (BTreeSet<String>, BTreeSet<String>) = std::mem::take(&mut w.pending)
            .into_iter()
            .partition(|id| !w.in_flight.contains(id));
        w.pending = busy;
        ids.into_iter().collect()
    } else {
        std::mem::take(&mut w.pending).into_iter().collect()
    };
    if ids.is_empty() {
        return None;
    }
    let fetch = next(last);
    w.in_flight.extend(ids.iter().cloned());
    w.fetches.insert(fetch, ids.clone());
    status.fetches += ids.len() as u64;
    Some(Command::Fetch { fetch, ids })
}

/// Applies one event to `cache`, with `pending` the containers waiting to be fetched;
/// returns whether the cache changed. The same rule serves live events and the events
/// replayed on top of a list.
///
/// A pending container is fetched after this event and will be seen in a newer state,
/// unless it is gone: then its delete is applied now and the fetch is dropped. A version
/// the selector no longer admits (a rename out of a `container` filter) leaves the cache.
fn apply<C: Cache>(
    event: &WatchEvent,
    selector: &Selector,
    pending: &mut BTreeSet<String>,
    cache: &mut C,
) -> bool {
    let id = event.id();
    if pending.contains(id) {
        if matches!(event, WatchEvent::Deleted(_)) {
            pending.remove(id);
            return cache.update(id, |cached| removal(cached, id));
        }
        return false;
    }
    let mut fetch = false;
    let changed = cache.update(id, |cached| match plan(event, cached) {
        Plan::Nothing => None,
        Plan::Upsert(c) if selector.admits(&c) => Some(Change::Upsert(c)),
        Plan::UpsertThenFetch(c) if selector.admits(&c) => {
            fetch = true;
            Some(Change::Upsert(c))
        }
        Plan::Upsert(_) | Plan::UpsertThenFetch(_) | Plan::Delete => removal(cached, id),
        Plan::Fetch => {
            fetch = true;
            None
        }
    });
    if fetch {
        pending.insert(id.to_owned());
    }
    changed
}

/// The change that removes `id`, if the cache has it.
fn removal(cached: Option<&Container>, id: &str) -> Option<Change<Container>> {
    cached.map(|_| Change::Delete(id.to_owned()))
}
