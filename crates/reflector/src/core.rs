//! The reflector's decisions, as a state machine without I/O.
//!
//! [`Core::step`] takes one [`Input`] (what the shell saw: a watch that opened, an event, a
//! list that ended, a fetch's answer, a failure, a timer) and returns the [`Command`]s the
//! shell must carry out (open a watch, list, fetch some ids, commit the relist, sleep,
//! stop). Changes to the cache go through the small [`Cache`] trait: the store's writer
//! batch while watching, the store's relist while listing, a `HashMap` in the tests.
//! Nothing here awaits, reads a clock or touches a socket, so every branch is tested with
//! scripted inputs (`core/tests.rs`).
//!
//! The states, and what moves between them:
//!
//! ```text
//!  Connecting --WatchOpened--> Listing{buffered} --ListDone--> Watching{pending, in_flight, held}
//!      ^                          |      (ids to fetch first: Listing{fetching}, then Fetched)
//!      |                          |                              |  RelistTick: Listing again
//!   BackoffDone <----------- Backoff <------- Failed ------------+
//! ```
//!
//! The watch is opened before the list, so no event falls between the two (the API has
//! no resource version and no replay). Events that arrive while listing are buffered and
//! replayed on top of the list, with the same rules as live events, so only the net change
//! reaches the store and its handlers.

use std::collections::BTreeSet;
use std::time::Duration;

use hypersh_store::{Change, Keyed};
use hypersh_watch::{Container, WatchEvent};
use tokio::time::Instant;

use crate::backoff::{Backoff, BackoffConfig};
use crate::limits::Limits;
use crate::plan::{Plan, plan};
use crate::selector::Selector;
use crate::status::{Phase, Status};

#[cfg(test)]
mod tests;

/// How many fetches may be in flight at once while watching: a create waits for its own
/// list call, not for the one before it.
pub(crate) const MAX_FETCHES: usize = 4;

/// Where the core reads and changes cached containers.
///
/// `update` looks the container up once, lets `f` decide the change from the cached
/// version (`None` when absent), and applies it; it returns whether anything changed.
pub(crate) trait Cache {
    /// Applies what `f` decides for the container `id`.
    fn update<F>(&mut self, id: &str, f: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>;
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
    /// The full list has been streamed into the relist (the cache given with this input).
    ListDone {
        /// When, to measure how long the session stays healthy.
        now: Instant,
    },
    /// A fetch answered: the containers found among those asked for.
    Fetched {
        /// The ids the fetch asked for.
        asked: Vec<String>,
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
    /// Fetch these containers now, whatever the cache holds (`Informer::refresh`, a
    /// consistency barrier). Only acted on while watching: in the other states the list
    /// that comes covers them.
    Refresh(Vec<String>),
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

/// What the shell must do next, in order.
#[derive(Debug, PartialEq)]
pub(crate) enum Command {
    /// Open the watch stream (then report [`Input::WatchOpened`] or [`Input::Failed`]).
    OpenWatch,
    /// Start a full list into a new relist, while the stream keeps being read (its events
    /// are buffered by the core). Fetches in flight are abandoned: the list covers them.
    List,
    /// Fetch these containers by id (then report [`Input::Fetched`] or
    /// [`Input::Failed`]).
    Fetch(Vec<String>),
    /// The relist is final: keep only what the selector admits, and commit it.
    CommitRelist,
    /// Close the stream, if one is open, and wait this long before
    /// [`Input::BackoffDone`].
    Sleep(Duration),
    /// Close the stream, if one is open, and stop.
    Stop,
}

/// Where the loop is, with what it holds there.
#[derive(Debug)]
pub(crate) enum State {
    /// Opening the watch.
    Connecting,
    /// The watch is open and a full list runs; events are buffered.
    Listing {
        /// Events received since the list started, in order (or, while `fetching`,
        /// since the list ended).
        buffered: Vec<WatchEvent>,
        /// Set once the list has ended when the buffered events named containers the
        /// list could not describe: these are fetched before the relist is committed.
        fetching: Option<BTreeSet<String>>,
        /// More events arrived than [`Limits::max_buffered_events`]: they were dropped,
        /// and this list cannot be brought up to date. Another list follows it.
        overflowed: bool,
    },
    /// Events are applied as they arrive.
    Watching(Watching),
    /// Waiting before the next attempt.
    Backoff,
    /// Shut down.
    Stopped,
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
    /// How many fetches are in flight.
    fetches: usize,
    /// Events about containers in flight, received while their fetch runs, in order:
    /// the answer may predate them, so they are replayed on top of it.
    held: Vec<WatchEvent>,
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
    status: Status,
    /// Watches opened so far.
    sessions: u64,
    /// When the current session reached [`State::Watching`].
    watching_since: Option<Instant>,
    /// The start of the last failure logged, to log each kind once until it changes.
    last_logged: Option<String>,
}

impl Core {
    pub(crate) fn new(selector: Selector, backoff: &BackoffConfig, limits: Limits) -> Self {
        Self {
            state: State::Connecting,
            selector,
            backoff: backoff.build(),
            limits,
            status: Status::default(),
            sessions: 0,
            watching_since: None,
            last_logged: None,
        }
    }

    /// The current state.
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

    /// The memory bounds.
    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// The user's filters, in the forms the source needs.
    pub(crate) fn selector(&self) -> &Selector {
        &self.selector
    }

    /// Handles one input; `cache` is the relist while listing, the store's batch while
    /// watching (it is not used in the other states).
    pub(crate) fn step<C: Cache>(&mut self, input: Input, cache: &mut C) -> Vec<Command> {
        match input {
            Input::Start | Input::BackoffDone => self.connect(),
            Input::WatchOpened => self.watch_opened(),
            Input::Event(event) => self.event(event, cache).into_iter().collect(),
            Input::FrameError(text) => {
                tracing::warn!(error = %text, "skipping a frame that could not be decoded");
                self.status.decode_errors += 1;
                Vec::new()
            }
            Input::ListDone { now } => self.list_done(cache, now),
            Input::Fetched { asked, found, now } => self.fetched(&asked, found, cache, now),
            Input::Failed { error, now } => self.failed(error, now),
            Input::RelistTick => self.relist_tick(),
            Input::Refresh(ids) => self.refresh(ids),
            Input::Shutdown => {
                self.state = State::Stopped;
                self.status.phase = Phase::Stopped;
                self.status.connected = false;
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
        self.state = State::Listing {
            buffered: Vec::new(),
            fetching: None,
            overflowed: false,
        };
        self.status.phase = Phase::Listing;
        vec![Command::List]
    }

    /// One event. In the watch phase this is the hot path: the container read and
    /// changed through `cache`, and a command only when a fetch can start.
    pub(crate) fn event<C: Cache>(&mut self, event: WatchEvent, cache: &mut C) -> Option<Command> {
        self.status.events_received += 1;
        let max = self.limits.max_buffered_events;
        match &mut self.state {
            State::Listing {
                overflowed: true, ..
            } => None,
            State::Listing {
                buffered,
                overflowed,
                ..
            } => {
                if buffered.len() < max {
                    buffered.push(event);
                } else {
                    *buffered = Vec::new();
                    *overflowed = true;
                    self.overflow(format!(
                        "more than {max} events arrived during the list: it is taken again \
                         when it ends (raise Limits::max_buffered_events)"
                    ));
                }
                None
            }
            State::Watching(w) => {
                let id = event.id();
                if w.in_flight.contains(id) {
                    if w.held.len() >= max {
                        return self.overflow_to_relist(format!(
                            "more than {max} events held for fetches: relisting \
                             (raise Limits::max_buffered_events)"
                        ));
                    }
                    w.held.push(event);
                    return None;
                }
                if apply(&event, &mut w.pending, cache) {
                    self.status.events_applied += 1;
                }
                if w.pending.len() + w.in_flight.len() > self.limits.max_pending_fetches {
                    let max = self.limits.max_pending_fetches;
                    return self.overflow_to_relist(format!(
                        "more than {max} containers to fetch: relisting instead \
                         (raise Limits::max_pending_fetches)"
                    ));
                }
                start_fetch(w, &mut self.status)
            }
            // No stream is open in these states: a late event is dropped.
            State::Connecting | State::Backoff | State::Stopped => None,
        }
    }

    fn list_done<C: Cache>(&mut self, relist: &mut C, now: Instant) -> Vec<Command> {
        let State::Listing {
            buffered,
            fetching: fetching @ None,
            overflowed,
        } = &mut self.state
        else {
            return Vec::new();
        };
        if *overflowed {
            return self.start_list();
        }
        let mut to_fetch = BTreeSet::new();
        for event in buffered.drain(..) {
            apply(&event, &mut to_fetch, relist);
        }
        if to_fetch.is_empty() {
            return self.commit(BTreeSet::new(), now);
        }
        let ids: Vec<String> = to_fetch.iter().cloned().collect();
        self.status.fetches += ids.len() as u64;
        *fetching = Some(to_fetch);
        vec![Command::Fetch(ids)]
    }

    fn fetched<C: Cache>(
        &mut self,
        asked: &[String],
        found: Vec<Container>,
        cache: &mut C,
        now: Instant,
    ) -> Vec<Command> {
        match &mut self.state {
            State::Listing {
                overflowed: true, ..
            } => self.start_list(),
            State::Listing {
                buffered,
                fetching: Some(fetching),
                overflowed: false,
            } => {
                for c in found {
                    if fetching.remove(c.id()) {
                        let id = c.id().to_owned();
                        cache.update(&id, |_| Some(Change::Upsert(c)));
                    }
                }
                // What the fetch did not find is gone; what arrived during the fetch is
                // newer than its answer: replay it on top.
                let mut pending = BTreeSet::new();
                for event in buffered.drain(..) {
                    apply(&event, &mut pending, cache);
                }
                self.commit(pending, now)
            }
            State::Watching(w) => {
                let asked: BTreeSet<&str> = asked.iter().map(String::as_str).collect();
                w.in_flight.retain(|id| !asked.contains(id.as_str()));
                w.fetches = w.fetches.saturating_sub(1);
                let mut applied = 0;
                let found_ids: BTreeSet<String> = found.iter().map(|c| c.id().to_owned()).collect();
                for c in found {
                    if !asked.contains(c.id()) {
                        continue;
                    }
                    let admitted = self.selector.admits(&c);
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
                for &id in &asked {
                    if w.pending.contains(id) || !w.refreshing.remove(id) {
                        continue;
                    }
                    if !found_ids.contains(id) {
                        applied += u64::from(cache.update(id, |cached| removal(cached, id)));
                    }
                }
                let (replay, still_held) = std::mem::take(&mut w.held)
                    .into_iter()
                    .partition(|e: &WatchEvent| asked.contains(e.id()));
                w.held = still_held;
                for event in replay {
                    applied += u64::from(apply(&event, &mut w.pending, cache));
                }
                self.status.events_applied += applied;
                start_fetch(w, &mut self.status).into_iter().collect()
            }
            // A fetch of an earlier session or phase: the list that followed covers it.
            _ => Vec::new(),
        }
    }

    /// Ends a sync: the relist is committed, then the watch phase begins with `pending`
    /// (containers that events during the sync's fetch named) to fetch.
    fn commit(&mut self, pending: BTreeSet<String>, now: Instant) -> Vec<Command> {
        let mut commands = vec![Command::CommitRelist];
        self.status.relists += 1;
        self.status.phase = Phase::Watching;
        self.status.connected = true;
        self.status.synced = true;
        self.status.auth_failing = false;
        self.watching_since.get_or_insert(now);
        let mut watching = Watching {
            pending,
            ..Watching::default()
        };
        commands.extend(start_fetch(&mut watching, &mut self.status));
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

    /// Queues `ids` for a fetch, ahead of anything the cache holds. An id whose fetch is
    /// in flight already is fetched again after it: that answer may predate the request.
    fn refresh(&mut self, ids: Vec<String>) -> Vec<Command> {
        let State::Watching(w) = &mut self.state else {
            return Vec::new();
        };
        for id in ids {
            w.refreshing.insert(id.clone());
            w.pending.insert(id);
        }
        start_fetch(w, &mut self.status).into_iter().collect()
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
        vec![Command::Sleep(delay)]
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

/// Starts a fetch of every pending container if fewer than [`MAX_FETCHES`] run.
fn start_fetch(w: &mut Watching, status: &mut Status) -> Option<Command> {
    if w.pending.is_empty() || w.fetches >= MAX_FETCHES {
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
    w.in_flight.extend(ids.iter().cloned());
    w.fetches += 1;
    status.fetches += ids.len() as u64;
    Some(Command::Fetch(ids))
}

/// Applies one event to `cache`, with `pending` the containers waiting to be fetched;
/// returns whether the cache changed. The same rule serves live events and the events
/// replayed on top of a list.
///
/// A pending container is fetched after this event and will be seen in a newer state,
/// unless it is gone: then its delete is applied now and the fetch is dropped.
fn apply<C: Cache>(event: &WatchEvent, pending: &mut BTreeSet<String>, cache: &mut C) -> bool {
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
        Plan::Upsert(c) => Some(Change::Upsert(c)),
        Plan::UpsertThenFetch(c) => {
            fetch = true;
            Some(Change::Upsert(c))
        }
        Plan::Delete => removal(cached, id),
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
