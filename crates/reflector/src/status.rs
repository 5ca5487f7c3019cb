//! What users and metrics read about a running reflector.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// Where the reflector's loop is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// Opening the websocket.
    #[default]
    Connecting,
    /// Listing (the watch is open and buffering).
    Listing,
    /// Applying events as they arrive.
    Watching,
    /// Waiting before the next attempt.
    Backoff,
    /// Shut down.
    Stopped,
}

/// A snapshot of a reflector's health and counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Where the loop is.
    pub phase: Phase,
    /// True while a websocket is open and the cache has been synced on it.
    pub connected: bool,
    /// True once the first full list was applied.
    pub synced: bool,
    /// When the last event frame arrived.
    pub last_event_at: Option<SystemTime>,
    /// Connections opened after the first one.
    pub reconnects: u64,
    /// Full lists applied (initial, after each reconnect, periodic).
    pub relists: u64,
    /// Single-container lists made for events that did not carry the whole container.
    pub fetches: u64,
    /// Frames that could not be decoded (skipped; the watch went on).
    pub decode_errors: u64,
    /// Events received and decoded.
    pub events_received: u64,
    /// Events that changed the cache.
    pub events_applied: u64,
    /// Failed attempts (connect, list, or a watch that broke).
    pub failures: u64,
    /// Times a memory bound was passed and the reflector relisted rather than grow
    /// (see [`Limits`](crate::Limits)).
    pub overflows: u64,
    /// Failed attempts the server refused the credentials for.
    pub auth_failures: u64,
    /// True while the server refuses the credentials.
    pub auth_failing: bool,
    /// The last error, as text.
    pub last_error: Option<String>,
    /// What served the last watch that opened, as its source describes it
    /// ([`Source::server`](crate::Source::server)): `Podman 4.3.1 (API 1.41)`. `None`
    /// until a watch opens, or when the source does not say.
    pub server: Option<String>,
    /// Since when the reflector has not been connected and synced: set when a session
    /// ends (or at start, until the first sync), `None` while connected. A host of a
    /// [`Fleet`](crate::fleet::Fleet) that is down keeps its containers meanwhile, until
    /// its `drop_after` passes.
    pub down_since: Option<SystemTime>,
}

/// A shared, cheap-to-clone view of a reflector's [`Status`].
#[derive(Clone, Debug, Default)]
pub struct StatusHandle(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    status: Mutex<Status>,
    changed: tokio::sync::Notify,
}

impl StatusHandle {
    /// Resolves at the next change of the status after this call (a change that comes
    /// between making the future and awaiting it wakes it too).
    pub fn changed(&self) -> impl Future<Output = ()> + Send + '_ {
        let mut notified = Box::pin(self.0.changed.notified());
        notified.as_mut().enable();
        notified
    }

    /// A copy of the current status.
    #[must_use]
    pub fn snapshot(&self) -> Status {
        self.lock().clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.lock());
        self.0.changed.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, Status> {
        // A panic while holding this lock cannot leave a Status half-written in a way
        // that matters: keep serving it.
        self.0
            .status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_visible_to_clones() {
        let a = StatusHandle::default();
        let b = a.clone();
        a.update(|s| {
            s.relists += 1;
            s.phase = Phase::Watching;
        });
        let snap = b.snapshot();
        assert_eq!(snap.relists, 1);
        assert_eq!(snap.phase, Phase::Watching);
    }
}
