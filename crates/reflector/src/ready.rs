//! A bounded wait for an informer's first sync that says why it did not come:
//! [`ReadyWait`] and [`NotReady`].

use std::time::Duration;

use crate::status::{Phase, Status};

/// How often a bounded wait looks at the status for an authentication failure.
pub(crate) const AUTH_POLL: Duration = Duration::from_millis(50);

/// How [`Informer::wait_ready`](crate::Informer::wait_ready) waits.
#[derive(Clone, Copy, Debug)]
#[must_use]
pub struct ReadyWait {
    pub(crate) timeout: Duration,
    pub(crate) fail_on_auth: bool,
}

impl ReadyWait {
    /// Waits at most `timeout`, through any failure (the informer keeps retrying).
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
/// [`ReadyWait::fail_on_auth`]). The informer keeps trying: wait again, or shut it
/// down.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("{}", describe(self))]
pub struct NotReady {
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

impl NotReady {
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

fn describe(e: &NotReady) -> String {
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
