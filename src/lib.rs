//! A Kubernetes-style informer for the Hyper.sh container event API, and for Docker
//! Engine.
//!
//! The root holds what a program starts from: a source ([`Client`] for the Hyper.sh API,
//! [`DockerSource`] for a Docker Engine), an [`Informer`] on it (the cache, a [`Store`]
//! of [`Container`]s selected by [`Filters`]), a [`Controller`] on the informer, and the
//! one [`Error`] every call of the API converts into. The rest lives in the modules of
//! the four library crates this facade re-exports:
//! - [`watch`] (`hypersh-watch`): Sign4, filters, the container and event model, the signed
//!   list call and the `/events/ws` stream, and the client's configuration
//!   ([`watch::ClientConfig`], [`watch::Credentials`]);
//! - [`store`] (`hypersh-store`): the concurrent cache with indexes and handlers;
//! - [`reflector`] (`hypersh-reflector`): the list-then-watch loop, the informer's
//!   settings ([`reflector::BackoffConfig`], [`reflector::Limits`]) and status
//!   ([`reflector::Status`]); its [`controller`] module;
//! - `docker` (`hypersh-docker`): the informer on a Docker Engine or Podman, over its Unix
//!   socket, TCP with or without TLS, or ssh.
//!
//! Features, all on by default: `hypersh` (the Hyper.sh client: reqwest,
//! tokio-tungstenite, native-tls), `docker` (the Docker source: hyper, no TLS library) and
//! `docker-tls` (TLS to a `tcp://` daemon: native-tls). A Docker-only build,
//! `default-features = false, features = ["docker"]`, compiles neither reqwest nor a TLS
//! library nor the websocket client. With the `testing` feature (off by default), the
//! `testing` module holds `FakeSource`, a scripted source to test a controller without a
//! server.
//!
//! ```no_run
//! use std::time::Duration;
//! use hypersh::watch::{ClientConfig, Credentials};
//! use hypersh::{Client, Error, Filters, Informer};
//!
//! async fn run() -> Result<(), Error> {
//!     let config = ClientConfig::new("us-west-1.hyper.sh", Credentials::new("AK", "SK"))?;
//!     let informer = Informer::builder(Client::new(config)?)
//!         .filters(Filters::new().label("app=web"))
//!         .index("image", hypersh::watch::container::index::by_image)
//!         .build()?;
//!     informer.on_add(|c| println!("added {} ({})", c.name().unwrap_or("?"), c.state()));
//!     informer.on_delete(|d| println!("deleted {}", d.key()));
//!     // Says why (a refused key, an unreachable address) if it does not sync in time.
//!     informer.wait_synced(Duration::from_secs(30)).await?;
//!     let nginx = informer.store().by_index("image", "nginx:latest")?;
//!     println!("{} nginx containers", nginx.len());
//!     informer.shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! Where to go next:
//! - a reconcile loop with a work queue, retries, relations and graceful shutdown:
//!   [`Controller`] (the [`controller`] module; `examples/controller.rs` is a small real
//!   one);
//! - a controller keeps its state in a struct that implements [`store::Handler`] and
//!   registers it with [`Informer::register`]; its own indexes go in with
//!   [`reflector::InformerBuilder::index`] (ready-made ones in [`watch::container::index`]);
//! - [`Informer::status`] and the `hypersh_reflector_*` metrics tell how the informer is
//!   doing; [`reflector::BackoffConfig`] and [`watch::ClientConfig`] hold the knobs;
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
/// A scripted source to test a controller without a server (the `testing` feature).
#[cfg(feature = "testing")]
pub use hypersh_reflector::testing;

#[cfg(feature = "docker")]
pub use hypersh_docker::DockerSource;
pub use hypersh_reflector::{Controller, Informer};
pub use hypersh_store::Store;
#[cfg(feature = "hypersh")]
pub use hypersh_watch::Client;
pub use hypersh_watch::{Container, Filters};

/// Any error of the library, so that one `?` serves the whole API: building a source
/// (`Client::new`, `DockerSource::connect`), parsing filters, building an informer,
/// waiting for it to sync, refreshing, querying the store, building a controller.
///
/// Each variant keeps the error of the crate it came from, to match on its kinds:
///
/// ```
/// use std::time::Duration;
/// use hypersh::{Controller, DockerSource, Error, Filters, Informer};
/// use hypersh::controller::ControllerConfig;
///
/// fn parse(cli: &str) -> Result<Filters, Error> {
///     Ok(Filters::parse_cli(cli)?)
/// }
/// assert!(matches!(parse("colour=red"), Err(Error::Filters(_))));
///
/// // Every call below converts with `?`.
/// async fn app(url: &str) -> Result<(), Error> {
///     let source = DockerSource::connect(url).await?; // Error::Docker
///     let informer = Informer::builder(source)
///         .filters(parse("label=app=web")?) // Error::Filters
///         .index("image", hypersh::watch::container::index::by_image)
///         .build()?; // Error::Informer
///     informer.wait_synced(Duration::from_secs(30)).await?; // Error::NotSynced
///     informer.refresh(["4f2a"]).await?; // Error::Refresh
///     let web = informer.store().by_index("image", "nginx")?; // Error::Store
///     let controller = Controller::new(&informer, ControllerConfig::new("web"))?; // Error::Controller
///     # drop((web, controller));
///     Ok(())
/// }
/// # let client: Result<hypersh::Client, Error> = (|| {
/// #     let config = hypersh::watch::ClientConfig::new("h:1", hypersh::watch::Credentials::new("a", "s"))?; // Error::Client
/// #     Ok(hypersh::Client::new(config)?)
/// # })();
/// # assert!(client.is_ok());
/// # drop(app("unix:///nonexistent"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Hyper.sh client: configuration, TLS, a request, the watch stream.
    #[cfg(feature = "hypersh")]
    #[error(transparent)]
    Client(#[from] hypersh_watch::Error),
    /// The Docker source: no daemon, no permission, an API too old, a request.
    #[cfg(feature = "docker")]
    #[error(transparent)]
    Docker(#[from] hypersh_docker::DockerError),
    /// Filters that do not parse or do not apply.
    #[error(transparent)]
    Filters(#[from] hypersh_watch::filters::FilterError),
    /// The informer could not be built.
    #[error(transparent)]
    Informer(#[from] hypersh_reflector::Error),
    /// The informer did not sync in time; says why (the last error, refused credentials).
    #[error(transparent)]
    NotSynced(#[from] hypersh_reflector::NotSynced),
    /// A refresh did not complete: the informer stopped.
    #[error(transparent)]
    Refresh(#[from] hypersh_reflector::RefreshError),
    /// A query of the cache (an unknown index, a handler that stopped).
    #[error(transparent)]
    Store(#[from] hypersh_store::Error),
    /// The controller could not be built.
    #[error(transparent)]
    Controller(#[from] hypersh_reflector::controller::Error),
}

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
