//! The defaults tables of docs/operations.md against the code: each documented default
//! equals its constant (`tests/common/defaults_table.rs` has the reading rule). The
//! election's table is checked by `crates/election/tests/defaults.rs`.

#[macro_use]
#[path = "common/defaults_table.rs"]
mod defaults_table;

use defaults_table::{check, sections_with_defaults, text, unchecked};
use hypersh::controller;
use hypersh::docker::{self, ApiVersion};
use hypersh::reflector::{backoff, limits};
use hypersh::store::{DEFAULT_QUEUE_CAPACITY, FullPolicy};
use hypersh::watch::config as client;
use hypersh_apirouter::{config as router, runtime};

const DOC: &str = "docs/operations.md";

/// A Docker API version as the doc writes it (`1.57`).
fn version(v: ApiVersion) -> f64 {
    v.to_string().parse().expect("MAJOR.MINOR")
}

#[test]
fn every_defaults_table_is_checked() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .expect("the doc");
    let checked = [
        "Timeouts, backoff, resync",
        "On a Docker Engine or Podman",
        "Router limits",
        "The controller runtime",
        "A fleet of hosts",
        // crates/election/tests/defaults.rs
        "Leader election",
    ];
    for section in sections_with_defaults(&doc) {
        assert!(
            checked.iter().any(|c| section.starts_with(c)),
            "{DOC}: section {section:?} has a defaults table that no test checks"
        );
    }
}

#[test]
fn client_backoff_and_store_defaults_match_the_code() {
    check(
        DOC,
        "Timeouts, backoff, resync",
        &[
            row!("`ClientConfig::with_ping_interval`" => client::DEFAULT_PING_INTERVAL),
            row!("`ClientConfig::with_idle_timeout`" => client::DEFAULT_IDLE_TIMEOUT),
            row!("`ClientConfig::connect_timeout`" => client::DEFAULT_CONNECT_TIMEOUT),
            row!("`ClientConfig::request_timeout`" => client::DEFAULT_REQUEST_TIMEOUT),
            row!("`ClientConfig::max_frame_size`" => client::DEFAULT_MAX_FRAME_SIZE),
            row!("websocket read buffer (fixed)" => client::WEBSOCKET_READ_BUFFER),
            row!("`ClientConfig::list_progress_timeout`" => client::DEFAULT_LIST_PROGRESS_TIMEOUT),
            row!("`ClientConfig::max_list_containers`" => client::DEFAULT_MAX_LIST_CONTAINERS),
            row!("`ClientConfig::max_list_bytes`" => client::DEFAULT_MAX_LIST_BYTES),
            row!("`container::MAX_LABELS_BYTES` (not configurable)" =>
                hypersh::watch::container::MAX_LABELS_BYTES),
            row!("`ClientConfig::tcp_keepalive`" => client::DEFAULT_TCP_KEEPALIVE),
            unchecked("redirects", "a behaviour, not a value"),
            unchecked(
                "pooled connections after a failure",
                "a behaviour, not a value",
            ),
            row!("`BackoffConfig`" =>
                backoff::DEFAULT_INITIAL,
                backoff::DEFAULT_FACTOR,
                backoff::DEFAULT_MAX,
                backoff::DEFAULT_RESET_AFTER,
            ),
            unchecked("authentication failures", "a behaviour, not a value"),
            row!("`Limits::max_buffered_events` (via `InformerBuilder::limits`)" =>
                limits::DEFAULT_MAX_BUFFERED_EVENTS),
            row!("`Limits::max_buffered_bytes`" => limits::DEFAULT_MAX_BUFFERED_BYTES),
            row!("`Limits::max_pending_fetches`" => limits::DEFAULT_MAX_PENDING_FETCHES),
            unchecked(
                "`InformerBuilder::relist`",
                "off is no period: the builder's option is unset, not a constant",
            ),
            unchecked(
                "`InformerBuilder::resync`",
                "off is no period: the builder's option is unset, not a constant",
            ),
            row!("`StoreConfig::queue_capacity` (via `InformerBuilder::store_config`)" => DEFAULT_QUEUE_CAPACITY),
            text(
                "`StoreConfig::full_policy`",
                format!("`FullPolicy::{:?}`", FullPolicy::default()),
            ),
        ],
    );
}

#[test]
fn docker_source_defaults_match_the_code() {
    check(
        DOC,
        "On a Docker Engine or Podman",
        &[
            row!("`connect_timeout`" => docker::DEFAULT_CONNECT_TIMEOUT),
            row!("`request_timeout`" => docker::DEFAULT_REQUEST_TIMEOUT),
            row!("`ping_interval`" => docker::DEFAULT_PING_INTERVAL),
            row!("`ping_timeout`" => docker::DEFAULT_PING_TIMEOUT),
            row!("`max_body`" => docker::DEFAULT_MAX_BODY),
            row!("`max_line`" => docker::DEFAULT_MAX_LINE),
            row!("error bodies" => docker::MAX_ERROR_BODY),
            row!("ssh's stderr" => docker::MAX_SSH_STDERR),
            text("`tls`, `ssh_args`", "none"),
            row!("`api_version`" =>
                version(ApiVersion::MAXIMUM),
                version(ApiVersion::MINIMUM),
                version(ApiVersion::MAXIMUM),
            ),
        ],
    );
}

#[test]
fn router_limits_match_the_code() {
    check(
        DOC,
        "Router limits",
        &[
            row!("header read timeout" => router::DEFAULT_HEADER_READ_TIMEOUT),
            text("request body read", "the header read timeout"),
            row!("idle timeout" => router::DEFAULT_IDLE_TIMEOUT),
            row!("connections" => router::DEFAULT_MAX_CONNECTIONS),
            row!("accept errors" => router::ACCEPT_ERROR_BACKOFF),
            row!("TLS handshake" => router::TLS_HANDSHAKE_TIMEOUT),
            row!("request head buffer" => router::MAX_HEAD_BUFFER),
            row!("request body" => router::MAX_REQUEST_BODY),
            unchecked("raw characters in a request target", "a rule, no default"),
            row!("watch slots" => router::DEFAULT_MAX_WATCHES_PER_KEY),
            row!("seen signatures" => router::DEFAULT_MAX_SEEN_SIGNATURES),
            row!("watch send timeout" => router::DEFAULT_WATCH_SEND_TIMEOUT),
            row!("watch lag" => runtime::EVENT_BUFFER),
            row!("list cache" => runtime::LIST_CACHE_BYTES),
            row!("close handshake" => router::CLOSE_REPLY_WAIT, router::CLOSE_REPLY_WAIT),
            row!("client frames and messages" => router::MAX_CLIENT_MESSAGE),
            row!("websocket read buffer" => router::CLIENT_FRAMES_BUFFER),
            row!("websocket write buffer" => router::WRITE_BUFFER, router::MAX_WRITE_BUFFER),
        ],
    );
}

#[test]
fn controller_defaults_match_the_code() {
    check(
        DOC,
        "The controller runtime",
        &[
            row!("`concurrency`" => controller::DEFAULT_CONCURRENCY),
            row!("`backoff(base, max)`" =>
                controller::DEFAULT_BACKOFF_BASE,
                controller::DEFAULT_BACKOFF_MAX,
            ),
            row!("`rate_limit(qps, burst)`" => controller::DEFAULT_QPS, controller::DEFAULT_BURST),
            row!("`aging`" => controller::DEFAULT_AGING),
            row!("`shutdown_deadline`" => controller::DEFAULT_SHUTDOWN_DEADLINE),
        ],
    );
}

#[test]
fn fleet_defaults_match_the_code() {
    check(
        DOC,
        "A fleet of hosts",
        &[
            unchecked(
                "`FleetBuilder::drop_after(d)` / `InformerBuilder::drop_after(Some(d))`",
                "keep is no period: the builder's option is unset, not a constant",
            ),
            unchecked("host names", "a rule, no default"),
            unchecked(
                "handler queues",
                "the store's queue capacity per host, checked in the first table",
            ),
        ],
    );
}
