//! [`Held`]: events kept in order for later, within [`Limits`] counted in events and in
//! bytes.

use hypersh_watch::WatchEvent;

use crate::limits::Limits;

/// Events kept in order (buffered during a list, or held while their container is
/// fetched), with the memory they keep ([`WatchEvent::kept_bytes`]).
#[derive(Debug, Default)]
pub(crate) struct Held {
    events: Vec<WatchEvent>,
    bytes: usize,
}

/// The bound an event would have passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Bound {
    /// [`Limits::max_buffered_events`].
    Events(usize),
    /// [`Limits::max_buffered_bytes`].
    Bytes(usize),
}

impl Bound {
    /// What was passed, for the status: `more than 50000 events` and the setting.
    pub(crate) fn describe(self, held: &str) -> String {
        match self {
            Self::Events(max) => {
                format!("more than {max} events {held} (raise Limits::max_buffered_events)")
            }
            Self::Bytes(max) => {
                format!("more than {max} bytes of events {held} (raise Limits::max_buffered_bytes)")
            }
        }
    }
}

impl Held {
    /// Keeps `event`, or refuses it (dropping it) if that would pass a bound of `limits`.
    pub(crate) fn push(&mut self, event: WatchEvent, limits: &Limits) -> Result<(), Bound> {
        if self.events.len() >= limits.max_buffered_events {
            return Err(Bound::Events(limits.max_buffered_events));
        }
        let bytes = self.bytes + event.kept_bytes();
        if bytes > limits.max_buffered_bytes {
            return Err(Bound::Bytes(limits.max_buffered_bytes));
        }
        self.bytes = bytes;
        self.events.push(event);
        Ok(())
    }

    /// Takes every event, in order, leaving none.
    pub(crate) fn take(&mut self) -> Vec<WatchEvent> {
        self.bytes = 0;
        std::mem::take(&mut self.events)
    }

    /// Takes the events `which` selects, in order, and keeps the others.
    pub(crate) fn take_if(&mut self, which: impl Fn(&WatchEvent) -> bool) -> Vec<WatchEvent> {
        let (taken, kept): (Vec<_>, Vec<_>) = self.take().into_iter().partition(which);
        self.bytes = kept.iter().map(WatchEvent::kept_bytes).sum();
        self.events = kept;
        taken
    }

    /// How many events are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    /// The bytes they keep.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}
