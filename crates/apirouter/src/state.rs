//! The state every request handler shares, and the per-access-key watch slots.

use std::collections::HashMap;
use std::sync::Arc;

use hypersh_watch::credentials::SecretKey;
use hypersh_watch::event::Shape;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::emit::EmitPool;
use crate::faults::Faults;
use crate::replay::{Refusal, SeenSignatures};
use crate::runtime::Runtime;

/// Shared router state (cheap to clone).
#[derive(Clone)]
pub(crate) struct AppState(Arc<AppInner>);

pub(crate) struct AppInner {
    /// What the router was built with.
    parts: AppParts,
    /// Open websockets per access key.
    per_key: Mutex<HashMap<String, usize>>,
    /// Open websockets in total.
    active: watch::Sender<usize>,
    /// Signatures accepted within the clock-skew window.
    seen: Mutex<SeenSignatures>,
}

/// What [`AppState::new`] needs.
pub(crate) struct AppParts {
    pub(crate) runtime: Runtime,
    pub(crate) faults: Faults,
    pub(crate) keys: HashMap<String, SecretKey>,
    pub(crate) region: String,
    pub(crate) shape: Shape,
    pub(crate) emit: Option<Arc<EmitPool>>,
    pub(crate) max_watches_per_key: usize,
    /// How long one websocket send may take before the watch is closed with 1008.
    pub(crate) watch_send_timeout: std::time::Duration,
    /// How long an authenticated request's body may take to arrive.
    pub(crate) body_read_timeout: std::time::Duration,
    /// The cap of the replay cache.
    pub(crate) max_seen_signatures: usize,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
}

impl AppState {
    pub(crate) fn new(parts: AppParts) -> Self {
        let (active, _) = watch::channel(0);
        let seen = Mutex::new(SeenSignatures::new(parts.max_seen_signatures));
        Self(Arc::new(AppInner {
            parts,
            per_key: Mutex::new(HashMap::new()),
            active,
            seen,
        }))
    }

    /// Takes a watch slot for `access_key`, or `None` when it has all it may have.
    pub(crate) fn acquire_watch(&self, access_key: &str) -> Option<WatchSlot> {
        let mut per_key = self.0.per_key.lock();
        let count = per_key.entry(access_key.to_owned()).or_insert(0);
        if *count >= self.0.max_watches_per_key {
            return None;
        }
        *count += 1;
        self.0.active.send_modify(|n| *n += 1);
        Some(WatchSlot {
            app: self.clone(),
            access_key: access_key.to_owned(),
        })
    }

    /// Admits a verified request's signature (signed at `signed_at`, now `now`: Unix
    /// seconds) once; a replay, or a request too old to be checked, is refused.
    pub(crate) fn admit_signature(
        &self,
        signature: [u8; 32],
        signed_at: i64,
        now: i64,
    ) -> Result<(), Refusal> {
        self.0.seen.lock().admit(signature, signed_at, now)
    }

    /// Signatures held against replay.
    pub(crate) fn seen_signatures(&self) -> usize {
        self.0.seen.lock().len()
    }

    /// Open websocket connections.
    pub(crate) fn active_watches(&self) -> usize {
        *self.0.active.borrow()
    }

    /// A receiver of the open websocket count.
    pub(crate) fn watch_count(&self) -> watch::Receiver<usize> {
        self.0.active.subscribe()
    }
}

impl std::ops::Deref for AppInner {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.parts
    }
}

impl std::ops::Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// One open websocket of one access key; dropping it frees the slot.
pub(crate) struct WatchSlot {
    app: AppState,
    access_key: String,
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut per_key = self.app.0.per_key.lock();
        if let Some(count) = per_key.get_mut(&self.access_key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_key.remove(&self.access_key);
            }
        }
        self.app.0.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(max: usize) -> AppState {
        AppState::new(AppParts {
            runtime: Runtime::new(0),
            faults: Faults::new(),
            keys: HashMap::new(),
            region: "us-west-1".into(),
            shape: Shape::Docker,
            emit: None,
            max_watches_per_key: max,
            watch_send_timeout: crate::config::DEFAULT_WATCH_SEND_TIMEOUT,
            body_read_timeout: crate::config::DEFAULT_HEADER_READ_TIMEOUT,
            max_seen_signatures: crate::config::DEFAULT_MAX_SEEN_SIGNATURES,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        })
    }

    #[test]
    fn slots_are_limited_per_key_and_freed_on_drop() {
        let app = app(2);
        let a1 = app.acquire_watch("a").unwrap();
        let a2 = app.acquire_watch("a").unwrap();
        assert!(app.acquire_watch("a").is_none());
        let b1 = app.acquire_watch("b").unwrap();
        assert_eq!(app.active_watches(), 3);
        drop(a1);
        assert_eq!(app.active_watches(), 2);
        let a3 = app.acquire_watch("a").unwrap();
        drop((a2, a3, b1));
        assert_eq!(app.active_watches(), 0);
        assert!(app.per_key.lock().is_empty());
    }
}
