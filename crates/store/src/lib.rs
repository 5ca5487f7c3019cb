//! A concurrent in-memory cache of keyed objects, in the style of client-go's informer cache
//! (`tools/cache`) and kube-runtime's `reflector::{Writer, Store}`.
//!
//! - A single [`Writer`] applies changes ([`Change::Upsert`], [`Change::Delete`]) and relists
//!   ([`Writer::replace`], which emits [`Deleted::FinalStateUnknown`] tombstones for what
//!   vanished and updates only for what changed, after letting each listed object share
//!   what did not change with its cached version: [`Keyed::share_unchanged`]). A
//!   [`Batch`] ([`Writer::batch`]) applies several changes at once and tells each handler
//!   of them in one queue entry.
//! - Any number of cheap [`Store`] clones read it: [`Store::get`], [`Store::list`] (a
//!   consistent snapshot), named secondary indexes ([`Store::add_index`],
//!   [`Store::by_index`]), and readiness ([`Store::has_synced`],
//!   [`Store::wait_synced`]: true once the first relist is applied).
//! - [`Handler`]s (or closures: [`Store::on_add`], [`Store::on_update`],
//!   [`Store::on_delete`]) each run on their own tokio task and bounded queue, get synthetic
//!   adds for what is already cached when they register, can ask for a periodic resync, and
//!   survive their own panics. A full queue applies backpressure to the writer by default
//!   ([`FullPolicy`]).
//!
//! The store knows nothing about what it caches beyond [`Keyed`] (and `PartialEq`, to find
//! what changed in a relist).
//!
//! Handlers are spawned with `tokio::spawn` at registration: register them inside a tokio
//! runtime (or set [`StoreConfig::runtime`]).
//!
//! # Guarantees
//!
//! - **Consistency**: the writer changes the map and every index under one lock;
//!   [`Store::list`], [`Store::len`] and the index queries take it for reading, so they never
//!   see half an update, nor half a relist. [`Store::get`] reads the concurrent map directly.
//! - **Ordering**: each handler sees the events in the order the writer applied them; for one
//!   key, `old` in `on_update` is always the previous version that handler saw.
//! - **Late registration**: the snapshot for the synthetic adds is taken and the handler
//!   joins the writer's subscriber list under the same lock: no event is missed or doubled.
//! - **Isolation**: handlers never run on the writer path nor under a lock. The writer offers
//!   each event to every queue before it waits for any full one, so a slow handler delays the
//!   others only through backpressure ([`FullPolicy::Block`], the default), never otherwise;
//!   [`FullPolicy::Evict`] drops a handler whose queue is full instead. A panicking handler
//!   is logged (`tracing::error!`, with the object key) and keeps receiving events.
//! - **Resync**: ordered with the queue (see [`HandlerOptions::resync`]); it is skipped, and
//!   counted, when the handler's queue is full at that moment rather than block anything.
//! - **Waiting**: [`Store::wait_for`] looks at its key, then again after every change the
//!   writer applies (it registers for the wake-up before each look, so no change falls
//!   between); the writer only signals while someone waits (one atomic load otherwise).
//! - **Cancel safety**: see [`Writer`].
//!
//! # Example
//!
//! ```
//! # mod hypersh { pub mod store { pub use hypersh_store::*; } }
//! use std::sync::Arc;
//! use hypersh::store::{Change, Keyed, StoreConfig, store};
//!
//! #[derive(Debug, Clone, PartialEq)]
//! struct Container {
//!     id: String,
//!     image: String,
//! }
//!
//! impl Keyed for Container {
//!     fn key(&self) -> &str {
//!         &self.id
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (mut writer, cache) = store::<Container>(StoreConfig::default());
//! cache.add_index("image", |c: &Container| vec![c.image.clone()]);
//!
//! let (tx, mut added) = tokio::sync::mpsc::unbounded_channel();
//! let handle = cache.on_add(move |c: &Arc<Container>| {
//!     let _ = tx.send(c.id.clone());
//! });
//!
//! let c = |id: &str, image: &str| Container { id: id.into(), image: image.into() };
//! writer.replace(vec![c("a", "nginx"), c("b", "redis")]).await;
//! cache.wait_synced().await;
//! writer.apply(Change::Upsert(c("c", "nginx"))).await;
//!
//! assert_eq!(cache.len(), 3);
//! assert_eq!(cache.get("b").map(|c| c.image.clone()).as_deref(), Some("redis"));
//! let nginx: Vec<String> = cache
//!     .by_index("image", "nginx")
//!     .unwrap()
//!     .iter()
//!     .map(|c| c.id.clone())
//!     .collect();
//! assert_eq!(nginx, ["a", "c"]);
//!
//! handle.wait_synced().await.unwrap();
//! for want in ["a", "b", "c"] {
//!     assert_eq!(added.recv().await.as_deref(), Some(want));
//! }
//! # }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod batch;
mod config;
mod control;
mod dispatch;
mod error;
mod event;
mod handler;
mod index;
mod keyed;
mod ready;
mod registration;
mod relist;
mod resync;
mod shared;
mod store;
mod task;
mod writer;

#[cfg(test)]
mod testutil;

use std::sync::Arc;

pub use batch::Batch;
pub use config::{DEFAULT_QUEUE_CAPACITY, FullPolicy, StoreConfig};
pub use error::Error;
pub use event::{Change, Deleted};
pub use handler::{FnHandler, Handler, HandlerOptions};
pub use keyed::Keyed;
pub use registration::HandlerHandle;
pub use relist::Relist;
pub use store::Store;
pub use writer::Writer;

/// Creates an empty store: its single [`Writer`] and a [`Store`] reader (clone it freely).
pub fn store<T>(config: StoreConfig<T>) -> (Writer<T>, Store<T>)
where
    T: Keyed + PartialEq + Send + Sync + 'static,
{
    let shared = Arc::new(shared::Shared::new(
        config.queue_capacity,
        config.full_policy,
        config.runtime,
    ));
    let writer = Writer::new(shared, config.transform);
    let reader = writer.store();
    (writer, reader)
}
