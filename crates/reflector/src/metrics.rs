//! The metric names of the reflector (`hypersh_reflector_*`) and of the controller
//! (`hypersh_controller_*`), with their help texts.
//!
//! Both report through the [`metrics`](https://docs.rs/metrics) facade.
//! [`describe`] gives each reflector metric its `# HELP` text and registers every counter
//! at 0, so that an exporter shows all of them from the start (an alert on a counter that
//! does not exist yet never fires). The [`Informer`](crate::Informer) calls it when it
//! is built; call it yourself, after installing a recorder, when you run a
//! [`Reflector`](crate::Reflector) directly. The [`Controller`](crate::Controller) does
//! the same for its own metrics ([`describe_controller`]), labelled `controller=<name>`.

/// Counter: events received and decoded (`Status::events_received`).
pub const EVENTS_TOTAL: &str = "hypersh_reflector_events_total";
/// Counter: events that changed the cache (`Status::events_applied`).
pub const EVENTS_APPLIED_TOTAL: &str = "hypersh_reflector_events_applied_total";
/// Counter: full lists applied (`Status::relists`).
pub const RELISTS_TOTAL: &str = "hypersh_reflector_relists_total";
/// Counter: connections opened after the first (`Status::reconnects`).
pub const RECONNECTS_TOTAL: &str = "hypersh_reflector_reconnects_total";
/// Counter: containers fetched by id (`Status::fetches`).
pub const FETCHES_TOTAL: &str = "hypersh_reflector_fetches_total";
/// Counter: frames that could not be decoded and were skipped (`Status::decode_errors`).
pub const DECODE_ERRORS_TOTAL: &str = "hypersh_reflector_decode_errors_total";
/// Counter: failed attempts (`Status::failures`).
pub const FAILURES_TOTAL: &str = "hypersh_reflector_failures_total";
/// Counter: attempts the server refused the credentials for (`Status::auth_failures`).
pub const AUTH_FAILURES_TOTAL: &str = "hypersh_reflector_auth_failures_total";
/// Counter: times a memory bound was passed and the reflector relisted rather than grow
/// (`Status::overflows`).
pub const OVERFLOWS_TOTAL: &str = "hypersh_reflector_overflows_total";
/// Gauge: 1 while connected and synced, else 0 (`Status::connected`).
pub const CONNECTED: &str = "hypersh_reflector_connected";

/// Every counter with its help text.
pub const COUNTERS: [(&str, &str); 9] = [
    (EVENTS_TOTAL, "Events received and decoded"),
    (EVENTS_APPLIED_TOTAL, "Events that changed the cache"),
    (
        RELISTS_TOTAL,
        "Full lists applied (initial, after each reconnect, periodic)",
    ),
    (RECONNECTS_TOTAL, "Connections opened after the first"),
    (FETCHES_TOTAL, "Containers fetched by id"),
    (
        DECODE_ERRORS_TOTAL,
        "Event frames that could not be decoded and were skipped",
    ),
    (
        FAILURES_TOTAL,
        "Failed attempts (connect, list, fetch, or a watch that broke)",
    ),
    (
        AUTH_FAILURES_TOTAL,
        "Attempts the server refused the credentials for (HTTP 401/403)",
    ),
    (
        OVERFLOWS_TOTAL,
        "Times a memory bound was passed and the reflector relisted rather than grow",
    ),
];

/// The gauge's help text.
pub const CONNECTED_HELP: &str = "1 while the watch is open and the cache synced on it, else 0";

/// Describes every metric to the installed recorder and registers the counters at 0 and
/// the gauge at 0. Idempotent: calling it again adds nothing to the counters.
pub fn describe() {
    describe_informer(None);
}

/// Like [`describe`], for the informer named `name` (`InformerBuilder::name`): its
/// series carry the label `informer=<name>`, and those are the ones registered at 0.
pub fn describe_informer(name: Option<&str>) {
    describe_labelled(&labels(name));
}

/// Like [`describe_informer`], for a reflector whose series carry these labels.
pub(crate) fn describe_labelled(labels: &[(&'static str, String)]) {
    let labels = labels.to_vec();
    for (metric, help) in COUNTERS {
        ::metrics::describe_counter!(metric, help);
        ::metrics::counter!(metric, &labels).increment(0);
    }
    ::metrics::describe_gauge!(CONNECTED, CONNECTED_HELP);
    ::metrics::gauge!(CONNECTED, &labels).increment(0.0);
}

/// The labels of the metrics of the informer named `name`: none without a name.
pub(crate) fn labels(name: Option<&str>) -> Vec<(&'static str, String)> {
    name.map(|n| ("informer", n.to_owned()))
        .into_iter()
        .collect()
}

/// Gauge: keys waiting in the controller's queue, due or not.
pub const CONTROLLER_QUEUE_DEPTH: &str = "hypersh_controller_queue_depth";
/// Gauge: reconciles running.
pub const CONTROLLER_RUNNING: &str = "hypersh_controller_running";
/// Gauge: how long the longest-waiting due key has waited, in seconds.
pub const CONTROLLER_OLDEST_ITEM_AGE_SECONDS: &str = "hypersh_controller_oldest_item_age_seconds";
/// Histogram: how long reconciles take, in seconds.
pub const CONTROLLER_RECONCILE_DURATION_SECONDS: &str =
    "hypersh_controller_reconcile_duration_seconds";
/// Histogram: how long a key waited in the queue before its reconcile started, in seconds.
pub const CONTROLLER_QUEUE_WAIT_SECONDS: &str = "hypersh_controller_queue_wait_seconds";
/// Counter: reconciles finished, whatever their outcome.
pub const CONTROLLER_RECONCILES_TOTAL: &str = "hypersh_controller_reconciles_total";
/// Counter: reconciles that returned an error or panicked.
pub const CONTROLLER_RECONCILE_ERRORS_TOTAL: &str = "hypersh_controller_reconcile_errors_total";
/// Counter: reconciles that returned a terminal error (not retried).
pub const CONTROLLER_TERMINAL_ERRORS_TOTAL: &str = "hypersh_controller_terminal_errors_total";
/// Counter: reconciles that panicked.
pub const CONTROLLER_RECONCILE_PANICS_TOTAL: &str = "hypersh_controller_reconcile_panics_total";
/// Counter: retries scheduled after a failure.
pub const CONTROLLER_RETRIES_TOTAL: &str = "hypersh_controller_retries_total";

/// Every controller counter with its help text.
pub const CONTROLLER_COUNTERS: [(&str, &str); 5] = [
    (
        CONTROLLER_RECONCILES_TOTAL,
        "Reconciles finished (any outcome)",
    ),
    (
        CONTROLLER_RECONCILE_ERRORS_TOTAL,
        "Reconciles that returned an error or panicked",
    ),
    (
        CONTROLLER_TERMINAL_ERRORS_TOTAL,
        "Reconciles that returned a terminal error (not retried)",
    ),
    (
        CONTROLLER_RECONCILE_PANICS_TOTAL,
        "Reconciles that panicked",
    ),
    (
        CONTROLLER_RETRIES_TOTAL,
        "Retries scheduled after a failure",
    ),
];

/// Describes every controller metric to the installed recorder and registers the
/// counters of the controller named `name` at 0, so a scrape shows them before the first
/// reconcile. The [`Controller`](crate::Controller) calls it when it is built.
pub fn describe_controller(name: &str) {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        CONTROLLER_QUEUE_DEPTH,
        "Keys waiting in the controller's queue (due or not)"
    );
    describe_gauge!(CONTROLLER_RUNNING, "Reconciles running");
    describe_gauge!(
        CONTROLLER_OLDEST_ITEM_AGE_SECONDS,
        Unit::Seconds,
        "How long the longest-waiting due key has waited"
    );
    describe_histogram!(
        CONTROLLER_RECONCILE_DURATION_SECONDS,
        Unit::Seconds,
        "How long reconciles take"
    );
    describe_histogram!(
        CONTROLLER_QUEUE_WAIT_SECONDS,
        Unit::Seconds,
        "How long a key waited in the queue before its reconcile started"
    );
    let labels = [("controller", name.to_owned())];
    for (metric, help) in CONTROLLER_COUNTERS {
        describe_counter!(metric, help);
        ::metrics::counter!(metric, &labels).increment(0);
    }
}
