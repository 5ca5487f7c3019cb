//! HYPER-HMAC-SHA256 ("Sign4") request signing and verification, on `http` 1.x types.
//!
//! Sign4 is AWS Signature V4 with Hyper names (spec: `protocol.md` section 1). [`sign`] is the
//! client end: it adds `Content-Type`, `X-Hyper-Date`, `X-Hyper-Content-Sha256`, `Host` and
//! `Authorization` to a request. [`verify`] is the server end: it checks such a request against
//! a [`KeyStore`] and returns the access key that signed it.
//!
//! # Canonical path and empty segments
//!
//! The spec says the Go server drops empty path segments, but the `hyperb` vector
//! (`GET https://us-west-1.hyper.sh/v1.23/`, signature `3a923718...`) only verifies with the
//! canonical path `v1.23/`: dropping empty segments gives `v1.23` and signature `d5913c9d...`.
//! The eight `hyper-aws4` vectors have no empty segments, so they agree with both rules.
//! [`canonical_path`] therefore follows the clients that made the vectors (`hyper-aws4`,
//! `hyperb`): it removes the one leading `/` and keeps every other segment, empty ones included
//! (`/` gives the empty string, as in the Go server). This also means `/a/b`, `/a//b` and
//! `/a/b/` are signed differently, so a signature cannot be replayed on another path.

mod authorization;
mod canonical;
mod date;
mod error;
mod key_store;
mod nonce;

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use authorization::Authorization;
pub use canonical::{canonical_path, canonical_query, region_for_host};
pub use error::{SignError, VerifyError};
pub use key_store::KeyStore;
pub use nonce::nonce;

use crate::credentials::{Credentials, SecretKey};
use canonical::{canonical_request, header_value};
use date::{format_date, parse_date, within_skew};

/// The algorithm name, first word of the `Authorization` header and of the string to sign.
pub const ALGORITHM: &str = "HYPER-HMAC-SHA256";
/// The region used when the host is not `<region>.hyper.sh` and none is configured.
pub const DEFAULT_REGION: &str = "us-west-1";
/// Maximum allowed distance between X-Hyper-Date and the verifier's clock (spec: 5 minutes).
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
/// Hex SHA-256 of the empty body.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The request date header, `yyyymmddTHHMMSSZ` in UTC.
pub const DATE_HEADER: &str = "x-hyper-date";
/// The header carrying the hex SHA-256 of the body.
pub const CONTENT_SHA256_HEADER: &str = "x-hyper-content-sha256";
/// The header that makes each signature unique (see [`nonce`]); signed like every
/// `x-hyper-*` header. Not part of the original Hyper.sh clients.
pub const NONCE_HEADER: &str = "x-hyper-nonce";

/// The service part of the credential scope.
const SERVICE: &str = "hyper";
/// The last part of the credential scope.
const REQUEST: &str = "hyper_request";
/// The `Content-Type` set when the request has none.
const DEFAULT_CONTENT_TYPE: &str = "application/json";

type HmacSha256 = Hmac<Sha256>;

/// Signs a request in place: sets Content-Type (if absent), X-Hyper-Date, X-Hyper-Content-Sha256,
/// Host (if absent; port 80/443 dropped, others kept) and Authorization.
/// `region`: fallback region when the host is not `<region>.hyper.sh`.
///
/// `uri` is absolute (`scheme://host[:port]/path?query`; the scheme itself is not signed).
/// X-Hyper-Date, X-Hyper-Content-Sha256 and Authorization are replaced if present, so a request
/// can be signed again. The signed headers are `content-type`, `content-md5` (if present),
/// `host` and every `x-hyper-*` header. `now` is truncated to whole seconds. When an input is
/// rejected the headers are left unchanged. The region is taken from the Host header when the
/// request already has one (a virtual host), else from the URI host.
pub fn sign(
    method: &Method,
    uri: &Uri,
    headers: &mut HeaderMap,
    body: &[u8],
    credentials: &Credentials,
    region: &str,
    now: SystemTime,
) -> Result<(), SignError> {
    let access_key = credentials.access_key();
    if access_key.is_empty() || !access_key.bytes().all(is_credential_byte) {
        return Err(SignError::InvalidAccessKey);
    }
    let date = format_date(now)?;
    let body_hash = hex::encode(Sha256::digest(body));

    let uri_host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or(SignError::MissingHost)?;
    let uri_host = match uri.port_u16() {
        None | Some(80 | 443) => uri_host.to_owned(),
        Some(port) => format!("{uri_host}:{port}"),
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&uri_host);
    let region = region_for_host(host, region).to_owned();
    if region.is_empty() || !region.bytes().all(is_credential_byte) {
        return Err(SignError::InvalidRegion(region));
    }
    let date_value =
        HeaderValue::from_str(&date).map_err(|_| SignError::InvalidHeaderValue(DATE_HEADER))?;
    let hash_value = HeaderValue::from_str(&body_hash)
        .map_err(|_| SignError::InvalidHeaderValue(CONTENT_SHA256_HEADER))?;

    let host_value = if headers.contains_key(HOST) {
        None
    } else {
        let value =
            HeaderValue::from_str(&uri_host).map_err(|_| SignError::InvalidHeaderValue("host"))?;
        Some(value)
    };

    // The inputs are valid: from here on the headers are modified.
    if let Some(value) = host_value {
        headers.insert(HOST, value);
    }
    if !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(DEFAULT_CONTENT_TYPE));
    }
    headers.insert(DATE_HEADER, date_value);
    headers.insert(CONTENT_SHA256_HEADER, hash_value);

    let mut signed: Vec<&str> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| {
            matches!(*name, "content-type" | "content-md5" | "host") || name.starts_with("x-hyper-")
        })
        .collect();
    signed.sort_unstable();
    let signed_list = signed.join(";");

    let canonical = canonical_request(
        method,
        uri.path(),
        uri.query().unwrap_or(""),
        headers,
        &signed,
        &body_hash,
    );
    let day = date.get(..8).ok_or(SignError::InvalidTime)?;
    let scope = format!("{day}/{region}/{SERVICE}/{REQUEST}");
    let mac = signature(
        credentials.secret_key(),
        day,
        &region,
        &date,
        &scope,
        &canonical,
    )
    .ok_or(SignError::InvalidKey)?;
    let authorization = format!(
        "{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed_list}, Signature={}",
        hex::encode(mac)
    );
    let authorization = HeaderValue::from_str(&authorization)
        .map_err(|_| SignError::InvalidHeaderValue("authorization"))?;
    headers.insert(AUTHORIZATION, authorization);
    Ok(())
}

/// Verifies an incoming request; `uri` is the request target as received (path + query, no
/// authority); the host comes from the Host header. Returns the access key on success.
///
/// Checks, in order: the `Authorization` header parses; the scope service/request are
/// `hyper/hyper_request`; `host`, `x-hyper-date` and every `x-hyper-*` header present are
/// signed, and every signed header is present; `X-Hyper-Date` parses, falls on the scope date
/// and is within [`MAX_CLOCK_SKEW`] of `now` (either way); the access key is known; a signed
/// `X-Hyper-Content-Sha256` equals the SHA-256 of `body`; the signature, recomputed over the
/// headers in SignedHeaders order with the region of the scope, matches (constant time).
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    keys: &impl KeyStore,
    now: SystemTime,
) -> Result<String, VerifyError> {
    verify_body_hash(
        method,
        uri,
        headers,
        &hex::encode(Sha256::digest(body)),
        keys,
        now,
    )
}

/// The body hash a request claims: the `X-Hyper-Content-Sha256` value when the header is
/// present and is valid text, else [`EMPTY_BODY_SHA256`] (a request without the header is
/// taken to have no body). With [`verify_body_hash`], a server authenticates a request's
/// headers before it reads any of the body, then compares the body's hash with this.
#[must_use]
pub fn claimed_body_hash(headers: &HeaderMap) -> String {
    headers
        .get(CONTENT_SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| EMPTY_BODY_SHA256.to_owned(), str::to_ascii_lowercase)
}

/// [`verify`] with the body given by its hex SHA-256 instead of its bytes, so that the
/// headers can be authenticated before the body is read (pass [`claimed_body_hash`], then
/// check the body against it). Same checks, in the same order, as [`verify`].
///
/// # Errors
/// As [`verify`].
pub fn verify_body_hash(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body_hash: &str,
    keys: &impl KeyStore,
    now: SystemTime,
) -> Result<String, VerifyError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(VerifyError::MissingAuthorization)?;
    if values.next().is_some() {
        return Err(VerifyError::MalformedAuthorization);
    }
    let value = value
        .to_str()
        .map_err(|_| VerifyError::MalformedAuthorization)?;
    let auth = Authorization::parse(value)?;
    if auth.service != SERVICE || auth.request != REQUEST {
        return Err(VerifyError::ScopeMismatch);
    }

    for required in [HOST.as_str(), DATE_HEADER] {
        if !auth.signed_headers.contains(&required) {
            return Err(VerifyError::MissingSignedHeader(required.to_owned()));
        }
    }
    if !headers.contains_key(DATE_HEADER) {
        return Err(VerifyError::MissingDate);
    }
    if let Some(unsigned) = headers
        .keys()
        .map(HeaderName::as_str)
        .find(|name| name.starts_with("x-hyper-") && !auth.signed_headers.contains(name))
    {
        return Err(VerifyError::MissingSignedHeader(unsigned.to_owned()));
    }
    if let Some(absent) = auth
        .signed_headers
        .iter()
        .find(|name| !headers.contains_key(**name))
    {
        return Err(VerifyError::MissingSignedHeader((*absent).to_owned()));
    }

    let date_bytes = header_value(headers, DATE_HEADER);
    let date = std::str::from_utf8(&date_bytes).map_err(|_| VerifyError::InvalidDate)?;
    let signed_at = parse_date(date)?;
    if date.get(..8) != Some(auth.date) {
        return Err(VerifyError::ScopeMismatch);
    }
    if !within_skew(signed_at, now) {
        return Err(VerifyError::DateOutOfWindow);
    }

    let secret = keys
        .secret_for(auth.access_key)
        .ok_or(VerifyError::UnknownAccessKey)?;

    if auth.signed_headers.contains(&CONTENT_SHA256_HEADER)
        && !header_value(headers, CONTENT_SHA256_HEADER).eq_ignore_ascii_case(body_hash.as_bytes())
    {
        return Err(VerifyError::BodyHashMismatch);
    }

    let canonical = canonical_request(
        method,
        uri.path(),
        uri.query().unwrap_or(""),
        headers,
        &auth.signed_headers,
        body_hash,
    );
    let scope = format!("{}/{}/{SERVICE}/{REQUEST}", auth.date, auth.region);
    let expected = signature(&secret, auth.date, auth.region, date, &scope, &canonical)
        .ok_or(VerifyError::SignatureMismatch)?;
    let mut given = [0u8; 32];
    hex::decode_to_slice(auth.signature, &mut given)
        .map_err(|_| VerifyError::MalformedAuthorization)?;
    if bool::from(expected[..].ct_eq(&given[..])) {
        Ok(auth.access_key.to_owned())
    } else {
        Err(VerifyError::SignatureMismatch)
    }
}

/// When a request says it was signed: its `X-Hyper-Date`, in seconds since the Unix
/// epoch. For a server that remembers accepted signatures until they leave the
/// [`MAX_CLOCK_SKEW`] window (call it after [`verify`] accepted the request).
///
/// # Errors
/// [`VerifyError::MissingDate`] or [`VerifyError::InvalidDate`].
pub fn signed_at(headers: &HeaderMap) -> Result<i64, VerifyError> {
    if !headers.contains_key(DATE_HEADER) {
        return Err(VerifyError::MissingDate);
    }
    let bytes = header_value(headers, DATE_HEADER);
    parse_date(std::str::from_utf8(&bytes).map_err(|_| VerifyError::InvalidDate)?)
}

/// Whether `b` may appear in an access key or region: visible ASCII except `/` and `,`
/// (which delimit the credential and the `Authorization` components).
fn is_credential_byte(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'/' && b != b','
}

/// One HMAC-SHA256; `None` only if the `hmac` crate rejected the key, which it never does.
fn hmac_sha256(key: &[u8], data: &[u8]) -> Option<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(data);
    Some(mac.finalize().into_bytes().into())
}

/// The raw signature: the key chain `"HYPER" + secret` → day → region → `hyper` →
/// `hyper_request`, applied to the string to sign.
fn signature(
    secret: &SecretKey,
    day: &str,
    region: &str,
    date: &str,
    scope: &str,
    canonical: &[u8],
) -> Option<[u8; 32]> {
    let seed = format!("HYPER{}", secret.expose());
    let mut key = hmac_sha256(seed.as_bytes(), day.as_bytes())?;
    for part in [region, SERVICE, REQUEST] {
        key = hmac_sha256(&key, part.as_bytes())?;
    }
    let to_sign = format!(
        "{ALGORITHM}\n{date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical))
    );
    hmac_sha256(&key, to_sign.as_bytes())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::date::at;
    use super::*;

    #[test]
    fn empty_body_constant_is_sha256_of_nothing() {
        assert_eq!(hex::encode(Sha256::digest(b"")), EMPTY_BODY_SHA256);
    }

    #[test]
    fn hyperb_vector_keeps_the_trailing_slash() {
        let uri: Uri = "https://us-west-1.hyper.sh/v1.23/".parse().unwrap();
        let mut headers = HeaderMap::new();
        let creds = Credentials::new("ak", "sk");
        let now = at("20170729T230845Z");
        sign(&Method::GET, &uri, &mut headers, b"", &creds, "x", now).unwrap();
        let auth = headers[AUTHORIZATION].to_str().unwrap();
        assert_eq!(
            auth,
            "HYPER-HMAC-SHA256 Credential=ak/20170729/us-west-1/hyper/hyper_request, \
             SignedHeaders=content-type;host;x-hyper-content-sha256;x-hyper-date, \
             Signature=3a923718db713abc7b851712a434343eb7887298ab5f48113a7b291f261c037a"
        );
        assert_eq!(canonical_path(uri.path()), "v1.23/");
    }

    #[test]
    fn signed_at_reads_the_date_header() {
        let uri: Uri = "https://us-west-1.hyper.sh/v1.23/".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(signed_at(&headers), Err(VerifyError::MissingDate));
        let creds = Credentials::new("ak", "sk");
        sign(
            &Method::GET,
            &uri,
            &mut headers,
            b"",
            &creds,
            "x",
            at("20170729T230845Z"),
        )
        .unwrap();
        assert_eq!(signed_at(&headers), Ok(1_501_369_725));
        headers.insert(DATE_HEADER, HeaderValue::from_static("2017-07-29"));
        assert_eq!(signed_at(&headers), Err(VerifyError::InvalidDate));
    }

    #[test]
    fn sign_rejects_bad_inputs() {
        let mut headers = HeaderMap::new();
        let now = at("20170729T230845Z");
        let creds = Credentials::new("ak", "sk");
        let relative: Uri = "/events/ws".parse().unwrap();
        assert_eq!(
            sign(
                &Method::GET,
                &relative,
                &mut headers,
                b"",
                &creds,
                DEFAULT_REGION,
                now
            ),
            Err(SignError::MissingHost)
        );
        let uri: Uri = "https://127.0.0.1/".parse().unwrap();
        for ak in ["", "a/k", "a,k", "a k", "ak\n"] {
            let bad = Credentials::new(ak, "sk");
            assert_eq!(
                sign(
                    &Method::GET,
                    &uri,
                    &mut headers,
                    b"",
                    &bad,
                    DEFAULT_REGION,
                    now
                ),
                Err(SignError::InvalidAccessKey),
                "{ak:?}"
            );
        }
        for region in ["", "us/west", "us west"] {
            assert_eq!(
                sign(&Method::GET, &uri, &mut headers, b"", &creds, region, now),
                Err(SignError::InvalidRegion(region.to_owned()))
            );
        }
    }

    #[test]
    fn errors_never_contain_the_secret() {
        let secret = "super-secret-value";
        let mut keys = HashMap::new();
        keys.insert("ak".to_owned(), SecretKey::new(secret));
        let uri: Uri = "https://us-west-1.hyper.sh/v1.23/containers/json"
            .parse()
            .unwrap();
        let now = at("20170729T230845Z");
        let mut headers = HeaderMap::new();
        let wrong = Credentials::new("ak", "other-secret");
        sign(
            &Method::GET,
            &uri,
            &mut headers,
            b"",
            &wrong,
            DEFAULT_REGION,
            now,
        )
        .unwrap();
        let target: Uri = "/v1.23/containers/json".parse().unwrap();
        let err = verify(&Method::GET, &target, &headers, b"", &keys, now).unwrap_err();
        assert_eq!(err, VerifyError::SignatureMismatch);
        let rendered = format!("{err} {err:?}");
        assert!(!rendered.contains(secret) && !rendered.contains("other-secret"));
    }

    #[test]
    fn headers_verify_before_the_body_against_the_claimed_hash() {
        let mut keys = HashMap::new();
        keys.insert("ak".to_owned(), SecretKey::new("sk"));
        let uri: Uri = "https://us-west-1.hyper.sh/v1.23/containers/json"
            .parse()
            .unwrap();
        let target: Uri = "/v1.23/containers/json".parse().unwrap();
        let now = at("20170729T230845Z");
        let creds = Credentials::new("ak", "sk");
        let mut headers = HeaderMap::new();
        sign(&Method::POST, &uri, &mut headers, b"abc", &creds, "x", now).unwrap();
        let claimed = claimed_body_hash(&headers);
        assert_eq!(claimed, hex::encode(Sha256::digest(b"abc")));
        let check = |headers: &HeaderMap, hash: &str| {
            verify_body_hash(&Method::POST, &target, headers, hash, &keys, now)
        };
        assert_eq!(check(&headers, &claimed), Ok("ak".to_owned()));
        assert_eq!(
            verify(&Method::POST, &target, &headers, b"abc", &keys, now),
            Ok("ak".to_owned())
        );
        // Another hash than the signed one is a mismatch, as a body that differs.
        assert_eq!(
            check(&headers, EMPTY_BODY_SHA256),
            Err(VerifyError::BodyHashMismatch)
        );
        // Without the header, the request is taken to have no body.
        let mut unsigned = HeaderMap::new();
        sign(&Method::GET, &uri, &mut unsigned, b"", &creds, "x", now).unwrap();
        unsigned.remove(CONTENT_SHA256_HEADER);
        assert_eq!(claimed_body_hash(&unsigned), EMPTY_BODY_SHA256);
    }
}
