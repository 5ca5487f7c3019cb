//! [`Labels`]: a container's labels, key to value.

use std::fmt;

use litemap::LiteMap;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smol_str::SmolStr;

use super::shared::text_heap;

/// The most memory one container's (or one event's) labels may keep when decoded,
/// counting each label's entry (48 bytes) and the heap of keys and values longer than 23
/// bytes: 1 MiB, as each of a container's other lists (`MAX_KEPT_BYTES`). Labels that
/// would keep more fail to decode, so a hostile server cannot turn a 1 MiB list element
/// of short labels (86 000 of them, over 4 MiB decoded) into a heap four times its size.
/// A real container keeps well under 4 KiB of labels (a Compose service's dozen keep
/// about 1 KiB); 10 000 labels keep about 480 KiB.
pub const MAX_LABELS_BYTES: usize = 1 << 20;

/// A container's labels, key to value, sorted by key.
///
/// It reads like a map of `&str` ([`get`](Self::get), [`contains_key`](Self::contains_key),
/// [`iter`](Self::iter), [`len`](Self::len)), collects from pairs of strings, and
/// serialises as a JSON object (`{}` when empty), as Docker writes `Labels`.
///
/// A container has a handful of labels, so they are kept in one sorted vector, and each
/// key and value up to 23 bytes long is stored inline without an allocation of its own.
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::container::Labels;
///
/// let labels: Labels = [("app", "web"), ("tier", "front")].into_iter().collect();
/// assert_eq!(labels.get("app"), Some("web"));
/// assert!(labels.contains_key("tier"));
/// assert_eq!(labels.iter().next(), Some(("app", "web")));
/// assert_eq!(serde_json::to_string(&labels)?, r#"{"app":"web","tier":"front"}"#);
/// assert_eq!(serde_json::to_string(&Labels::new())?, "{}");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Labels(LiteMap<SmolStr, SmolStr>);

impl Labels {
    /// No labels.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if set.
    #[inline]
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(SmolStr::as_str)
    }

    /// Whether `key` is set.
    #[inline]
    #[must_use]
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Every label as `(key, value)`, sorted by key.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + DoubleEndedIterator {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many labels there are.
    #[inline]
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    #[inline]
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sets `key` to `value` (replacing an earlier value).
    pub(crate) fn insert(&mut self, key: SmolStr, value: SmolStr) {
        self.0.insert(key, value);
    }

    /// The memory these labels keep: each entry, and the heap of its long texts.
    #[must_use]
    pub fn kept_bytes(&self) -> usize {
        self.0.iter().map(|(k, v)| entry_bytes(k, v)).sum::<usize>()
    }

    /// Sets `key` to `value` while decoding, counting what they keep in `kept`; an error
    /// naming [`MAX_LABELS_BYTES`] once the labels would keep more.
    pub(crate) fn insert_within<E: de::Error>(
        &mut self,
        key: SmolStr,
        value: SmolStr,
        kept: &mut usize,
    ) -> Result<(), E> {
        if !self.insert_kept(key, value, kept) {
            return Err(E::custom(format_args!(
                "the labels keep more than {MAX_LABELS_BYTES} bytes (container::MAX_LABELS_BYTES)"
            )));
        }
        Ok(())
    }

    /// [`insert_within`](Self::insert_within) for the list element scanner: false, and
    /// nothing inserted, once the labels would keep more than [`MAX_LABELS_BYTES`].
    pub(crate) fn insert_kept(&mut self, key: SmolStr, value: SmolStr, kept: &mut usize) -> bool {
        *kept += entry_bytes(&key, &value);
        if *kept > MAX_LABELS_BYTES {
            return false;
        }
        self.0.insert(key, value);
        true
    }
}

/// The memory one label keeps: its entry and the heap of its texts.
fn entry_bytes(key: &SmolStr, value: &SmolStr) -> usize {
    size_of::<(SmolStr, SmolStr)>() + text_heap(key) + text_heap(value)
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Labels {
    /// Collects pairs of strings; of two pairs with the same key, the last one counts.
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (SmolStr::new(k), SmolStr::new(v)))
                .collect(),
        )
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    /// Always a map (`{}` when empty).
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    /// A map of strings; a sequence of `[key, value]` pairs is accepted too. Labels that
    /// keep more than [`MAX_LABELS_BYTES`] are an error.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut labels = Labels::new();
                let mut kept = 0;
                while let Some((key, value)) = map.next_entry::<SmolStr, SmolStr>()? {
                    labels.insert_within(key, value, &mut kept)?;
                }
                Ok(labels)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Labels, A::Error> {
                let mut labels = Labels::new();
                let mut kept = 0;
                while let Some((key, value)) = seq.next_element::<(SmolStr, SmolStr)>()? {
                    labels.insert_within(key, value, &mut kept)?;
                }
                Ok(labels)
            }
        }

        d.deserialize_any(LabelsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_labels_serialise_as_an_object() {
        assert_eq!(serde_json::to_string(&Labels::new()).unwrap(), "{}");
        assert_eq!(
            serde_json::to_value(Labels::new()).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn collects_in_key_order_and_the_last_duplicate_wins() {
        let labels: Labels = [("b", "1"), ("a", "2"), ("b", "3")].into_iter().collect();
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "3")]);
        assert_eq!(labels.len(), 2);
        assert_eq!(format!("{labels:?}"), r#"{"a": "2", "b": "3"}"#);
        let owned: Labels = vec![(String::from("a"), String::from("2"))]
            .into_iter()
            .collect();
        assert_eq!(owned.get("a"), Some("2"));
        assert_eq!(owned.get("b"), None);
    }

    #[test]
    fn round_trips_through_json() {
        let labels: Labels = [("app", "web"), ("a.long.key.with.more.than.23", "v")]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), labels);
        // An unsorted object, and the pair list an earlier dump wrote for no labels.
        let unsorted: Labels = serde_json::from_str(r#"{"z":"1","a":"2"}"#).unwrap();
        assert_eq!(unsorted.iter().next(), Some(("a", "2")));
        assert!(serde_json::from_str::<Labels>("[]").unwrap().is_empty());
        let pairs: Labels = serde_json::from_str(r#"[["b","1"],["a","2"]]"#).unwrap();
        assert_eq!(pairs.iter().collect::<Vec<_>>(), [("a", "2"), ("b", "1")]);
    }

    #[test]
    fn labels_past_the_bound_fail_to_decode_naming_it() {
        let n = MAX_LABELS_BYTES / size_of::<(SmolStr, SmolStr)>();
        let object = |n: usize| {
            let pairs: Vec<String> = (0..n).map(|i| format!(r#""k{i}":"v""#)).collect();
            format!("{{{}}}", pairs.join(","))
        };
        let within: Labels = serde_json::from_str(&object(n)).unwrap();
        assert_eq!(within.len(), n);
        assert!(within.kept_bytes() <= MAX_LABELS_BYTES);
        let err = serde_json::from_str::<Labels>(&object(n + 1)).unwrap_err();
        assert!(err.to_string().contains("MAX_LABELS_BYTES"), "{err}");
        // Long texts count their heap.
        let long = format!(r#"{{"k":"{}"}}"#, "v".repeat(MAX_LABELS_BYTES));
        assert!(serde_json::from_str::<Labels>(&long).is_err());
    }
}
