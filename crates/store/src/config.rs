//! Store configuration: queue sizes, what to do when a handler's queue is full, the optional
//! transform, and the runtime that runs handler tasks.

use std::fmt;
use std::sync::Arc;

use tokio::runtime::Handle;

/// Default capacity of each handler's notification queue, in entries. An entry is one
/// notification for a [`Writer::apply`](crate::Writer::apply), or up to 64 in order for a
/// [`Batch`](crate::Batch) or a relist.
///
/// client-go's shared informer gives every listener a ring buffer whose initial size is 1024
/// (`initialBufferSize` in `shared_informer.go`); we use the same number as a hard bound. At a
/// few dozen bytes per queued notification (the objects themselves are shared `Arc`s) this is
/// well under 100 KiB per handler for single changes (a few MiB at most for full batches), and
/// it absorbs a burst of a thousand entries before a slow handler applies backpressure to the
/// writer.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// What the writer does when a handler's queue is full.
///
/// Whatever the policy, a full queue never delays *other* handlers' delivery of the event
/// being dispatched: the writer first offers the event to every handler without waiting, and
/// only then deals with the full ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum FullPolicy {
    /// Backpressure (the default): the writer waits for room in the full queue before it
    /// returns from `apply`/`replace`. No event is ever lost, but a handler that stops
    /// consuming stalls the writer (and, through it, every handler's *next* event).
    #[default]
    Block,
    /// Evict the handler: it is unregistered, its task is stopped, its queued events are
    /// dropped and its handle reports [`HandlerHandle::was_evicted`](crate::HandlerHandle::was_evicted).
    /// The writer never waits. Suits best-effort handlers (metrics, logging) that must never
    /// slow the cache down; the owner can re-register to get a fresh snapshot.
    Evict,
}

/// A function applied to every object before it is stored (see [`StoreConfig::transform`]).
pub(crate) type Transform<T> = Arc<dyn Fn(T) -> T + Send + Sync>;

/// How to build a store: see [`store()`](crate::store()).
///
/// `Default` gives a queue capacity of [`DEFAULT_QUEUE_CAPACITY`], [`FullPolicy::Block`], no
/// transform, and handler tasks spawned on the runtime that is current at registration.
#[must_use]
pub struct StoreConfig<T> {
    pub(crate) queue_capacity: usize,
    pub(crate) full_policy: FullPolicy,
    pub(crate) transform: Option<Transform<T>>,
    pub(crate) runtime: Option<Handle>,
}

impl<T> Default for StoreConfig<T> {
    fn default() -> Self {
        Self {
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            full_policy: FullPolicy::default(),
            transform: None,
            runtime: None,
        }
    }
}

impl<T> StoreConfig<T> {
    /// Capacity of each handler's notification queue (a handler may override it with
    /// [`HandlerOptions::queue_capacity`](crate::HandlerOptions::queue_capacity)). Values
    /// below 1 are raised to 1.
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// What the writer does when a handler's queue is full (a handler may override it with
    /// [`HandlerOptions::full_policy`](crate::HandlerOptions::full_policy)).
    pub fn full_policy(mut self, policy: FullPolicy) -> Self {
        self.full_policy = policy;
        self
    }

    /// A function applied to every object before it is stored and compared, for example to
    /// drop fields the application never reads and so save memory.
    ///
    /// It runs on the writer path, outside any lock. It must be deterministic: a relist
    /// compares transformed objects with the cached (transformed) ones.
    pub fn transform(mut self, f: impl Fn(T) -> T + Send + Sync + 'static) -> Self {
        self.transform = Some(Arc::new(f));
        self
    }

    /// The runtime on which handler tasks are spawned. Without it, handlers must be
    /// registered from inside a tokio runtime, which is then used.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }
}

impl<T> fmt::Debug for StoreConfig<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("queue_capacity", &self.queue_capacity)
            .field("full_policy", &self.full_policy)
            .field("transform", &self.transform.as_ref().map(|_| "Fn(T) -> T"))
            .field("runtime", &self.runtime.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = StoreConfig::<String>::default();
        assert_eq!(c.queue_capacity, DEFAULT_QUEUE_CAPACITY);
        assert_eq!(c.full_policy, FullPolicy::Block);
        assert!(c.transform.is_none());
        assert!(c.runtime.is_none());
    }

    #[test]
    fn builders_set_fields_and_clamp_capacity() {
        let c = StoreConfig::<String>::default()
            .queue_capacity(0)
            .full_policy(FullPolicy::Evict)
            .transform(|s: String| s.to_uppercase());
        assert_eq!(c.queue_capacity, 1);
        assert_eq!(c.full_policy, FullPolicy::Evict);
        let t = c.transform.as_ref().map(|t| t("ab".to_owned()));
        assert_eq!(t.as_deref(), Some("AB"));
        assert!(format!("{c:?}").contains("Fn(T) -> T"));
    }
}
