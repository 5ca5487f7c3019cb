//! [`FakeSource`]: a scripted [`Source`] to build an [`Informer`](crate::Informer) on in
//! tests, without a server (client-go's `FakeControllerSource`, which client-go also keeps
//! in a package of its own). Behind the `testing` feature: enable it for your tests only,
//! e.g. `hypersh = { version = "...", features = ["testing"] }` under
//! `[dev-dependencies]`.
//!
//! ```
//! # mod hypersh { pub use hypersh_reflector::Informer; pub mod testing { pub use hypersh_reflector::testing::*; } pub mod watch { pub use hypersh_watch::*; } }
//! use std::time::Duration;
//! use hypersh::Informer;
//! use hypersh::testing::FakeSource;
//! use hypersh::watch::Container;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let source = FakeSource::new();
//! let web: Container = serde_json::from_str(r#"{"Id":"a1","Names":["/web"],"State":"running"}"#)?;
//! source.add(web);
//! let informer = Informer::builder(source.clone()).build()?;
//! informer.wait_synced(Duration::from_secs(10)).await?;
//! assert_eq!(informer.store().len(), 1);
//!
//! let (tx, mut deleted) = tokio::sync::mpsc::unbounded_channel();
//! let _handle = informer.on_delete(move |d| {
//!     let _ = tx.send(d.key().to_owned());
//! });
//! source.remove("a1");
//! assert_eq!(deleted.recv().await.as_deref(), Some("a1"));
//! informer.shutdown().await;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::Stream;
use hypersh_watch::{Container, ContainerState, Filters, WatchEvent};
use tokio::sync::{mpsc, watch};

use crate::source::{Source, SourceError};

/// How many events an open fake watch holds for a reader that does not keep up. Past
/// it the fake closes that watch, as a server drops a slow client; the reflector then
/// relists.
pub const WATCH_CAPACITY: usize = 4096;

/// A [`Source`] whose containers and failures the test sets.
///
/// Changes made with [`add`](Self::add), [`update`](Self::update) and
/// [`remove`](Self::remove) change the list and send the Docker-style event a container
/// engine sends (`create`, `start`, `die`, `pause`, `rename`, `destroy`, ...) to every
/// open watch. As with a real engine, an event carries only what changed in the state and
/// the name: the cache learns the rest when it fetches or relists the container (a
/// container the cache lacks is always fetched). [`set_quietly`](Self::set_quietly) and
/// [`remove_quietly`](Self::remove_quietly) change the list without an event: what a
/// client misses while it is disconnected.
///
/// Filters are not applied by the fake: the reflector keeps only what its filters admit.
/// Clones share one fake.
#[derive(Clone, Debug, Default)]
pub struct FakeSource {
    inner: Arc<Mutex<Inner>>,
    /// `true` while lists are held (see [`hold_lists`](Self::hold_lists)).
    lists_held: Arc<watch::Sender<bool>>,
}

#[derive(Debug, Default)]
struct Inner {
    containers: BTreeMap<String, Container>,
    watches: Vec<mpsc::Sender<Result<WatchEvent, FakeError>>>,
    fail_watch: VecDeque<FakeError>,
    fail_list: VecDeque<FakeError>,
    fail_fetch: VecDeque<FakeError>,
    calls: Calls,
}

/// How often each call of a [`FakeSource`] was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Calls {
    /// Watches opened (or refused).
    pub watches: u64,
    /// Lists made.
    pub lists: u64,
    /// Fetches made.
    pub fetches: u64,
}

/// An error a [`FakeSource`] was told to give.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// The credentials are refused (as HTTP 401/403 would be).
    #[error("authentication failed (HTTP 403): {0}")]
    Auth(String),
    /// Any other failure of a call or of the stream.
    #[error("fake source failure: {0}")]
    Failure(String),
    /// One frame could not be decoded; the stream goes on.
    #[error("could not decode event frame: {0}")]
    Frame(String),
}

impl SourceError for FakeError {
    fn is_auth(&self) -> bool {
        matches!(self, Self::Auth(_))
    }

    fn is_frame_error(&self) -> bool {
        matches!(self, Self::Frame(_))
    }
}

impl FakeSource {
    /// An empty source.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a container (or replaces one with the same id) and sends what `docker run`
    /// sends for its state: `create`, then `start` for a running one, `start` and
    /// `pause` for a paused one, `start` and `die` for an exited one.
    pub fn add(&self, c: Container) {
        let then: &[&str] = match c.state() {
            ContainerState::Running | ContainerState::Restarting => &["start"],
            ContainerState::Paused => &["start", "pause"],
            ContainerState::Exited | ContainerState::Dead => &["start", "die"],
            _ => &[],
        };
        let mut frames = vec![docker_frame("create", &c, &[])];
        frames.extend(
            then.iter()
                .map(|action| docker_frame(action, &c, &exit_code(action))),
        );
        let mut inner = self.lock();
        inner.containers.insert(c.id().to_owned(), c);
        for frame in &frames {
            inner.send(frame);
        }
    }

    /// Replaces a container and sends the events that describe the change: `rename`
    /// for a new name, and `start`, `pause`, `unpause`, `die` or `update` for the state.
    /// A container that is not there yet is added.
    pub fn update(&self, c: Container) {
        let mut inner = self.lock();
        let Some(old) = inner.containers.get(c.id()) else {
            drop(inner);
            self.add(c);
            return;
        };
        let mut frames = Vec::new();
        if old.name() != c.name() {
            let old_name = format!("/{}", old.name().unwrap_or_default());
            frames.push(docker_frame("rename", &c, &[("oldName", &old_name)]));
        }
        let action = match (old.state(), c.state()) {
            (ContainerState::Paused, ContainerState::Running) => Some("unpause"),
            (was, ContainerState::Running) if was != ContainerState::Running => Some("start"),
            (was, ContainerState::Paused) if was != ContainerState::Paused => Some("pause"),
            (was, ContainerState::Exited) if was != ContainerState::Exited => Some("die"),
            (was, now) if was != now => Some("update"),
            _ if frames.is_empty() => Some("update"),
            _ => None,
        };
        if let Some(action) = action {
            frames.push(docker_frame(action, &c, &exit_code(action)));
        }
        inner.containers.insert(c.id().to_owned(), c);
        for frame in &frames {
            inner.send(frame);
        }
    }

    /// Removes a container and sends `destroy`. Nothing happens if it is not there.
    pub fn remove(&self, id: &str) {
        let mut inner = self.lock();
        if let Some(c) = inner.containers.remove(id) {
            let frame = docker_frame("destroy", &c, &[]);
            inner.send(&frame);
        }
    }

    /// Adds or replaces a container without any event.
    pub fn set_quietly(&self, c: Container) {
        self.lock().containers.insert(c.id().to_owned(), c);
    }

    /// Removes a container without any event.
    pub fn remove_quietly(&self, id: &str) {
        self.lock().containers.remove(id);
    }

    /// Sends one raw frame to every open watch, decoded as the Hyper.sh client decodes
    /// it; a frame that does not decode reaches the watches as a frame error.
    pub fn send_frame(&self, frame: &str) {
        self.lock().send(frame);
    }

    /// Ends every open watch, as a server that closes its connections.
    pub fn disconnect(&self) {
        self.lock().watches.clear();
    }

    /// Ends every open watch with `error`.
    pub fn break_watches(&self, error: FakeError) {
        let mut inner = self.lock();
        for tx in inner.watches.drain(..) {
            let _ = tx.try_send(Err(error.clone()));
        }
    }

    /// The next watch that is opened fails with `error` (queued: call it again to fail
    /// more).
    pub fn fail_next_watch(&self, error: FakeError) {
        self.lock().fail_watch.push_back(error);
    }

    /// The next list fails with `error`, after handing over the containers (a list cut
    /// off at its end).
    pub fn fail_next_list(&self, error: FakeError) {
        self.lock().fail_list.push_back(error);
    }

    /// The next fetch fails with `error`.
    pub fn fail_next_fetch(&self, error: FakeError) {
        self.lock().fail_fetch.push_back(error);
    }

    /// Holds every list (new and running) before it hands over any container, until
    /// [`release_lists`](Self::release_lists): events sent meanwhile arrive while the
    /// reflector lists.
    pub fn hold_lists(&self) {
        self.lists_held.send_replace(true);
    }

    /// Lets the held lists go on.
    pub fn release_lists(&self) {
        self.lists_held.send_replace(false);
    }

    /// The containers, sorted by id: the truth a cache should converge to.
    #[must_use]
    pub fn containers(&self) -> Vec<Container> {
        self.lock().containers.values().cloned().collect()
    }

    /// How many watches are open now.
    #[must_use]
    pub fn open_watches(&self) -> usize {
        let mut inner = self.lock();
        inner.watches.retain(|tx| !tx.is_closed());
        inner.watches.len()
    }

    /// How often each call was made.
    #[must_use]
    pub fn calls(&self) -> Calls {
        self.lock().calls
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data: keep serving it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Inner {
    /// Sends a frame to every open watch; a watch whose reader is gone or too slow is
    /// closed.
    fn send(&mut self, frame: &str) {
        let item =
            WatchEvent::decode(frame.to_owned()).map_err(|e| FakeError::Frame(e.to_string()));
        self.watches.retain(|tx| tx.try_send(item.clone()).is_ok());
    }
}

/// The extra attributes of `action`: a `die` carries an exit code.
fn exit_code(action: &str) -> Vec<(&'static str, &'static str)> {
    if action == "die" {
        vec![("exitCode", "0")]
    } else {
        Vec::new()
    }
}

/// A Docker-style event frame about `c`, with these attributes besides its labels,
/// image and name.
fn docker_frame(action: &str, c: &Container, extra: &[(&str, &str)]) -> String {
    let mut attributes = serde_json::Map::new();
    for (k, v) in c.labels().iter() {
        attributes.insert(k.to_owned(), v.into());
    }
    attributes.insert("image".into(), c.image().into());
    attributes.insert("name".into(), c.name().unwrap_or_default().into());
    for (k, v) in extra {
        attributes.insert((*k).to_owned(), (*v).into());
    }
    serde_json::json!({
        "Type": "container",
        "Action": action,
        "id": c.id(),
        "from": c.image(),
        "Actor": {"ID": c.id(), "Attributes": attributes},
    })
    .to_string()
}

/// The event stream of a [`FakeSource`] watch.
#[derive(Debug)]
pub struct FakeWatch(mpsc::Receiver<Result<WatchEvent, FakeError>>);

impl Stream for FakeWatch {
    type Item = Result<WatchEvent, FakeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

impl Source for FakeSource {
    type Error = FakeError;
    type Watch = FakeWatch;

    fn endpoint(&self) -> String {
        "fake".to_owned()
    }

    async fn watch(&self, _: &Filters) -> Result<FakeWatch, FakeError> {
        let mut inner = self.lock();
        inner.calls.watches += 1;
        if let Some(e) = inner.fail_watch.pop_front() {
            return Err(e);
        }
        let (tx, rx) = mpsc::channel(WATCH_CAPACITY);
        inner.watches.push(tx);
        Ok(FakeWatch(rx))
    }

    async fn list(
        &self,
        _: &Filters,
        mut sink: impl FnMut(Container) + Send,
    ) -> Result<(), FakeError> {
        self.lock().calls.lists += 1;
        let mut held = self.lists_held.subscribe();
        // The sender lives in `self`: waiting cannot fail.
        let _ = held.wait_for(|held| !*held).await;
        let (listed, failure) = {
            let mut inner = self.lock();
            let failure = inner.fail_list.pop_front();
            (
                inner.containers.values().cloned().collect::<Vec<_>>(),
                failure,
            )
        };
        for c in listed {
            sink(c);
        }
        failure.map_or(Ok(()), Err)
    }

    async fn fetch(&self, ids: &[String]) -> Result<Vec<Container>, FakeError> {
        let mut inner = self.lock();
        inner.calls.fetches += 1;
        if let Some(e) = inner.fail_fetch.pop_front() {
            return Err(e);
        }
        Ok(ids
            .iter()
            .filter_map(|id| inner.containers.get(id).cloned())
            .collect())
    }
}
