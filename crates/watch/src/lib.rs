//! The Hyper.sh container API protocol, client side (and the parts a server shares).
//!
//! - [`sign4`]: HYPER-HMAC-SHA256 request signing and verification (an AWS SigV4 variant).
//! - [`filters`]: Docker-style `filters`, their CLI and JSON forms, and matching.
//! - [`container`] and [`event`]: the container model of `GET /containers/json` and the
//!   two event shapes of `/events/ws`, decoded into [`WatchEvent`].
//! - [`event::docker`] and [`event::kubernetes`]: each frame shape, both ways (the
//!   decoder's field names and the frame a server writes).
//! - [`list`]: a container list decoded as it arrives, one container at a time, within
//!   bounds in bytes (the Hyper.sh client's list and the Docker source's).
//! - `Client` (feature `client`, on by default): the signed list call and the signed
//!   websocket `EventStream`, over one native-tls (OpenSSL) configuration that verifies
//!   certificates unless told otherwise.
//!
//! A server needs the protocol without the client's I/O: with `default-features = false`
//! the crate builds neither reqwest nor the websocket client.
//!
//! This crate knows nothing of caching: `hypersh-reflector` ties it to `hypersh-store`.
#![cfg_attr(
    feature = "client",
    doc = r#"
Watching with the [`Client`] and its [`EventStream`]:

```no_run
use futures_util::StreamExt;
use hypersh_watch::{Client, ClientConfig, Credentials, Filters, TlsMode, WatchEvent};

# async fn run() -> Result<(), hypersh_watch::Error> {
let config = ClientConfig::new("127.0.0.1:6443", Credentials::new("ak", "sk"))?
    .tls(TlsMode::InsecureSkipVerify);
let client = Client::new(config)?;
let mut events = client.watch(&Filters::parse_cli("label=app=web")?).await?;
while let Some(item) = events.next().await {
    match item {
        Ok(WatchEvent::Deleted(e)) => println!("gone: {}", e.id()),
        Ok(other) => println!("{} {}", other.kind_str(), other.id()),
        Err(e) => eprintln!("{e}"),
    }
}
# Ok(())
# }
```
"#
)]
#![deny(missing_docs)]
// Two marked places may use `unsafe`, nowhere else: `event::utf8` reads a checked frame
// as text without checking it again, and the scanners' speed module (`scan::block`)
// calls its SSE2 and AVX2 code.
#![deny(unsafe_code)]

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod config;
pub mod container;
pub mod credentials;
#[cfg(feature = "client")]
pub mod error;
pub mod event;
pub mod filters;
pub mod list;
mod scan;
pub mod sign4;
#[cfg(feature = "client")]
pub mod stream;

#[cfg(feature = "client")]
pub use client::Client;
#[cfg(feature = "client")]
pub use config::{ClientConfig, Endpoint, TlsMode};
pub use container::{Container, ContainerBuilder, ContainerState, Labels, PodPhase};
pub use credentials::{Credentials, SecretKey};
#[cfg(feature = "client")]
pub use error::Error;
pub use event::{Event, WatchEvent};
pub use filters::Filters;
#[cfg(feature = "client")]
pub use stream::{CloseHandle, EventStream};
