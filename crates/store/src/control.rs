//! A handler's lifecycle state, shared by its handle, its subscriber entry (used by the
//! writer) and its task: caught up or not, stopped and why, and a few counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tokio::task::AbortHandle;

/// Why a handler stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    Removed,
    Evicted,
    /// The store was dropped and the queue drained.
    Finished,
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Status {
    pub(crate) synced: bool,
    pub(crate) stopped: Option<StopReason>,
}

/// State shared by a handler's handle, its subscriber entry and its task.
pub(crate) struct Control {
    pub(crate) name: Arc<str>,
    pub(crate) status: watch::Sender<Status>,
    /// Mirrors `status.stopped.is_some()`, for the cheap check before every handler call.
    pub(crate) stopped: AtomicBool,
    pub(crate) panics: AtomicU64,
    pub(crate) resyncs_skipped: AtomicU64,
    pub(crate) task: OnceLock<AbortHandle>,
}

impl Control {
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self {
            name,
            status: watch::Sender::new(Status::default()),
            stopped: AtomicBool::new(false),
            panics: AtomicU64::new(0),
            resyncs_skipped: AtomicU64::new(0),
            task: OnceLock::new(),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn mark_synced(&self) {
        self.status
            .send_if_modified(|s| !std::mem::replace(&mut s.synced, true));
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Records why the handler stopped (the first reason wins) and, unless it finished by
    /// itself, aborts its task.
    pub(crate) fn stop(&self, reason: StopReason) {
        self.stopped.store(true, Ordering::Release);
        self.status.send_if_modified(|s| {
            let first = s.stopped.is_none();
            if first {
                s.stopped = Some(reason);
            }
            first
        });
        if reason != StopReason::Finished
            && let Some(task) = self.task.get()
        {
            task.abort();
        }
    }

    /// Called by the writer when this handler's queue is full under [`FullPolicy::Evict`](crate::FullPolicy::Evict).
    pub(crate) fn evict(&self) {
        tracing::error!(
            handler = %self.name,
            "handler queue full: evicting the handler (FullPolicy::Evict); re-register it to resume"
        );
        self.stop(StopReason::Evicted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_stop_reason_wins_and_synced_latches() {
        let c = Control::new(Arc::from("h"));
        assert_eq!(c.name(), "h");
        assert!(!c.is_stopped());
        c.mark_synced();
        c.mark_synced();
        assert!(c.status.borrow().synced);
        c.stop(StopReason::Evicted);
        c.stop(StopReason::Removed);
        assert!(c.is_stopped());
        assert_eq!(c.status.borrow().stopped, Some(StopReason::Evicted));
    }

    #[tokio::test]
    async fn stop_aborts_the_task_unless_it_finished_by_itself() {
        let c = Control::new(Arc::from("h"));
        let task = tokio::spawn(std::future::pending::<()>());
        assert!(c.task.set(task.abort_handle()).is_ok());
        c.stop(StopReason::Finished);
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        let c = Control::new(Arc::from("h"));
        let task = tokio::spawn(std::future::pending::<()>());
        assert!(c.task.set(task.abort_handle()).is_ok());
        c.stop(StopReason::Removed);
        assert!(task.await.unwrap_err().is_cancelled());
    }
}
