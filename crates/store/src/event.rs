//! What flows in (a [`Change`] applied by the writer) and out (what a handler is told).

use std::sync::Arc;

use crate::Keyed;

/// One change applied with [`Writer::apply`](crate::Writer::apply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Add the object if its key is absent, else replace the cached version (an update,
    /// even if the new version equals the cached one, as in client-go).
    Upsert(T),
    /// Remove the object with this key (nothing happens if it is not cached).
    Delete(String),
}

impl<T: Keyed> Change<T> {
    /// The key this change is about.
    pub fn key(&self) -> &str {
        match self {
            Change::Upsert(obj) => obj.key(),
            Change::Delete(key) => key,
        }
    }
}

/// What a handler's `on_delete` receives.
#[derive(Debug, PartialEq, Eq)]
pub enum Deleted<T> {
    /// The object was deleted by an explicit delete event; this is its last cached version.
    Known(Arc<T>),
    /// The object vanished from a relist ([`Writer::replace`](crate::Writer::replace)): it was
    /// deleted while we were not watching, so its final state is unknown and this is only
    /// the last version the cache held (client-go's `DeletedFinalStateUnknown` tombstone).
    FinalStateUnknown(Arc<T>),
}

impl<T> Clone for Deleted<T> {
    fn clone(&self) -> Self {
        match self {
            Deleted::Known(obj) => Deleted::Known(Arc::clone(obj)),
            Deleted::FinalStateUnknown(last) => Deleted::FinalStateUnknown(Arc::clone(last)),
        }
    }
}

impl<T> Deleted<T> {
    /// The last version of the deleted object that the cache held.
    pub fn last(&self) -> &Arc<T> {
        match self {
            Deleted::Known(obj) | Deleted::FinalStateUnknown(obj) => obj,
        }
    }

    /// Whether this is a relist tombstone (the deletion itself was not observed).
    pub fn is_final_state_unknown(&self) -> bool {
        matches!(self, Deleted::FinalStateUnknown(_))
    }
}

impl<T: Keyed> Deleted<T> {
    /// The deleted object's key.
    pub fn key(&self) -> &str {
        self.last().key()
    }
}

/// One entry of a handler's queue.
#[derive(Debug)]
pub(crate) enum Notification<T> {
    Add(Arc<T>),
    Update(Arc<T>, Arc<T>),
    Delete(Deleted<T>),
    /// Re-deliver every object of this snapshot as `on_update(obj, obj)`.
    Resync(Vec<Arc<T>>),
    /// The first relist has been applied and every event it produced precedes this marker:
    /// a handler registered before the store synced has caught up once it gets here.
    Synced,
    /// Several of the above, in order, delivered as one queue entry: the changes of one
    /// writer batch (or relist). Never nested, never holds a `Resync`.
    Batch(Arc<Vec<Notification<T>>>),
}

impl<T> Clone for Notification<T> {
    fn clone(&self) -> Self {
        match self {
            Notification::Add(obj) => Notification::Add(Arc::clone(obj)),
            Notification::Update(old, new) => {
                Notification::Update(Arc::clone(old), Arc::clone(new))
            }
            Notification::Delete(d) => Notification::Delete(d.clone()),
            Notification::Resync(all) => Notification::Resync(all.clone()),
            Notification::Synced => Notification::Synced,
            Notification::Batch(notes) => Notification::Batch(Arc::clone(notes)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct K(&'static str);

    impl Keyed for K {
        fn key(&self) -> &str {
            self.0
        }
    }

    #[test]
    fn change_key() {
        assert_eq!(Change::Upsert(K("a")).key(), "a");
        assert_eq!(Change::<K>::Delete("b".to_owned()).key(), "b");
    }

    #[test]
    fn deleted_accessors_and_clone_share_the_object() {
        let obj = Arc::new(K("a"));
        let known = Deleted::Known(Arc::clone(&obj));
        assert_eq!(known.key(), "a");
        assert!(!known.is_final_state_unknown());
        let tomb = Deleted::FinalStateUnknown(Arc::clone(&obj));
        assert!(tomb.is_final_state_unknown());
        let copy = tomb.clone();
        assert_eq!(copy, tomb);
        assert!(Arc::ptr_eq(copy.last(), &obj));
        assert_eq!(copy.key(), "a");
    }

    #[test]
    fn notification_clone_shares_objects() {
        let obj = Arc::new(K("a"));
        let n = Notification::Update(Arc::clone(&obj), Arc::clone(&obj));
        match n.clone() {
            Notification::Update(old, new) => {
                assert!(Arc::ptr_eq(&old, &obj) && Arc::ptr_eq(&new, &obj));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
