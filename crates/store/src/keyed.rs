//! The [`Keyed`] trait: how the store finds an object's key.

use std::sync::Arc;

/// An object that can be cached: it names its own unique key.
///
/// The key identifies the object across updates (for Hyper.sh containers, the container id).
/// Two objects with the same key are two versions of the same object. The key of a cached
/// object must not change while it is cached.
pub trait Keyed {
    /// The object's unique key.
    fn key(&self) -> &str;

    /// The key as a shared string, which the store's indexes and a
    /// [`Relist`](crate::Relist) keep for each object they track (the store's map keys
    /// each object by the object itself).
    ///
    /// The default copies [`key`](Self::key) into a new allocation. An object that already
    /// holds its key in an `Arc<str>` should return a clone of it, so that those keys
    /// cost no allocation.
    fn shared_key(&self) -> Arc<str> {
        Arc::from(self.key())
    }

    /// Adopts the allocations of `older`, an earlier version of the same object, for the
    /// parts of it that are equal, so that the two versions share them. The default does
    /// nothing.
    ///
    /// A [`Relist`](crate::Relist) calls it with the cached version before it compares
    /// the two: a changed object is held beside the cached one until the relist is
    /// committed, and what the versions share is not held twice. An implementation must
    /// not change the object's value (it stays equal, by `PartialEq`, to what it was),
    /// only where that value is stored. Like `PartialEq` there, it runs while the store
    /// holds the lock of the cached version's map shard: it must not call the store.
    fn share_unchanged(&mut self, older: &Self) {
        let _ = older;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Keyed;

    struct Named(String);

    impl Keyed for Named {
        fn key(&self) -> &str {
            &self.0
        }
    }

    #[test]
    fn key_borrows_from_the_object() {
        let n = Named("abc".to_owned());
        assert_eq!(n.key(), "abc");
        assert!(std::ptr::eq(n.key().as_ptr(), n.0.as_ptr()));
        assert_eq!(&*n.shared_key(), "abc");
    }

    struct Shared(Arc<str>);

    impl Keyed for Shared {
        fn key(&self) -> &str {
            &self.0
        }
        fn shared_key(&self) -> Arc<str> {
            Arc::clone(&self.0)
        }
    }

    #[test]
    fn an_object_can_share_its_key() {
        let s = Shared(Arc::from("k"));
        assert!(Arc::ptr_eq(&s.shared_key(), &s.0));
    }
}
