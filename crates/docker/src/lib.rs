//! A Docker Engine [`Source`](hypersh_reflector::Source) for the hypersh informer: the
//! same list-then-watch cache, with its guarantees (watch opened before the list,
//! net-change merge, tombstones for what vanished while disconnected, backoff and relist),
//! on the engine that runs the machine's containers.
//!
//! - Transport: HTTP/1.1 with hyper's low-level client over a Unix socket
//!   (`unix:///var/run/docker.sock`, the default; `DOCKER_HOST` honoured) or plain TCP
//!   (`tcp://host:2375`). TLS is not supported.
//! - Version: `GET /_ping`'s `Api-Version` (else `/version`) picks the path prefix, at
//!   most [`ApiVersion::MAXIMUM`]; daemons older than [`ApiVersion::MINIMUM`] (1.24) are
//!   refused with [`DockerError::ApiTooOld`].
//! - List: `GET /containers/json?all=1&filters=...`, decoded into
//!   [`Container`](hypersh_watch::Container)s.
//! - Watch: `GET /events?filters={"type":["container"],...}`, newline-delimited JSON
//!   decoded with [`WatchEvent::decode`](hypersh_watch::WatchEvent::decode)
//!   ([`DockerWatch`]). The stream is silent when nothing happens, so after
//!   [`ping_interval`](DockerSourceBuilder::ping_interval) of silence the daemon is asked
//!   `GET /_ping` on a second connection; no answer ends the watch with an error, and the
//!   reflector backs off and relists.
//!
//! ```no_run
//! # mod hypersh { pub mod docker { pub use hypersh_docker::*; } pub mod reflector { pub use hypersh_reflector::*; } pub mod watch { pub use hypersh_watch::*; } }
//! use hypersh::docker::DockerSource;
//! use hypersh::reflector::Informer;
//! use hypersh::watch::Filters;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let source = DockerSource::connect("unix:///var/run/docker.sock").await?;
//! println!("Docker API {}", source.api_version());
//! let informer = Informer::builder(source)
//!     .filters(Filters::new().label("app=web"))
//!     .build()?;
//! informer.on_add(|c| println!("+ {} {}", c.name().unwrap_or("-"), c.state()));
//! informer.on_delete(|d| println!("- {}", d.key()));
//! informer.wait_synced(std::time::Duration::from_secs(30)).await?;
//! println!("{} containers", informer.store().len());
//! informer.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod events;
mod host;
mod source;
mod transport;
mod version;

pub use error::DockerError;
pub use events::DockerWatch;
pub use host::{DEFAULT_HOST, DockerHost};
pub use source::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_MAX_LINE, DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DockerSource, DockerSourceBuilder,
};
pub use version::ApiVersion;
