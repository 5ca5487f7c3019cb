//! Sign4 verification of every request, before anything else (including the websocket
//! upgrade), plus the stall and reject-auth faults, which act even earlier.
//!
//! The headers are authenticated before any of the body is read: the signature covers the
//! body hash the request claims (`X-Hyper-Content-Sha256`, or the empty body's hash when
//! the header is absent), so a request that fails is answered without reading its body,
//! and hyper then closes the connection instead of draining it. The API has no bodies: a
//! `Content-Length` over [`MAX_REQUEST_BODY`] is answered `413` before anything else, a
//! longer chunked body `413` as soon as it passes the cap, and a body must arrive within
//! the header-read timeout (`408` otherwise). A body that does not match the claimed hash
//! is `403`.
//!
//! Answers: `401` when the `Authorization` header is missing or malformed, `403` for every
//! other failure, each with a JSON `{"message": ...}`. The message is generic, except for
//! a date outside the allowed window, which says so to help users fix their clock. The
//! precise [`VerifyError`] is logged at debug level.
//!
//! Beyond Sign4: each signature is accepted once ([`crate::replay`]). A verified request
//! whose signature was already accepted within the window is `403` with a message that
//! says replay, before its body is read and before any route (so a replayed upgrade takes
//! no watch slot); one signed at or before a signature the full cache had to drop is `503`
//! (sign it again).

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER};
use http::{HeaderValue, StatusCode};
use hypersh_watch::sign4::{self, Authorization, VerifyError};

use crate::config::MAX_REQUEST_BODY;
use crate::replay::Refusal;
use crate::routes::json_error;
use crate::state::AppState;

/// The 401 message.
pub(crate) const UNAUTHENTICATED: &str =
    "authentication required: missing or malformed HYPER-HMAC-SHA256 Authorization header";
/// The generic 403 message.
pub(crate) const FORBIDDEN: &str = "access denied: invalid credentials or request signature";
/// The 403 message for a request date outside the window.
pub(crate) const DATE_OUT_OF_WINDOW: &str =
    "request date is more than 5 minutes from the server clock";
/// The 403 message for a signature already accepted.
pub(crate) const REPLAYED: &str =
    "replayed request refused: this signature was already used; sign each request anew";
/// The 503 message for a request older than the replay cache can vouch for.
pub(crate) const UNVERIFIABLE: &str = "too many signed requests within the 5-minute window to \
     check this one for replay (signed too long ago): sign it again";

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
    if declared_length(&parts.headers).is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        return body_too_large();
    }
    let claimed = sign4::claimed_body_hash(&parts.headers);
    let now = SystemTime::now();
    let verified = sign4::verify_body_hash(
        &parts.method,
        &parts.uri,
        &parts.headers,
        &claimed,
        &app.keys,
        now,
    )
    .and_then(|access_key| {
        let signature = check_region(&parts.headers, &app.region)?;
        Ok((access_key, signature, sign4::signed_at(&parts.headers)?))
    });
    let (access_key, signature, signed_at) = match verified {
        Ok(verified) => verified,
        Err(error) => {
            tracing::debug!(%error, method = %parts.method, uri = %parts.uri, "request failed Sign4 verification");
            return rejection(&error);
        }
    };
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    if let Err(refusal) = app.admit_signature(signature, signed_at, now_secs) {
        tracing::debug!(?refusal, %access_key, method = %parts.method, uri = %parts.uri, "request refused: signature already used or too old to check");
        return replay_rejection(refusal);
    }
    // Authenticated: now the body, bounded in size and time.
    let read = axum::body::to_bytes(body, MAX_REQUEST_BODY);
    let body = match tokio::time::timeout(app.body_read_timeout, read).await {
        Ok(Ok(body)) => body,
        // Over the cap (or a broken chunked encoding: the connection ends either way).
        Ok(Err(_)) => return body_too_large(),
        Err(_) => {
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
            );
        }
    };
    if !hex::encode(Sha256::digest(&body)).eq_ignore_ascii_case(&claimed) {
        tracing::debug!(method = %parts.method, uri = %parts.uri, "request body does not match its signed hash");
        return rejection(&VerifyError::BodyHashMismatch);
    }
    parts.extensions.insert(AccessKey(access_key));
    next.run(Request::from_parts(parts, Body::from(body))).await
}

/// The `Content-Length` a request declares, if any (hyper has already refused a malformed
/// one).
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The `413` answer.
fn body_too_large() -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body larger than {MAX_REQUEST_BODY} bytes (the API takes no bodies)"),
    )
}

/// The credential scope must name the router's region; returns the signature.
fn check_region(headers: &http::HeaderMap, region: &str) -> Result<[u8; 32], VerifyError> {
    let value = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::MalformedAuthorization)?;
    let auth = Authorization::parse(value)?;
    if auth.region == region {
        let mut signature = [0u8; 32];
        hex::decode_to_slice(auth.signature, &mut signature)
            .map_err(|_| VerifyError::MalformedAuthorization)?;
        Ok(signature)
    } else {
        tracing::debug!(
            scope_region = auth.region,
            region,
            "credential scope names another region"
        );
        Err(VerifyError::ScopeMismatch)
    }
}

/// The answer to a verified request the replay cache refuses.
fn replay_rejection(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Replay => json_error(StatusCode::FORBIDDEN, REPLAYED),
        Refusal::Unverifiable => {
            let mut response = json_error(StatusCode::SERVICE_UNAVAILABLE, UNVERIFIABLE);
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
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
        assert_eq!(replay_rejection(Refusal::Replay).status(), 403);
        let busy = replay_rejection(Refusal::Unverifiable);
        assert_eq!(busy.status(), 503);
        assert_eq!(busy.headers()[RETRY_AFTER], "1");
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
        assert_eq!(check_region(&headers, "us-west-1"), Ok([0u8; 32]));
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
