//! A bounded wait for an informer's first sync that says why it did not come:
//! [`SyncWait`] and [`NotSynced`].

use std::time::Duration;

use crate::status::{Phase, Status};

/// How often a bounded wait looks at the status for an authentication failure.
pub(crate) const AUTH_POLL: Duration = Duration::from_millis(50);

/// How [`Informer::wait_synced`](crate::Informer::wait_synced) waits. A [`Duration`]
/// converts into a wait of at most that long.
///
/// ```
/// # mod hypersh { pub mod reflector { pub use hypersh_reflector::*; } }
/// use std::time::Duration;
/// use hypersh::reflector::SyncWait;
///
/// let patient = SyncWait::from(Duration::from_secs(30));
/// let strict = SyncWait::new(Duration::from_secs(30)).fail_on_auth(true);
/// # let _ = (patient, strict);
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct SyncWait {
    pub(crate) timeout: Duration,
    pub(crate) fail_on_auth: bool,
}

impl From<Duration> for SyncWait {
    fn from(timeout: Duration) -> Self {
        Self::new(timeout)
    }
}

impl SyncWait {
    /// Waits at most `timeout` (`Duration::MAX`: without a deadline), through any
    /// failure (the informer keeps retrying).
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            fail_on_auth: false,
        }
    }

    /// Gives up at once when the server refuses the credentials (a wrong key does not
    /// fix itself; the informer retries at its maximum backoff meanwhile).
    pub fn fail_on_auth(mut self, fail: bool) -> Self {
        self.fail_on_auth = fail;
        self
    }
}

/// The informer did not sync in time (or the server refused the credentials, with
/// [`SyncWait::fail_on_auth`]). The informer keeps trying: wait again, or shut it
/// down.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("{}", describe(self))]
pub struct NotSynced {
    /// Where the informer's loop was.
    pub phase: Phase,
    /// The last error, as text.
    pub last_error: Option<String>,
    /// The server refuses the credentials.
    pub auth_failing: bool,
    /// Failed attempts so far (connect, list, or a watch that broke).
    pub attempts: u64,
    /// How long the wait lasted.
    pub waited: Duration,
}

impl NotSynced {
    pub(crate) fn from_status(status: &Status, waited: Duration) -> Self {
        Self {
            phase: status.phase,
            last_error: status.last_error.clone(),
            auth_failing: status.auth_failing,
            attempts: status.failures,
            waited,
        }
    }
}

fn describe(e: &NotSynced) -> String {
    let mut out = format!(
        "the informer has not synced after {:?} ({:?}, {} failed attempts)",
        e.waited, e.phase, e.attempts
    );
    if let Some(error) = &e.last_error {
        out.push_str(&format!(": {error}"));
    }
    let hint = if e.auth_failing {
        "; the server refuses the credentials: check the access key and the secret key"
    } else if e.attempts > 0 {
        "; check the address, the TLS settings and that the server is reachable"
    } else {
        "; the first list is still running: wait longer, or narrow the filters"
    };
    out.push_str(hint);
    out
}
