//! The [`Keyed`] trait: how the store finds an object's key.

/// An object that can be cached: it names its own unique key.
///
/// The key identifies the object across updates (for Hyper.sh containers, the container id).
/// Two objects with the same key are two versions of the same object. The key of a cached
/// object must not change while it is cached.
pub trait Keyed {
    /// The object's unique key.
    fn key(&self) -> &str;
}

#[cfg(test)]
mod tests {
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
    }
}
