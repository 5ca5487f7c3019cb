//! Named secondary indexes (client-go's `Indexers`): an index function maps an object to zero
//! or more index values, and each index maps a value to the keys of the objects that have it.
//!
//! Indexes live behind the store's apply lock together with the object map, so a reader never
//! sees an index that disagrees with the map. Index functions must be deterministic: an
//! object's old entries are found by calling the function on its old version again (as
//! client-go does), which saves storing every object's values a second time.

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::{Error, Keyed};

/// A user index function: the index values of one object.
pub(crate) type IndexFn<T> = Box<dyn Fn(&T) -> Vec<String> + Send + Sync>;

/// One named index.
struct Index<T> {
    f: IndexFn<T>,
    /// Index value -> keys of the objects having it, sorted so queries are deterministic.
    values: HashMap<String, BTreeSet<Arc<str>>>,
}

impl<T: Keyed> Index<T> {
    /// The object's index values, sorted and without duplicates. A panicking index function
    /// is logged and treated as returning no values, so the writer never unwinds halfway
    /// through an update.
    fn values_of(&self, name: &str, obj: &T) -> Vec<String> {
        match catch_unwind(AssertUnwindSafe(|| (self.f)(obj))) {
            Ok(mut values) => {
                values.sort_unstable();
                values.dedup();
                values
            }
            Err(_) => {
                tracing::error!(
                    index = name,
                    key = obj.key(),
                    "index function panicked; the object is left out of this index"
                );
                Vec::new()
            }
        }
    }

    fn insert(&mut self, key: &Arc<str>, values: Vec<String>) {
        for value in values {
            self.values
                .entry(value)
                .or_default()
                .insert(Arc::clone(key));
        }
    }

    fn remove(&mut self, key: &str, values: &[String]) {
        for value in values {
            if let Some(keys) = self.values.get_mut(value) {
                keys.remove(key);
                if keys.is_empty() {
                    self.values.remove(value);
                }
            }
        }
    }
}

/// Every index of one store.
pub(crate) struct Indexes<T> {
    by_name: HashMap<String, Index<T>>,
}

impl<T> Default for Indexes<T> {
    fn default() -> Self {
        Self {
            by_name: HashMap::new(),
        }
    }
}

impl<T> Indexes<T> {
    /// Whether no index is defined (then an update has nothing to do).
    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

impl<T: Keyed> Indexes<T> {
    /// Adds (or replaces) the index `name` and indexes every object in `objects`.
    pub(crate) fn add(
        &mut self,
        name: String,
        f: IndexFn<T>,
        objects: impl IntoIterator<Item = (Arc<str>, Arc<T>)>,
    ) {
        let mut index = Index {
            f,
            values: HashMap::new(),
        };
        for (key, obj) in objects {
            let values = index.values_of(&name, &obj);
            index.insert(&key, values);
        }
        self.by_name.insert(name, index);
    }

    /// Moves `key` from the index values of `old` to those of `new` (either may be absent:
    /// an add has no `old`, a delete no `new`).
    pub(crate) fn update(&mut self, key: &Arc<str>, old: Option<&T>, new: Option<&T>) {
        for (name, index) in &mut self.by_name {
            let old_values = old.map(|o| index.values_of(name, o)).unwrap_or_default();
            let new_values = new.map(|n| index.values_of(name, n)).unwrap_or_default();
            if old_values == new_values {
                continue;
            }
            let gone: Vec<String> = old_values
                .into_iter()
                .filter(|v| new_values.binary_search(v).is_err())
                .collect();
            index.remove(key, &gone);
            index.insert(key, new_values);
        }
    }

    /// The keys of the objects whose index `name` contains `value`, in key order.
    pub(crate) fn keys(
        &self,
        name: &str,
        value: &str,
    ) -> Result<impl Iterator<Item = &Arc<str>>, Error> {
        let index = self.by_name.get(name).ok_or_else(|| Error::UnknownIndex {
            name: name.to_owned(),
        })?;
        Ok(index.values.get(value).into_iter().flatten())
    }

    /// Every value of index `name` that at least one object has, sorted.
    pub(crate) fn values(&self, name: &str) -> Result<Vec<String>, Error> {
        let index = self.by_name.get(name).ok_or_else(|| Error::UnknownIndex {
            name: name.to_owned(),
        })?;
        let mut values: Vec<String> = index.values.keys().cloned().collect();
        values.sort_unstable();
        Ok(values)
    }

    /// The names of every index, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort_unstable();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Obj {
        id: &'static str,
        tags: Vec<&'static str>,
    }

    impl Keyed for Obj {
        fn key(&self) -> &str {
            self.id
        }
    }

    fn by_tag() -> IndexFn<Obj> {
        Box::new(|o: &Obj| o.tags.iter().map(|t| (*t).to_owned()).collect())
    }

    fn keys(ix: &Indexes<Obj>, name: &str, value: &str) -> Vec<String> {
        ix.keys(name, value)
            .unwrap()
            .map(|k| k.to_string())
            .collect()
    }

    #[test]
    fn add_indexes_existing_objects_and_dedups_values() {
        let a = Obj {
            id: "a",
            tags: vec!["x", "y", "x"],
        };
        let b = Obj {
            id: "b",
            tags: vec!["y"],
        };
        let mut ix = Indexes::default();
        ix.add(
            "tag".to_owned(),
            by_tag(),
            [(Arc::from("a"), Arc::new(a)), (Arc::from("b"), Arc::new(b))],
        );
        assert_eq!(keys(&ix, "tag", "x"), ["a"]);
        assert_eq!(keys(&ix, "tag", "y"), ["a", "b"]);
        assert!(keys(&ix, "tag", "z").is_empty());
        assert_eq!(ix.values("tag").unwrap(), ["x", "y"]);
        assert_eq!(ix.names(), ["tag"]);
    }

    #[test]
    fn update_moves_keys_and_delete_drops_empty_values() {
        let mut ix = Indexes::default();
        ix.add("tag".to_owned(), by_tag(), []);
        let key: Arc<str> = Arc::from("a");
        let v1 = Obj {
            id: "a",
            tags: vec!["x", "y"],
        };
        let v2 = Obj {
            id: "a",
            tags: vec!["y", "z"],
        };
        ix.update(&key, None, Some(&v1));
        ix.update(&key, Some(&v1), Some(&v2));
        assert!(keys(&ix, "tag", "x").is_empty());
        assert_eq!(keys(&ix, "tag", "y"), ["a"]);
        assert_eq!(keys(&ix, "tag", "z"), ["a"]);
        assert_eq!(ix.values("tag").unwrap(), ["y", "z"]);
        ix.update(&key, Some(&v2), None);
        assert!(ix.values("tag").unwrap().is_empty());
    }

    #[test]
    fn unknown_index_is_an_error() {
        let ix = Indexes::<Obj>::default();
        assert_eq!(
            ix.keys("nope", "v").err(),
            Some(Error::UnknownIndex {
                name: "nope".to_owned()
            })
        );
        assert!(ix.values("nope").is_err());
    }

    #[test]
    fn panicking_index_function_leaves_the_object_out() {
        let mut ix = Indexes::default();
        ix.add(
            "boom".to_owned(),
            Box::new(|o: &Obj| {
                assert!(o.id != "bad", "boom");
                vec!["ok".to_owned()]
            }),
            [],
        );
        let good = Obj {
            id: "a",
            tags: vec![],
        };
        let bad = Obj {
            id: "bad",
            tags: vec![],
        };
        ix.update(&Arc::from("a"), None, Some(&good));
        ix.update(&Arc::from("bad"), None, Some(&bad));
        assert_eq!(keys(&ix, "boom", "ok"), ["a"]);
    }

    #[test]
    fn replacing_an_index_rebuilds_it() {
        let a = Obj {
            id: "a",
            tags: vec!["x"],
        };
        let mut ix = Indexes::default();
        let a = Arc::new(a);
        ix.add("i".to_owned(), by_tag(), [(Arc::from("a"), Arc::clone(&a))]);
        ix.add(
            "i".to_owned(),
            Box::new(|o: &Obj| vec![o.id.to_uppercase()]),
            [(Arc::from("a"), a)],
        );
        assert!(keys(&ix, "i", "x").is_empty());
        assert_eq!(keys(&ix, "i", "A"), ["a"]);
    }
}
