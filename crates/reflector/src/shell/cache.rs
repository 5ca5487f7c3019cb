//! The store's two write paths as the core's [`Cache`]: a writer batch while watching, the
//! relist while listing; and [`NoCache`] for inputs that carry no container.

use hypersh_store::{Batch, Change, Relist};
use hypersh_watch::Container;

use crate::core::Cache;

/// The cache of inputs that do not change it.
pub(super) struct NoCache;

impl Cache for NoCache {
    fn update<F>(&mut self, _: &str, _: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>,
    {
        false
    }

    fn insert(&mut self, _: Container) {}
}

/// While watching, the core changes the store through a writer batch.
impl Cache for Batch<'_, Container> {
    fn update<F>(&mut self, id: &str, f: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>,
    {
        Batch::update(self, id, f)
    }

    fn insert(&mut self, c: Container) {
        self.apply(Change::Upsert(c));
    }
}

/// While listing, the list goes into the relist and the core replays events onto it.
impl Cache for Relist<'_, Container> {
    fn update<F>(&mut self, id: &str, f: F) -> bool
    where
        F: FnOnce(Option<&Container>) -> Option<Change<Container>>,
    {
        let listed = self.get(id);
        match f(listed.as_deref()) {
            Some(Change::Upsert(c)) => {
                Relist::insert(self, c);
                true
            }
            Some(Change::Delete(key)) => {
                self.remove(&key);
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, c: Container) {
        Relist::insert(self, c);
    }
}
