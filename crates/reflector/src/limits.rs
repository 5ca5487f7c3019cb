//! The reflector's memory bounds: how much it holds for a hostile or flooding server.

/// Events held at once: those buffered while a list runs, and those held while the
/// fetch of their container runs. At about 1 KiB an event, 50 000 is under 64 MiB; a
/// list of a million containers takes a few seconds, so this covers a churn of over
/// 10 000 events a second during it.
pub const DEFAULT_MAX_BUFFERED_EVENTS: usize = 50_000;

/// The bytes of the events held at once (their frames and decoded labels, see
/// `WatchEvent::kept_bytes`): 128 MiB. Ordinary events (under 1 KiB) reach
/// [`DEFAULT_MAX_BUFFERED_EVENTS`] first; events of the largest legal size (1 MiB, the
/// websocket's `max_frame_size` and Docker's `max_line`) reach this after 128. A Docker
/// line may keep the read buffer it was cut from alive, up to twice its bytes: the
/// events held then keep at most 256 MiB.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 128 << 20;

/// Containers waiting to be fetched or being fetched. A fetch asks for 50 ids per list
/// call: past this many, one full list is cheaper than the fetches.
pub const DEFAULT_MAX_PENDING_FETCHES: usize = 10_000;

/// How much the reflector may hold; past a bound it relists rather than grow.
///
/// ```
/// # mod hypersh { pub mod reflector { pub use hypersh_reflector::*; } pub mod watch { pub use hypersh_watch::*; } pub mod store { pub use hypersh_store::*; } }
/// use hypersh::reflector::Limits;
///
/// let limits = Limits::default().max_buffered_events(200_000);
/// assert_eq!(limits.max_pending_fetches, hypersh::reflector::limits::DEFAULT_MAX_PENDING_FETCHES);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Events held at once ([`DEFAULT_MAX_BUFFERED_EVENTS`]). When the events that
    /// arrive during a list pass it, they are dropped and the list is taken again once
    /// it ends (its snapshot cannot be brought up to date); when events held for
    /// fetches pass it, the reflector relists.
    pub max_buffered_events: usize,
    /// The bytes of the events held at once ([`DEFAULT_MAX_BUFFERED_BYTES`]), counted as
    /// `WatchEvent::kept_bytes`; past it, as past
    /// [`max_buffered_events`](Self::max_buffered_events).
    pub max_buffered_bytes: usize,
    /// Containers waiting to be fetched or being fetched
    /// ([`DEFAULT_MAX_PENDING_FETCHES`]); past it the reflector relists instead.
    pub max_pending_fetches: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_buffered_events: DEFAULT_MAX_BUFFERED_EVENTS,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_pending_fetches: DEFAULT_MAX_PENDING_FETCHES,
        }
    }
}

impl Limits {
    /// Sets [`max_buffered_events`](Self::max_buffered_events) (at least 1).
    #[must_use]
    pub fn max_buffered_events(mut self, n: usize) -> Self {
        self.max_buffered_events = n.max(1);
        self
    }

    /// Sets [`max_buffered_bytes`](Self::max_buffered_bytes) (at least 1).
    #[must_use]
    pub fn max_buffered_bytes(mut self, bytes: usize) -> Self {
        self.max_buffered_bytes = bytes.max(1);
        self
    }

    /// Sets [`max_pending_fetches`](Self::max_pending_fetches) (at least 1).
    #[must_use]
    pub fn max_pending_fetches(mut self, n: usize) -> Self {
        self.max_pending_fetches = n.max(1);
        self
    }
}
