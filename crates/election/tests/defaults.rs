//! The election's defaults table in docs/operations.md against the code (the reading
//! rule is in `tests/common/defaults_table.rs`, shared with the facade's
//! `tests/defaults.rs`). The etcd shell's rows are checked with `--features etcd`, as CI
//! runs this crate's tests.

#[macro_use]
#[path = "../../../tests/common/defaults_table.rs"]
mod defaults_table;

use defaults_table::{check, text};
use hypersh_election as election;

/// Why the etcd shell's rows are not compared in a build without it.
#[cfg(not(feature = "etcd"))]
const WITH_ETCD: &str = "checked with --features etcd";
const EXAMPLE: &str = "a flag of the controller example (tests/examples_cli.rs, tests/ha.rs)";

#[test]
fn election_defaults_match_the_code() {
    let mut rows = vec![
        row!("`Timing::lease_duration`" => election::DEFAULT_LEASE_DURATION),
        row!("`Timing::renew_deadline`" => election::DEFAULT_RENEW_DEADLINE),
        row!("`Timing::retry_period`" => election::DEFAULT_RETRY_PERIOD),
        row!("`Backoff` (`initial`, `max`, `jitter`)" =>
            election::DEFAULT_BACKOFF_INITIAL,
            election::DEFAULT_BACKOFF_MAX,
        ),
        text("`EtcdConfig::credentials`", "none"),
        row!("pending revokes" => election::MAX_PENDING_REVOKES),
        row!("election name, identity" => election::MAX_NAME_LEN),
        // The controller example's flags, in the same section: the example is not a
        // library; its flags are checked by tests/examples_cli.rs and used by tests/ha.rs.
        defaults_table::unchecked("`--elect URL`", EXAMPLE),
        defaults_table::unchecked("`--election NAME`", EXAMPLE),
        defaults_table::unchecked("`--identity ID`", EXAMPLE),
        defaults_table::unchecked(
            "`--lease-duration`, `--renew-deadline`, `--retry-period`",
            EXAMPLE,
        ),
    ];
    #[cfg(feature = "etcd")]
    rows.extend([
        row!("`EtcdConfig::connect_timeout`" => election::etcd::DEFAULT_CONNECT_TIMEOUT),
        row!("`EtcdConfig::request_timeout`" => election::etcd::DEFAULT_REQUEST_TIMEOUT),
        row!("events waiting for the elector's loop" => election::etcd::EVENT_QUEUE),
    ]);
    #[cfg(not(feature = "etcd"))]
    rows.extend([
        defaults_table::unchecked("`EtcdConfig::connect_timeout`", WITH_ETCD),
        defaults_table::unchecked("`EtcdConfig::request_timeout`", WITH_ETCD),
        defaults_table::unchecked("events waiting for the elector's loop", WITH_ETCD),
    ]);
    check("docs/operations.md", "Leader election", &rows);
}
