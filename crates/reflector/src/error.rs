//! Errors of the reflector and the informer.

/// What can stop a reflector or an informer from being built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The filters cannot select a cache (unknown key, or `event`/`type`).
    #[error("informer filters: {0}")]
    Filters(#[source] hypersh_watch::filters::FilterError),
}
