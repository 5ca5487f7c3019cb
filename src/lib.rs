//! A Kubernetes-style informer for the Hyper.sh container event API.
//!
//! This facade re-exports the four library crates:
//! - [`watch`] (`hypersh-watch`): Sign4 signing, filters, the container and event
//!   model, the signed list call and the `/events/ws` stream;
//! - [`store`] (`hypersh-store`): the concurrent cache with indexes and handlers;
//! - [`reflector`] (`hypersh-reflector`): the list-then-watch loop and the [`Informer`];
//! - [`docker`] (`hypersh-docker`): the same informer on a Docker Engine or Podman
//!   ([`docker::DockerSource`], over its Unix socket, TCP with or without TLS, or ssh).
//!
//! Features, all on by default: `hypersh` (the Hyper.sh client: reqwest,
//! tokio-tungstenite, native-tls), `docker` (the Docker source: hyper, no TLS library) and
//! `docker-tls` (TLS to a `tcp://` daemon: native-tls). A Docker-only build,
//! `default-features = false, features = ["docker"]`, compiles neither reqwest nor a TLS
//! library nor the websocket client.
//!
//! ```no_run
//! use hypersh::{Client, ClientConfig, Credentials, Filters, Informer, TlsMode};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new("us-west-1.hyper.sh", Credentials::new("AK", "SK"))?;
//! let informer = Informer::builder(Client::new(config)?)
//!     .filters(Filters::new().label("app=web"))
//!     .index("image", hypersh::watch::container::index::by_image)
//!     .build()?;
//! informer.on_add(|c| println!("added {} ({})", c.name().unwrap_or("?"), c.state()));
//! informer.on_delete(|d| println!("deleted {}", d.key()));
//! informer.wait_until_ready().await;
//! let nginx = informer.store().by_index("image", "nginx:latest")?;
//! println!("{} nginx containers", nginx.len());
//! informer.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Where to go next:
//! - a reconcile loop with a work queue, retries and graceful shutdown: [`Controller`]
//!   (the [`controller`] module; `examples/controller.rs` is a small real one);
//! - a controller keeps its state in a struct that implements [`store::Handler`] and
//!   registers it with [`Informer::register`]; its own indexes go in with
//!   [`InformerBuilder::index`] (ready-made ones in [`watch::container::index`]);
//! - [`Informer::status`] and the `hypersh_reflector_*` metrics tell how the informer is
//!   doing; [`BackoffConfig`] and [`ClientConfig`] hold the knobs;
//! - the repository's `examples/` (`informer`, `controller`, `metrics`, `watch`) run with
//!   no credentials against an embedded reference router, and `docs/` explains the
//!   architecture, the protocol and operations.
#![deny(missing_docs)]

#[cfg(feature = "docker")]
pub use hypersh_docker as docker;
pub use hypersh_reflector as reflector;
pub use hypersh_store as store;
pub use hypersh_watch as watch;

pub use hypersh_reflector::controller;
pub use hypersh_reflector::{
    Action, BackoffConfig, Controller, ControllerConfig, ControllerHandle, FakeSource,
    HandlerBuilder, Informer, InformerBuilder, Limits, NotReady, Phase, ReadyWait, RefreshError,
    Request, ShutdownReport, Source, Status, StatusHandle,
};
pub use hypersh_store::{Deleted, FnHandler, Handler, HandlerHandle, HandlerOptions, Store};
#[cfg(feature = "hypersh")]
pub use hypersh_watch::{Client, ClientConfig, TlsMode};
pub use hypersh_watch::{Container, ContainerState, Credentials, Filters, WatchEvent};

/// Any error of the library, so that one `?` serves the whole API: building a client
/// (`Client::new`), parsing filters, building an informer, querying the store.
///
/// Each variant keeps the error of the crate it came from, to match on its kinds:
///
/// ```
/// use hypersh::{Error, Filters};
///
/// fn parse(cli: &str) -> Result<Filters, Error> {
///     Ok(Filters::parse_cli(cli)?)
/// }
/// assert!(matches!(parse("colour=red"), Err(Error::Filters(_))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The client: configuration, TLS, a request, the watch stream.
    #[cfg(feature = "hypersh")]
    #[error(transparent)]
    Client(#[from] hypersh_watch::Error),
    /// Filters that do not parse or do not apply.
    #[error(transparent)]
    Filters(#[from] hypersh_watch::filters::FilterError),
    /// The informer could not be built.
    #[error(transparent)]
    Informer(#[from] hypersh_reflector::Error),
    /// A query of the cache (an unknown index, a handler that stopped).
    #[error(transparent)]
    Store(#[from] hypersh_store::Error),
}

/// The README's example, compiled as a doc test so it stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
