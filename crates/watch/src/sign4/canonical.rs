//! Canonicalisation: the path, the query, the headers and the whole canonical request, and
//! the region of a host.

use http::{HeaderMap, Method};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_decode_str};

/// Bytes percent-encoded in paths and queries: all but the unreserved `A-Za-z0-9-_.~`.
const ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The canonical path: the one leading `/` removed, the path split on `/`, each segment
/// percent-decoded then re-encoded (unreserved `A-Za-z0-9-_.~` kept, `%XX` upper case), and
/// joined by `/`.
///
/// Empty segments are **kept** (`/v1.23/` gives `v1.23/`), unlike the spec's wording; see the
/// [module documentation](super) for why. `/` and the empty path give the empty string.
/// Decoding first makes an encoded and a raw path canonicalise the same; an encoded `/`
/// (`%2F`) stays encoded.
pub fn canonical_path(path: &str) -> String {
    let path = path.strip_prefix('/').unwrap_or(path);
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let decoded: Vec<u8> = percent_decode_str(segment).collect();
        out.extend(percent_encoding::percent_encode(&decoded, ENCODE_SET));
    }
    out
}

/// The canonical query: the parameters parsed the way Go's `url.ParseQuery` does (split on
/// `&`, name and value split on the first `=`, `+` read as a space, then percent-decoded),
/// sorted by name and then value, re-encoded as in [`canonical_path`] (a space is `%20`) and
/// joined as `k=v` by `&`. A raw query (`filters={"a":1}`) and its encoded form give the same
/// result. An empty query gives the empty string.
pub fn canonical_query(query: &str) -> String {
    let decode = |raw: &str| -> Vec<u8> {
        let spaced = raw.replace('+', " ");
        percent_decode(spaced.as_bytes()).collect()
    };
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len());
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.extend(percent_encoding::percent_encode(name, ENCODE_SET));
        out.push('=');
        out.extend(percent_encoding::percent_encode(value, ENCODE_SET));
    }
    out
}

/// The region of a `<region>.hyper.sh` host (a port and a final `.` are ignored, the suffix is
/// matched case-insensitively); `fallback` for any other host, including `hyper.sh` and
/// `a.b.hyper.sh`.
pub fn region_for_host<'a>(host: &'a str, fallback: &'a str) -> &'a str {
    const SUFFIX: &str = ".hyper.sh";
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let Some(split) = name.len().checked_sub(SUFFIX.len()) else {
        return fallback;
    };
    match (name.get(..split), name.get(split..)) {
        (Some(label), Some(suffix))
            if suffix.eq_ignore_ascii_case(SUFFIX) && !label.is_empty() && !label.contains('.') =>
        {
            label
        }
        _ => fallback,
    }
}

/// The values of header `name`, each trimmed, joined by `,` (empty when absent).
pub(super) fn header_value(headers: &HeaderMap, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(value.as_bytes().trim_ascii());
    }
    out
}

/// The canonical request, as bytes (header values need not be UTF-8).
pub(super) fn canonical_request(
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed: &[&str],
    body_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_str().to_ascii_uppercase().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_path(path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(query).as_bytes());
    out.push(b'\n');
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&header_value(headers, name));
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(body_hash.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign4::DEFAULT_REGION;

    #[test]
    fn canonical_path_cases() {
        assert_eq!(canonical_path(""), "");
        assert_eq!(canonical_path("/"), "");
        assert_eq!(canonical_path("/events/ws"), "events/ws");
        assert_eq!(
            canonical_path("/v1.23/containers/json"),
            "v1.23/containers/json"
        );
        assert_eq!(canonical_path("/v1.23/"), "v1.23/");
        assert_eq!(canonical_path("/a//b"), "a//b");
        assert_eq!(canonical_path("/a b/c~d_e-f.g"), "a%20b/c~d_e-f.g");
        assert_eq!(canonical_path("/a%20b/%7e"), "a%20b/~");
        assert_eq!(canonical_path("/a%2fb"), "a%2Fb");
        assert_eq!(canonical_path("/caf%C3%A9/café"), "caf%C3%A9/caf%C3%A9");
        assert_eq!(canonical_path("/a+b/%zz"), "a%2Bb/%25zz");
    }

    #[test]
    fn canonical_query_cases() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("all=1"), "all=1");
        assert_eq!(canonical_query("b=2&a=3&a=1"), "a=1&a=3&b=2");
        assert_eq!(canonical_query("a+b=c+d"), "a%20b=c%20d");
        assert_eq!(canonical_query("a%2Bb=%2b"), "a%2Bb=%2B");
        assert_eq!(canonical_query("flag&&x="), "flag=&x=");
        assert_eq!(canonical_query("k=a=b"), "k=a%3Db");
        let raw = r#"filters={"container":{"test":true}}"#;
        let encoded = "filters=%7B%22container%22%3A%7B%22test%22%3Atrue%7D%7D";
        assert_eq!(canonical_query(raw), encoded);
        assert_eq!(canonical_query(encoded), encoded);
    }

    #[test]
    fn region_for_host_cases() {
        assert_eq!(region_for_host("us-west-1.hyper.sh", "x"), "us-west-1");
        assert_eq!(
            region_for_host("eu-central-1.hyper.sh:443", "x"),
            "eu-central-1"
        );
        assert_eq!(
            region_for_host("eu-central-1.HYPER.SH.", "x"),
            "eu-central-1"
        );
        assert_eq!(region_for_host("hyper.sh", "x"), "x");
        assert_eq!(region_for_host(".hyper.sh", "x"), "x");
        assert_eq!(region_for_host("a.b.hyper.sh", "x"), "x");
        assert_eq!(region_for_host("us-west-1.hyper.sh.evil.com", "x"), "x");
        assert_eq!(region_for_host("127.0.0.1:8443", "x"), "x");
        assert_eq!(region_for_host("[::1]:8443", "x"), "x");
        assert_eq!(region_for_host("", "x"), "x");
        assert_eq!(region_for_host("sh", DEFAULT_REGION), DEFAULT_REGION);
    }
}
