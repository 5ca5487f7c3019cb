//! Deserialisers for the container and event models: lenient about `null` and about how
//! numbers are written, and one allocation per shared string.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

/// Treats an explicit JSON `null` as the type's default (Docker sends `"Labels": null`).
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Accepts an integer, a float (`1.47601746e+09`), a number written as a string
/// (`"1476017460"`) or `null` for an integer field. Out-of-range values saturate.
pub(crate) fn lenient_i64<'de, D>(d: D) -> Result<i64, D::Error>
where
    D: Deserializer<'de>,
{
    struct Lenient;

    impl serde::de::Visitor<'_> for Lenient {
        type Value = i64;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number, a number in a string, or null")
        }

        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }

        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
            Ok(i64::try_from(v).unwrap_or(i64::MAX))
        }

        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
            // `as` saturates for out-of-range floats and maps NaN to 0.
            Ok(v as i64)
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
            let v = v.trim();
            if let Ok(i) = v.parse::<i64>() {
                return Ok(i);
            }
            match v.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(f as i64),
                _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
            }
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<i64, E> {
            Ok(0)
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<i64, E> {
            Ok(0)
        }
    }

    d.deserialize_any(Lenient)
}

/// A string decoded straight into an `Arc<str>` (one allocation, from a borrowed or an
/// owned string alike).
struct SharedStr(Arc<str>);

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;

        impl serde::de::Visitor<'_> for Visit {
            type Value = SharedStr;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SharedStr, E> {
                Ok(SharedStr(Arc::from(v)))
            }
        }

        d.deserialize_str(Visit)
    }
}

/// A required string field, as an `Arc<str>`.
pub(crate) fn shared_str<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
    Ok(SharedStr::deserialize(d)?.0)
}

/// A port number: as [`lenient_i64`] reads it (`null` is 0), and an error out of 0..=65535.
pub(crate) fn lenient_u16<'de, D>(d: D) -> Result<u16, D::Error>
where
    D: Deserializer<'de>,
{
    let n = lenient_i64(d)?;
    u16::try_from(n).map_err(|_| {
        serde::de::Error::invalid_value(serde::de::Unexpected::Signed(n), &"a port number")
    })
}
