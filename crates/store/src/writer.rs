//! The writer side: [`Writer`] applies changes and relists, then notifies the handlers.

use std::fmt;
use std::sync::Arc;

use crate::batch::{Batch, stage};
use crate::config::Transform;
use crate::dispatch::Outbox;
use crate::relist::Relist;
use crate::shared::Shared;
use crate::{Change, Keyed, Store};

/// The single writer of a store, owned by whoever keeps the cache in step with the source
/// of truth (the reflector).
///
/// Each call updates the map and the indexes atomically (readers see all of it or none of
/// it), then enqueues one notification per registered handler (a [`Batch`] enqueues one
/// entry per handler for up to 64 changes). Handlers never run on this path; with
/// [`FullPolicy::Block`](crate::FullPolicy::Block) a full handler queue makes the call wait
/// for room (backpressure).
///
/// **Cancel safety**: if an `apply`/`replace` future is dropped after the change was applied
/// but before every handler got its notification, the rest is kept and delivered first by
/// the next call (or by [`flush`](Self::flush)); a future dropped before that point has not
/// changed anything.
pub struct Writer<T> {
    pub(crate) shared: Arc<Shared<T>>,
    transform: Option<Transform<T>>,
    pub(crate) outbox: Outbox<T>,
}

impl<T: Keyed + PartialEq + Send + Sync + 'static> Writer<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>, transform: Option<Transform<T>>) -> Self {
        Self {
            shared,
            transform,
            outbox: Outbox::default(),
        }
    }

    pub(crate) fn transformed(&self, obj: T) -> T {
        match &self.transform {
            Some(f) => f(obj),
            None => obj,
        }
    }

    pub(crate) fn transformed_change(&self, change: Change<T>) -> Change<T> {
        match change {
            Change::Upsert(obj) => Change::Upsert(self.transformed(obj)),
            delete @ Change::Delete(_) => delete,
        }
    }

    /// Applies one change.
    ///
    /// - `Upsert(obj)`: adds `obj` if its key is absent (`on_add`), else replaces the cached
    ///   version (`on_update(old, new)`), even when the two are equal (as in client-go).
    /// - `Delete(key)`: removes the cached object (`on_delete(Deleted::Known(last))`); a key
    ///   that is not cached is ignored.
    pub async fn apply(&mut self, change: Change<T>) {
        let change = self.transformed_change(change);
        let Self { shared, outbox, .. } = self;
        let _turn = shared.dispatch.lock().await;
        outbox.flush(shared).await;
        // What no handler takes is dropped after the state lock, not under it.
        let _unsent = stage(shared, outbox, change);
        outbox.flush(shared).await;
    }

    /// Starts a [`Batch`]: changes applied one by one, each visible to readers at once,
    /// whose notifications reach each handler together when the batch is committed.
    /// Waits for the dispatch turn (and delivers what a cancelled call left over first).
    pub async fn batch(&mut self) -> Batch<'_, T> {
        let turn = Arc::clone(&self.shared.dispatch).lock_owned().await;
        self.outbox.flush(&self.shared).await;
        Batch::new(self, turn)
    }

    /// Replaces the whole content with `all` (a relist), and marks the store synced.
    ///
    /// Objects whose key is new produce `on_add`; objects that differ (`!=`) from the cached
    /// version produce `on_update(old, new)`; equal ones produce nothing and the cached `Arc`
    /// is kept. Cached objects missing from `all` are removed and produce
    /// `on_delete(Deleted::FinalStateUnknown(last))`, after the adds and updates, in key
    /// order. If `all` holds a key twice, the last version wins. Readers see the relist all
    /// at once.
    pub async fn replace(&mut self, all: impl IntoIterator<Item = T>) {
        let mut relist = self.relist();
        for obj in all {
            relist.insert(obj);
        }
        relist.commit().await;
    }

    /// Starts a relist fed one object at a time (see [`Relist`]): what
    /// [`replace`](Self::replace) does, without needing every object at once. Use it to
    /// decode a large list straight into the store.
    pub fn relist(&mut self) -> Relist<'_, T> {
        Relist::new(self)
    }

    /// Delivers notifications left over by a cancelled `apply`/`replace` (a no-op otherwise).
    pub async fn flush(&mut self) {
        let shared = Arc::clone(&self.shared);
        let _turn = shared.dispatch.lock().await;
        self.outbox.flush(&shared).await;
    }

    /// How many notifications still wait to be delivered (non-zero only after a cancelled
    /// `apply`/`replace`).
    pub fn pending(&self) -> usize {
        self.outbox.len()
    }

    /// A reader on this writer's store.
    pub fn store(&self) -> Store<T> {
        Store {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Keyed> fmt::Debug for Writer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("len", &self.shared.map.len())
            .field("pending", &self.outbox.len())
            .field("transform", &self.transform.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testutil::{Ev, Obj, next, obj, recorder, tagged, take};
    use crate::{HandlerOptions, StoreConfig, store};

    fn new_store() -> (Writer<Obj>, Store<Obj>) {
        store(StoreConfig::default())
    }

    fn versions(s: &Store<Obj>) -> Vec<(String, u32)> {
        let mut all: Vec<(String, u32)> = s.list().iter().map(|o| (o.id.clone(), o.v)).collect();
        all.sort();
        all
    }

    fn ids(objs: &[Arc<Obj>]) -> Vec<&str> {
        objs.iter().map(|o| o.id.as_str()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn upsert_adds_then_updates_even_when_equal() {
        let (mut w, s) = new_store();
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::default());
        w.apply(Change::Upsert(obj("a", 1))).await;
        w.apply(Change::Upsert(obj("a", 1))).await;
        w.apply(Change::Upsert(obj("a", 2))).await;
        assert_eq!(
            take(&mut rx, 3).await,
            [
                Ev::Add("a".into(), 1),
                Ev::Update("a".into(), 1, 1, false),
                Ev::Update("a".into(), 1, 2, false),
            ]
        );
        assert_eq!(versions(&s), [("a".to_owned(), 2)]);
        assert_eq!(s.get("a").map(|o| o.v), Some(2));
    }

    #[tokio::test(start_paused = true)]
    async fn delete_of_cached_key_is_known_and_of_absent_key_is_silent() {
        let (mut w, s) = new_store();
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::default());
        w.apply(Change::Upsert(obj("a", 1))).await;
        w.apply(Change::Delete("a".into())).await;
        w.apply(Change::Delete("a".into())).await;
        w.apply(Change::Delete("never".into())).await;
        w.apply(Change::Upsert(obj("sentinel", 0))).await;
        assert_eq!(
            take(&mut rx, 3).await,
            [
                Ev::Add("a".into(), 1),
                Ev::Delete("a".into(), 1, false),
                Ev::Add("sentinel".into(), 0),
            ]
        );
        assert!(s.get("a").is_none());
        assert_eq!(s.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn replace_notifies_only_changes_and_tombstones_what_vanished() {
        let (mut w, s) = new_store();
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::default());
        w.replace(vec![obj("a", 1), obj("b", 1), obj("c", 1), obj("e", 1)])
            .await;
        let mut first = take(&mut rx, 4).await;
        first.sort_by(|x, y| x.key().cmp(y.key()));
        assert_eq!(
            first,
            ["a", "b", "c", "e"].map(|k| Ev::Add(k.into(), 1)).to_vec()
        );
        let a_before = s.get("a");

        w.replace(vec![obj("a", 1), obj("b", 2), obj("d", 1)]).await;
        assert_eq!(
            take(&mut rx, 4).await,
            [
                Ev::Update("b".into(), 1, 2, false),
                Ev::Add("d".into(), 1),
                Ev::Delete("c".into(), 1, true),
                Ev::Delete("e".into(), 1, true),
            ]
        );
        assert_eq!(
            versions(&s),
            [("a".into(), 1), ("b".into(), 2), ("d".into(), 1)]
        );
        // The unchanged object is the very same allocation.
        assert!(matches!((a_before, s.get("a")), (Some(x), Some(y)) if Arc::ptr_eq(&x, &y)));
        // An identical relist changes nothing and notifies nothing.
        w.replace(vec![obj("a", 1), obj("b", 2), obj("d", 1)]).await;
        w.apply(Change::Upsert(obj("sentinel", 0))).await;
        assert_eq!(next(&mut rx).await, Ev::Add("sentinel".into(), 0));
    }

    #[tokio::test(start_paused = true)]
    async fn replace_with_a_duplicate_key_keeps_the_last_version() {
        let (mut w, s) = new_store();
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::default());
        w.replace(vec![obj("a", 1), obj("b", 1), obj("a", 3)]).await;
        assert_eq!(
            take(&mut rx, 2).await,
            [Ev::Add("a".into(), 3), Ev::Add("b".into(), 1)]
        );
        assert_eq!(versions(&s), [("a".into(), 3), ("b".into(), 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn synced_after_the_first_replace_only() {
        let (mut w, s) = new_store();
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.wait_synced().await }
        });
        w.apply(Change::Upsert(obj("a", 1))).await;
        tokio::task::yield_now().await;
        assert!(!s.has_synced());
        assert!(!waiter.is_finished());
        w.replace(Vec::new()).await;
        assert!(s.has_synced());
        assert!(s.is_empty());
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        // Ready stays ready; a second replace does not change it.
        w.replace(vec![obj("b", 1)]).await;
        assert!(s.has_synced());
        s.wait_synced().await;
    }

    #[tokio::test(start_paused = true)]
    async fn transform_runs_before_store_and_before_relist_comparison() {
        let config = StoreConfig::default().transform(|mut o: Obj| {
            o.tags.clear();
            o
        });
        let (mut w, s) = store(config);
        let (rec, mut rx) = recorder();
        let _h = s.register(rec, HandlerOptions::default());
        w.replace(vec![tagged("a", 1, &["big", "blob"])]).await;
        assert_eq!(s.get("a").map(|o| o.tags.len()), Some(0));
        // Differs only in a dropped field: no update.
        w.replace(vec![tagged("a", 1, &["other"])]).await;
        w.apply(Change::Upsert(tagged("b", 1, &["x"]))).await;
        assert_eq!(
            take(&mut rx, 2).await,
            [Ev::Add("a".into(), 1), Ev::Add("b".into(), 1)]
        );
        assert_eq!(s.get("b").map(|o| o.tags.len()), Some(0));
    }

    #[tokio::test]
    async fn indexes_follow_adds_updates_deletes_and_relists() {
        let (mut w, s) = new_store();
        w.apply(Change::Upsert(tagged("a", 1, &["web"]))).await;
        w.apply(Change::Upsert(tagged("b", 1, &["web", "db"])))
            .await;
        // Added late: indexes what is already there.
        s.add_index("tag", |o: &Obj| o.tags.clone());
        assert_eq!(ids(&s.by_index("tag", "web").unwrap()), ["a", "b"]);
        assert_eq!(ids(&s.by_index("tag", "db").unwrap()), ["b"]);

        w.apply(Change::Upsert(tagged("a", 2, &["db"]))).await;
        assert_eq!(ids(&s.by_index("tag", "web").unwrap()), ["b"]);
        assert_eq!(ids(&s.by_index("tag", "db").unwrap()), ["a", "b"]);
        assert_eq!(s.by_index("tag", "db").unwrap()[0].v, 2);

        w.apply(Change::Delete("b".into())).await;
        assert!(s.by_index("tag", "web").unwrap().is_empty());
        assert_eq!(ids(&s.by_index("tag", "db").unwrap()), ["a"]);
        assert_eq!(s.index_values("tag").unwrap(), ["db"]);

        w.replace(vec![tagged("c", 1, &["cache"])]).await;
        assert!(s.by_index("tag", "db").unwrap().is_empty());
        assert_eq!(s.index_keys("tag", "cache").unwrap(), ["c"]);
        assert_eq!(s.index_names(), ["tag"]);
        assert_eq!(
            s.by_index("nope", "x").err(),
            Some(crate::Error::UnknownIndex {
                name: "nope".into()
            })
        );
    }

    /// Readers never see half a relist: every relist sets all objects to one version, so a
    /// consistent `list`/`by_index` sees a single version.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readers_never_see_a_half_applied_relist() {
        const N: u32 = 200;
        let (mut w, s) = new_store();
        s.add_index("v", |o: &Obj| vec![o.v.to_string()]);
        let reader = std::thread::spawn({
            let s = s.clone();
            move || {
                let mut observed = 0;
                while observed < 2_000 {
                    let list = s.list();
                    if list.is_empty() {
                        continue;
                    }
                    observed += 1;
                    let v = list[0].v;
                    assert!(list.iter().all(|o| o.v == v), "mixed versions in list");
                    assert_eq!(list.len(), N as usize);
                    let hits = s.by_index("v", &v.to_string()).unwrap().len();
                    // The writer may have moved on since `list`, but never halfway.
                    assert!(hits == 0 || hits == N as usize, "half an index: {hits}");
                }
            }
        });
        let mut version = 0;
        while !reader.is_finished() {
            version += 1;
            w.replace((0..N).map(|i| obj(&i.to_string(), version)))
                .await;
            tokio::task::yield_now().await;
        }
        reader.join().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_apply_keeps_undelivered_notifications() {
        let (mut w, s) = new_store();
        let (rec, mut rx) = recorder();
        let h = s.register(rec, HandlerOptions::new().queue_capacity(1));
        w.apply(Change::Upsert(obj("a", 1))).await;
        // The handler task has not run yet (single thread, no yield): its queue is full, so
        // this apply waits for room; cancel it there.
        let cancelled = tokio::time::timeout(Duration::ZERO, w.apply(Change::Upsert(obj("a", 2))));
        assert!(cancelled.await.is_err());
        assert_eq!(w.pending(), 1);
        assert_eq!(h.queue_len(), 1);
        // The change itself is applied.
        assert_eq!(s.get("a").map(|o| o.v), Some(2));
        assert_eq!(next(&mut rx).await, Ev::Add("a".into(), 1));
        w.flush().await;
        assert_eq!(w.pending(), 0);
        assert_eq!(next(&mut rx).await, Ev::Update("a".into(), 1, 2, false));
    }

    #[test]
    fn writer_and_its_futures_are_send() {
        fn assert_send<F: Send>(_: &F) {}
        let (mut w, s) = new_store();
        assert_send(&s);
        {
            let apply = w.apply(Change::Upsert(obj("a", 1)));
            assert_send(&apply);
        }
        {
            let replace = w.replace(Vec::new());
            assert_send(&replace);
        }
        {
            let batch = w.batch();
            assert_send(&batch);
        }
        assert_send(&w);
        assert!(format!("{w:?}").contains("pending: 0"));
    }
}
