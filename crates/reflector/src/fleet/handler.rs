//! Fleet handlers: closures that see the host a change is from, registered on every
//! host's cache (each host's calls on that host's handler task and queue).

use std::sync::Arc;

use hypersh_store::{Deleted, FnHandler, HandlerHandle};
use hypersh_watch::Container;

use super::Fleet;
use crate::informer::Informer;

/// Registers a fleet handler on one host's informer.
pub(super) type Factory = Box<dyn Fn(&Informer, &Arc<str>) -> HandlerHandle + Send + Sync>;

type OnAdd = Arc<dyn Fn(&str, &Arc<Container>) + Send + Sync>;
type OnUpdate = Arc<dyn Fn(&str, &Arc<Container>, &Arc<Container>) + Send + Sync>;
type OnDelete = Arc<dyn Fn(&str, &Deleted<Container>) + Send + Sync>;

/// A handler of closures that get the host's name with each change, registered on every
/// host of the fleet, present and future. See [`Fleet::handler`].
///
/// The closures are `Fn + Sync`: two hosts' changes are handled at the same time, each
/// on its host's handler task, so a call that is slow for one host never holds up
/// another's. For one host, the calls come in the order its cache changed. The handler
/// lives as long as the fleet.
#[must_use = "the handler is registered by `register`"]
pub struct FleetHandlerBuilder<'a> {
    fleet: &'a Fleet,
    on_add: Option<OnAdd>,
    on_update: Option<OnUpdate>,
    on_delete: Option<OnDelete>,
}

impl std::fmt::Debug for FleetHandlerBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetHandlerBuilder")
            .finish_non_exhaustive()
    }
}

impl<'a> FleetHandlerBuilder<'a> {
    pub(super) fn new(fleet: &'a Fleet) -> Self {
        Self {
            fleet,
            on_add: None,
            on_update: None,
            on_delete: None,
        }
    }

    /// Calls `f(host, container)` for every container added to a host's cache.
    pub fn on_add(mut self, f: impl Fn(&str, &Arc<Container>) + Send + Sync + 'static) -> Self {
        self.on_add = Some(Arc::new(f));
        self
    }

    /// Calls `f(host, old, new)` for every container that changed.
    pub fn on_update(
        mut self,
        f: impl Fn(&str, &Arc<Container>, &Arc<Container>) + Send + Sync + 'static,
    ) -> Self {
        self.on_update = Some(Arc::new(f));
        self
    }

    /// Calls `f(host, deleted)` for every container removed: gone from its host, found
    /// gone on a relist, dropped after the host was down for `drop_after`, or its host
    /// removed (the last three as [`Deleted::FinalStateUnknown`]).
    pub fn on_delete(
        mut self,
        f: impl Fn(&str, &Deleted<Container>) + Send + Sync + 'static,
    ) -> Self {
        self.on_delete = Some(Arc::new(f));
        self
    }

    /// Registers the handler on every host, present and future.
    pub fn register(self) {
        let Self {
            fleet,
            on_add,
            on_update,
            on_delete,
        } = self;
        fleet.register(Box::new(move |informer, host| {
            let mut handler = FnHandler::new();
            if let Some(f) = &on_add {
                let (f, host) = (Arc::clone(f), Arc::clone(host));
                handler = handler.on_add(move |c| f(&host, c));
            }
            if let Some(f) = &on_update {
                let (f, host) = (Arc::clone(f), Arc::clone(host));
                handler = handler.on_update(move |old, new| f(&host, old, new));
            }
            if let Some(f) = &on_delete {
                let (f, host) = (Arc::clone(f), Arc::clone(host));
                handler = handler.on_delete(move |d| f(&host, d));
            }
            informer.register(handler)
        }));
    }
}
