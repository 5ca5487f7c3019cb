//! The runtime's index of full container ids, ordered so that the ids with a given prefix
//! are one range of it (a lookup by id prefix does not go through every id).
//!
//! Every id the runtime makes is [`Runtime::ID_LEN`] bytes, so the keys are stored inline
//! in the tree's nodes: a search compares bytes the node already holds instead of
//! following a pointer to each key's heap string, which at a million containers is a
//! cache miss per comparison.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;

use super::Runtime;

/// A full id, inline.
type Key = [u8; Runtime::ID_LEN];

/// Sequence number by full id.
#[derive(Debug, Default)]
pub(super) struct IdIndex {
    seqs: BTreeMap<Key, u64>,
}

impl IdIndex {
    /// Adds `id` for `seq` and returns true, unless `id` is already there or is not
    /// [`Runtime::ID_LEN`] bytes long (false: nothing changed).
    pub(super) fn insert_new(&mut self, id: &str, seq: u64) -> bool {
        let Ok(key) = Key::try_from(id.as_bytes()) else {
            return false;
        };
        match self.seqs.entry(key) {
            Entry::Vacant(slot) => {
                slot.insert(seq);
                true
            }
            Entry::Occupied(_) => false,
        }
    }

    /// The sequence number of the container with exactly this id.
    pub(super) fn get(&self, id: &str) -> Option<u64> {
        let key = Key::try_from(id.as_bytes()).ok()?;
        self.seqs.get(&key).copied()
    }

    /// Forgets `id`.
    pub(super) fn remove(&mut self, id: &str) {
        if let Ok(key) = Key::try_from(id.as_bytes()) {
            self.seqs.remove(&key);
        }
    }

    /// The sequence number of the only id that starts with `prefix`: `None` when none
    /// does, or more than one (two steps into the range from the prefix tell which).
    pub(super) fn unique_prefix(&self, prefix: &str) -> Option<u64> {
        let prefix = prefix.as_bytes();
        if prefix.is_empty() || prefix.len() > Runtime::ID_LEN {
            return None;
        }
        // The smallest key starting with `prefix`: the prefix, then zero bytes (below
        // every byte of an id).
        let mut floor = [0; Runtime::ID_LEN];
        floor[..prefix.len()].copy_from_slice(prefix);
        let mut matches = self
            .seqs
            .range((Bound::Included(floor), Bound::Unbounded))
            .take_while(|(full, _)| full.starts_with(prefix));
        match (matches.next(), matches.next()) {
            (Some((_, seq)), None) => Some(*seq),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(head: &str) -> String {
        format!("{head:0<64}")
    }

    #[test]
    fn ids_are_found_whole_or_by_unique_prefix() {
        let mut index = IdIndex::default();
        assert!(index.insert_new(&id("ab1"), 1));
        assert!(index.insert_new(&id("ab2"), 2));
        assert!(index.insert_new(&id("c"), 3));
        assert!(!index.insert_new(&id("c"), 4), "taken");
        assert!(!index.insert_new("abc", 5), "not an id's length");

        assert_eq!(index.get(&id("ab2")), Some(2));
        assert_eq!(index.get(&id("c")), Some(3));
        assert_eq!(index.get("c"), None);
        assert_eq!(index.get(&id("ab3")), None);

        assert_eq!(index.unique_prefix("ab1"), Some(1));
        assert_eq!(index.unique_prefix("c"), Some(3));
        assert_eq!(index.unique_prefix(&id("c")), Some(3), "a whole id");
        assert_eq!(index.unique_prefix("ab"), None, "ambiguous");
        assert_eq!(index.unique_prefix("d"), None);
        assert_eq!(index.unique_prefix(""), None);
        assert_eq!(
            index.unique_prefix(&format!("{}0", id("c"))),
            None,
            "too long"
        );

        index.remove(&id("ab2"));
        assert_eq!(index.get(&id("ab2")), None);
        assert_eq!(index.unique_prefix("ab"), Some(1));
    }

    /// Against the plain index the runtime kept before (heap strings in an ordered map),
    /// on random ids and every prefix length of some of them.
    #[test]
    fn prefix_lookups_agree_with_an_index_of_strings() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut index = IdIndex::default();
        let mut plain = BTreeMap::<String, u64>::new();
        for seq in 0..2_000 {
            // Few distinct leading digits, so that many prefixes are shared.
            let head: String = (0..4)
                .map(|_| char::from(b"01f"[rng.random_range(0..3)]))
                .collect();
            let tail: String = (0..60)
                .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
                .collect();
            let id = head + &tail;
            assert_eq!(index.insert_new(&id, seq), !plain.contains_key(&id));
            plain.entry(id).or_insert(seq);
        }
        let oracle = |prefix: &str| {
            let mut m = plain
                .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(full, _)| full.starts_with(prefix));
            match (m.next(), m.next()) {
                (Some((_, seq)), None) if !prefix.is_empty() => Some(*seq),
                _ => None,
            }
        };
        for full in plain.keys().step_by(37) {
            for len in 0..=full.len() {
                let prefix = &full[..len];
                assert_eq!(index.unique_prefix(prefix), oracle(prefix), "{prefix}");
            }
            assert_eq!(index.get(full), plain.get(full).copied());
        }
    }
}
