//! Publishing the core's status: to the [`StatusHandle`] users read, and to the metrics,
//! counted by difference from what was last published.

use std::time::SystemTime;

use crate::metrics as names;
use crate::status::{Status, StatusHandle};

/// What [`Publisher::publish`] keeps between calls.
#[derive(Debug, Default)]
pub(crate) struct Publisher {
    handle: StatusHandle,
    /// The core's status as last published.
    published: Status,
    /// When the last event arrived (the core has no clock).
    last_event_at: Option<SystemTime>,
    /// The connected gauge as last set.
    connected: Option<bool>,
    /// The labels every metric of this reflector carries (the informer's name, when it
    /// has one: two informers in one process then do not write the same series).
    labels: Vec<(&'static str, String)>,
    /// Since when the reflector has not been connected (see `Status::down_since`).
    down_since: Option<SystemTime>,
}

impl Publisher {
    pub(crate) fn new(handle: StatusHandle, labels: Vec<(&'static str, String)>) -> Self {
        Self {
            handle,
            labels,
            down_since: Some(SystemTime::now()),
            ..Self::default()
        }
    }

    /// Copies `now` to the handle and the metrics, if it changed since the last call.
    pub(super) fn publish(&mut self, now: &Status) {
        if self.connected != Some(now.connected) {
            self.connected = Some(now.connected);
            self.down_since = match (now.connected, self.down_since) {
                (true, _) => None,
                (false, Some(since)) => Some(since),
                (false, None) => Some(SystemTime::now()),
            };
            metrics::gauge!(names::CONNECTED, &self.labels).set(f64::from(u8::from(now.connected)));
        }
        let before = &self.published;
        if now == before {
            return;
        }
        let counters = [
            (
                names::EVENTS_TOTAL,
                now.events_received,
                before.events_received,
            ),
            (
                names::EVENTS_APPLIED_TOTAL,
                now.events_applied,
                before.events_applied,
            ),
            (names::RELISTS_TOTAL, now.relists, before.relists),
            (names::RECONNECTS_TOTAL, now.reconnects, before.reconnects),
            (names::FETCHES_TOTAL, now.fetches, before.fetches),
            (
                names::DECODE_ERRORS_TOTAL,
                now.decode_errors,
                before.decode_errors,
            ),
            (names::FAILURES_TOTAL, now.failures, before.failures),
            (
                names::AUTH_FAILURES_TOTAL,
                now.auth_failures,
                before.auth_failures,
            ),
            (names::OVERFLOWS_TOTAL, now.overflows, before.overflows),
        ];
        for (name, now, before) in counters {
            if now > before {
                metrics::counter!(name, &self.labels).increment(now - before);
            }
        }
        if now.events_received > before.events_received {
            self.last_event_at = Some(SystemTime::now());
        }
        self.published.clone_from(now);
        let (last_event_at, down_since) = (self.last_event_at, self.down_since);
        self.handle.update(|s| {
            s.clone_from(now);
            s.last_event_at = last_event_at;
            s.down_since = down_since;
        });
    }
}
