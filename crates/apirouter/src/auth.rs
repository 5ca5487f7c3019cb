//! Sign4 verification of every request, before anything else (including the websocket
//! upgrade), plus the stall and reject-auth faults, which act even earlier.
//!
//! Answers: `401` when the `Authorization` header is missing or malformed, `403` for every
//! other failure, each with a JSON `{"message": ...}`. The message is generic, except for
//! a date outside the allowed window, which says so to help users fix their clock. The
//! precise [`VerifyError`] is logged at debug level.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::AUTHORIZATION;
use hypersh_watch::sign4::{self, Authorization, VerifyError};

use crate::routes::json_error;
use crate::state::AppState;

/// The largest request body read for signature checking.
const MAX_BODY: usize = 1 << 20;

/// The 401 message.
pub(crate) const UNAUTHENTICATED: &str =
    "authentication required: missing or malformed HYPER-HMAC-SHA256 Authorization header";
/// The generic 403 message.
pub(crate) const FORBIDDEN: &str = "access denied: invalid credentials or request signature";
/// The 403 message for a request date outside the window.
pub(crate) const DATE_OUT_OF_WINDOW: &str =
    "request date is more than 5 minutes from the server clock";

/// The access key that signed a request, as a request extension.
#[derive(Clone, Debug)]
pub(crate) struct AccessKey(pub(crate) String);

/// The middleware: stall, reject-auth, then Sign4.
pub(crate) async fn authenticate(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    app.faults.wait_unstalled().await;
    if app.faults.rejects_auth() {
        tracing::debug!(uri = %req.uri(), "rejecting request: reject-auth fault is on");
        return json_error(StatusCode::FORBIDDEN, FORBIDDEN);
    }
    let (mut parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return json_error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    };
    let verified = sign4::verify(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &body,
        &app.keys,
        SystemTime::now(),
    )
    .and_then(|access_key| check_region(&parts.headers, &app.region).map(|()| access_key));
    match verified {
        Ok(access_key) => {
            parts.extensions.insert(AccessKey(access_key));
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(error) => {
            tracing::debug!(%error, method = %parts.method, uri = %parts.uri, "request failed Sign4 verification");
            rejection(&error).into_response()
        }
    }
}

/// The credential scope must name the router's region.
fn check_region(headers: &http::HeaderMap, region: &str) -> Result<(), VerifyError> {
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::MalformedAuthorization)?;
    let auth = Authorization::parse(value)?;
    if auth.region == region {
        Ok(())
    } else {
        tracing::debug!(
            scope_region = auth.region,
            region,
            "credential scope names another region"
        );
        Err(VerifyError::ScopeMismatch)
    }
}

/// The answer to a failed verification.
fn rejection(error: &VerifyError) -> Response {
    match error {
        VerifyError::MissingAuthorization | VerifyError::MalformedAuthorization => {
            json_error(StatusCode::UNAUTHORIZED, UNAUTHENTICATED)
        }
        VerifyError::DateOutOfWindow => json_error(StatusCode::FORBIDDEN, DATE_OUT_OF_WINDOW),
        _ => json_error(StatusCode::FORBIDDEN, FORBIDDEN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_error_kind() {
        assert_eq!(rejection(&VerifyError::MissingAuthorization).status(), 401);
        assert_eq!(
            rejection(&VerifyError::MalformedAuthorization).status(),
            401
        );
        assert_eq!(rejection(&VerifyError::SignatureMismatch).status(), 403);
        assert_eq!(rejection(&VerifyError::UnknownAccessKey).status(), 403);
        assert_eq!(rejection(&VerifyError::DateOutOfWindow).status(), 403);
        assert_eq!(rejection(&VerifyError::MissingDate).status(), 403);
    }

    #[test]
    fn region_must_match_the_scope() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            format!(
                "HYPER-HMAC-SHA256 Credential=ak/20170729/us-west-1/hyper/hyper_request, \
                 SignedHeaders=host;x-hyper-date, Signature={}",
                "0".repeat(64)
            )
            .parse()
            .unwrap(),
        );
        assert_eq!(check_region(&headers, "us-west-1"), Ok(()));
        assert_eq!(
            check_region(&headers, "eu-central-1"),
            Err(VerifyError::ScopeMismatch)
        );
        assert_eq!(
            check_region(&http::HeaderMap::new(), "us-west-1"),
            Err(VerifyError::MalformedAuthorization)
        );
    }
}
