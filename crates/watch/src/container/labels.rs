//! [`Labels`]: a container's labels, key to value.

use std::fmt;

use litemap::LiteMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smol_str::SmolStr;

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
    /// A map of strings; a sequence of `[key, value]` pairs is accepted too.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        LiteMap::deserialize(d).map(Self)
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
    }
}
