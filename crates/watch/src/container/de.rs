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

/// Long texts one field of a list held lately, per thread: a text equal to a remembered
/// one shares its allocation instead of making its own. Containers of one list on the
/// same network carry the same 64-character `NetworkID`, and those of one image the same
/// 71-character `ImageID` (and often a long `Command`); with this they keep one copy
/// between them, not one each. Values are equal either way: only memory differs.
///
/// Each text has one slot, chosen from its length and its first and last eight bytes
/// (ids differ there), so a lookup is one comparison; two texts of one slot take turns.
pub(crate) struct Recent {
    slots: std::cell::RefCell<[smol_str::SmolStr; RECENT_SLOTS]>,
}

/// How many texts a [`Recent`] remembers (a list mixes a few networks, a host runs some
/// tens of images).
const RECENT_SLOTS: usize = 64;

/// The longest text a [`Recent`] remembers (ids are 64 to 71 bytes): what a thread keeps
/// alive after its containers are gone stays within `RECENT_SLOTS × RECENT_MAX_LEN` a
/// field, whatever a peer sends.
const RECENT_MAX_LEN: usize = 256;

impl Recent {
    pub(crate) const fn new() -> Self {
        Self {
            slots: std::cell::RefCell::new(
                [const { smol_str::SmolStr::new_inline("") }; RECENT_SLOTS],
            ),
        }
    }

    /// `text`, sharing a remembered allocation when its slot holds it (texts short enough
    /// to be stored inline, or longer than [`RECENT_MAX_LEN`], are made as they are).
    pub(crate) fn text(&self, text: &str) -> smol_str::SmolStr {
        if text.len() <= smol_str::SmolStr::INLINE_CAP || text.len() > RECENT_MAX_LEN {
            return smol_str::SmolStr::new(text);
        }
        let Ok(mut slots) = self.slots.try_borrow_mut() else {
            return smol_str::SmolStr::new(text);
        };
        let slot = &mut slots[slot_of(text.as_bytes())];
        if slot.as_str() == text {
            return slot.clone();
        }
        let made = smol_str::SmolStr::new(text);
        *slot = made.clone();
        made
    }
}

/// The slot of a text longer than [`smol_str::SmolStr::INLINE_CAP`] bytes.
fn slot_of(text: &[u8]) -> usize {
    let word = |at: usize| {
        text.get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes)
    };
    let mixed = (word(0) ^ word(text.len().saturating_sub(8)).rotate_left(29) ^ text.len() as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // The top bits, the best mixed: RECENT_SLOTS is a power of two.
    (mixed >> (64 - RECENT_SLOTS.trailing_zeros())) as usize
}

thread_local! {
    /// The image ids this thread decoded last (`ImageID`, 71 characters on Docker).
    static IMAGE_IDS: Recent = const { Recent::new() };
    /// The long commands this thread decoded last (`Command`).
    static COMMANDS: Recent = const { Recent::new() };
}

/// `ImageID` through this thread's recent ones.
pub(super) fn image_id<'de, D: Deserializer<'de>>(d: D) -> Result<smol_str::SmolStr, D::Error> {
    recent_text(d, &IMAGE_IDS)
}

/// `Command` through this thread's recent ones.
pub(super) fn command<'de, D: Deserializer<'de>>(d: D) -> Result<smol_str::SmolStr, D::Error> {
    recent_text(d, &COMMANDS)
}

/// An `ImageID` as [`image_id`] keeps it, for the list element scanner.
pub(super) fn image_id_text(text: &str) -> smol_str::SmolStr {
    IMAGE_IDS.with(|recent| recent.text(text))
}

/// A `Command` as [`command`] keeps it, for the list element scanner.
pub(super) fn command_text(text: &str) -> smol_str::SmolStr {
    COMMANDS.with(|recent| recent.text(text))
}

/// A text field decoded through a thread's [`Recent`] (`null` is empty).
pub(crate) fn recent_text<'de, D>(
    d: D,
    recent: &'static std::thread::LocalKey<Recent>,
) -> Result<smol_str::SmolStr, D::Error>
where
    D: Deserializer<'de>,
{
    struct Visit(&'static std::thread::LocalKey<Recent>);

    impl serde::de::Visitor<'_> for Visit {
        type Value = smol_str::SmolStr;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }

        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(self.0.with(|r| r.text(v)))
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(smol_str::SmolStr::default())
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(smol_str::SmolStr::default())
        }
    }

    d.deserialize_any(Visit(recent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_texts_share_long_ones_and_make_short_ones_inline() {
        let recent = Recent::new();
        let long = "7ea29fc1412292a2d7bba362f9253545fecdfa8ce9a6e37dd10ba8bee7129812";
        let a = recent.text(long);
        let b = recent.text(String::from(long).as_str());
        assert!(a.is_heap_allocated());
        assert_eq!(a.as_ptr(), b.as_ptr(), "one allocation");
        assert!(!recent.text("bridge").is_heap_allocated());
        // Another text of the same slot takes it: equal after, not shared.
        let rival = (0u64..)
            .map(|i| format!("{i:064}"))
            .find(|t| slot_of(t.as_bytes()) == slot_of(long.as_bytes()))
            .unwrap();
        recent.text(&rival);
        let c = recent.text(long);
        assert_eq!(c, a);
        assert_ne!(c.as_ptr(), a.as_ptr());
        // Past the length bound: made, never remembered.
        let huge = "h".repeat(RECENT_MAX_LEN + 1);
        let d = recent.text(&huge);
        assert_ne!(d.as_ptr(), recent.text(&huge).as_ptr());
        assert!(
            recent
                .slots
                .borrow()
                .iter()
                .all(|s| s.len() <= RECENT_MAX_LEN),
            "no slot holds it"
        );
        let at_bound = "b".repeat(RECENT_MAX_LEN);
        assert_eq!(
            recent.text(&at_bound).as_ptr(),
            recent.text(&at_bound).as_ptr()
        );
    }

    /// The image ids of a host (here 40, as Docker writes them) each keep one slot of
    /// their own, nearly all: they are shared however the list mixes them.
    #[test]
    fn image_ids_spread_over_the_slots() {
        use sha2::Digest;
        let ids: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "sha256:{}",
                    hex::encode(sha2::Sha256::digest(format!("image{i}")))
                )
            })
            .collect();
        let slots: std::collections::HashSet<usize> =
            ids.iter().map(|id| slot_of(id.as_bytes())).collect();
        assert!(slots.len() >= 28, "{} slots for 40 ids", slots.len());
        assert!(slot_of(&[b'x'; 24]) < RECENT_SLOTS);
        assert!(slot_of(&[0xff; 4096]) < RECENT_SLOTS);
    }
}
