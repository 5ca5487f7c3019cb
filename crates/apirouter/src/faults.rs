//! Fault injection: drop, close, stall, garble and refuse, on demand.
//!
//! A [`Faults`] handle is cloned into every connection. Websocket connections take the
//! current drop token and subscribe to the control channel *before* the `101` answer is
//! sent, so a fault injected after a client's connect returns always reaches it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

/// Capacity of the control channel (commands are rare; a lagging connection skips some).
const CONTROL_BUFFER: usize = 64;

/// A command to every open websocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Control {
    /// Send a close frame and end the connection.
    Close,
    /// Send this many garbage frames next.
    Malformed(usize),
}

/// Fault injection for tests. Cheap to clone: clones control the same router.
#[derive(Clone, Debug)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    drop: Mutex<CancellationToken>,
    control: broadcast::Sender<Control>,
    stall: watch::Sender<bool>,
    hold_lists: watch::Sender<bool>,
    /// List requests waiting on `hold_lists` now.
    held_lists: AtomicUsize,
    /// Requests and websocket sessions waiting on `stall` now.
    stalled: AtomicUsize,
    reject_auth: AtomicBool,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new()
    }
}

impl Faults {
    /// No fault active.
    #[must_use]
    pub fn new() -> Self {
        let (control, _) = broadcast::channel(CONTROL_BUFFER);
        let (stall, _) = watch::channel(false);
        let (hold_lists, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                drop: Mutex::new(CancellationToken::new()),
                control,
                stall,
                hold_lists,
                held_lists: AtomicUsize::new(0),
                stalled: AtomicUsize::new(0),
                reject_auth: AtomicBool::new(false),
            }),
        }
    }

    /// Abruptly drops every open websocket: the TCP connection is closed without a close
    /// frame. Connections opened afterwards are not affected.
    pub fn drop_connections(&self) {
        let mut token = self.inner.drop.lock();
        token.cancel();
        *token = CancellationToken::new();
    }

    /// Closes every open websocket politely, with a close frame (code 1001, going away).
    pub fn close_connections(&self) {
        // No receiver means no open websocket: nothing to do.
        let _ = self.inner.control.send(Control::Close);
    }

    /// Half-open mode while `on`: open websockets stop writing and reading (so pings get no
    /// pong), and every new request, list or upgrade, hangs before it is answered. Turning
    /// it off resumes them (a websocket whose event buffer overflowed meanwhile is then
    /// closed, as any lagging watch).
    pub fn set_stall(&self, on: bool) {
        self.inner.stall.send_replace(on);
    }

    /// A slow list endpoint while `on`: each list request takes its snapshot of the
    /// runtime, then waits until the fault is turned off before it answers. Websockets are
    /// not affected, so events newer than a held answer keep flowing meanwhile.
    pub fn set_hold_lists(&self, on: bool) {
        self.inner.hold_lists.send_replace(on);
    }

    /// How many list requests are waiting on [`Faults::set_hold_lists`] now (their
    /// snapshot is taken).
    #[must_use]
    pub fn held_lists(&self) -> usize {
        self.inner.held_lists.load(Ordering::SeqCst)
    }

    /// How many requests (lists, upgrades) and open websockets are held by
    /// [`Faults::set_stall`] now: the proof that the router has seen them under the stall.
    #[must_use]
    pub fn stalled(&self) -> usize {
        self.inner.stalled.load(Ordering::SeqCst)
    }

    /// Each open websocket sends `n` garbage frames next, cycling through: text that is not
    /// JSON, a JSON array, an event without an id, and a binary frame.
    pub fn send_malformed(&self, n: usize) {
        let _ = self.inner.control.send(Control::Malformed(n));
    }

    /// While `on`, every request is answered `403` with a JSON message.
    pub fn set_reject_auth(&self, on: bool) {
        self.inner.reject_auth.store(on, Ordering::SeqCst);
    }

    /// Whether the stall fault is on.
    #[must_use]
    pub fn is_stalled(&self) -> bool {
        *self.inner.stall.borrow()
    }

    /// Whether the reject-auth fault is on.
    #[must_use]
    pub fn rejects_auth(&self) -> bool {
        self.inner.reject_auth.load(Ordering::SeqCst)
    }

    /// The token cancelled by the next [`Faults::drop_connections`].
    pub(crate) fn drop_token(&self) -> CancellationToken {
        self.inner.drop.lock().clone()
    }

    /// A receiver of websocket commands.
    pub(crate) fn control(&self) -> broadcast::Receiver<Control> {
        self.inner.control.subscribe()
    }

    /// A receiver of the stall flag.
    pub(crate) fn stall(&self) -> watch::Receiver<bool> {
        self.inner.stall.subscribe()
    }

    /// Waits while the hold-lists fault is on.
    pub(crate) async fn wait_lists_released(&self) {
        let mut rx = self.inner.hold_lists.subscribe();
        if !*rx.borrow() {
            return;
        }
        let _waiting = Waiting::new(&self.inner.held_lists);
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|held| !held).await;
    }

    /// Waits while the stall fault is on.
    pub(crate) async fn wait_unstalled(&self) {
        let mut rx = self.stall();
        if !*rx.borrow() {
            return;
        }
        let _waiting = self.stalled_one();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|stalled| !stalled).await;
    }

    /// Counts one request or websocket as held by the stall until the guard is dropped.
    pub(crate) fn stalled_one(&self) -> Waiting<'_> {
        Waiting::new(&self.inner.stalled)
    }
}

/// Counts one waiter until it is answered or dropped.
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn drop_cancels_only_earlier_tokens() {
        let f = Faults::new();
        let before = f.drop_token();
        f.drop_connections();
        let after = f.drop_token();
        assert!(before.is_cancelled());
        assert!(!after.is_cancelled());
    }

    #[test]
    fn control_reaches_subscribers() {
        let f = Faults::new();
        let mut rx = f.control();
        f.send_malformed(3);
        f.close_connections();
        assert_eq!(rx.try_recv().unwrap(), Control::Malformed(3));
        assert_eq!(rx.try_recv().unwrap(), Control::Close);
        f.set_reject_auth(true);
        assert!(f.rejects_auth());
        f.set_reject_auth(false);
        assert!(!f.rejects_auth());
    }

    #[tokio::test(start_paused = true)]
    async fn stall_blocks_until_turned_off() {
        let f = Faults::new();
        f.wait_unstalled().await;
        f.set_stall(true);
        assert!(f.is_stalled());
        let blocked = tokio::time::timeout(Duration::from_secs(5), f.wait_unstalled()).await;
        assert!(blocked.is_err(), "waits while stalled");
        assert_eq!(f.stalled(), 0, "a dropped wait is not counted");
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.wait_unstalled().await }
        });
        while f.stalled() == 0 {
            tokio::task::yield_now().await;
        }
        f.set_stall(false);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(f.stalled(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn held_lists_wait_until_released() {
        let f = Faults::new();
        f.wait_lists_released().await;
        f.set_hold_lists(true);
        let held = tokio::time::timeout(Duration::from_secs(5), f.wait_lists_released()).await;
        assert!(held.is_err(), "waits while held");
        assert_eq!(f.held_lists(), 0, "a dropped wait is not counted");
        assert!(!f.is_stalled(), "holding lists is not a stall");
        let waiter = tokio::spawn({
            let f = f.clone();
            async move { f.wait_lists_released().await }
        });
        while f.held_lists() == 0 {
            tokio::task::yield_now().await;
        }
        f.set_hold_lists(false);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }
}
