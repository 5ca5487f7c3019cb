//! The election's metrics, through the [`metrics`](https://docs.rs/metrics) facade, each
//! labelled `election=<name>`, `identity=<identity>`.

use crate::leadership::FencingToken;

/// Gauge: 1 while this replica leads (as last published), else 0.
pub const IS_LEADER: &str = "hypersh_election_is_leader";
/// Counter: terms this replica has begun.
pub const LEADER_TRANSITIONS_TOTAL: &str = "hypersh_election_leader_transitions_total";
/// Gauge: the fencing token of the term this replica leads or last led (0 before any).
pub const TERM: &str = "hypersh_election_term";
/// Counter: failed calls to the server (each one retried).
pub const FAILURES_TOTAL: &str = "hypersh_election_failures_total";

type Labels = [(&'static str, String); 2];

/// Describes the metrics and registers them at 0 for these labels.
pub(crate) fn describe(labels: &Labels) {
    ::metrics::describe_gauge!(IS_LEADER, "1 while this replica leads the election, else 0");
    ::metrics::describe_counter!(
        LEADER_TRANSITIONS_TOTAL,
        "Terms this replica has begun as leader"
    );
    ::metrics::describe_gauge!(
        TERM,
        "The fencing token of the term this replica leads or last led"
    );
    ::metrics::describe_counter!(
        FAILURES_TOTAL,
        "Failed calls to the election server (each one retried)"
    );
    ::metrics::gauge!(IS_LEADER, labels).set(0.0);
    ::metrics::counter!(LEADER_TRANSITIONS_TOTAL, labels).increment(0);
    ::metrics::gauge!(TERM, labels).increment(0.0);
    ::metrics::counter!(FAILURES_TOTAL, labels).increment(0);
}

pub(crate) fn became_leader(labels: &Labels, token: FencingToken) {
    ::metrics::gauge!(IS_LEADER, labels).set(1.0);
    ::metrics::counter!(LEADER_TRANSITIONS_TOTAL, labels).increment(1);
    // A gauge holds an f64: exact for tokens below 2^53, which an etcd revision stays.
    #[allow(clippy::cast_precision_loss)]
    ::metrics::gauge!(TERM, labels).set(token.get() as f64);
}

pub(crate) fn stepped_down(labels: &Labels) {
    ::metrics::gauge!(IS_LEADER, labels).set(0.0);
}

pub(crate) fn failed(labels: &Labels, n: u64) {
    ::metrics::counter!(FAILURES_TOTAL, labels).increment(n);
}
