//! What a reconcile gets ([`Request`]: which container, what the cache knows of it, why it
//! runs) and what it returns ([`Action`], or a [`ReconcileError`] that says whether and
//! when to retry).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hypersh_election::{FencingToken, Term};
use hypersh_store::Deleted;
use hypersh_watch::Container;

/// What a reconcile asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// The container is as it should be: reconcile it again only when it changes.
    Done,
    /// Reconcile it again after this long (or sooner, if it changes).
    RequeueAfter(Duration),
}

/// The state a [`Request`] carries.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Object {
    /// The container is cached: its current version.
    Present(Arc<Container>),
    /// The container was deleted: its final known state
    /// ([`Deleted::FinalStateUnknown`] when the deletion was missed and found by a relist).
    Deleted(Deleted<Container>),
}

/// Why a reconcile runs. When several causes meet while a key waits, the one at the
/// highest priority wins, the latest among equals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The container was added or changed (seen on the watch, or by a relist after a
    /// reconnect).
    Changed,
    /// The container was deleted ([`Deleted::FinalStateUnknown`] included).
    Deleted,
    /// A pass over the whole cache: the first list, a late registration's first view of
    /// the cache, a periodic resync, or
    /// [`reconcile_all`](super::ControllerHandle::reconcile_all).
    Resync,
    /// The last reconcile asked for it ([`Action::RequeueAfter`]).
    Requeue,
    /// The last reconcile failed (an error or a panic) and this is its retry.
    Retry,
    /// An external trigger: [`reconcile_on`](super::Controller::reconcile_on), a relation
    /// ([`watches`](super::Controller::watches)), or
    /// [`ControllerHandle::reconcile`](super::ControllerHandle::reconcile).
    Trigger,
}

impl Reason {
    /// The reason in one word, as the `reconcile` span's `reason` field shows it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Changed => "changed",
            Self::Deleted => "deleted",
            Self::Resync => "resync",
            Self::Requeue => "requeue",
            Self::Retry => "retry",
            Self::Trigger => "trigger",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reconcile's input: which container, what the cache knows of it, and why it runs.
///
/// Only the controller makes one; it may carry more in later versions (its fields are
/// read through methods).
#[derive(Clone, Debug)]
pub struct Request {
    pub(super) host: Option<Arc<str>>,
    pub(super) id: String,
    pub(super) object: Object,
    pub(super) attempt: u32,
    pub(super) reason: Reason,
    pub(super) term: Option<Term>,
}

impl Request {
    /// The fleet host the container is on, when the controller runs on a
    /// [`Fleet`](crate::fleet::Fleet) host's informer (`None` otherwise): with the id, the
    /// container's identity in a fleet.
    #[must_use]
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The container's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the cache knows of it.
    #[must_use]
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// The cached container, unless it was deleted.
    #[must_use]
    pub fn container(&self) -> Option<&Arc<Container>> {
        match &self.object {
            Object::Present(c) => Some(c),
            Object::Deleted(_) => None,
        }
    }

    /// The deletion, if the container was deleted.
    #[must_use]
    pub fn deleted(&self) -> Option<&Deleted<Container>> {
        match &self.object {
            Object::Deleted(d) => Some(d),
            Object::Present(_) => None,
        }
    }

    /// The last version known: the cached one, or the final known state.
    #[must_use]
    pub fn last(&self) -> &Arc<Container> {
        match &self.object {
            Object::Present(c) => c,
            Object::Deleted(d) => d.last(),
        }
    }

    /// 1 for the first try, then one more for each retry after an error or a panic (a
    /// success, a requeue or a terminal error starts again at 1).
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Why this reconcile runs.
    #[must_use]
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// The term of leadership this reconcile runs under, for a controller gated by an
    /// election ([`Controller::with_leadership`](super::Controller::with_leadership));
    /// `None` without one. Check [`Term::is_current`] right before a write that cannot be
    /// fenced; the controller cancels the reconcile when the term ends.
    #[must_use]
    pub fn term(&self) -> Option<&Term> {
        self.term.as_ref()
    }

    /// The fencing token of [`term`](Self::term): write it with every change made to an
    /// outside system, so that system can refuse the writes of a replaced leader.
    #[must_use]
    pub fn fencing_token(&self) -> Option<FencingToken> {
        self.term.as_ref().map(Term::token)
    }
}

/// When a failed reconcile runs again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retry {
    /// After the key's backoff and the overall rate limit
    /// ([`ControllerConfig::backoff`](super::ControllerConfig::backoff),
    /// [`rate_limit`](super::ControllerConfig::rate_limit)): the default.
    Backoff,
    /// After this long.
    After(Duration),
    /// Not until the container changes or a trigger names it: the error will not go away
    /// by retrying (controller-runtime's `TerminalError`).
    Never,
}

/// A failed reconcile, and when to retry it.
///
/// `?` turns any error into one that is retried with the key's backoff; wrap an error
/// with [`terminal`](Self::terminal) or [`retry_after`](Self::retry_after) to decide
/// otherwise. It is not itself a `std::error::Error` (so that every error converts
/// into it); [`source`](Self::source) is the error it carries.
///
/// ```
/// # mod hypersh { pub mod controller { pub use hypersh_reflector::controller::*; } }
/// use std::time::Duration;
/// use hypersh::controller::{Action, ReconcileError, Request, Retry};
///
/// fn check(image: &str) -> Result<Action, ReconcileError> {
///     if image.is_empty() {
///         // Retrying will not give the container an image.
///         return Err(ReconcileError::terminal("the container has no image"));
///     }
///     let _port: u16 = "8080".parse()?; // any error: retried with the key's backoff
///     Ok(Action::Done)
/// }
/// assert_eq!(check("").unwrap_err().retry(), Retry::Never);
/// let busy = ReconcileError::retry_after("the proxy is reloading", Duration::from_secs(2));
/// assert_eq!(busy.retry(), Retry::After(Duration::from_secs(2)));
/// ```
pub struct ReconcileError {
    error: Box<dyn std::error::Error + Send + Sync>,
    retry: Retry,
}

impl ReconcileError {
    /// An error retried with the key's backoff (what `?` makes). Takes any error, or a
    /// message (`&str`, `String`).
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            error: error.into(),
            retry: Retry::Backoff,
        }
    }

    /// An error not retried: the key runs again only when the container changes or a
    /// trigger names it (controller-runtime's `TerminalError`).
    pub fn terminal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            retry: Retry::Never,
            ..Self::new(error)
        }
    }

    /// An error retried after `delay`, whatever the key's backoff says.
    pub fn retry_after(
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
        delay: Duration,
    ) -> Self {
        Self {
            retry: Retry::After(delay),
            ..Self::new(error)
        }
    }

    /// When the reconcile runs again.
    #[must_use]
    pub fn retry(&self) -> Retry {
        self.retry
    }

    /// The error itself.
    #[must_use]
    pub fn source(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.error
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ReconcileError {
    fn from(error: E) -> Self {
        Self::new(error)
    }
}

impl fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl fmt::Debug for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconcileError")
            .field("error", &self.error)
            .field("retry", &self.retry)
            .finish()
    }
}
