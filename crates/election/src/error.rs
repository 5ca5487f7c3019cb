//! What can go wrong while campaigning or leading. Every one of these is retried: they are
//! reported in the status, the log and the metrics, never returned from a running elector.

use std::time::Duration;

/// A failed call to the election's server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ElectionError {
    /// No answer from any endpoint: the server is down, the address is wrong, or the
    /// network is cut.
    #[error(
        "cannot reach the election server at {endpoints}: {detail} (is it running, and is the endpoint http://HOST:PORT?)"
    )]
    Unreachable {
        /// The endpoints tried.
        endpoints: String,
        /// What the transport said.
        detail: String,
    },
    /// The server requires credentials, or refused the ones given.
    #[error(
        "the election server refused the request: {0} (it has authentication enabled: give a user and password with access to the election)"
    )]
    Unauthenticated(String),
    /// The credentials are valid but have no access to the election's keys.
    #[error(
        "the election server denied access to the election: {0} (grant the user read-write on the election name as a prefix)"
    )]
    PermissionDenied(String),
    /// The call took longer than its bound.
    #[error(
        "the election server at {endpoints} did not answer `{op}` within {timeout:?} (is it running, reachable, and not overloaded?)"
    )]
    Timeout {
        /// Which call.
        op: &'static str,
        /// Its bound.
        timeout: Duration,
        /// The endpoints tried.
        endpoints: String,
    },
    /// The lease is gone on the server (expired, or revoked by someone else): a new one is
    /// granted and the campaign starts over.
    #[error("the lease expired or was revoked on the server")]
    LeaseNotFound,
    /// A campaign returned, but the election's leader key is not this replica's: its
    /// candidate key was removed while it waited (the "phantom leader" of a campaign that
    /// outlived its lease). The campaign starts over.
    #[error("the campaign returned but this replica's key is not the leader ({0})")]
    NotLeader(String),
    /// A campaign was won, but no renewal of the lease had been proven within the renew
    /// deadline (the server was slow or unreachable meanwhile): the replica starts over with
    /// a new lease rather than lead on an unproven one.
    #[error(
        "elected, but the lease was not proven renewed within the renew deadline ({0:?}); starting over with a new lease"
    )]
    Unproven(Duration),
    /// Anything else the server answered.
    #[error("the election server answered with an error: {0}")]
    Server(String),
}
