//! What users register: the [`Handler`] trait, closure-based [`FnHandler`], and
//! [`HandlerOptions`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::{Deleted, FullPolicy};

/// Receives the store's events, in order, on its own task.
///
/// Every method defaults to doing nothing. Methods are plain (not `async`) calls made from the
/// handler's tokio task: keep them short, or hand long work to another task
/// (`tokio::spawn`, `spawn_blocking`), because a handler that blocks holds a runtime worker
/// and, once its queue is full, applies backpressure to the writer (see
/// [`FullPolicy`]). A panic inside a method is caught and logged with the object's key, and
/// the handler keeps receiving later events.
///
/// For one key, events arrive in the order the writer applied them; `old` in `on_update` is
/// always the `new` of the previous event for that key this handler saw (or the object of the
/// synthetic add it got at registration).
pub trait Handler<T>: Send + 'static {
    /// An object was added (also called once per cached object when the handler is
    /// registered: the synthetic adds of client-go).
    fn on_add(&mut self, obj: &Arc<T>) {
        let _ = obj;
    }

    /// An object was replaced by a new version. Resync delivers every cached object as an
    /// update where `old` and `new` are the same `Arc`.
    fn on_update(&mut self, old: &Arc<T>, new: &Arc<T>) {
        let _ = (old, new);
    }

    /// An object was deleted (or vanished from a relist: [`Deleted::FinalStateUnknown`]).
    fn on_delete(&mut self, obj: &Deleted<T>) {
        let _ = obj;
    }
}

type AddFn<T> = Box<dyn FnMut(&Arc<T>) + Send>;
type UpdateFn<T> = Box<dyn FnMut(&Arc<T>, &Arc<T>) + Send>;
type DeleteFn<T> = Box<dyn FnMut(&Deleted<T>) + Send>;

/// A [`Handler`] made of closures, for when a struct is too much ceremony.
///
/// The object type is inferred from the closures' parameter types, so write them out
/// (`|c: &Arc<Container>|`); a closure that does not use its parameter can leave it
/// bare, and the type then comes from where the handler is registered. One `FnHandler`
/// is one handler: its callbacks see the events in the order the writer applied them.
///
/// ```
/// # use std::sync::Arc;
/// # use hypersh_store::{FnHandler, Deleted};
/// let handler = FnHandler::new()
///     .on_add(|obj: &Arc<String>| println!("added {obj}"))
///     .on_delete(|gone: &Deleted<String>| println!("deleted {}", gone.last()));
/// # let _ = handler;
/// ```
#[must_use]
pub struct FnHandler<T> {
    add: Option<AddFn<T>>,
    update: Option<UpdateFn<T>>,
    delete: Option<DeleteFn<T>>,
}

impl<T> Default for FnHandler<T> {
    fn default() -> Self {
        Self {
            add: None,
            update: None,
            delete: None,
        }
    }
}

impl<T> FnHandler<T> {
    /// A handler that ignores every event.
    pub fn new() -> Self {
        Self::default()
    }

    /// Calls `f` for every add.
    pub fn on_add(mut self, f: impl FnMut(&Arc<T>) + Send + 'static) -> Self {
        self.add = Some(Box::new(f));
        self
    }

    /// Calls `f(old, new)` for every update.
    pub fn on_update(mut self, f: impl FnMut(&Arc<T>, &Arc<T>) + Send + 'static) -> Self {
        self.update = Some(Box::new(f));
        self
    }

    /// Calls `f` for every delete.
    pub fn on_delete(mut self, f: impl FnMut(&Deleted<T>) + Send + 'static) -> Self {
        self.delete = Some(Box::new(f));
        self
    }
}

impl<T: 'static> Handler<T> for FnHandler<T> {
    fn on_add(&mut self, obj: &Arc<T>) {
        if let Some(f) = &mut self.add {
            f(obj);
        }
    }

    fn on_update(&mut self, old: &Arc<T>, new: &Arc<T>) {
        if let Some(f) = &mut self.update {
            f(old, new);
        }
    }

    fn on_delete(&mut self, obj: &Deleted<T>) {
        if let Some(f) = &mut self.delete {
            f(obj);
        }
    }
}

impl<T> fmt::Debug for FnHandler<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnHandler")
            .field("on_add", &self.add.is_some())
            .field("on_update", &self.update.is_some())
            .field("on_delete", &self.delete.is_some())
            .finish()
    }
}

/// Per-handler settings for [`Store::register`](crate::Store::register).
///
/// `Default`: a generated name (`handler-<n>`), no resync, and the store's queue capacity and
/// [`FullPolicy`].
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct HandlerOptions {
    pub(crate) name: Option<String>,
    pub(crate) resync: Option<Duration>,
    pub(crate) queue_capacity: Option<usize>,
    pub(crate) full_policy: Option<FullPolicy>,
}

impl HandlerOptions {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }

    /// A name used in logs (for example when the handler panics).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Every `period`, re-deliver each cached object as `on_update(obj, obj)` (client-go's
    /// resync), so level-triggered controllers can re-check the world. A zero period
    /// disables resync. The first resync comes one period after registration.
    ///
    /// The resync is ordered with the handler's queue: its snapshot is taken while the writer
    /// is between two changes and enqueued behind the notifications of every change it
    /// contains. If the queue is full at that moment the resync is skipped (and counted in
    /// [`HandlerHandle::resyncs_skipped`](crate::HandlerHandle::resyncs_skipped)) rather
    /// than make the writer wait.
    pub fn resync(mut self, period: Duration) -> Self {
        self.resync = (!period.is_zero()).then_some(period);
        self
    }

    /// This handler's queue capacity instead of the store's. Values below 1 are raised to 1.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity.max(1));
        self
    }

    /// This handler's full-queue policy instead of the store's.
    pub fn full_policy(mut self, policy: FullPolicy) -> Self {
        self.full_policy = Some(policy);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn default_methods_do_nothing() {
        struct Nothing;
        impl Handler<u8> for Nothing {}
        let mut h = Nothing;
        let obj = Arc::new(1u8);
        h.on_add(&obj);
        h.on_update(&obj, &obj);
        h.on_delete(&Deleted::Known(Arc::clone(&obj)));
        assert_eq!(Arc::strong_count(&obj), 1);
    }

    #[test]
    fn fn_handler_calls_the_given_closures_only() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s1, s2) = (Arc::clone(&seen), Arc::clone(&seen));
        // No turbofish: the object type comes from the closures' parameters.
        let mut h = FnHandler::new()
            .on_add(move |o: &Arc<u8>| s1.lock().unwrap().push(format!("add {o}")))
            .on_delete(move |d: &Deleted<u8>| s2.lock().unwrap().push(format!("del {}", d.last())));
        let obj = Arc::new(7u8);
        // The builder methods share the trait methods' names: call the trait explicitly.
        Handler::on_add(&mut h, &obj);
        Handler::on_update(&mut h, &obj, &obj);
        Handler::on_delete(&mut h, &Deleted::Known(Arc::clone(&obj)));
        assert_eq!(*seen.lock().unwrap(), ["add 7", "del 7"]);
        assert!(format!("{h:?}").contains("on_update: false"));
    }

    #[test]
    fn options_builders() {
        let o = HandlerOptions::new()
            .name("printer")
            .resync(Duration::from_secs(30))
            .queue_capacity(0)
            .full_policy(FullPolicy::Evict);
        assert_eq!(o.name.as_deref(), Some("printer"));
        assert_eq!(o.resync, Some(Duration::from_secs(30)));
        assert_eq!(o.queue_capacity, Some(1));
        assert_eq!(o.full_policy, Some(FullPolicy::Evict));
        assert_eq!(HandlerOptions::new().resync(Duration::ZERO).resync, None);
    }
}
