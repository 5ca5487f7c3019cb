//! The router's Sign4 entry points on hostile input: `Authorization::parse` on arbitrary
//! strings, and `sign4::verify` on a request whose method, target, headers and body come
//! from the fuzz input. Both return typed errors, never panic.
//!
//! Input layout (lines split on `\n`): line 0 is the Authorization value, line 1 the
//! request target, line 2 the method; then `name: value` header lines until an empty
//! line; the rest is the body. A second pass signs the parsed request properly with a
//! known key and verifies it, so the deeper checks (date, body hash, signature) run too.
#![no_main]

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use hypersh_watch::credentials::{Credentials, SecretKey};
use hypersh_watch::sign4::{self, Authorization};
use libfuzzer_sys::fuzz_target;

fn keys() -> HashMap<String, SecretKey> {
    HashMap::from([("ak".to_owned(), SecretKey::new("sk"))])
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let auth = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();

    if let Ok(text) = std::str::from_utf8(auth)
        && let Ok(parsed) = Authorization::parse(text)
    {
        assert_eq!(parsed.signature.len(), 64);
        assert!(!parsed.signed_headers.is_empty());
    }

    let uri = Uri::try_from(target).unwrap_or_else(|_| Uri::from_static("/"));
    let method = Method::from_bytes(method).unwrap_or(Method::GET);
    let (header_lines, body) = match rest.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (rest, &[][..]),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(auth) {
        headers.append(http::header::AUTHORIZATION, value);
    }
    for line in header_lines.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(&line[..colon]);
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    let _ = sign4::verify(&method, &uri, &headers, body, &keys(), now);

    // Sign what the fuzzer built (an absolute URI is needed to sign) and verify it: the
    // signer may refuse, but a request it signed must verify.
    let Some(path_and_query) = uri.path_and_query() else {
        return;
    };
    if !path_and_query.as_str().starts_with('/') {
        return; // `*` (OPTIONS) or an authority form: nothing to sign
    }
    let Ok(absolute) = Uri::try_from(format!("http://h.example:8080{path_and_query}")) else {
        return;
    };
    let Some(origin) = absolute
        .path_and_query()
        .and_then(|p| Uri::try_from(p.as_str()).ok())
    else {
        return;
    };
    let mut signed = headers.clone();
    signed.remove(http::header::AUTHORIZATION);
    signed.remove(http::header::HOST);
    let creds = Credentials::new("ak", "sk");
    if sign4::sign(
        &method,
        &absolute,
        &mut signed,
        body,
        &creds,
        "us-west-1",
        now,
    )
    .is_ok()
    {
        let verified = sign4::verify(&method, &origin, &signed, body, &keys(), now);
        assert_eq!(
            verified,
            Ok("ak".to_owned()),
            "a signed request verifies: {method} {origin} {signed:?}"
        );
    }
});
