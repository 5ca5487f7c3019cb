//! [`SeenSignatures`]: the signatures the router accepted within the clock-skew window, so
//! that a request sent again (captured and replayed) is refused. Pure: the caller passes
//! the time.
//!
//! A signature is accepted at most once. An accepted request signed at `d` verifies until
//! the router's clock passes `d + MAX_CLOCK_SKEW`, so its signature is held until then and
//! no longer: the memory is bounded by the requests of one window, and by a cap.
//!
//! At the cap the oldest entry (by signing date) is dropped, and with it every request
//! signed at or before its date becomes unverifiable for replay: such requests are refused
//! (the `floor`), replays of the dropped one included. So a full cache can never readmit
//! a replay; what it costs is requests as old as the oldest one held, which come from a
//! client clock far behind or from a flood of more than `cap` signed requests in a window.
//! Fresh requests, signed now, are newer than everything held and still served. The
//! alternative, refusing every new request until entries expire, would let one key's flood
//! lock every key out for up to the whole window. Entries that expire raise the floor
//! too, which costs nothing (such requests are outside the window anyway) and keeps a
//! router clock that steps back from readmitting them.

use std::collections::BTreeSet;

use hypersh_watch::sign4::MAX_CLOCK_SKEW;

/// Why a verified request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Its signature was already accepted, and its date is still in the window.
    Replay,
    /// It is signed at or before the date of a signature the cache had to drop (full), so
    /// whether it is a replay cannot be told.
    Unverifiable,
}

/// The accepted signatures of the window, oldest first.
#[derive(Debug)]
pub(crate) struct SeenSignatures {
    cap: usize,
    /// (signing date in Unix seconds, signature). A replay carries the same date (it is
    /// signed), so the pair identifies it, and the set keeps the oldest first.
    seen: BTreeSet<(i64, [u8; 32])>,
    /// Requests signed at or before this are refused; `i64::MIN` while nothing was dropped.
    floor: i64,
}

impl SeenSignatures {
    /// An empty cache holding at most `cap` signatures (at least one).
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            seen: BTreeSet::new(),
            floor: i64::MIN,
        }
    }

    /// Signatures held.
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    /// Admits a verified request signed at `signed_at` with `signature`, at `now` (both
    /// Unix seconds), and remembers it; or refuses it.
    pub(crate) fn admit(
        &mut self,
        signature: [u8; 32],
        signed_at: i64,
        now: i64,
    ) -> Result<(), Refusal> {
        self.expire(now);
        if signed_at <= self.floor {
            return Err(Refusal::Unverifiable);
        }
        let key = (signed_at, signature);
        if self.seen.contains(&key) {
            return Err(Refusal::Replay);
        }
        if self.seen.len() >= self.cap {
            let Some(&(oldest, _)) = self.seen.first() else {
                return Err(Refusal::Unverifiable);
            };
            if signed_at <= oldest {
                // No newer than anything held: dropping one for it would put it under
                // the floor at once.
                return Err(Refusal::Unverifiable);
            }
            self.seen.pop_first();
            self.floor = self.floor.max(oldest);
        }
        self.seen.insert(key);
        Ok(())
    }

    /// Drops the signatures whose requests no longer verify at `now`.
    fn expire(&mut self, now: i64) {
        let window = i64::try_from(MAX_CLOCK_SKEW.as_secs()).unwrap_or(i64::MAX);
        while let Some(&(date, _)) = self.seen.first() {
            // Verified while `now - date <= window` (to the nanosecond): in whole seconds,
            // certainly refused once `now > date + window`.
            if now <= date.saturating_add(window) {
                break;
            }
            self.seen.pop_first();
            self.floor = self.floor.max(date);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_700_000_000;
    const WINDOW: i64 = 300;

    fn sig(n: u32) -> [u8; 32] {
        let mut s = [0u8; 32];
        s[..4].copy_from_slice(&n.to_be_bytes());
        s
    }

    #[test]
    fn a_signature_is_accepted_once_within_the_window() {
        let mut seen = SeenSignatures::new(10);
        assert_eq!(seen.admit(sig(1), T, T), Ok(()));
        assert_eq!(seen.admit(sig(1), T, T), Err(Refusal::Replay));
        assert_eq!(seen.admit(sig(1), T, T + WINDOW), Err(Refusal::Replay));
        // Another signature of the same second is another request.
        assert_eq!(seen.admit(sig(2), T, T + 1), Ok(()));
        assert_eq!(seen.len(), 2);
    }

    #[test]
    fn a_signature_leaves_when_its_request_no_longer_verifies() {
        let mut seen = SeenSignatures::new(10);
        seen.admit(sig(1), T, T).unwrap();
        seen.admit(sig(2), T + 100, T + 100).unwrap();
        // Still held on the window's last second.
        seen.admit(sig(3), T + WINDOW, T + WINDOW).unwrap();
        assert_eq!(seen.len(), 3);
        seen.admit(sig(4), T + WINDOW + 1, T + WINDOW + 1).unwrap();
        assert_eq!(seen.len(), 3, "the first one expired");
        // Its replay (refused by the window anyway) is refused here too, were the clock
        // to step back.
        assert_eq!(seen.admit(sig(1), T, T), Err(Refusal::Unverifiable));
        assert_eq!(seen.admit(sig(2), T + 100, T + 100), Err(Refusal::Replay));
    }

    #[test]
    fn a_full_cache_drops_the_oldest_and_never_readmits_its_replay() {
        let mut seen = SeenSignatures::new(3);
        for n in 0..3 {
            seen.admit(sig(n), T + i64::from(n), T + 10).unwrap();
        }
        // A fresh request: the oldest (signed at T) is dropped.
        seen.admit(sig(3), T + 10, T + 10).unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen.admit(sig(0), T, T + 10), Err(Refusal::Unverifiable));
        // A request as old as the oldest held cannot displace it.
        assert_eq!(
            seen.admit(sig(9), T + 1, T + 10),
            Err(Refusal::Unverifiable)
        );
        // The others held are replays; fresh ones are served.
        assert_eq!(seen.admit(sig(1), T + 1, T + 10), Err(Refusal::Replay));
        assert_eq!(seen.admit(sig(2), T + 2, T + 10), Err(Refusal::Replay));
        seen.admit(sig(4), T + 11, T + 11).unwrap();
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn a_flood_stays_at_the_cap_and_no_accepted_signature_is_ever_accepted_again() {
        let cap = 1_000;
        let mut seen = SeenSignatures::new(cap);
        let mut accepted = Vec::new();
        // 5 000 distinct requests a second for 4 seconds, five times the cap each second.
        for n in 0..20_000u32 {
            let now = T + i64::from(n / 5_000);
            if seen.admit(sig(n), now, now).is_ok() {
                accepted.push((sig(n), now));
            }
            assert!(seen.len() <= cap);
        }
        // Each second, `cap` fresh requests get through (displacing the older second's);
        // the rest of that second cannot be told from replays of what was dropped.
        assert_eq!(accepted.len(), 4 * cap);
        let now = T + 4;
        for (s, at) in accepted {
            assert!(seen.admit(s, at, now).is_err(), "replay of {at} admitted");
        }
        assert_eq!(seen.len(), cap);
        // The next second is served.
        assert_eq!(seen.admit(sig(99_999), T + 5, T + 5), Ok(()));
    }
}
