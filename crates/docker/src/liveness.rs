//! [`Liveness`]: when an events stream is alive, when to ping the daemon, and when a
//! stream is stuck. Pure: the caller reads the clock and does the I/O.
//!
//! The rule, for one idle period `p` (the source's `ping_interval`):
//!
//! - Proof of life is an *event* (a complete line that decodes as an event, of any type)
//!   or a `/_ping` answered on a second connection. Bytes without a newline, blank lines
//!   and lines that do not decode prove nothing: they do not push the ping back.
//! - `p` after the last proof of life the daemon is pinged (one ping at a time); a ping
//!   that fails ends the watch.
//! - Docker writes each events line at once, so a line the watch has been waiting for
//!   `p` without its newline is a stuck (dead or hostile) stream, and ends the watch,
//!   whether pings are answered or not. The wait counts from when the watch found the
//!   line incomplete and asked for more: a consumer that is slow to take the events
//!   before it never makes a line look stuck.

use std::time::Duration;

use tokio::time::Instant;

/// What is due at a [`Liveness::next`] deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Ask the daemon `GET /_ping`.
    Ping,
    /// The line waited for is stuck: end the watch.
    Stalled,
}

/// The liveness state of one events stream.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Liveness {
    period: Duration,
    /// The last proof of life: an event, or a ping answered.
    alive_at: Instant,
    /// Since when the watch has waited for the rest of an incomplete line.
    waiting_since: Option<Instant>,
}

impl Liveness {
    /// A stream opened at `now`: the opening counts as proof of life.
    pub(crate) fn new(now: Instant, period: Duration) -> Self {
        Self {
            period,
            alive_at: now,
            waiting_since: None,
        }
    }

    /// The idle period.
    pub(crate) fn period(&self) -> Duration {
        self.period
    }

    /// An event arrived at `at` (its newline did).
    pub(crate) fn event(&mut self, at: Instant) {
        self.alive_at = self.alive_at.max(at);
    }

    /// A line ended (any line: an event, a blank one, one that does not decode).
    pub(crate) fn line_ended(&mut self) {
        self.waiting_since = None;
    }

    /// At `now` the watch has an incomplete line and waits for more bytes.
    pub(crate) fn waiting(&mut self, now: Instant) {
        self.waiting_since.get_or_insert(now);
    }

    /// A ping was answered at `at`.
    pub(crate) fn answered(&mut self, at: Instant) {
        self.alive_at = self.alive_at.max(at);
    }

    /// The next deadline and what is due then. While a ping is in flight
    /// (`pinging`), only a stuck line is; `None` when nothing is.
    pub(crate) fn next(&self, pinging: bool) -> Option<(Instant, Due)> {
        let stalled = self.waiting_since.map(|t| (t + self.period, Due::Stalled));
        let ping = (!pinging).then(|| (self.alive_at + self.period, Due::Ping));
        match (stalled, ping) {
            // At the same instant the stuck line wins: no ping can save it.
            (Some(s), Some(p)) => Some(if s.0 <= p.0 { s } else { p }),
            (s, p) => s.or(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Duration = Duration::from_secs(10);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_quiet_stream_is_pinged_one_period_after_the_last_event() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, P);
        assert_eq!(l.next(false), Some((t0 + P, Due::Ping)));
        l.event(t0 + secs(4));
        assert_eq!(l.next(false), Some((t0 + secs(14), Due::Ping)));
        // An event older than the last proof does not move it back.
        l.event(t0 + secs(1));
        assert_eq!(l.next(false), Some((t0 + secs(14), Due::Ping)));
        // A ping in flight: nothing else is due.
        assert_eq!(l.next(true), None);
        l.answered(t0 + secs(15));
        assert_eq!(l.next(false), Some((t0 + secs(25), Due::Ping)));
    }

    #[test]
    fn a_line_waited_for_one_period_is_stalled_even_if_pings_are_answered() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, P);
        // One byte every 5 s, never a newline: the first wait starts it, later ones
        // do not push it back.
        l.waiting(t0 + secs(3));
        l.waiting(t0 + secs(8));
        assert_eq!(l.next(false), Some((t0 + P, Due::Ping)));
        l.answered(t0 + P);
        assert_eq!(l.next(false), Some((t0 + secs(13), Due::Stalled)));
        assert_eq!(l.next(true), Some((t0 + secs(13), Due::Stalled)));
    }

    #[test]
    fn a_stuck_line_and_a_due_ping_at_once_is_stalled() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, P);
        l.waiting(t0);
        assert_eq!(l.next(false), Some((t0 + P, Due::Stalled)));
    }

    #[test]
    fn the_end_of_a_line_ends_the_wait_but_only_an_event_proves_life() {
        let t0 = Instant::now();
        let mut l = Liveness::new(t0, P);
        l.waiting(t0 + secs(2));
        // A blank line or one that does not decode: the wait ends, the ping stays due.
        l.line_ended();
        assert_eq!(l.next(false), Some((t0 + P, Due::Ping)));
        // The next incomplete line is timed from its own wait, and ends as an event.
        l.waiting(t0 + secs(6));
        assert_eq!(l.next(false), Some((t0 + P, Due::Ping)));
        l.answered(t0 + P);
        assert_eq!(l.next(false), Some((t0 + secs(16), Due::Stalled)));
        l.line_ended();
        l.event(t0 + secs(12));
        assert_eq!(l.next(false), Some((t0 + secs(22), Due::Ping)));
        assert_eq!(l.period(), P);
    }
}
