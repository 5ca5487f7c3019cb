//! `X-Hyper-Date`: formatting, parsing and the clock-skew window.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};

use super::{MAX_CLOCK_SKEW, SignError, VerifyError};

/// `strftime` form of `X-Hyper-Date`.
const DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// `now` as `yyyymmddTHHMMSSZ` (UTC, whole seconds).
pub(super) fn format_date(now: SystemTime) -> Result<String, SignError> {
    let since_epoch = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SignError::InvalidTime)?;
    let secs = i64::try_from(since_epoch.as_secs()).map_err(|_| SignError::InvalidTime)?;
    let time: DateTime<Utc> = DateTime::from_timestamp(secs, 0).ok_or(SignError::InvalidTime)?;
    if time.year() > 9999 {
        return Err(SignError::InvalidTime);
    }
    let mut out = String::with_capacity(16);
    write!(out, "{}", time.format(DATE_FORMAT)).map_err(|_| SignError::InvalidTime)?;
    Ok(out)
}

/// Parses a `yyyymmddTHHMMSSZ` date into seconds since the Unix epoch. The shape is checked
/// byte by byte first, because chrono's parser also accepts unpadded or signed numbers.
pub(super) fn parse_date(date: &str) -> Result<i64, VerifyError> {
    let shape_ok = date.len() == 16
        && date.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'Z',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return Err(VerifyError::InvalidDate);
    }
    NaiveDateTime::parse_from_str(date, DATE_FORMAT)
        .map(|parsed| parsed.and_utc().timestamp())
        .map_err(|_| VerifyError::InvalidDate)
}

/// Whether `signed_at` (Unix seconds) is at most [`MAX_CLOCK_SKEW`] away from `now`.
pub(super) fn within_skew(signed_at: i64, now: SystemTime) -> bool {
    let nanos = |d: Duration| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(after) => nanos(after),
        Err(before) => -nanos(before.duration()),
    };
    let signed_at = i128::from(signed_at) * 1_000_000_000;
    now.abs_diff(signed_at) <= MAX_CLOCK_SKEW.as_nanos()
}

/// The instant a `YYYYMMDDTHHMMSSZ` date names (tests only; panics on a bad date).
#[cfg(test)]
pub(super) fn at(date: &str) -> SystemTime {
    let secs = parse_date(date).expect("a valid date");
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_bad_shapes_are_rejected() {
        let now = at("20161013T160000Z");
        assert_eq!(format_date(now).unwrap(), "20161013T160000Z");
        assert_eq!(
            format_date(now + Duration::from_millis(999)).unwrap(),
            "20161013T160000Z"
        );
        assert_eq!(
            format_date(UNIX_EPOCH - Duration::from_secs(1)),
            Err(SignError::InvalidTime)
        );
        for bad in [
            "",
            "20161013T160000",
            "20161013 160000Z",
            "2016-10-13T16:00Z",
            "+0161013T160000Z",
            "20161313T160000Z",
            "20161013T250000Z",
            "２0161013T160000Z",
        ] {
            assert_eq!(parse_date(bad), Err(VerifyError::InvalidDate), "{bad:?}");
        }
    }

    #[test]
    fn skew_window_is_inclusive_and_symmetric() {
        let signed = parse_date("20170729T230845Z").unwrap();
        let base = at("20170729T230845Z");
        assert!(within_skew(signed, base + MAX_CLOCK_SKEW));
        assert!(within_skew(signed, base - MAX_CLOCK_SKEW));
        assert!(!within_skew(
            signed,
            base + MAX_CLOCK_SKEW + Duration::from_nanos(1)
        ));
        assert!(!within_skew(
            signed,
            base - MAX_CLOCK_SKEW - Duration::from_secs(1)
        ));
    }
}
