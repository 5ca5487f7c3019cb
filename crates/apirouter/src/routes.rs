//! The HTTP routes: `GET /containers/json` and `GET /events/ws`, each also behind a Docker
//! API version prefix (`/v1.23/...`). Unknown query parameters are ignored.

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use hypersh_watch::container::Container;
use hypersh_watch::filters::{EVENT_KEYS, FilterError, Filters, LIST_KEYS};
use serde::Serialize;

use crate::auth::{self, AccessKey};
use crate::config::{CLIENT_FRAMES_BUFFER, MAX_CLIENT_MESSAGE, MAX_WRITE_BUFFER, WRITE_BUFFER};
use crate::json_array;
use crate::runtime::Runtime;
use crate::state::AppState;
use crate::watch::Session;

/// The container states the `status` list filter accepts (Docker's).
const STATUS_VALUES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "paused",
    "exited",
    "removing",
    "dead",
];

/// The query parameters, in order, as sent.
type Params = Vec<(String, String)>;

/// The application: routes behind the authentication middleware.
pub(crate) fn app(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/containers/json", get(list))
        .route("/{version}/containers/json", get(list_versioned))
        .route("/events/ws", get(events))
        .route("/{version}/events/ws", get(events_versioned))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .with_state(state)
}

/// A JSON error answer: `{"message": ...}`.
pub(crate) fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    #[derive(Serialize)]
    struct Message {
        message: String,
    }
    (
        status,
        Json(Message {
            message: message.into(),
        }),
    )
        .into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    json_error(StatusCode::BAD_REQUEST, message)
}

async fn method_not_allowed() -> Response {
    json_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "page not found")
}

/// `v<digits>.<digits>`, the Docker API version prefix.
fn is_api_version(segment: &str) -> bool {
    let Some((major, minor)) = segment.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// Docker's `BoolValue`: anything but empty, `0`, `no`, `false` or `none` is true.
fn bool_value(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "no" | "false" | "none"
    )
}

/// Parses the `filters` parameters (several are merged) and checks their keys.
fn parse_filters(params: &Params, allowed: &[&str]) -> Result<Filters, FilterError> {
    let mut filters = Filters::new();
    for (_, value) in params.iter().filter(|(k, _)| k == "filters") {
        let parsed = Filters::from_json(value)?;
        for key in parsed.keys() {
            for v in parsed.get(key).into_iter().flatten() {
                filters.add(key, v.clone());
            }
        }
    }
    filters.validate(allowed)?;
    Ok(filters)
}

async fn list_versioned(
    Path(version): Path<String>,
    state: State<AppState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    if is_api_version(&version) {
        list(state, query).await
    } else {
        not_found().await
    }
}

/// `GET /containers/json`: `all`, `limit` and `filters` (list keys); `status` implies
/// `all`, as in Docker. `since`, `before` and `size` are accepted and ignored.
async fn list(
    State(app): State<AppState>,
    query: Result<Query<Params>, QueryRejection>,
) -> Response {
    let params = match query {
        Ok(Query(params)) => params,
        Err(e) => return bad_request(format!("invalid query: {e}")),
    };
    let filters = match parse_filters(&params, LIST_KEYS) {
        Ok(f) => f,
        Err(e) => return bad_request(e.to_string()),
    };
    if let Some(bad) = filters
        .get("status")
        .into_iter()
        .flatten()
        .find(|s| !STATUS_VALUES.contains(&s.as_str()))
    {
        return bad_request(format!("invalid filter 'status={bad}'"));
    }
    if let Some(bad) = filters
        .get("exited")
        .into_iter()
        .flatten()
        .find(|s| s.parse::<i64>().is_err())
    {
        return bad_request(format!("invalid filter 'exited={bad}'"));
    }
    let mut all = filters.get("status").is_some();
    let mut limit = None;
    for (key, value) in &params {
        match key.as_str() {
            "all" => all |= bool_value(value),
            "limit" => match value.trim().parse::<i64>() {
                Ok(n) => limit = usize::try_from(n).ok().filter(|n| *n > 0),
                Err(_) => return bad_request(format!("invalid limit {value:?}")),
            },
            _ => {}
        }
    }
    let keep = |c: &Container, exit_code| filters.matches_container(c, exit_code);
    let ids = full_ids(&filters);
    let listed = app.runtime.list_summaries(all, ids.as_deref(), limit, keep);
    app.faults.wait_lists_released().await;
    // Written as it is sent (the snapshot above is the list's one instant).
    match json_array::body(listed) {
        Ok(body) => ([(CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => json_error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The `id` filter's values when every one is a whole id: an id filter matches by
/// prefix, and the runtime's ids are all [`Runtime::ID_LEN`] long, so a value that long
/// can only match the container with exactly that id (and the list can look the ids up
/// instead of testing every container).
fn full_ids(filters: &Filters) -> Option<Vec<&str>> {
    let values = filters.get("id")?;
    values
        .iter()
        .map(|v| (v.len() == Runtime::ID_LEN).then_some(v.as_str()))
        .collect()
}

async fn events_versioned(
    Path(version): Path<String>,
    state: State<AppState>,
    key: Extension<AccessKey>,
    query: Result<Query<Params>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if is_api_version(&version) {
        events(state, key, query, upgrade).await
    } else {
        not_found().await
    }
}

/// `GET /events/ws`: `filters` (event keys); `since` and `until` are ignored (no replay).
async fn events(
    State(app): State<AppState>,
    Extension(AccessKey(access_key)): Extension<AccessKey>,
    query: Result<Query<Params>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let params = match query {
        Ok(Query(params)) => params,
        Err(e) => return bad_request(format!("invalid query: {e}")),
    };
    let filters = match parse_filters(&params, EVENT_KEYS) {
        Ok(f) => f,
        Err(e) => return bad_request(e.to_string()),
    };
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => return json_error(rejection.status(), rejection.body_text()),
    };
    let Some(slot) = app.acquire_watch(&access_key) else {
        return json_error(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many watch connections for this access key (limit {})",
                app.max_watches_per_key
            ),
        );
    };
    let session = Session {
        filters,
        shape: app.shape,
        events: app.runtime.subscribe(),
        control: app.faults.control(),
        stall: app.faults.stall(),
        faults: app.faults.clone(),
        emit: app.emit.clone(),
        drop: app.faults.drop_token(),
        shutdown: app.shutdown.clone(),
        tracked: app.tracker.token(),
        slot,
        send_timeout: app.watch_send_timeout,
    };
    upgrade
        .read_buffer_size(CLIENT_FRAMES_BUFFER)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(MAX_WRITE_BUFFER)
        .on_failed_upgrade(|error| tracing::debug!(%error, "websocket upgrade failed"))
        .on_upgrade(move |socket| session.run(socket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        assert!(is_api_version("v1.23"));
        assert!(is_api_version("v10.0"));
        assert!(!is_api_version("v1"));
        assert!(!is_api_version("1.23"));
        assert!(!is_api_version("v1.x"));
        assert!(!is_api_version("v.1"));
        assert!(!is_api_version("containers"));
    }

    #[test]
    fn bool_values_follow_docker() {
        for v in ["1", "true", "True", "yes", "anything"] {
            assert!(bool_value(v), "{v}");
        }
        for v in ["", "0", "false", "FALSE", "no", "none"] {
            assert!(!bool_value(v), "{v}");
        }
    }

    #[test]
    fn filters_merge_and_validate() {
        let params = vec![
            ("filters".to_owned(), r#"{"label":{"a":true}}"#.to_owned()),
            (
                "filters".to_owned(),
                r#"{"label":["b=c"],"status":["running"]}"#.to_owned(),
            ),
            ("other".to_owned(), "x".to_owned()),
        ];
        let f = parse_filters(&params, LIST_KEYS).unwrap();
        assert_eq!(f, Filters::new().label("a").label("b=c").status("running"));
        assert!(matches!(
            parse_filters(&params, EVENT_KEYS),
            Err(FilterError::UnknownKey { .. })
        ));
        let bad = vec![("filters".to_owned(), "{nope".to_owned())];
        assert!(matches!(
            parse_filters(&bad, LIST_KEYS),
            Err(FilterError::Json(_))
        ));
        assert_eq!(
            parse_filters(&Vec::new(), LIST_KEYS).unwrap(),
            Filters::new()
        );
    }
}
