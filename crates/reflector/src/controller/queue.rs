//! The controller's work queue, as a data structure without I/O: every decision (what
//! runs next, when a retry is due, what a change during a reconcile does) is taken here
//! from the time passed in, so it is tested with scripted calls (`queue/tests.rs`).
//!
//! It combines what client-go splits over `workqueue` (dedupe, per-key serialization:
//! its `dirty` and `processing` sets), its rate limiters (`ItemExponentialFailureRateLimiter`
//! and `BucketRateLimiter`, combined by `MaxOfRateLimiter` as in
//! `DefaultControllerRateLimiter`) and its delaying queue (`AddAfter`), and what
//! kube-runtime's scheduler does (the earlier of two schedules for one key wins).
//!
//! Every key has at most one [`Entry`]; an entry is in at most one of `ready` and
//! `delayed`, and only while it is not running. So the queue holds at most one entry per
//! key the cache has (plus the deleted keys whose final reconcile has not succeeded yet):
//! it is bounded by the cache.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use tokio::time::Instant;

use super::Reason;
use crate::backoff::Exponential;

/// Which waiting items go first.
///
/// A [`High`](Self::High) item goes before a [`Low`](Self::Low) one unless the low one
/// became ready more than the aging period earlier: a low item is ordered as if it had
/// become ready one aging period later, so a flood of low items never delays a live
/// change by more than that, and no low item waits behind live ones for ever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Priority {
    /// The flood: the first list, a late handler's synthetic adds, a resync, a relist's
    /// tombstones, [`reconcile_all`](super::ControllerHandle::reconcile_all).
    Low,
    /// A change seen on the watch, or an explicit trigger.
    High,
}

/// How a reconcile ended, as the queue needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done: forget the key's failures.
    Done,
    /// Reconcile again after this long (the failures are forgotten).
    RequeueAfter(Duration),
    /// Failed (an error or a panic): retry after the key's backoff and the overall limit.
    Failed,
    /// Failed, and the error says when to retry.
    RetryAfter(Duration),
    /// Failed for good: not retried (the failures are forgotten).
    Terminal,
}

/// The queue's settings (see `ControllerConfig`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueueConfig {
    pub(crate) concurrency: usize,
    pub(crate) backoff_base: Duration,
    pub(crate) backoff_max: Duration,
    pub(crate) qps: f64,
    pub(crate) burst: u32,
    pub(crate) aging: Duration,
}

/// An item handed out to run.
#[derive(Debug, PartialEq)]
pub(crate) struct Work<S> {
    pub(crate) key: String,
    pub(crate) state: S,
    /// 1 for the first try, 2 for the first retry after a failure, ...
    pub(crate) attempt: u32,
    /// Why it runs.
    pub(crate) reason: Reason,
    /// How long it waited from its first enqueue to now.
    pub(crate) waited: Duration,
}

/// What [`Queue::next`] says.
#[derive(Debug, PartialEq)]
pub(crate) enum Next<S> {
    /// Run this now.
    Run(Work<S>),
    /// Nothing can run before this instant (or before a reconcile ends, when it is `None`).
    Wait(Option<Instant>),
}

/// Where a waiting entry is.
#[derive(Clone, Copy, Debug)]
struct Waiting {
    /// When it may run.
    ready_at: Instant,
    priority: Priority,
    /// When it started waiting (for the oldest-item age).
    since: Instant,
    /// Its place in `ready` or `delayed`.
    seq: u64,
    /// Why it will run.
    reason: Reason,
}

/// Everything the queue knows about one key.
#[derive(Debug)]
struct Entry<S> {
    /// The latest state: the one the next reconcile gets.
    state: S,
    waiting: Option<Waiting>,
    running: bool,
    /// A change (or trigger) arrived while running: run again after, at this priority,
    /// for this reason.
    dirty: Option<(Priority, Instant, Reason)>,
    /// Consecutive failures.
    failures: u32,
}

/// The work queue. `S` is what a reconcile gets (the controller's latest known state).
#[derive(Debug)]
pub(crate) struct Queue<S> {
    config: QueueConfig,
    /// The per-key retry delays.
    backoff: Exponential,
    entries: HashMap<String, Entry<S>>,
    /// Waiting and due, by effective time (see [`Priority`]).
    ready: BTreeSet<(Instant, u64, String)>,
    /// Waiting and not yet due, by due time.
    delayed: BTreeSet<(Instant, u64, String)>,
    running: usize,
    seq: u64,
    bucket: TokenBucket,
    /// Nothing is handed out while paused.
    paused: bool,
    shut_down: bool,
}

impl<S> Queue<S> {
    pub(crate) fn new(config: QueueConfig, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(config.qps, config.burst, now),
            backoff: Exponential::new(config.backoff_base, 2.0, config.backoff_max),
            config,
            entries: HashMap::new(),
            ready: BTreeSet::new(),
            delayed: BTreeSet::new(),
            running: 0,
            seq: 0,
            paused: false,
            shut_down: false,
        }
    }

    /// Queues `key` now with `priority`, for `reason`. `state` replaces the state known
    /// for the key; with `None` the known state is kept, and a key without one is not
    /// queued (returns `false`). A key already waiting stays queued once, with the latest
    /// state and the higher priority (and the reason of the latest add at that priority);
    /// a key running is run again after.
    pub(crate) fn add(
        &mut self,
        key: &str,
        state: Option<S>,
        priority: Priority,
        reason: Reason,
        now: Instant,
    ) -> bool {
        if self.shut_down {
            return false;
        }
        let entry = match (self.entries.get_mut(key), state) {
            (Some(entry), state) => {
                if let Some(state) = state {
                    entry.state = state;
                }
                entry
            }
            (None, Some(state)) => self.entries.entry(key.to_owned()).or_insert(Entry {
                state,
                waiting: None,
                running: false,
                dirty: None,
                failures: 0,
            }),
            (None, None) => return false,
        };
        if entry.running {
            entry.dirty = Some(match entry.dirty {
                Some((p, since, kept)) if p > priority => (p, since, kept),
                Some((p, since, _)) => (p.max(priority), since, reason),
                None => (priority, now, reason),
            });
            return true;
        }
        self.schedule(key, now, priority, reason, now);
        true
    }

    /// Puts `key` (which has an entry, not running) in line for `ready_at`; if it waits
    /// already, the earlier time and the higher priority win.
    fn schedule(
        &mut self,
        key: &str,
        ready_at: Instant,
        priority: Priority,
        reason: Reason,
        now: Instant,
    ) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        let w = match entry.waiting.take() {
            Some(mut w) => {
                // The reason is why the key runs when it does: a schedule that makes it
                // earlier, or one due as soon as the waiting one at no lower priority (the
                // latest change), replaces it; a later retry does not.
                if ready_at < w.ready_at
                    || (ready_at <= w.ready_at.max(now) && priority >= w.priority)
                {
                    w.reason = reason;
                }
                // Already in line: it keeps its place unless this makes it earlier.
                if w.ready_at <= ready_at && w.priority >= priority {
                    entry.waiting = Some(w);
                    return;
                }
                remove_slot(
                    &mut self.ready,
                    &mut self.delayed,
                    &w,
                    key,
                    self.config.aging,
                );
                Waiting {
                    ready_at: w.ready_at.min(ready_at),
                    priority: w.priority.max(priority),
                    ..w
                }
            }
            None => {
                self.seq += 1;
                Waiting {
                    ready_at,
                    priority,
                    since: now,
                    seq: self.seq,
                    reason,
                }
            }
        };
        entry.waiting = Some(w);
        if ready_at <= now {
            self.ready
                .insert((effective(&w, self.config.aging), w.seq, key.to_owned()));
        } else {
            self.delayed.insert((ready_at, w.seq, key.to_owned()));
        }
    }

    /// The next item to run at `now`, if the concurrency bound allows one; else when to
    /// ask again.
    pub(crate) fn next(&mut self, now: Instant) -> Next<S>
    where
        S: Clone,
    {
        self.promote(now);
        if self.shut_down || self.paused || self.running >= self.config.concurrency {
            return Next::Wait(None);
        }
        let Some((_, _, key)) = self.ready.pop_first() else {
            return Next::Wait(self.delayed.first().map(|(at, _, _)| *at));
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return Next::Wait(None);
        };
        let (since, reason) = entry
            .waiting
            .take()
            .map_or((now, Reason::Trigger), |w| (w.since, w.reason));
        entry.running = true;
        self.running += 1;
        Next::Run(Work {
            state: entry.state.clone(),
            attempt: entry.failures.saturating_add(1),
            waited: now.saturating_duration_since(since),
            reason,
            key,
        })
    }

    /// Moves what is due from `delayed` to `ready`.
    fn promote(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.delayed.first() {
            if *at > now {
                break;
            }
            let Some((_, _, key)) = self.delayed.pop_first() else {
                break;
            };
            if let Some(w) = self.entries.get(&key).and_then(|e| e.waiting) {
                self.ready
                    .insert((effective(&w, self.config.aging), w.seq, key));
            }
        }
    }

    /// Records how the reconcile of `key` ended; returns the retry delay of a failure.
    pub(crate) fn done(&mut self, key: &str, outcome: Outcome, now: Instant) -> Option<Duration> {
        let entry = self.entries.get_mut(key)?;
        if !entry.running {
            return None;
        }
        entry.running = false;
        self.running = self.running.saturating_sub(1);
        let dirty = entry.dirty.take();
        let (again, retry) = match outcome {
            Outcome::Done | Outcome::Terminal => {
                entry.failures = 0;
                (None, None)
            }
            Outcome::RequeueAfter(d) => {
                entry.failures = 0;
                (Some((now + d, Reason::Requeue)), None)
            }
            Outcome::Failed => {
                let per_item = self.backoff.delay(entry.failures);
                entry.failures = entry.failures.saturating_add(1);
                // As client-go's MaxOfRateLimiter: the later of the two.
                let delay = per_item.max(self.bucket.reserve(now));
                (Some((now + delay, Reason::Retry)), Some(delay))
            }
            Outcome::RetryAfter(delay) => {
                entry.failures = entry.failures.saturating_add(1);
                (Some((now + delay, Reason::Retry)), Some(delay))
            }
        };
        if let Some((priority, _, reason)) = dirty {
            self.schedule(key, now, priority, reason, now);
        }
        if let Some((at, reason)) = again {
            self.schedule(key, at, Priority::High, reason, now);
        }
        if dirty.is_none() && again.is_none() {
            self.entries.remove(key);
        }
        retry
    }

    /// Stops (or resumes) handing out work; what waits stays, and keys still queue.
    pub(crate) fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Whether work is held back.
    pub(crate) fn is_paused(&self) -> bool {
        self.paused
    }

    /// Stops handing out work; what waits stays (see [`waiting_keys`](Self::waiting_keys)).
    pub(crate) fn shut_down(&mut self) {
        self.shut_down = true;
    }

    /// Keys waiting (not running), sorted.
    pub(crate) fn waiting_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.waiting.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Keys running, sorted.
    pub(crate) fn running_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.running)
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// How many keys wait (due or not).
    pub(crate) fn depth(&self) -> usize {
        self.ready.len() + self.delayed.len()
    }

    /// How many reconciles run.
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// How long the longest-waiting due key has waited (zero when none is due).
    pub(crate) fn oldest(&self, now: Instant) -> Duration {
        self.ready
            .iter()
            .filter_map(|(_, _, k)| self.entries.get(k)?.waiting)
            .map(|w| now.saturating_duration_since(w.since))
            .max()
            .unwrap_or_default()
    }

    /// The state known for `key`, if it has an entry.
    #[cfg(test)]
    pub(crate) fn state(&self, key: &str) -> Option<&S> {
        self.entries.get(key).map(|e| &e.state)
    }
}

/// The time a waiting entry is ordered by among the due ones.
fn effective(w: &Waiting, aging: Duration) -> Instant {
    match w.priority {
        Priority::High => w.ready_at,
        Priority::Low => w.ready_at + aging,
    }
}

/// Takes a waiting entry's slot out of whichever set holds it.
fn remove_slot(
    ready: &mut BTreeSet<(Instant, u64, String)>,
    delayed: &mut BTreeSet<(Instant, u64, String)>,
    w: &Waiting,
    key: &str,
    aging: Duration,
) {
    let key = key.to_owned();
    if !delayed.remove(&(w.ready_at, w.seq, key.clone())) {
        ready.remove(&(effective(w, aging), w.seq, key));
    }
}

/// client-go's `BucketRateLimiter` (golang.org/x/time/rate's `Reserve`): `burst` tokens,
/// refilled at `qps`; a reservation beyond the tokens waits for its token.
#[derive(Debug)]
struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(qps: f64, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            qps,
            burst,
            tokens: burst,
            at: now,
        }
    }

    /// Takes a token; returns how long to wait for it.
    fn reserve(&mut self, now: Instant) -> Duration {
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(-self.tokens / self.qps).unwrap_or(Duration::MAX)
        }
    }
}

#[cfg(test)]
mod tests;
