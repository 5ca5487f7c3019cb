//! The Hyper.sh container API protocol, client side (and the parts a server shares).
//!
//! - [`sign4`]: HYPER-HMAC-SHA256 request signing and verification (an AWS SigV4 variant).
//! - [`filters`]: Docker-style `filters`, their CLI and JSON forms, and matching.
//! - [`container`] and [`event`]: the container model of `GET /containers/json` and the
//!   two event shapes of `/events/ws`, decoded into [`WatchEvent`].
//! - [`Client`]: the signed list call and the signed websocket [`EventStream`], over one
//!   native-tls (OpenSSL) configuration that verifies certificates unless told otherwise.
//!
//! This crate knows nothing of caching: `hypersh-reflector` ties it to `hypersh-store`.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use hypersh_watch::{Client, ClientConfig, Credentials, Filters, TlsMode, WatchEvent};
//!
//! # async fn run() -> Result<(), hypersh_watch::Error> {
//! let config = ClientConfig::new("127.0.0.1:6443", Credentials::new("ak", "sk"))?
//!     .tls(TlsMode::InsecureSkipVerify);
//! let client = Client::new(config)?;
//! let mut events = client.watch(&Filters::parse_cli("label=app=web")?).await?;
//! while let Some(item) = events.next().await {
//!     match item {
//!         Ok(WatchEvent::Deleted(e)) => println!("gone: {}", e.id()),
//!         Ok(other) => println!("{} {}", other.kind_str(), other.id()),
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
// One marked place may read a checked frame as text without checking it again
// (`event::utf8`); nowhere else.
#![deny(unsafe_code)]

pub mod client;
pub mod config;
pub mod container;
pub mod credentials;
pub mod error;
pub mod event;
pub mod filters;
mod list;
pub mod sign4;
pub mod stream;

pub use client::Client;
pub use config::{ClientConfig, Endpoint, TlsMode};
pub use container::{Container, ContainerState, SmolStr};
pub use credentials::{Credentials, SecretKey};
pub use error::Error;
pub use event::{Event, WatchEvent};
pub use filters::Filters;
pub use stream::{CloseHandle, EventStream};
