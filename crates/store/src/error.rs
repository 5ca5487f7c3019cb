//! The crate's error type.

/// What can go wrong when using the store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`Store::by_index`](crate::Store::by_index) (or another index query) named an index
    /// that was never added with [`Store::add_index`](crate::Store::add_index).
    #[error("unknown index {name:?}: add it with Store::add_index first")]
    UnknownIndex {
        /// The index name that was asked for.
        name: String,
    },
    /// A handler was registered outside a tokio runtime and no runtime was configured with
    /// [`StoreConfig::runtime`](crate::StoreConfig::runtime).
    #[error("no tokio runtime: register handlers inside a runtime or set StoreConfig::runtime")]
    NoRuntime,
    /// [`Store::wait_for`](crate::Store::wait_for) gave up: the object with this key did
    /// not reach the state asked for in time. Wait longer, or check that the writer (the
    /// informer) is running.
    #[error("object {key:?} did not reach the state waited for within {waited:?}")]
    Timeout {
        /// The key waited on.
        key: String,
        /// How long the wait lasted.
        waited: std::time::Duration,
    },
    /// The handler stopped (removed, evicted or its store dropped) before it caught up.
    #[error("handler {name:?} stopped before it caught up")]
    HandlerStopped {
        /// The handler's name.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn messages_name_the_culprit() {
        let e = Error::UnknownIndex {
            name: "by-image".to_owned(),
        };
        assert!(e.to_string().contains("\"by-image\""));
        let e = Error::HandlerStopped {
            name: "printer".to_owned(),
        };
        assert!(e.to_string().contains("\"printer\""));
        assert!(Error::NoRuntime.to_string().contains("runtime"));
    }
}
