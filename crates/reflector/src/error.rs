//! Errors of the reflector and the informer.

/// What can stop a reflector or an informer from being built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The filters cannot select a cache (unknown key, or `event`/`type`).
    #[error("informer filters: {0}")]
    Filters(#[source] hypersh_watch::filters::FilterError),
}

/// Why [`Informer::refresh`](crate::Informer::refresh) did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    /// The informer stopped (shut down, or every clone dropped) before the refreshed
    /// containers were applied: the cache will not change any more; build a new informer.
    #[error("the informer stopped before the refresh was applied")]
    Stopped,
}
