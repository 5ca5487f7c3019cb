//! The list cache: each container version's list item, serialised once when the version
//! is made ([`SummaryJson`]) and kept next to it, within a byte budget.
//!
//! A record's item is dropped when its container changes and made again when the
//! operation that changed it is over ([`ListCache::settle`]), so a version made several
//! times in one operation (populate's create, start, pause) is serialised once. A record
//! without an item (over the budget, or not cacheable) is serialised at each list instead:
//! slower, the same bytes.

use super::machine::Record;
use crate::summary::SummaryJson;

/// The most bytes of serialised list items the runtime keeps (about 720 B a container:
/// some 1.4M containers). Past it, the containers without an item are serialised at
/// each list.
pub const LIST_CACHE_BYTES: usize = 1 << 30;

/// The bytes of list items held, against their budget.
#[derive(Debug)]
pub(super) struct ListCache {
    used: usize,
    budget: usize,
}

impl ListCache {
    pub(super) fn new(budget: usize) -> Self {
        Self { used: 0, budget }
    }

    /// Bytes of items held.
    pub(super) fn used(&self) -> usize {
        self.used
    }

    /// Drops `rec`'s item: its container is about to change, or it is removed.
    pub(super) fn forget(&mut self, rec: &mut Record) {
        if let Some(old) = rec.summary.take() {
            self.used = self.used.saturating_sub(old.heap_bytes());
        }
    }

    /// Makes `rec`'s item if it has none and the budget has room for it.
    pub(super) fn settle(&mut self, rec: &mut Record) {
        if rec.summary.is_some() || self.used >= self.budget {
            return;
        }
        if let Some(item) = SummaryJson::new(&rec.container) {
            self.keep(rec, item);
        }
    }

    /// [`Self::settle`] for each of `recs` in turn, with the items made on every core
    /// first (from [`PARALLEL_SETTLE`] records on): most of a large runtime's start is
    /// serialising its list items. The same records get the same items as one by one.
    pub(super) fn settle_all<'a>(&mut self, recs: impl Iterator<Item = &'a mut Record>) {
        let recs: Vec<&mut Record> = recs.filter(|rec| rec.summary.is_none()).collect();
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        if recs.len() < PARALLEL_SETTLE || threads == 1 {
            for rec in recs {
                self.settle(rec);
            }
            return;
        }
        let items = made_in_parallel(&recs, threads);
        for (rec, item) in recs.into_iter().zip(items) {
            if self.used >= self.budget {
                break;
            }
            if let Some(item) = item {
                self.keep(rec, item);
            }
        }
    }

    /// Gives `rec` its `item` if the budget has room for it.
    fn keep(&mut self, rec: &mut Record, item: SummaryJson) {
        let bytes = item.heap_bytes();
        if self.used.saturating_add(bytes) <= self.budget {
            self.used += bytes;
            rec.summary = Some(item);
        }
    }
}

/// From this many records on, [`ListCache::settle_all`] makes their items on every core.
const PARALLEL_SETTLE: usize = 4096;

/// The items of `recs`, in order, made on `threads` threads. A part whose thread cannot
/// be started is made on this one; a thread that failed leaves its records without an
/// item (they are then serialised at each list).
fn made_in_parallel(recs: &[&mut Record], threads: usize) -> Vec<Option<SummaryJson>> {
    fn make(part: &[&mut Record]) -> Vec<Option<SummaryJson>> {
        part.iter()
            .map(|rec| SummaryJson::new(&rec.container))
            .collect()
    }
    let chunk = recs.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = recs
            .chunks(chunk)
            .map(|part| {
                let made = std::thread::Builder::new().spawn_scoped(scope, move || make(part));
                (part, made)
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|(part, made)| match made {
                Ok(thread) => thread.join().unwrap_or_else(|_| vec![None; part.len()]),
                Err(_) => make(part),
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};

    use hypersh_watch::container::Container;

    use super::super::{Runtime, list_order, snapshots_at};
    use super::*;
    use crate::json_array::{Serde, WriteJson, chunks};
    use crate::summary::{Listed, Summary};

    type Keep = fn(&Container, Option<i64>) -> bool;

    fn joined<T: WriteJson>(items: impl IntoIterator<Item = T>) -> Vec<u8> {
        chunks(items)
            .flat_map(|chunk| chunk.expect("a list item serialises").to_vec())
            .collect()
    }

    /// The plain path, as the router wrote lists before the cache: copies of the
    /// containers with their status at `now`, the first `limit`, each serialised by serde.
    fn oracle(
        rt: &Runtime,
        now: SystemTime,
        all: bool,
        ids: Option<&[&str]>,
        limit: Option<usize>,
        keep: Keep,
    ) -> Vec<u8> {
        let st = rt.inner.state.lock();
        let copies = match ids {
            Some(ids) => {
                let seqs = list_order(&st, ids);
                snapshots_at(
                    now,
                    seqs.iter().filter_map(|s| st.records.get(s)),
                    all,
                    keep,
                )
            }
            None => snapshots_at(now, st.records.values().rev(), all, keep),
        };
        joined(
            copies
                .iter()
                .take(limit.unwrap_or(usize::MAX))
                .map(|c| Serde(Summary(c))),
        )
    }

    /// Every kind of list at every age against the oracle; returns how many items of a
    /// full list were cached and how many were serialised by serde.
    fn assert_same_bytes(rt: &Runtime, ids: &[&str]) -> (usize, usize) {
        let keeps: [Keep; 3] = [
            |_, _| true,
            |c, _| c.labels().iter().count() > 1,
            |_, code| code.is_some_and(|c| c != 0),
        ];
        let base = SystemTime::now();
        let ages = [
            0,
            1,
            2,
            59,
            61,
            3_599,
            3_600,
            2 * 3_600,
            3 * 86_400,
            40 * 86_400,
        ];
        for age in ages.map(Duration::from_secs) {
            let now = base + age;
            for all in [true, false] {
                for keep in keeps {
                    for limit in [None, Some(1), Some(7)] {
                        for ids in [None, Some(ids)] {
                            let listed = rt.list_summaries_at(|| now, all, ids, limit, keep);
                            assert_eq!(
                                String::from_utf8_lossy(&joined(listed)),
                                String::from_utf8_lossy(&oracle(rt, now, all, ids, limit, keep)),
                                "age {age:?}, all {all}, limit {limit:?}, ids {}",
                                ids.is_some()
                            );
                        }
                    }
                }
            }
        }
        let listed = rt.list_summaries(true, None, None, |_, _| true);
        let cached = listed
            .iter()
            .filter(|l| matches!(l, Listed::Cached { .. }))
            .count();
        (cached, listed.len() - cached)
    }

    fn ids_of(rt: &Runtime) -> Vec<String> {
        rt.list(true)
            .iter()
            .step_by(3)
            .map(|c| c.id().to_owned())
            .chain(["unknown".to_owned()])
            .collect()
    }

    fn as_strs(ids: &[String]) -> Vec<&str> {
        ids.iter().map(String::as_str).collect()
    }

    #[test]
    fn the_cached_list_writes_the_bytes_serde_writes_as_containers_change_and_age() {
        let rt = Runtime::new(29);
        rt.populate(120);
        let ids = ids_of(&rt);
        let (cached, plain) = assert_same_bytes(&rt, &as_strs(&ids));
        assert_eq!((cached, plain), (120, 0), "every version is cached");

        // Every transition, by hand, then random churn (creates, renames, destroys).
        let all = rt.list(true);
        let by_state = |s| {
            all.iter()
                .filter(move |c| c.state() == s)
                .map(Container::id)
        };
        use hypersh_watch::container::ContainerState::{Created, Exited, Paused, Running};
        let (created, running, paused, exited) = (
            by_state(Created).next().unwrap().to_owned(),
            by_state(Running).next().unwrap().to_owned(),
            by_state(Paused).next().unwrap().to_owned(),
            by_state(Exited).next().unwrap().to_owned(),
        );
        rt.start(&created).unwrap();
        rt.pause(&created).unwrap();
        rt.unpause(&paused).unwrap();
        rt.kill(&paused).unwrap();
        rt.restart(&exited).unwrap();
        rt.die(&exited, 3).unwrap();
        rt.rename(&running, "renamed").unwrap();
        rt.stop(&running).unwrap();
        let odd = labels(&[
            ("Status", "\u{1}hypersh-status\u{1}"),
            ("quote\"d", "back\\slash, tab\t, é, \u{7f}"),
        ]);
        let marked = rt.create("marked", "busybox", odd);
        rt.start(&marked).unwrap();
        let quoted = rt.create("", "nginx:1.25", labels(&[("a", "\"}\n")]));
        rt.destroy(all[5].id()).unwrap();
        assert_same_bytes(&rt, &as_strs(&ids));
        for _ in 0..400 {
            rt.churn_once();
        }
        let ids = ids_of(&rt);
        let (cached, plain) = assert_same_bytes(&rt, &as_strs(&ids));
        assert!(rt.get(&quoted).is_some());
        assert_eq!(
            plain,
            usize::from(rt.get(&marked).is_some()),
            "only the container whose label holds the status mark is not cached"
        );
        assert!(cached > 100);

        // The cache's bytes are the items' bytes, and go with the containers.
        let held: usize = {
            let st = rt.inner.state.lock();
            st.records
                .values()
                .filter_map(|r| r.summary.as_ref().map(SummaryJson::heap_bytes))
                .sum()
        };
        assert_eq!(rt.list_cache_bytes(), held);
        for c in rt.list(true) {
            rt.destroy(c.id()).unwrap();
        }
        assert_eq!(rt.list_cache_bytes(), 0);
    }

    /// Populate makes its items on every core: the records that get one, and the bytes
    /// held, are those of settling one record at a time, past the budget too.
    #[test]
    fn items_made_in_parallel_are_those_made_one_by_one() {
        let rt = Runtime::new(11);
        let n = PARALLEL_SETTLE + 900;
        let budget = (n - 1_000) * 600;
        rt.inner.state.lock().list_cache = ListCache::new(budget);
        rt.populate(n);
        let held = |st: &super::super::State| -> Vec<Option<usize>> {
            st.records
                .values()
                .map(|r| r.summary.as_ref().map(SummaryJson::heap_bytes))
                .collect()
        };
        let mut st = rt.inner.state.lock();
        let parallel = held(&st);
        let used = st.list_cache.used();
        assert_eq!(parallel.len(), n);
        assert!(
            used <= budget && used > budget - 2_000,
            "{used} of {budget}"
        );
        let made = parallel.iter().flatten().count();
        assert!(made > n - 2_000 && made < n, "{made} items of {n}");

        let super::super::State {
            records,
            list_cache,
            ..
        } = &mut *st;
        for rec in records.values_mut() {
            list_cache.forget(rec);
        }
        assert_eq!(list_cache.used(), 0);
        for rec in records.values_mut() {
            list_cache.settle(rec);
        }
        assert_eq!(held(&st), parallel);
        assert_eq!(st.list_cache.used(), used);
        // Whatever the machine's cores: three threads, chunks of unequal length.
        let recs: Vec<&mut Record> = st.records.values_mut().collect();
        let sizes = |items: Vec<Option<SummaryJson>>| -> Vec<Option<usize>> {
            items
                .iter()
                .map(|i| i.as_ref().map(SummaryJson::heap_bytes))
                .collect()
        };
        let one_by_one: Vec<_> = recs
            .iter()
            .map(|r| SummaryJson::new(&r.container))
            .collect();
        assert_eq!(sizes(made_in_parallel(&recs, 3)), sizes(one_by_one));
        drop(recs);
        drop(st);

        let now = SystemTime::now();
        let listed = rt.list_summaries_at(|| now, true, None, None, |_, _| true);
        assert_eq!(
            joined(listed),
            oracle(&rt, now, true, None, None, |_, _| true)
        );
    }

    #[test]
    fn past_its_budget_the_cache_leaves_containers_to_serde_with_the_same_bytes() {
        let rt = Runtime::new(3);
        let budget = 30 * 700;
        rt.inner.state.lock().list_cache = ListCache::new(budget);
        rt.populate(80);
        assert!(rt.list_cache_bytes() <= budget);
        let ids = ids_of(&rt);
        let (cached, plain) = assert_same_bytes(&rt, &as_strs(&ids));
        assert!(cached > 10 && plain > 10, "{cached} cached, {plain} not");
        for _ in 0..200 {
            rt.churn_once();
        }
        assert!(rt.list_cache_bytes() <= budget);
        assert_same_bytes(&rt, &as_strs(&ids_of(&rt)));
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }
}
