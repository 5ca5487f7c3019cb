//! A Docker Engine and Podman [`Source`](hypersh_reflector::Source) for the hypersh
//! informer: the same list-then-watch cache, with its guarantees (watch opened before the
//! list, net-change merge, tombstones for what vanished while disconnected, backoff and
//! relist), on the engine that runs the machine's containers.
//!
//! - Transport: HTTP/1.1 with hyper's low-level client, one connection per request, over
//!   a Unix socket (`unix:///var/run/docker.sock`, the default; `DOCKER_HOST` honoured),
//!   TCP (`tcp://host:2375`), TCP with mutual TLS as the `docker` CLI
//!   (`DOCKER_TLS_VERIFY`, `DOCKER_CERT_PATH`: [`DockerTls`]; feature `tls`, on by
//!   default), or ssh (`ssh://user@host`: `ssh ... docker system dial-stdio`, one process
//!   per connection, [`DockerSourceBuilder::ssh_args`]).
//! - Engine and version, asked again at the start of every session (each watch): `GET
//!   /_ping`'s headers (`Api-Version`; Podman's `Libpod-Api-Version`; `Server`), and
//!   `GET /version` when they do not say enough ([`ServerVersion`], shown in the
//!   informer's [`Status::server`](hypersh_reflector::Status::server)). The path prefix is
//!   the daemon's newest API, at most [`ApiVersion::MAXIMUM`] (or the daemon's oldest,
//!   with a warning, when that is newer); daemons older than [`ApiVersion::MINIMUM`]
//!   (1.24) are refused with [`DockerError::ApiTooOld`]. Making a source does not contact
//!   the daemon ([`DockerSource::new`], [`DockerSourceBuilder::build`]): one that is not
//!   up yet is a failed session, retried with backoff; [`DockerSource::connect`] checks
//!   it at once instead.
//! - Engines: Podman's differences (`remove`, `init`, `cleanup`, `stopped`, its event
//!   filters) are translated here into the one model: its events are read with its
//!   meaning ([`Engine`]), and the filters its events endpoint cannot be trusted with
//!   (a `label` key without a value, `image`) are checked on each event, before the
//!   reflector pays for a fetch.
//! - List: `GET /containers/json?all=1&filters=...`, decoded into
//!   [`Container`](hypersh_watch::Container)s as the body arrives (through
//!   [`hypersh_watch::list::ArraySplitter`], as the Hyper.sh client's list), one
//!   container in memory at a time.
//! - Watch: `GET /events?filters={"type":["container"],...}`, newline-delimited JSON
//!   decoded with [`WatchEvent::decode`](hypersh_watch::WatchEvent::decode)
//!   ([`DockerWatch`]). The stream is silent when nothing happens, so after
//!   [`ping_interval`](DockerSourceBuilder::ping_interval) without an event the daemon
//!   is asked `GET /_ping` on a second connection; no answer ends the watch with an
//!   error, and the reflector backs off and relists. Bytes without a newline are no sign
//!   of life: a line still incomplete after the ping interval ends the watch
//!   ([`DockerError::LineStalled`]), as Docker writes each line at once.
//!
//! ```no_run
//! # mod hypersh { pub mod docker { pub use hypersh_docker::*; } pub mod reflector { pub use hypersh_reflector::*; } pub mod watch { pub use hypersh_watch::*; } }
//! use hypersh::docker::DockerSource;
//! use hypersh::reflector::Informer;
//! use hypersh::watch::Filters;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Nothing is asked of the daemon yet: the informer connects, and waits for it.
//! let source = DockerSource::new("unix:///var/run/docker.sock")?;
//! let informer = Informer::builder(source.clone())
//!     .filters(Filters::new().label("app=web"))
//!     .build()?;
//! informer.on_add(|c| println!("+ {} {}", c.name().unwrap_or("-"), c.state()));
//! informer.on_delete(|d| println!("- {}", d.key()));
//! informer.wait_synced(std::time::Duration::from_secs(30)).await?;
//! println!("{} containers on {:?}", informer.store().len(), informer.status().server);
//! if let Some(server) = source.server_version() {
//!     println!("{} {:?}, API {}", server.engine, server.version, server.api_version);
//! }
//! informer.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod engine;
mod error;
mod events;
mod host;
mod list;
mod liveness;
mod server;
mod source;
mod ssh;
mod tls;
mod transport;
mod version;

pub use engine::Engine;
pub use error::DockerError;
pub use events::DockerWatch;
pub use host::{DEFAULT_HOST, DockerHost, SshHost};
pub use server::ServerVersion;
pub use source::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY, DEFAULT_MAX_LINE, DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT, DEFAULT_REQUEST_TIMEOUT, DockerSource, DockerSourceBuilder,
};
pub use ssh::{MAX_SSH_STDERR, SshProblem};
pub use tls::{DockerTls, TlsProblem};
pub use transport::MAX_ERROR_BODY;
pub use version::ApiVersion;
