//! A reference Hyper.sh API router for tests and benchmarks.
//!
//! It serves what an informer needs, as Hyper.sh did (see the protocol spec):
//!
//! - TLS (a self-signed certificate by default, or a given one) or plain HTTP;
//! - HYPER-HMAC-SHA256 ("Sign4") verification of every request against a credential table
//!   (`401`/`403` with a JSON `{"message": ...}` when it fails), each signature accepted
//!   once: a replay within the 5-minute window is refused `403`;
//! - `GET /containers/json` with `all`, `limit` and the list filters (a snapshot of one
//!   instant, serialised as it is sent when it is long);
//! - `GET /events/ws`, a websocket pushing the events that match its filters, in the Docker
//!   or the Kubernetes [`Shape`], with a per-access-key connection limit (`429`);
//! - every path also behind a Docker API version prefix (`/v1.23/events/ws`); unknown query
//!   parameters are ignored.
//!
//! The state is a simulated container [`Runtime`]: drive it by hand, or let it churn at a
//! rate from a seed. Its list answer is the truth clients must converge to. [`Faults`]
//! drops, closes, stalls and garbles connections, and rejects authentication, on demand.
//!
//! ```
//! use hypersh_apirouter::{Router, RouterConfig, ServerTls};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), hypersh_apirouter::Error> {
//! let router = Router::start(RouterConfig::default().tls(ServerTls::Off).containers(3)).await?;
//! println!("listening on {}", router.base_url());
//! assert!(router.base_url().starts_with("http://127.0.0.1:"));
//! assert_eq!(router.runtime().list(true).len(), 3);
//! let id = router.runtime().create("web", "nginx:1.25", Default::default());
//! router.runtime().start(&id).expect("a created container starts");
//! router.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! The `apirouter` binary wraps the same library; its first stdout line is
//! `listening on https://HOST:PORT` (or `http://`).

#![deny(missing_docs)]

mod auth;
pub mod config;
mod conn;
mod emit;
mod error;
pub mod faults;
mod json_array;
mod replay;
mod request_line;
mod router;
mod routes;
pub mod runtime;
mod server;
pub mod shape;
mod state;
mod summary;
mod tls;
mod watch;

pub use config::{
    DEFAULT_ACCESS_KEY, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_SEEN_SIGNATURES, DEFAULT_MAX_WATCHES_PER_KEY, DEFAULT_REGION, DEFAULT_SECRET_KEY,
    DEFAULT_SEED, DEFAULT_WATCH_SEND_TIMEOUT, MAX_REQUEST_BODY, RouterConfig, ServerTls,
};
pub use error::Error;
pub use faults::Faults;
pub use hypersh_watch::event::Shape;
pub use router::Router;
pub use runtime::{Runtime, RuntimeError, RuntimeEvent};
