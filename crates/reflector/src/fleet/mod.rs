//! A fleet: one cache for many named hosts (Docker Engines, Podman services, Hyper.sh
//! regions, any [`Source`]), added and removed while it runs.
//!
//! Each host is an [`Informer`] of its own: its own reflector on its own task, backoff,
//! [`Status`], limits and metrics (labelled `host=<name>`), its own store. The [`Fleet`]
//! is the view over them: a container's identity is (host, id) — the same id on two
//! hosts is two containers ([`HostContainer`]) — with queries across the fleet
//! ([`Fleet::list`], [`Fleet::by_index`]) and per host ([`Fleet::by_host`],
//! [`Fleet::get`]), and handlers that see the host ([`Fleet::handler`]).
//!
//! Isolation: a host's relist only ever touches its own store, and its handler calls run
//! on tasks and queues of that host: a handler that is slow on one host's changes holds
//! back (by backpressure) that host's reflector only. Fleet handlers are `Fn + Sync`, so
//! the calls for two hosts run at the same time rather than one waiting for the other.
//!
//! A host that is down keeps its last known containers, and its status says since when
//! ([`Status::down_since`]); with [`FleetBuilder::drop_after`] they become
//! [`Deleted::FinalStateUnknown`] tombstones once it has been down that long. Removing a
//! host ([`Fleet::remove_host`]) deletes its containers the same way: every handler gets
//! the deletes.
//!
//! Readiness ([`Fleet::wait_synced`]) is every host present when the wait starts, under
//! one deadline; the error names each host that has not synced and why
//! ([`FleetNotSynced`]). A caller that wants to go on with the hosts that are up reads
//! [`FleetNotSynced::hosts`] and carries on: the fleet keeps retrying the others.
//!
//! ```
//! # mod hypersh { pub mod reflector { pub use hypersh_reflector::*; } pub mod testing { pub use hypersh_reflector::testing::*; } pub mod watch { pub use hypersh_watch::*; } }
//! use std::time::Duration;
//! use hypersh::reflector::fleet::Fleet;
//! use hypersh::testing::FakeSource;
//! use hypersh::watch::Container;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (a, b) = (FakeSource::new(), FakeSource::new());
//! let web: Container = serde_json::from_str(r#"{"Id":"a1","Names":["/web"],"State":"running"}"#)?;
//! a.add(web.clone());
//! b.add(web);
//! let fleet = Fleet::builder().build();
//! fleet.add_host("a", a)?;
//! fleet.add_host("b", b)?;
//! fleet.wait_synced(Duration::from_secs(10)).await?;
//! assert_eq!(fleet.len(), 2); // the same id on two hosts: two containers
//! assert_eq!(fleet.get("b", "a1").map(|c| c.host().to_owned()).as_deref(), Some("b"));
//! fleet.remove_host("a").await?;
//! assert_eq!(fleet.len(), 1);
//! fleet.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod handler;
mod ready;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hypersh_store::HandlerHandle;
use hypersh_watch::{Container, Filters};

use crate::backoff::BackoffConfig;
use crate::error::Error;
use crate::informer::Informer;
use crate::limits::Limits;
use crate::ready::SyncWait;
use crate::source::Source;
use crate::status::Status;
#[allow(unused_imports)] // for the docs
use hypersh_store::Deleted;

pub use handler::FleetHandlerBuilder;
pub use ready::FleetNotSynced;

use handler::Factory;

type IndexFn = Arc<dyn Fn(&Container) -> Vec<String> + Send + Sync>;

/// A container and the host it is on: its identity in a fleet is (host, id).
#[derive(Clone, Debug, PartialEq)]
pub struct HostContainer {
    host: Arc<str>,
    container: Arc<Container>,
}

impl HostContainer {
    /// The host's name, as given to [`Fleet::add_host`].
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The container, as the host's cache holds it.
    #[must_use]
    pub fn container(&self) -> &Arc<Container> {
        &self.container
    }
}

impl std::ops::Deref for HostContainer {
    type Target = Container;

    fn deref(&self) -> &Container {
        &self.container
    }
}

/// Why a host could not be added or removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// A host of this name is in the fleet already: remove it first, or pick another name.
    #[error("host {0:?} is in the fleet already: remove it first or use another name")]
    HostExists(String),
    /// No host of this name is in the fleet.
    #[error("no host {0:?} in the fleet")]
    NoSuchHost(String),
    /// The fleet's filters cannot select a cache.
    #[error(transparent)]
    Informer(#[from] Error),
}

/// Builds a [`Fleet`]: the settings every host's informer gets.
#[must_use]
pub struct FleetBuilder {
    name: Option<String>,
    filters: Filters,
    backoff: BackoffConfig,
    limits: Limits,
    relist: Option<Duration>,
    drop_after: Option<Duration>,
    indexes: Vec<(String, IndexFn)>,
}

impl std::fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("name", &self.name)
            .field("drop_after", &self.drop_after)
            .finish_non_exhaustive()
    }
}

impl FleetBuilder {
    /// Names the fleet: every host's metrics carry `informer=<name>` beside `host=<host>`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Caches only the containers these filters select, on every host.
    pub fn filters(mut self, filters: Filters) -> Self {
        self.filters = filters;
        self
    }

    /// Each host's reconnect policy (each host backs off on its own).
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// Each host's memory bounds ([`Limits`], per host).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Each host relists every `period` while connected (off by default).
    pub fn relist(mut self, period: Duration) -> Self {
        self.relist = Some(period);
        self
    }

    /// Deletes a host's containers (tombstones) once it has been down this long. Off by
    /// default: a host that is down keeps its last known containers.
    pub fn drop_after(mut self, after: Duration) -> Self {
        self.drop_after = Some(after);
        self
    }

    /// A secondary index on every host's cache, queried across the fleet with
    /// [`Fleet::by_index`].
    pub fn index(
        mut self,
        name: impl Into<String>,
        f: impl Fn(&Container) -> Vec<String> + Send + Sync + 'static,
    ) -> Self {
        self.indexes.push((name.into(), Arc::new(f)));
        self
    }

    /// The fleet, with no host yet.
    pub fn build(self) -> Fleet {
        Fleet {
            inner: Arc::new(Inner {
                settings: self,
                state: Mutex::default(),
            }),
        }
    }
}

/// One cache for many named hosts. See the [module docs](self). Clones share the fleet;
/// the hosts stop when the last clone is dropped (or at [`shutdown`](Self::shutdown)).
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    settings: FleetBuilder,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    hosts: BTreeMap<Arc<str>, Host>,
    /// The fleet's handlers: each is registered on every host, present and future.
    handlers: Vec<Arc<Factory>>,
}

struct Host {
    informer: Informer,
    /// This host's registrations of the fleet's handlers (kept so they run).
    _handlers: Vec<HandlerHandle>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("hosts", &self.hosts())
            .field("containers", &self.len())
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Starts building a fleet.
    pub fn builder() -> FleetBuilder {
        FleetBuilder {
            name: None,
            filters: Filters::new(),
            backoff: BackoffConfig::default(),
            limits: Limits::default(),
            relist: None,
            drop_after: None,
            indexes: Vec::new(),
        }
    }

    /// Adds a host named `name` on `source` and starts its informer (inside a tokio
    /// runtime). Every fleet handler is registered on it at once (it gets an add for each
    /// of the host's containers as they are listed).
    ///
    /// # Errors
    /// [`FleetError::HostExists`] when the name is taken, [`FleetError::Informer`] when
    /// the fleet's filters cannot select a cache.
    pub fn add_host<S: Source>(
        &self,
        name: impl Into<String>,
        source: S,
    ) -> Result<(), FleetError> {
        let name: Arc<str> = Arc::from(name.into());
        let settings = &self.inner.settings;
        let mut state = self.lock();
        if state.hosts.contains_key(&name) {
            return Err(FleetError::HostExists(name.to_string()));
        }
        let mut builder = Informer::builder(source)
            .filters(settings.filters.clone())
            .backoff(settings.backoff.clone())
            .limits(settings.limits)
            .drop_after(settings.drop_after)
            .host(name.to_string());
        if let Some(fleet) = &settings.name {
            builder = builder.name(fleet.clone());
        }
        if let Some(period) = settings.relist {
            builder = builder.relist(period);
        }
        for (index, f) in &settings.indexes {
            let f = Arc::clone(f);
            builder = builder.index(index.clone(), move |c| f(c));
        }
        let informer = builder.build()?;
        let handlers = state
            .handlers
            .iter()
            .map(|factory| factory(&informer, &name))
            .collect();
        state.hosts.insert(
            name,
            Host {
                informer,
                _handlers: handlers,
            },
        );
        Ok(())
    }

    /// Removes host `name`: stops its informer, then deletes every container it had (a
    /// [`Deleted::FinalStateUnknown`] tombstone each, offered to every fleet handler).
    /// Queries stop showing them at once; this returns once the deletes are queued for
    /// the handlers.
    ///
    /// # Errors
    /// [`FleetError::NoSuchHost`] when no host has that name.
    pub async fn remove_host(&self, name: &str) -> Result<(), FleetError> {
        let host = self
            .lock()
            .hosts
            .remove(name)
            .ok_or_else(|| FleetError::NoSuchHost(name.to_owned()))?;
        host.informer.shutdown_and_drop().await;
        Ok(())
    }

    /// The hosts' names, sorted.
    #[must_use]
    pub fn hosts(&self) -> Vec<String> {
        self.lock().hosts.keys().map(|h| h.to_string()).collect()
    }

    /// Host `name`'s informer: its store, status, `refresh`, or a
    /// [`Controller`](crate::Controller) on it.
    #[must_use]
    pub fn informer(&self, name: &str) -> Option<Informer> {
        self.lock().hosts.get(name).map(|h| h.informer.clone())
    }

    /// Host `name`'s status.
    #[must_use]
    pub fn status(&self, name: &str) -> Option<Status> {
        self.informer(name).map(|i| i.status())
    }

    /// Every host's status, by name.
    #[must_use]
    pub fn statuses(&self) -> Vec<(String, Status)> {
        self.each(|_, informer| informer.status())
    }

    /// Container `id` on host `host`.
    #[must_use]
    pub fn get(&self, host: &str, id: &str) -> Option<HostContainer> {
        let state = self.lock();
        let (name, h) = state.hosts.get_key_value(host)?;
        h.informer.store().get(id).map(|container| HostContainer {
            host: Arc::clone(name),
            container,
        })
    }

    /// Every cached container of every host (host by host; each host's list is a
    /// consistent snapshot of it).
    #[must_use]
    pub fn list(&self) -> Vec<HostContainer> {
        self.each(|host, informer| tag(host, informer.store().list()))
            .into_iter()
            .flat_map(|(_, list)| list)
            .collect()
    }

    /// The index by host: host `name`'s containers (`None`: no such host).
    #[must_use]
    pub fn by_host(&self, name: &str) -> Option<Vec<HostContainer>> {
        let state = self.lock();
        let (host, h) = state.hosts.get_key_value(name)?;
        Some(tag(host, h.informer.store().list()))
    }

    /// The containers of every host whose index `name` ([`FleetBuilder::index`]) holds
    /// `value`.
    ///
    /// # Errors
    /// The store's error when no such index was declared.
    pub fn by_index(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Vec<HostContainer>, hypersh_store::Error> {
        let mut out = Vec::new();
        for (host, found) in self.each(|_, informer| informer.store().by_index(name, value)) {
            let host: Arc<str> = Arc::from(host);
            out.extend(tag(&host, found?));
        }
        Ok(out)
    }

    /// How many containers the fleet caches, all hosts together.
    #[must_use]
    pub fn len(&self) -> usize {
        self.each(|_, informer| informer.store().len())
            .into_iter()
            .map(|(_, n)| n)
            .sum()
    }

    /// True when no host caches any container.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until every host in the fleet when the call starts has synced (see
    /// [`Informer::wait_synced`]), all under one deadline.
    ///
    /// # Errors
    /// [`FleetNotSynced`], naming each host that has not synced and why.
    pub async fn wait_synced(&self, wait: impl Into<SyncWait>) -> Result<(), FleetNotSynced> {
        let wait = wait.into();
        let informers = self.each(|_, informer| informer.clone());
        ready::wait_all(informers, wait).await
    }

    /// Registers a handler (built by [`FleetHandlerBuilder::register`]) on every host,
    /// present and future.
    fn register(&self, factory: Factory) {
        let factory = Arc::new(factory);
        let mut state = self.lock();
        for (name, host) in &mut state.hosts {
            host._handlers.push(factory(&host.informer, name));
        }
        state.handlers.push(factory);
    }

    /// Starts a handler of closures that see the host: see [`FleetHandlerBuilder`].
    pub fn handler(&self) -> FleetHandlerBuilder<'_> {
        FleetHandlerBuilder::new(self)
    }

    /// Stops every host and waits for them (their containers stay readable).
    pub async fn shutdown(&self) {
        let informers = self.each(|_, informer| informer.clone());
        for (_, informer) in informers {
            informer.shutdown().await;
        }
    }

    /// `f` of each host, in name order, without holding the fleet's lock while the
    /// caller uses the results.
    fn each<R>(&self, mut f: impl FnMut(&Arc<str>, &Informer) -> R) -> Vec<(String, R)> {
        self.lock()
            .hosts
            .iter()
            .map(|(name, host)| (name.to_string(), f(name, &host.informer)))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The map is changed in single inserts and removes: a panic elsewhere cannot
        // leave it half-written.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// `list` tagged with its host.
fn tag(host: &Arc<str>, list: Vec<Arc<Container>>) -> Vec<HostContainer> {
    list.into_iter()
        .map(|container| HostContainer {
            host: Arc::clone(host),
            container,
        })
        .collect()
}
