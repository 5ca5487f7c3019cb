//! What the watch phase keeps between events: the containers waiting to be fetched, those
//! being fetched, and the events held until their fetch answers. [`Live::apply`] turns
//! one live event into a change of the store, through a writer [`Batch`].

use std::collections::BTreeSet;

use hypersh_store::{Batch, Change, Store};
use hypersh_watch::{Container, WatchEvent};

use crate::plan::{Plan, plan};

/// The watch phase's bookkeeping, beside a reader of the store it fills.
pub(crate) struct Live {
    /// A reader on the writer's store, to look up cached containers.
    pub(crate) store: Store<Container>,
    /// Containers an event named that must be fetched (the cache lacks them, or the
    /// event cannot say what changed), waiting for the next fetch. A fetch starts as
    /// soon as fewer than the maximum are in flight and takes every pending container:
    /// a burst of creates costs a few list calls, not one each.
    pub(crate) pending: BTreeSet<String>,
    /// The containers the fetches in flight ask for. Other events keep being applied
    /// meanwhile.
    pub(crate) in_flight: BTreeSet<String>,
    /// Events about containers in flight, received while their fetch runs, in order.
    /// The answer may predate them: they are replayed on top of it.
    pub(crate) held: Vec<WatchEvent>,
}

impl Live {
    pub(crate) fn new(store: Store<Container>) -> Self {
        Self {
            store,
            pending: BTreeSet::new(),
            in_flight: BTreeSet::new(),
            held: Vec::new(),
        }
    }

    /// Forgets everything: a full list covers what was pending or being fetched, and is
    /// newer than the events held for a fetch.
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.in_flight.clear();
        self.held.clear();
    }

    /// Applies one live event into `batch`; returns whether the cache changed.
    /// Containers that must be fetched are only marked pending here.
    pub(crate) fn apply(&mut self, batch: &mut Batch<'_, Container>, event: WatchEvent) -> bool {
        let id = event.id();
        if self.in_flight.contains(id) {
            // The fetch's answer may be older than this event: replay it after.
            self.held.push(event);
            return false;
        }
        if self.pending.contains(id) {
            // The pending fetch comes after this event and will see a newer state,
            // unless the container is gone: then its delete is applied now.
            if matches!(event, WatchEvent::Deleted(_)) {
                self.pending.remove(id);
                return delete(batch, id);
            }
            return false;
        }
        // Planned and applied with one look-up of the container.
        let mut fetch = false;
        let changed = batch.update(id, |cached| match plan(&event, cached) {
            Plan::Nothing => None,
            Plan::Upsert(c) => Some(Change::Upsert(c)),
            Plan::Delete => removal(cached, id),
            Plan::Fetch => {
                fetch = true;
                None
            }
        });
        if fetch {
            self.pending.insert(id.to_owned());
        }
        changed
    }
}

/// Removes a container; returns whether the cache had it.
pub(crate) fn delete(batch: &mut Batch<'_, Container>, id: &str) -> bool {
    batch.update(id, |cached| removal(cached, id))
}

/// The change that removes `id`, if the cache has it.
fn removal(cached: Option<&Container>, id: &str) -> Option<Change<Container>> {
    cached.map(|_| Change::Delete(id.to_owned()))
}
