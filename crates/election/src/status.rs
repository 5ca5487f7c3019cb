//! What users and metrics read about a replica's election.

use std::time::Duration;

use crate::error::ElectionError;
use crate::leadership::{FencingToken, LeaderInfo, Role, StepDown};

/// A snapshot of one replica's election ([`Leadership::status`](crate::Leadership::status)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElectionStatus {
    /// The election's name.
    pub election: String,
    /// This replica's identity.
    pub identity: String,
    /// Leader, standby or stopped, as of now (a leader past its deadline is a standby).
    pub role: Role,
    /// Whether this replica may act now.
    pub is_leader: bool,
    /// The term this replica leads, if it does.
    pub term: Option<FencingToken>,
    /// The newest leader this replica has seen (itself included); may be stale while the
    /// server is unreachable.
    pub leader: Option<LeaderInfo>,
    /// Terms this replica has begun (summed over the replicas: the election's leader
    /// changes).
    pub leader_transitions: u64,
    /// Leases granted to this replica (a new one after each lost or abandoned lease).
    pub lease_grants: u64,
    /// How long ago the last renewal the server answered was sent, while a lease is held.
    pub since_renewal: Option<Duration>,
    /// Failed calls to the server (each one retried).
    pub failures: u64,
    /// The last failure.
    pub last_error: Option<ElectionError>,
    /// Why the last term of this replica ended.
    pub last_step_down: Option<StepDown>,
}
