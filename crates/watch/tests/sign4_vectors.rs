//! Sign4 against the published vectors, sign → verify round trips, and what verify rejects.
//!
//! `tests/data/sign4_vectors.json` is a verbatim copy of `shared/spec/vectors.json` (made with
//! Hyper.sh's Node signer `hyper-aws4`), kept inside the repository so the test does not depend
//! on files outside it.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Uri};
use hypersh_watch::credentials::{Credentials, SecretKey};
use hypersh_watch::sign4::{
    self, Authorization, CONTENT_SHA256_HEADER, DATE_HEADER, DEFAULT_REGION, EMPTY_BODY_SHA256,
    MAX_CLOCK_SKEW, VerifyError, canonical_path, canonical_query, sign, verify,
};
use percent_encoding::{AsciiSet, CONTROLS, NON_ALPHANUMERIC, utf8_percent_encode};
use proptest::prelude::*;
use serde::Deserialize;

const VECTORS: &str = include_str!("data/sign4_vectors.json");

#[derive(Deserialize)]
struct Vector {
    method: String,
    url: String,
    date: String,
    access_key: String,
    secret_key: String,
    body: String,
    expected_headers: HashMap<String, String>,
}

/// Characters `http::Uri` refuses; the vectors carry raw JSON in the query.
const URI_UNSAFE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Percent-encodes what `http::Uri` would not parse, leaving the URL structure alone.
fn encode_raw(url: &str) -> String {
    utf8_percent_encode(url, URI_UNSAFE).to_string()
}

fn at(date: &str) -> SystemTime {
    let parsed = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ").unwrap();
    UNIX_EPOCH + Duration::from_secs(u64::try_from(parsed.and_utc().timestamp()).unwrap())
}

fn keys() -> HashMap<String, SecretKey> {
    HashMap::from([("ak".to_owned(), SecretKey::new("sk"))])
}

/// The request target a server sees: path and query, no authority.
fn target(uri: &Uri) -> Uri {
    uri.path_and_query().unwrap().as_str().parse().unwrap()
}

/// A signed request, as (method, request target, headers, body, signing time).
struct Signed {
    method: Method,
    target: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
    now: SystemTime,
}

impl Signed {
    fn new(method: Method, url: &str, body: &[u8]) -> Self {
        let uri: Uri = url.parse().unwrap();
        let now = at("20170729T230845Z");
        let mut headers = HeaderMap::new();
        let creds = Credentials::new("ak", "sk");
        sign(
            &method,
            &uri,
            &mut headers,
            body,
            &creds,
            DEFAULT_REGION,
            now,
        )
        .unwrap();
        Self {
            method,
            target: target(&uri),
            headers,
            body: body.to_vec(),
            now,
        }
    }

    fn get() -> Self {
        Self::new(
            Method::GET,
            "https://us-west-1.hyper.sh/v1.23/containers/json?all=1",
            b"",
        )
    }

    fn verify(&self) -> Result<String, VerifyError> {
        self.verify_at(self.now)
    }

    fn verify_at(&self, now: SystemTime) -> Result<String, VerifyError> {
        verify(
            &self.method,
            &self.target,
            &self.headers,
            &self.body,
            &keys(),
            now,
        )
    }

    fn authorization(&self) -> String {
        self.headers[AUTHORIZATION].to_str().unwrap().to_owned()
    }

    fn set(&mut self, name: &'static str, value: &str) {
        self.headers
            .insert(name, HeaderValue::from_str(value).unwrap());
    }
}

#[test]
fn every_vector_signs_to_the_expected_headers_and_verifies() {
    let vectors: Vec<Vector> = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(vectors.len(), 8);
    for v in &vectors {
        let uri: Uri = encode_raw(&v.url).parse().unwrap();
        let raw_query = v.url.split_once('?').map_or("", |(_, q)| q);
        assert_eq!(
            canonical_query(raw_query),
            canonical_query(uri.query().unwrap_or("")),
            "{}",
            v.url
        );

        let method: Method = v.method.parse().unwrap();
        let creds = Credentials::new(v.access_key.as_str(), v.secret_key.as_str());
        let now = at(&v.date);
        let mut headers = HeaderMap::new();
        sign(
            &method,
            &uri,
            &mut headers,
            v.body.as_bytes(),
            &creds,
            DEFAULT_REGION,
            now,
        )
        .unwrap();

        assert_eq!(v.expected_headers.len(), 5, "{}", v.url);
        for (name, expected) in &v.expected_headers {
            let got = headers.get(name.as_str()).map(|h| h.to_str().unwrap());
            assert_eq!(got, Some(expected.as_str()), "{name} for {}", v.url);
        }

        let store = |ak: &str| (ak == v.access_key).then(|| SecretKey::new(v.secret_key.as_str()));
        let verified = verify(
            &method,
            &target(&uri),
            &headers,
            v.body.as_bytes(),
            &store,
            now,
        );
        assert_eq!(verified.as_deref(), Ok(v.access_key.as_str()), "{}", v.url);
    }
}

#[test]
fn hyperb_vector() {
    let signed = Signed::new(Method::GET, "https://us-west-1.hyper.sh/v1.23/", b"");
    assert!(
        signed.authorization().ends_with(
            "Signature=3a923718db713abc7b851712a434343eb7887298ab5f48113a7b291f261c037a"
        )
    );
    assert_eq!(signed.headers[CONTENT_SHA256_HEADER], EMPTY_BODY_SHA256);
    assert_eq!(signed.verify().as_deref(), Ok("ak"));
}

#[test]
fn round_trip_with_a_body_and_extra_signed_headers() {
    let uri: Uri = "https://us-west-1.hyper.sh/v1.23/containers/create?name=web%201"
        .parse()
        .unwrap();
    let now = at("20170729T230845Z");
    let body = br#"{"Image":"nginx"}"#;
    let mut headers = HeaderMap::new();
    headers.insert("content-md5", HeaderValue::from_static("  abc=  "));
    headers.insert("x-hyper-trace", HeaderValue::from_static("t1"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    headers.insert("accept", HeaderValue::from_static("*/*"));
    let creds = Credentials::new("ak", "sk");
    sign(
        &Method::POST,
        &uri,
        &mut headers,
        body,
        &creds,
        DEFAULT_REGION,
        now,
    )
    .unwrap();

    let auth = headers[AUTHORIZATION].to_str().unwrap().to_owned();
    let parsed = Authorization::parse(&auth).unwrap();
    assert_eq!(
        parsed.signed_headers,
        [
            "content-md5",
            "content-type",
            "host",
            "x-hyper-content-sha256",
            "x-hyper-date",
            "x-hyper-trace"
        ]
    );
    assert_eq!(headers[CONTENT_TYPE], "text/plain");
    let verified = verify(&Method::POST, &target(&uri), &headers, body, &keys(), now);
    assert_eq!(verified.as_deref(), Ok("ak"));

    // An unsigned header may change; a signed one may not.
    headers.insert("accept", HeaderValue::from_static("text/html"));
    let verified = verify(&Method::POST, &target(&uri), &headers, body, &keys(), now);
    assert_eq!(verified.as_deref(), Ok("ak"));
    headers.insert("content-md5", HeaderValue::from_static("xyz="));
    let verified = verify(&Method::POST, &target(&uri), &headers, body, &keys(), now);
    assert_eq!(verified, Err(VerifyError::SignatureMismatch));
}

#[test]
fn signing_again_replaces_date_hash_and_authorization() {
    let mut signed = Signed::get();
    let uri: Uri = "https://us-west-1.hyper.sh/v1.23/containers/json?all=1"
        .parse()
        .unwrap();
    let later = signed.now + Duration::from_secs(3600);
    let creds = Credentials::new("ak", "sk");
    sign(
        &Method::GET,
        &uri,
        &mut signed.headers,
        b"x",
        &creds,
        DEFAULT_REGION,
        later,
    )
    .unwrap();
    signed.body = b"x".to_vec();
    assert_eq!(signed.headers.get_all(AUTHORIZATION).iter().count(), 1);
    assert_eq!(signed.headers[DATE_HEADER], "20170730T000845Z");
    assert_ne!(signed.headers[CONTENT_SHA256_HEADER], EMPTY_BODY_SHA256);
    assert_eq!(signed.verify_at(later).as_deref(), Ok("ak"));
}

#[test]
fn verify_rejects_a_wrong_secret_and_an_unknown_key() {
    let signed = Signed::get();
    let wrong = HashMap::from([("ak".to_owned(), SecretKey::new("not-sk"))]);
    let result = verify(
        &signed.method,
        &signed.target,
        &signed.headers,
        &signed.body,
        &wrong,
        signed.now,
    );
    assert_eq!(result, Err(VerifyError::SignatureMismatch));

    let empty: HashMap<String, SecretKey> = HashMap::new();
    let result = verify(
        &signed.method,
        &signed.target,
        &signed.headers,
        &signed.body,
        &empty,
        signed.now,
    );
    assert_eq!(result, Err(VerifyError::UnknownAccessKey));
}

#[test]
fn verify_enforces_the_clock_skew_window_both_ways() {
    let signed = Signed::get();
    let six_minutes = Duration::from_secs(6 * 60);
    assert_eq!(
        signed.verify_at(signed.now + six_minutes),
        Err(VerifyError::DateOutOfWindow)
    );
    assert_eq!(
        signed.verify_at(signed.now - six_minutes),
        Err(VerifyError::DateOutOfWindow)
    );
    assert!(signed.verify_at(signed.now + MAX_CLOCK_SKEW).is_ok());
    assert!(signed.verify_at(signed.now - MAX_CLOCK_SKEW).is_ok());
}

#[test]
fn verify_rejects_tampering() {
    let mut body = Signed::new(
        Method::POST,
        "https://us-west-1.hyper.sh/v1.23/containers/create",
        b"{}",
    );
    body.body = b"{\"Privileged\":true}".to_vec();
    assert_eq!(body.verify(), Err(VerifyError::BodyHashMismatch));
    // Also forging the hash header breaks the signature instead.
    let forged = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body.body));
    body.set(CONTENT_SHA256_HEADER, &forged);
    assert_eq!(body.verify(), Err(VerifyError::SignatureMismatch));

    let mut query = Signed::get();
    query.target = "/v1.23/containers/json?all=0".parse().unwrap();
    assert_eq!(query.verify(), Err(VerifyError::SignatureMismatch));
    query.target = "/v1.23/containers/json?all=1&limit=1".parse().unwrap();
    assert_eq!(query.verify(), Err(VerifyError::SignatureMismatch));

    let mut path = Signed::get();
    path.target = "/v1.23/containers/json/?all=1".parse().unwrap();
    assert_eq!(path.verify(), Err(VerifyError::SignatureMismatch));

    let mut method = Signed::get();
    method.method = Method::DELETE;
    assert_eq!(method.verify(), Err(VerifyError::SignatureMismatch));

    let mut host = Signed::get();
    host.set("host", "eu-central-1.hyper.sh");
    assert_eq!(host.verify(), Err(VerifyError::SignatureMismatch));

    // The query may be re-encoded in transit: same parameters, same signature.
    let mut reordered = Signed::get();
    reordered.target = "/v1.23/containers/json?%61ll=1".parse().unwrap();
    assert_eq!(reordered.verify().as_deref(), Ok("ak"));
}

#[test]
fn verify_requires_host_and_date_to_be_signed_and_present() {
    let mut no_host = Signed::get();
    let auth = no_host.authorization().replace(";host;", ";");
    no_host.set("authorization", &auth);
    assert_eq!(
        no_host.verify(),
        Err(VerifyError::MissingSignedHeader("host".into()))
    );

    let mut no_date = Signed::get();
    let auth = no_date.authorization().replace(";x-hyper-date", "");
    no_date.set("authorization", &auth);
    assert_eq!(
        no_date.verify(),
        Err(VerifyError::MissingSignedHeader("x-hyper-date".into()))
    );

    let mut date_absent = Signed::get();
    date_absent.headers.remove(DATE_HEADER);
    assert_eq!(date_absent.verify(), Err(VerifyError::MissingDate));

    let mut signed_but_absent = Signed::get();
    signed_but_absent.headers.remove(CONTENT_TYPE);
    assert_eq!(
        signed_but_absent.verify(),
        Err(VerifyError::MissingSignedHeader("content-type".into()))
    );

    let mut host_absent = Signed::get();
    host_absent.headers.remove(HOST);
    assert_eq!(
        host_absent.verify(),
        Err(VerifyError::MissingSignedHeader("host".into()))
    );

    let mut unsigned_hyper = Signed::get();
    unsigned_hyper.set("x-hyper-sneaky", "1");
    assert_eq!(
        unsigned_hyper.verify(),
        Err(VerifyError::MissingSignedHeader("x-hyper-sneaky".into()))
    );
}

#[test]
fn verify_rejects_bad_dates_and_scopes() {
    let mut bad_date = Signed::get();
    bad_date.set(DATE_HEADER, "2017-07-29T23:08:45Z");
    assert_eq!(bad_date.verify(), Err(VerifyError::InvalidDate));

    let mut other_day = Signed::get();
    let auth = other_day
        .authorization()
        .replace("/20170729/", "/20170730/");
    other_day.set("authorization", &auth);
    assert_eq!(other_day.verify(), Err(VerifyError::ScopeMismatch));

    let mut service = Signed::get();
    let auth = service.authorization().replace("/hyper/", "/s3/");
    service.set("authorization", &auth);
    assert_eq!(service.verify(), Err(VerifyError::ScopeMismatch));

    let mut request = Signed::get();
    let auth = request
        .authorization()
        .replace("/hyper_request", "/aws4_request");
    request.set("authorization", &auth);
    assert_eq!(request.verify(), Err(VerifyError::ScopeMismatch));

    let mut region = Signed::get();
    let auth = region
        .authorization()
        .replace("/us-west-1/", "/eu-central-1/");
    region.set("authorization", &auth);
    assert_eq!(region.verify(), Err(VerifyError::SignatureMismatch));
}

#[test]
fn verify_rejects_malformed_authorization_without_panicking() {
    let signed = Signed::get();
    let good = signed.authorization();
    let nasty: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"HYPER-HMAC-SHA256".to_vec(),
        b"Bearer abc".to_vec(),
        good.replace("Credential=", "").into_bytes(),
        good.replace(", ", ",,").into_bytes(),
        format!("{good},").into_bytes(),
        format!(",{good}").into_bytes(),
        good.replace("Signature=", "Signature=,").into_bytes(),
        good.replace("/hyper/hyper_request", "").into_bytes(),
        b"HYPER-HMAC-SHA256 Credential=\xff\xfe/20170729/us-west-1/hyper/hyper_request".to_vec(),
        [good.as_bytes(), b"\x80"].concat(),
    ];
    for value in nasty {
        let mut headers = signed.headers.clone();
        headers.insert(AUTHORIZATION, HeaderValue::from_bytes(&value).unwrap());
        let result = verify(
            &signed.method,
            &signed.target,
            &headers,
            &signed.body,
            &keys(),
            signed.now,
        );
        assert_eq!(
            result,
            Err(VerifyError::MalformedAuthorization),
            "{}",
            String::from_utf8_lossy(&value)
        );
    }

    let mut twice = signed.headers.clone();
    twice.append(AUTHORIZATION, HeaderValue::from_str(&good).unwrap());
    let result = verify(
        &signed.method,
        &signed.target,
        &twice,
        b"",
        &keys(),
        signed.now,
    );
    assert_eq!(result, Err(VerifyError::MalformedAuthorization));

    let mut missing = signed.headers.clone();
    missing.remove(AUTHORIZATION);
    let result = verify(
        &signed.method,
        &signed.target,
        &missing,
        b"",
        &keys(),
        signed.now,
    );
    assert_eq!(result, Err(VerifyError::MissingAuthorization));
}

#[test]
fn host_drops_default_ports_only() {
    for (url, host) in [
        (
            "https://us-west-1.hyper.sh:443/events/ws",
            "us-west-1.hyper.sh",
        ),
        (
            "wss://us-west-1.hyper.sh:443/events/ws",
            "us-west-1.hyper.sh",
        ),
        ("http://127.0.0.1:80/", "127.0.0.1"),
        ("ws://127.0.0.1/", "127.0.0.1"),
        ("https://127.0.0.1:8443/", "127.0.0.1:8443"),
        ("http://localhost:443/", "localhost"),
        ("https://[::1]:6443/", "[::1]:6443"),
    ] {
        let signed = Signed::new(Method::GET, url, b"");
        assert_eq!(signed.headers[HOST], host, "{url}");
        assert_eq!(signed.verify().as_deref(), Ok("ak"), "{url}");
    }
}

#[test]
fn an_existing_host_header_is_kept_and_chooses_the_region() {
    let uri: Uri = "https://147.75.195.37:6443/events/ws".parse().unwrap();
    let now = at("20170729T230845Z");
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("eu-central-1.hyper.sh"));
    let creds = Credentials::new("ak", "sk");
    sign(
        &Method::GET,
        &uri,
        &mut headers,
        b"",
        &creds,
        DEFAULT_REGION,
        now,
    )
    .unwrap();
    assert_eq!(headers[HOST], "eu-central-1.hyper.sh");
    let auth = headers[AUTHORIZATION].to_str().unwrap().to_owned();
    assert_eq!(Authorization::parse(&auth).unwrap().region, "eu-central-1");
    let verified = verify(&Method::GET, &target(&uri), &headers, b"", &keys(), now);
    assert_eq!(verified.as_deref(), Ok("ak"));
}

#[test]
fn region_comes_from_the_host_or_the_fallback() {
    let now = at("20170729T230845Z");
    let creds = Credentials::new("ak", "sk");
    for (url, fallback, region) in [
        ("https://eu-central-1.hyper.sh/", "ignored", "eu-central-1"),
        ("https://127.0.0.1:6443/", "ap-east-9", "ap-east-9"),
        ("https://hyper.sh/", DEFAULT_REGION, DEFAULT_REGION),
    ] {
        let mut headers = HeaderMap::new();
        let uri: Uri = url.parse().unwrap();
        sign(&Method::GET, &uri, &mut headers, b"", &creds, fallback, now).unwrap();
        let auth = headers[AUTHORIZATION].to_str().unwrap().to_owned();
        assert_eq!(Authorization::parse(&auth).unwrap().region, region, "{url}");
        assert_eq!(
            sign4::region_for_host(uri.host().unwrap(), fallback),
            region
        );
    }
}

/// Encodes a path segment with everything but unreserved characters escaped.
const FULL: &AsciiSet = NON_ALPHANUMERIC;
/// Encodes only what a URI cannot carry raw in a path segment.
const PATH_MINIMAL: &AsciiSet = &URI_UNSAFE
    .add(b'/')
    .add(b'?')
    .add(b'#')
    .add(b'%')
    .add(b'[')
    .add(b']');
/// Encodes only what a URI cannot carry raw in a query name or value.
const QUERY_MINIMAL: &AsciiSet = &PATH_MINIMAL.add(b'&').add(b'=').add(b'+');

fn build_url(segments: &[String], query: &[(String, String)], minimal: bool) -> String {
    let (path_set, query_set) = if minimal {
        (PATH_MINIMAL, QUERY_MINIMAL)
    } else {
        (FULL, FULL)
    };
    let path: Vec<String> = segments
        .iter()
        .map(|s| utf8_percent_encode(s, path_set).to_string())
        .collect();
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            let v = utf8_percent_encode(v, query_set).to_string();
            // The minimal form writes spaces as `+`, the way HTML forms and Go do.
            let v = if minimal { v.replace("%20", "+") } else { v };
            format!("{}={v}", utf8_percent_encode(k, query_set))
        })
        .collect();
    format!(
        "https://us-west-1.hyper.sh/{}?{}",
        path.join("/"),
        query.join("&")
    )
}

proptest! {
    #[test]
    fn sign_then_verify_accepts_arbitrary_paths_and_queries(
        segments in prop::collection::vec(any::<String>(), 0..4),
        query in prop::collection::vec((any::<String>(), any::<String>()), 0..4),
        body in prop::collection::vec(any::<u8>(), 0..64),
        minimal in any::<bool>(),
    ) {
        let url = build_url(&segments, &query, minimal);
        let uri: Uri = url.parse().unwrap();
        let now = at("20260101T120000Z");
        let mut headers = HeaderMap::new();
        let creds = Credentials::new("ak", "sk");
        sign(&Method::PUT, &uri, &mut headers, &body, &creds, DEFAULT_REGION, now).unwrap();
        let verified = verify(&Method::PUT, &target(&uri), &headers, &body, &keys(), now);
        prop_assert_eq!(verified.as_deref(), Ok("ak"));

        // Raw and fully encoded forms canonicalise the same.
        let other: Uri = build_url(&segments, &query, !minimal).parse().unwrap();
        prop_assert_eq!(canonical_path(uri.path()), canonical_path(other.path()));
        prop_assert_eq!(
            canonical_query(uri.query().unwrap_or("")),
            canonical_query(other.query().unwrap_or(""))
        );
    }
}
