//! The reflector's memory bounds: how much it holds for a hostile or flooding server.

/// Events held at once: those buffered while a list runs, and those held while the
/// fetch of their container runs. At about 1 KiB an event, 50 000 is under 64 MiB; a
/// list of a million containers takes a few seconds, so this covers a churn of over
/// 10 000 events a second during it.
pub const DEFAULT_MAX_BUFFERED_EVENTS: usize = 50_000;

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
    /// Containers waiting to be fetched or being fetched
    /// ([`DEFAULT_MAX_PENDING_FETCHES`]); past it the reflector relists instead.
    pub max_pending_fetches: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_buffered_events: DEFAULT_MAX_BUFFERED_EVENTS,
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

    /// Sets [`max_pending_fetches`](Self::max_pending_fetches) (at least 1).
    #[must_use]
    pub fn max_pending_fetches(mut self, n: usize) -> Self {
        self.max_pending_fetches = n.max(1);
        self
    }
}
