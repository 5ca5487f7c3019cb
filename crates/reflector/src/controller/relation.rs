//! Relations: another informer's changes mapped to keys of this controller
//! ([`Controller::watches`](super::Controller::watches)), delivered as a stream of keys for
//! [`Controller::reconcile_on`](super::Controller::reconcile_on).
//!
//! The mapping runs in a handler on the other informer's cache; the keys it gives wait in a
//! set (a key waiting twice is one key) until the controller reads them, so the bound is
//! the number of distinct keys, not the number of changes.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::Stream;
use hypersh_store::{Deleted, Handler};
use hypersh_watch::Container;
use tokio::sync::Notify;

/// The keys a relation gave and the controller has not read yet.
#[derive(Default)]
pub(super) struct Keys {
    waiting: Mutex<BTreeSet<String>>,
    added: Notify,
}

impl Keys {
    fn push(&self, keys: impl IntoIterator<Item = String>) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let before = waiting.len();
        waiting.extend(keys);
        if waiting.len() > before {
            // A permit is kept if the reader is not waiting: no wake-up is lost.
            self.added.notify_one();
        }
    }

    fn pop(&self) -> Option<String> {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_first()
    }

    /// The keys as they come, for `reconcile_on`.
    pub(super) fn stream(self: Arc<Self>) -> impl Stream<Item = String> + Send + 'static {
        futures_util::stream::unfold(self, |keys| async move {
            loop {
                if let Some(key) = keys.pop() {
                    return Some((key, keys));
                }
                keys.added.notified().await;
            }
        })
    }
}

/// The handler on the other informer: maps every change to keys.
pub(super) struct Relation<F> {
    pub(super) map: F,
    pub(super) keys: Arc<Keys>,
}

impl<F, I> Handler<Container> for Relation<F>
where
    F: Fn(&Container) -> I + Send + 'static,
    I: IntoIterator<Item = String>,
{
    fn on_add(&mut self, obj: &Arc<Container>) {
        self.keys.push((self.map)(obj));
    }

    fn on_update(&mut self, old: &Arc<Container>, new: &Arc<Container>) {
        // What the old version was related to may need to hear of the change too.
        if !Arc::ptr_eq(old, new) {
            self.keys.push((self.map)(old));
        }
        self.keys.push((self.map)(new));
    }

    fn on_delete(&mut self, obj: &Deleted<Container>) {
        self.keys.push((self.map)(obj.last()));
    }
}
