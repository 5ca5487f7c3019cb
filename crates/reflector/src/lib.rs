//! List-then-watch for the Hyper.sh container API: a [`Reflector`] that keeps a
//! `hypersh-store` cache in step with the API router, and an [`Informer`] that bundles
//! it with handler registration.
//!
//! The loop opens the watch first, lists while buffering events, merges them and
//! replaces the cache (deletes missed while away become
//! [`Deleted::FinalStateUnknown`](hypersh_store::Deleted) tombstones), then applies
//! events as they arrive. Dead connections are found by websocket pings and an idle
//! timeout; every reconnect relists; failures back off exponentially with full jitter
//! ([`BackoffConfig`], built on `backon` — the `backoff` crate is unmaintained,
//! RUSTSEC-2025-0012, and pulls in `instant`, RUSTSEC-2024-0384).
//!
//! A [`Controller`] runs a reconcile loop on an informer's cache (work queue, retries,
//! priorities, graceful shutdown): see the [`controller`] module.
//!
//! ```no_run
//! # mod hypersh { pub mod reflector { pub use hypersh_reflector::*; } pub mod watch { pub use hypersh_watch::*; } pub mod store { pub use hypersh_store::*; } }
//! use hypersh::reflector::Informer;
//! use hypersh::watch::{Client, ClientConfig, Credentials};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new(ClientConfig::new("127.0.0.1:6443", Credentials::new("ak", "sk"))?)?;
//! let informer = Informer::builder(client).build()?;
//! informer.on_add(|c| println!("+ {}", c.id()));
//! informer.wait_synced(std::time::Duration::from_secs(30)).await?;
//! let status = informer.status();
//! println!("{} cached, {} relists", informer.store().len(), status.relists);
//! informer.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod backoff;
pub mod controller;
mod core;
mod error;
pub mod fleet;
mod informer;
pub mod limits;
pub mod metrics;
mod plan;
mod ready;
mod reflector;
mod selector;
mod shell;
pub mod source;
pub mod status;
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(test)]
mod testkit;

pub use backoff::{Backoff, BackoffConfig};
pub use controller::{
    Action, Controller, ControllerConfig, ControllerHandle, Request, ShutdownReport,
};
pub use error::{Error, RefreshError};
pub use fleet::{Fleet, FleetBuilder, FleetError, FleetNotSynced, HostContainer};
pub use informer::{HandlerBuilder, Informer, InformerBuilder};
pub use limits::Limits;
pub use ready::{NotSynced, SyncWait};
pub use reflector::Reflector;
pub use selector::SELECTOR_KEYS;
pub use source::{Source, SourceError};
pub use status::{Phase, Status, StatusHandle};
