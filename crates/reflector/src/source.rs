//! What the reflector needs from a container API: a [`Source`].
//!
//! A source only moves bytes and says what failed; every decision (what to buffer, merge,
//! fetch, relist, tombstone) is the reflector's, so each source gets the same guarantees.
//! The Hyper.sh `Client` is one (feature `hypersh`, on by default), the Docker Engine's
//! `DockerSource` another, and `testing::FakeSource` (the `testing` feature) a scripted
//! one for tests.

use std::future::Future;

use futures_util::Stream;
#[cfg(feature = "hypersh")]
use hypersh_watch::{Client, EventStream};
use hypersh_watch::{Container, Filters, WatchEvent};

/// How many ids the default [`Source::fetch`] asks for in one list call (they go into the
/// query string).
pub const FETCH_BATCH: usize = 50;

/// A container API the reflector can list and watch.
///
/// Implementations are cheap to clone (the reflector clones the source into each fetch).
///
/// ```
/// # mod hypersh { pub mod reflector { pub use hypersh_reflector::*; } pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::reflector::Source;
/// use hypersh::watch::{Client, ClientConfig, Credentials};
///
/// fn endpoint_of(source: &impl Source) -> String {
///     source.endpoint()
/// }
/// # fn main() -> Result<(), hypersh_watch::Error> {
/// let client = Client::new(ClientConfig::new("us-west-1.hyper.sh", Credentials::new("AK", "SK"))?)?;
/// assert_eq!(endpoint_of(&client), "us-west-1.hyper.sh");
/// # Ok(())
/// # }
/// ```
pub trait Source: Clone + Send + Sync + 'static {
    /// What can go wrong.
    type Error: SourceError;
    /// The stream of events of an open watch.
    type Watch: Stream<Item = Result<WatchEvent, Self::Error>> + Send + Unpin + 'static;

    /// Where this source reads from (a host and port, a socket path), for logs.
    fn endpoint(&self) -> String;

    /// Opens a watch of the containers `filters` select (event filter keys).
    fn watch(
        &self,
        filters: &Filters,
    ) -> impl Future<Output = Result<Self::Watch, Self::Error>> + Send;

    /// Lists every container (stopped ones too) that `filters` select (list filter keys),
    /// handing each to `sink` as it is decoded. When it fails, `sink` may already have
    /// seen some containers: the reflector then drops the whole list.
    fn list(
        &self,
        filters: &Filters,
        sink: impl FnMut(Container) + Send,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// The containers with these exact ids; one that is not found is gone.
    ///
    /// The default lists with an `id` filter, [`FETCH_BATCH`] ids a call, and keeps the
    /// containers whose id is one asked for (the filter matches prefixes).
    fn fetch(
        &self,
        ids: &[String],
    ) -> impl Future<Output = Result<Vec<Container>, Self::Error>> + Send {
        async move {
            let mut found = Vec::with_capacity(ids.len());
            for batch in ids.chunks(FETCH_BATCH) {
                let mut filters = Filters::new();
                for id in batch {
                    filters.add("id", id.clone());
                }
                self.list(&filters, |c| {
                    if batch.iter().any(|id| id == c.id()) {
                        found.push(c);
                    }
                })
                .await?;
            }
            Ok(found)
        }
    }

    /// What serves this source, as learnt when the last watch opened, for the status
    /// ([`Status::server`](crate::Status::server)) and logs: an engine, its version and
    /// the API spoken (`Podman 4.3.1 (API 1.41)`). The reflector reads it each time a
    /// watch opens. The default says nothing.
    fn server(&self) -> Option<String> {
        None
    }

    /// Called after a failed session, before the backoff: forget pooled connections, so
    /// the next session cannot reuse one from before the failure (it may be half dead).
    /// The default does nothing.
    fn reset(&self) {}

    /// Ends a watch politely (a websocket close frame). The default drops nothing and
    /// returns at once: the reflector drops the stream afterwards anyway.
    fn close(watch: &mut Self::Watch) -> impl Future<Output = ()> + Send {
        let _ = watch;
        async {}
    }
}

/// How the reflector tells the errors of a [`Source`] apart.
pub trait SourceError: std::error::Error + Send + Sync + 'static {
    /// The server refused the credentials: retry at the maximum backoff, and say so.
    fn is_auth(&self) -> bool;

    /// The error concerns one frame only (it could not be decoded): the stream goes on.
    fn is_frame_error(&self) -> bool;
}

#[cfg(feature = "hypersh")]
impl SourceError for hypersh_watch::Error {
    fn is_auth(&self) -> bool {
        hypersh_watch::Error::is_auth(self)
    }

    fn is_frame_error(&self) -> bool {
        hypersh_watch::Error::is_frame_error(self)
    }
}

/// The Hyper.sh API: the signed `GET /containers/json` and the `/events/ws` websocket
/// (feature `hypersh`, on by default).
#[cfg(feature = "hypersh")]
impl Source for Client {
    type Error = hypersh_watch::Error;
    type Watch = EventStream;

    fn endpoint(&self) -> String {
        self.config().endpoint().authority().to_owned()
    }

    async fn watch(&self, filters: &Filters) -> Result<EventStream, Self::Error> {
        Client::watch(self, filters).await
    }

    async fn list(
        &self,
        filters: &Filters,
        sink: impl FnMut(Container) + Send,
    ) -> Result<(), Self::Error> {
        self.list_containers_into(filters, sink).await.map(drop)
    }

    fn reset(&self) {
        self.reset_connections();
    }

    async fn close(watch: &mut EventStream) {
        watch.close().await;
    }
}
