//! A one-way readiness latch that can be polled and awaited.

use tokio::sync::watch;

/// Starts unset, can be set once (setting again is a no-op), never unset.
#[derive(Debug)]
pub(crate) struct Latch {
    tx: watch::Sender<bool>,
}

impl Default for Latch {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(false),
        }
    }
}

impl Latch {
    /// Sets the latch and wakes every waiter.
    pub(crate) fn set(&self) {
        self.tx.send_if_modified(|v| !std::mem::replace(v, true));
    }

    /// Whether the latch is set.
    pub(crate) fn is_set(&self) -> bool {
        *self.tx.borrow()
    }

    /// Waits until the latch is set (returns at once if it already is).
    pub(crate) async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // `wait_for` only fails if the sender is dropped, and `self` owns it.
        let _ = rx.wait_for(|set| *set).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Latch;

    #[tokio::test]
    async fn wait_returns_once_set() {
        let latch = Arc::new(Latch::default());
        assert!(!latch.is_set());
        let waiter = tokio::spawn({
            let latch = Arc::clone(&latch);
            async move { latch.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        latch.set();
        latch.set();
        waiter.await.unwrap();
        assert!(latch.is_set());
        // Already set: returns at once.
        latch.wait().await;
    }
}
