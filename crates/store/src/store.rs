//! The reader side: [`Store`], a cheap cloneable handle to query the cache and register
//! handlers.

use std::fmt;
use std::sync::Arc;

use crate::index::IndexFn;
use crate::registration;
use crate::shared::Shared;
use crate::{Deleted, Error, FnHandler, Handler, HandlerHandle, HandlerOptions, Keyed};

/// A read handle on the cache. Cloning is one `Arc` clone.
///
/// `get` reads one key straight from the concurrent map. `list`, `len`, `keys` and the index
/// queries take the store's read lock, so they see every update (including a whole relist)
/// entirely or not at all.
pub struct Store<T> {
    pub(crate) shared: Arc<Shared<T>>,
}

impl<T> Clone for Store<T> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Keyed> fmt::Debug for Store<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("len", &self.shared.map.len())
            .field("synced", &self.shared.ready.is_set())
            .finish_non_exhaustive()
    }
}

impl<T: Keyed + Send + Sync + 'static> Store<T> {
    /// The cached object with this key.
    pub fn get(&self, key: &str) -> Option<Arc<T>> {
        self.shared
            .map
            .get(key)
            .map(|e| Arc::clone(e.key().object()))
    }

    /// Calls `f` with the cached object with this key, borrowed: no reference count
    /// changes hands. The entry is read-locked while `f` runs (a writer changing it
    /// waits): keep `f` short, and do not write to the store from it.
    ///
    /// ```
    /// # use hypersh_store::{store, StoreConfig, Change};
    /// # #[derive(Debug, PartialEq)] struct Pod { name: String }
    /// # impl hypersh_store::Keyed for Pod { fn key(&self) -> &str { &self.name } }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let (mut writer, store) = store::<Pod>(StoreConfig::default());
    /// writer.apply(Change::Upsert(Pod { name: "web".into() })).await;
    /// assert_eq!(store.with("web", |p| p.map(|p| p.name.len())), Some(3));
    /// assert!(store.with("db", |p| p.is_none()));
    /// # });
    /// ```
    pub fn with<R>(&self, key: &str, f: impl FnOnce(Option<&T>) -> R) -> R {
        match self.shared.map.get(key) {
            Some(entry) => f(Some(entry.key().object())),
            None => f(None),
        }
    }

    /// Every cached object: a consistent snapshot, in no particular order.
    pub fn list(&self) -> Vec<Arc<T>> {
        let _state = self.shared.state.read();
        self.shared.snapshot()
    }

    /// Every cached key, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = {
            let _state = self.shared.state.read();
            self.shared
                .map
                .iter()
                .map(|e| e.key().object().key().to_owned())
                .collect()
        };
        keys.sort_unstable();
        keys
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        let _state = self.shared.state.read();
        self.shared.map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds the index `name` (replacing an index of the same name) and indexes every cached
    /// object with `f` before returning. From then on the writer keeps it up to date.
    ///
    /// `f` returns the object's index values (zero or more; duplicates are ignored). It must
    /// be deterministic (an object's old entries are found by calling `f` on its old
    /// version) and should be cheap: it runs on the writer path under the store's lock. If it
    /// panics, the panic is logged and the object is left out of this index.
    pub fn add_index(
        &self,
        name: impl Into<String>,
        f: impl Fn(&T) -> Vec<String> + Send + Sync + 'static,
    ) {
        let f: IndexFn<T> = Box::new(f);
        let mut state = self.shared.state.write();
        state.indexes.add(
            name.into(),
            f,
            self.shared
                .map
                .iter()
                .map(|e| (e.key().object().shared_key(), Arc::clone(e.key().object()))),
        );
    }

    /// The cached objects whose index `name` contains `value`, in key order.
    ///
    /// # Errors
    /// [`Error::UnknownIndex`] if no index `name` was added.
    pub fn by_index(&self, name: &str, value: &str) -> Result<Vec<Arc<T>>, Error> {
        let state = self.shared.state.read();
        Ok(state
            .indexes
            .keys(name, value)?
            .filter_map(|key| {
                self.shared
                    .map
                    .get(&**key)
                    .map(|e| Arc::clone(e.key().object()))
            })
            .collect())
    }

    /// The keys of the cached objects whose index `name` contains `value`, sorted.
    ///
    /// # Errors
    /// [`Error::UnknownIndex`] if no index `name` was added.
    pub fn index_keys(&self, name: &str, value: &str) -> Result<Vec<String>, Error> {
        let state = self.shared.state.read();
        Ok(state
            .indexes
            .keys(name, value)?
            .map(|k| k.to_string())
            .collect())
    }

    /// Every value of index `name` that some cached object has, sorted.
    ///
    /// # Errors
    /// [`Error::UnknownIndex`] if no index `name` was added.
    pub fn index_values(&self, name: &str) -> Result<Vec<String>, Error> {
        self.shared.state.read().indexes.values(name)
    }

    /// The names of every index, sorted.
    pub fn index_names(&self) -> Vec<String> {
        self.shared.state.read().indexes.names()
    }

    /// Whether the first full list ([`Writer::replace`](crate::Writer::replace)) has been
    /// applied.
    pub fn has_synced(&self) -> bool {
        self.shared.ready.is_set()
    }

    /// Waits until [`has_synced`](Self::has_synced) is true (returns at once if it is).
    pub async fn wait_synced(&self) {
        self.shared.ready.wait().await;
    }

    /// Waits until the object with `key` satisfies `predicate` (called with `None` while
    /// the key is absent), for at most `timeout`, and returns the version that did (`None`
    /// if absence satisfied it). The consistency barrier of a controller that acts and
    /// then needs the cache to show the result.
    ///
    /// `predicate` is called now, then after every change the writer applies to the store
    /// (to any key), with the key's version at that moment; no change is missed. It runs
    /// under no lock: it may read the store.
    ///
    /// # Errors
    /// [`Error::Timeout`] when `timeout` passes first.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use hypersh_store::{store, StoreConfig, Change};
    /// # #[derive(Debug, PartialEq)] struct Pod { name: String, up: bool }
    /// # impl hypersh_store::Keyed for Pod { fn key(&self) -> &str { &self.name } }
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let (mut writer, store) = store::<Pod>(StoreConfig::default());
    /// let waiter = tokio::spawn({
    ///     let store = store.clone();
    ///     async move {
    ///         store.wait_for("web", |p| p.is_some_and(|p| p.up), Duration::from_secs(5)).await
    ///     }
    /// });
    /// writer.apply(Change::Upsert(Pod { name: "web".into(), up: false })).await;
    /// writer.apply(Change::Upsert(Pod { name: "web".into(), up: true })).await;
    /// let pod = waiter.await.unwrap().unwrap();
    /// assert!(pod.is_some_and(|p| p.up));
    /// # });
    /// ```
    pub async fn wait_for(
        &self,
        key: &str,
        mut predicate: impl FnMut(Option<&T>) -> bool,
        timeout: std::time::Duration,
    ) -> Result<Option<Arc<T>>, Error> {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        let _watching = Watching::new(&self.shared);
        loop {
            // Registered before the look at the map: a change after the look wakes it.
            let changed = self.shared.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let current = self.get(key);
            if predicate(current.as_deref()) {
                return Ok(current);
            }
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Err(Error::Timeout {
                        key: key.to_owned(),
                        waited: started.elapsed(),
                    });
                }
            }
        }
    }

    /// How many handlers are registered.
    pub fn handler_count(&self) -> usize {
        self.shared.state.read().subscribers.len()
    }

    /// Registers a handler; it runs on its own tokio task with its own bounded queue.
    ///
    /// The handler first gets an `on_add` for every object cached at this moment (the
    /// synthetic adds), then every later event, in order; registration is atomic with
    /// respect to the writer, so no event is missed or delivered twice. See
    /// [`HandlerHandle`] to remove it or to ask whether it has caught up.
    ///
    /// # Panics
    /// If called outside a tokio runtime while no runtime was set with
    /// [`StoreConfig::runtime`](crate::StoreConfig::runtime) (as `tokio::spawn` does). Use
    /// [`try_register`](Self::try_register) to get an error instead.
    pub fn register<H: Handler<T>>(&self, handler: H, opts: HandlerOptions) -> HandlerHandle {
        match self.try_register(handler, opts) {
            Ok(handle) => handle,
            Err(e) => panic!("hypersh-store: cannot register a handler: {e}"),
        }
    }

    /// Like [`register`](Self::register), but returns an error outside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::NoRuntime`] if there is no runtime to spawn the handler task on.
    pub fn try_register<H: Handler<T>>(
        &self,
        handler: H,
        opts: HandlerOptions,
    ) -> Result<HandlerHandle, Error> {
        registration::register(&self.shared, handler, opts)
    }

    /// Registers a closure called for every add (default options). See
    /// [`register`](Self::register), including its panics.
    pub fn on_add(&self, f: impl FnMut(&Arc<T>) + Send + 'static) -> HandlerHandle {
        self.register(FnHandler::new().on_add(f), HandlerOptions::default())
    }

    /// Registers a closure called as `f(old, new)` for every update (default options). See
    /// [`register`](Self::register), including its panics.
    pub fn on_update(&self, f: impl FnMut(&Arc<T>, &Arc<T>) + Send + 'static) -> HandlerHandle {
        self.register(FnHandler::new().on_update(f), HandlerOptions::default())
    }

    /// Registers a closure called for every delete (default options). See
    /// [`register`](Self::register), including its panics.
    pub fn on_delete(&self, f: impl FnMut(&Deleted<T>) + Send + 'static) -> HandlerHandle {
        self.register(FnHandler::new().on_delete(f), HandlerOptions::default())
    }
}

/// Counts a [`Store::wait_for`] caller for as long as it waits.
struct Watching<'a, T>(&'a Shared<T>);

impl<'a, T> Watching<'a, T> {
    fn new(shared: &'a Shared<T>) -> Self {
        shared
            .watchers
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(shared)
    }
}

impl<T> Drop for Watching<'_, T> {
    fn drop(&mut self) {
        self.0
            .watchers
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{Obj, obj, tagged};
    use crate::{Change, StoreConfig, store};
    use std::time::Duration;

    #[tokio::test]
    async fn reads_and_clones_share_one_cache() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        assert!(s.is_empty());
        assert!(s.get("a").is_none());
        w.apply(Change::Upsert(obj("b", 1))).await;
        w.apply(Change::Upsert(obj("a", 1))).await;
        let other = s.clone();
        assert_eq!(other.len(), 2);
        assert_eq!(other.keys(), ["a", "b"]);
        let a1 = s.get("a");
        let a2 = other.get("a");
        assert!(matches!((&a1, &a2), (Some(x), Some(y)) if Arc::ptr_eq(x, y)));
        let mut listed: Vec<u32> = s.list().iter().map(|o| o.v).collect();
        listed.sort_unstable();
        assert_eq!(listed, [1, 1]);
        assert!(format!("{s:?}").contains("len: 2"));
        assert_eq!(s.handler_count(), 0);
    }

    #[tokio::test]
    async fn add_index_replaces_an_index_of_the_same_name() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        w.apply(Change::Upsert(tagged("a", 1, &["x"]))).await;
        s.add_index("i", |o: &Obj| o.tags.clone());
        s.add_index("i", |o: &Obj| vec![o.v.to_string()]);
        assert!(s.index_keys("i", "x").unwrap().is_empty());
        assert_eq!(s.index_keys("i", "1").unwrap(), ["a"]);
        assert_eq!(s.index_names(), ["i"]);
    }

    #[tokio::test]
    async fn a_panicking_index_function_does_not_break_the_writer() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        s.add_index("v", |o: &Obj| {
            assert!(o.v != 13, "unlucky");
            vec![o.v.to_string()]
        });
        w.apply(Change::Upsert(obj("a", 13))).await;
        w.apply(Change::Upsert(obj("b", 1))).await;
        assert_eq!(s.len(), 2);
        assert!(s.by_index("v", "13").unwrap().is_empty());
        assert_eq!(s.index_keys("v", "1").unwrap(), ["b"]);
        // Updating away from the panicking version indexes it again.
        w.apply(Change::Upsert(obj("a", 1))).await;
        assert_eq!(s.index_keys("v", "1").unwrap(), ["a", "b"]);
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_returns_once_the_key_satisfies_the_predicate() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let waiter = tokio::spawn({
            let s = s.clone();
            async move {
                s.wait_for(
                    "a",
                    |o| o.is_some_and(|o| o.v == 3),
                    Duration::from_secs(10),
                )
                .await
            }
        });
        tokio::task::yield_now().await;
        assert_eq!(
            s.shared.watchers.load(std::sync::atomic::Ordering::SeqCst),
            1
        );
        for v in 1..=3 {
            w.apply(Change::Upsert(obj("b", v))).await;
            w.apply(Change::Upsert(obj("a", v))).await;
        }
        let found = waiter.await.unwrap().unwrap();
        assert_eq!(found.map(|o| o.v), Some(3));
        assert_eq!(
            s.shared.watchers.load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        // Already true: returns at once; absence can be waited for too.
        assert!(
            s.wait_for("a", |o| o.is_some(), Duration::ZERO)
                .await
                .is_ok()
        );
        w.apply(Change::Delete("a".to_owned())).await;
        assert_eq!(
            s.wait_for("a", |o| o.is_none(), Duration::ZERO).await,
            Ok(None)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_times_out_with_the_key_and_sees_batch_updates() {
        let (mut w, s) = store::<Obj>(StoreConfig::default());
        let err = s
            .wait_for("a", |o| o.is_some(), Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Error::Timeout {
                key: "a".to_owned(),
                waited: Duration::from_secs(2)
            }
        );
        assert!(err.to_string().contains("\"a\""));
        w.apply(Change::Upsert(obj("a", 1))).await;
        let waiter = tokio::spawn({
            let s = s.clone();
            async move {
                s.wait_for(
                    "a",
                    |o| o.is_some_and(|o| o.v == 2),
                    Duration::from_secs(10),
                )
                .await
            }
        });
        tokio::task::yield_now().await;
        // An in-place replace inside a writer batch wakes it too.
        let mut batch = w.batch().await;
        batch.update("a", |_| Some(Change::Upsert(obj("a", 2))));
        batch.commit().await;
        assert_eq!(waiter.await.unwrap().unwrap().map(|o| o.v), Some(2));
    }

    #[test]
    fn unknown_index_queries_are_errors() {
        let (_w, s) = store::<Obj>(StoreConfig::default());
        let unknown = Err(Error::UnknownIndex {
            name: "nope".into(),
        });
        assert_eq!(s.by_index("nope", "v").map(|v| v.len()), unknown.clone());
        assert_eq!(s.index_keys("nope", "v").map(|v| v.len()), unknown.clone());
        assert_eq!(s.index_values("nope").map(|v| v.len()), unknown);
    }
}
