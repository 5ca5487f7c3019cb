//! Security: secrets stay out of `Debug`, errors and logs; insecure TLS warns once; the
//! router refuses tampered bodies and signatures that do not cover `host` and
//! `x-hyper-date`, with generic JSON messages.
//!
//! Already covered elsewhere and not repeated here: 401 for a missing or malformed
//! `Authorization`, 403 for a wrong secret, an unknown key, a stale date or another region
//! (`crates/apirouter/tests/auth.rs`); self-signed refused without insecure mode or the CA,
//! and 429 (`tests/protocol.rs`, `crates/apirouter/tests/watch.rs`).
//!
//! Log capture uses a thread-local subscriber on a current-thread runtime, so everything
//! the router, the client and the informer log in a test is seen by that test only.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use common::{PATIENCE, config_with, eventually, fast_backoff, informer_on, router};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method};
use hypersh::Informer;
use hypersh::watch::sign4;
use hypersh::watch::{Client, ClientConfig, Credentials, Filters, TlsMode};
use hypersh_apirouter::{Router, RouterConfig};
use sha2::{Digest, Sha256};

const ACCESS_KEY: &str = "AKSECURITYTEST";
const SECRET: &str = "Ema5-router-secret-0f9e8d7c6b5a";
const WRONG_SECRET: &str = "Wr0ng-client-secret-1a2b3c4d5e";

/// Log lines written by a fmt subscriber, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every event at TRACE level on this thread until the guard is dropped.
fn capture_logs() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // `tracing` caches each callsite's interest for the whole process the first time the
    // callsite runs, asking the subscriber of the thread that ran it: a sibling test's
    // thread with no subscriber would cache "never" and this capture would miss the event
    // for good. A global subscriber that wants everything and does nothing (a bare
    // `Registry`) keeps every thread's answer "yes"; the cache is rebuilt once this
    // thread's subscriber is in place.
    static ANCHOR: std::sync::Once = std::sync::Once::new();
    ANCHOR.call_once(|| {
        // Fails only if a global subscriber is set already, which serves as well.
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    });
    let guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();
    (captured, guard)
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [SECRET, WRONG_SECRET] {
        assert!(!text.contains(secret), "{what} leaks a secret: {text}");
    }
}

async fn secured_router() -> Router {
    router(
        RouterConfig::default()
            .credential(ACCESS_KEY, SECRET)
            .containers(3),
    )
    .await
}

#[tokio::test]
async fn debug_output_never_shows_a_secret() {
    let router = secured_router().await;
    let good = Credentials::new(ACCESS_KEY, SECRET);
    let wrong = Credentials::new(ACCESS_KEY, WRONG_SECRET);
    let configs = [
        config_with(&router, good.clone()),
        config_with(&router, wrong.clone()),
        config_with(&router, good.clone()).tls(TlsMode::InsecureSkipVerify),
        config_with(&router, good.clone()).tls(TlsMode::Verify),
    ];
    let mut rendered = vec![
        format!("{good:?}"),
        format!("{good:#?}"),
        format!("{:?}", good.secret_key()),
        format!("{}", good.secret_key()),
        format!(
            "{:?}",
            RouterConfig::default().credential(ACCESS_KEY, SECRET)
        ),
        format!("{router:?}"),
    ];
    for config in &configs {
        rendered.push(format!("{config:?}"));
        rendered.push(format!("{config:#?}"));
        let client = Client::new(config.clone()).unwrap();
        rendered.push(format!("{client:?}"));
        rendered.push(format!("{client:#?}"));
    }
    // An informer whose credentials fail: its Debug carries the status and last error.
    let informer = informer_on(Client::new(configs[1].clone()).unwrap());
    eventually("the informer to record an auth failure", || {
        let status = informer.status();
        status
            .last_error
            .is_some()
            .then_some(())
            .ok_or_else(|| format!("{status:?}"))
    })
    .await;
    rendered.push(format!("{informer:?}"));
    rendered.push(format!("{informer:#?}"));
    rendered.push(format!("{:?}", informer.status()));
    informer.shutdown().await;

    for text in &rendered {
        assert_no_secret("Debug", text);
    }
    assert!(
        rendered.iter().any(|t| t.contains(ACCESS_KEY)),
        "the access key is not secret and is shown"
    );
    router.shutdown().await;
}

#[tokio::test]
async fn errors_from_a_wrong_key_never_show_a_secret() {
    let router = secured_router().await;
    let client = Client::new(config_with(
        &router,
        Credentials::new(ACCESS_KEY, WRONG_SECRET),
    ))
    .unwrap();
    let list = client.list_containers(&Filters::new()).await.unwrap_err();
    let watch = client.watch(&Filters::new()).await.unwrap_err();
    for err in [&list, &watch] {
        assert!(err.is_auth(), "{err:?}");
        assert_no_secret("an error's Display", &err.to_string());
        assert_no_secret("an error's Debug", &format!("{err:?}"));
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            assert_no_secret("an error's source", &s.to_string());
            source = s.source();
        }
    }
    // An unknown access key too.
    let stranger = Client::new(config_with(&router, Credentials::new("nobody", SECRET))).unwrap();
    let err = stranger.list_containers(&Filters::new()).await.unwrap_err();
    assert!(err.is_auth());
    assert_no_secret("an unknown-key error", &format!("{err} {err:?}"));
    router.shutdown().await;
}

/// A failing attempt and a successful sync, with every log at TRACE captured: the secrets
/// never appear, though the logs say plenty (the failure, the sync).
#[tokio::test]
async fn logs_never_show_a_secret() {
    let (logs, _guard) = capture_logs();
    let router = secured_router().await;

    let wrong = Informer::builder(
        Client::new(config_with(
            &router,
            Credentials::new(ACCESS_KEY, WRONG_SECRET),
        ))
        .unwrap(),
    )
    .backoff(fast_backoff())
    .build()
    .unwrap();
    eventually("the failing informer to give up once", || {
        let s = wrong.status();
        s.auth_failing.then_some(()).ok_or_else(|| format!("{s:?}"))
    })
    .await;
    wrong.shutdown().await;

    let good = Informer::builder(
        Client::new(config_with(&router, Credentials::new(ACCESS_KEY, SECRET))).unwrap(),
    )
    .backoff(fast_backoff())
    .build()
    .unwrap();
    good.wait_synced(PATIENCE)
        .await
        .expect("the right secret syncs");
    // Some traffic while watching: events and a list.
    let id = router
        .runtime()
        .create("logged", "busybox", Default::default());
    eventually("the event to be applied", || {
        good.store()
            .get(&id)
            .map(|_| ())
            .ok_or_else(|| "not yet".into())
    })
    .await;
    good.shutdown().await;
    router.shutdown().await;

    let text = logs.text();
    assert!(
        text.contains("authentication failed"),
        "the failure is logged: {text}"
    );
    assert!(text.contains("cache synced"), "the sync is logged: {text}");
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "verbose levels are captured"
    );
    assert_no_secret("the logs", &text);
}

fn insecure_warnings(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("WARN") && l.contains("insecure_skip_verify"))
        .count()
}

/// `InsecureSkipVerify` warns once, when the client is built, not per connection; the
/// verifying modes do not warn.
#[tokio::test]
async fn insecure_mode_warns_once_when_the_client_is_built() {
    let router = secured_router().await;
    let creds = Credentials::new(ACCESS_KEY, SECRET);
    let (logs, guard) = capture_logs();

    let verify = Client::new(config_with(&router, creds.clone())).unwrap();
    let _system = Client::new(config_with(&router, creds.clone()).tls(TlsMode::Verify)).unwrap();
    assert_eq!(insecure_warnings(&logs.text()), 0, "{}", logs.text());

    let insecure =
        Client::new(config_with(&router, creds.clone()).tls(TlsMode::InsecureSkipVerify)).unwrap();
    assert_eq!(insecure_warnings(&logs.text()), 1, "{}", logs.text());

    // Lists, watches and an informer on clones of the client do not warn again.
    for _ in 0..3 {
        insecure.list_containers(&Filters::new()).await.unwrap();
        insecure.watch(&Filters::new()).await.unwrap().close().await;
    }
    let informer = informer_on(insecure.clone());
    informer.wait_synced(PATIENCE).await.expect("ready");
    informer.shutdown().await;
    verify.list_containers(&Filters::new()).await.unwrap();
    assert_eq!(insecure_warnings(&logs.text()), 1, "{}", logs.text());
    drop(guard);
    router.shutdown().await;
}

// ---- The router's refusals that crates/apirouter/tests/auth.rs does not cover. ----

/// Signs like `sign4::sign` but over any header list, so a request can carry a valid
/// signature that does not cover `host` or `x-hyper-date`.
struct ManualSigner<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    /// `(lower-case name, value)`, sorted by name; all of them are signed.
    headers: Vec<(&'a str, String)>,
    body_hash: String,
    date: String,
}

impl ManualSigner<'_> {
    fn authorization(&self, access_key: &str, secret: &str, region: &str) -> String {
        type HmacSha256 = Hmac<Sha256>;
        fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut m = HmacSha256::new_from_slice(key).unwrap();
            m.update(data);
            m.finalize().into_bytes().to_vec()
        }
        let mut canonical = format!(
            "{}\n{}\n{}\n",
            self.method,
            sign4::canonical_path(self.path),
            sign4::canonical_query(self.query)
        );
        for (name, value) in &self.headers {
            canonical.push_str(&format!("{name}:{}\n", value.trim()));
        }
        let signed: Vec<&str> = self.headers.iter().map(|(n, _)| *n).collect();
        let signed = signed.join(";");
        canonical.push_str(&format!("\n{signed}\n{}", self.body_hash));
        let day = &self.date[..8];
        let scope = format!("{day}/{region}/hyper/hyper_request");
        let to_sign = format!(
            "HYPER-HMAC-SHA256\n{}\n{scope}\n{}",
            self.date,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = mac(format!("HYPER{secret}").as_bytes(), day.as_bytes());
        for part in [region, "hyper", "hyper_request"] {
            key = mac(&key, part.as_bytes());
        }
        let signature = hex::encode(mac(&key, to_sign.as_bytes()));
        format!(
            "HYPER-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
        )
    }
}

/// The X-Hyper-Date format, from `sign4::sign` itself (so the test has no date code).
fn now_date(url: &str) -> String {
    let mut headers = HeaderMap::new();
    let creds = Credentials::new("ak", "sk");
    sign4::sign(
        &Method::GET,
        &url.parse().unwrap(),
        &mut headers,
        b"",
        &creds,
        "us-west-1",
        SystemTime::now(),
    )
    .unwrap();
    headers[sign4::DATE_HEADER].to_str().unwrap().to_owned()
}

struct Answer {
    status: u16,
    message: String,
}

async fn send(url: &str, headers: HeaderMap, body: &'static [u8]) -> Answer {
    let response = reqwest::Client::new()
        .get(url)
        .headers(headers)
        .body(body)
        .timeout(PATIENCE)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let message = if status == 200 {
        String::new()
    } else {
        let json: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("a JSON body expected ({e}): {text}"));
        json["message"]
            .as_str()
            .unwrap_or_else(|| panic!("a message expected: {text}"))
            .to_owned()
    };
    Answer { status, message }
}

/// A plain-HTTP router (reqwest's own TLS set-up is not under test here).
async fn plain_router() -> Router {
    router(
        RouterConfig::default()
            .tls(hypersh_apirouter::ServerTls::Off)
            .credential(ACCESS_KEY, SECRET),
    )
    .await
}

/// The generic 403 message: it must not say which check failed.
fn assert_generic(answer: &Answer, what: &str) {
    assert_eq!(answer.status, 403, "{what}: {}", answer.message);
    let lower = answer.message.to_ascii_lowercase();
    for detail in [
        "host",
        "x-hyper",
        "date",
        "hash",
        "body",
        "sha256",
        "signedheaders",
        "mismatch",
        "unknown",
    ] {
        assert!(
            !lower.contains(detail),
            "{what}: the message names the failing part ({detail}): {}",
            answer.message
        );
    }
    assert_no_secret(what, &answer.message);
}

#[tokio::test]
async fn a_body_whose_hash_does_not_match_is_refused() {
    let router = plain_router().await;
    let url = format!("{}/containers/json?all=1", router.base_url());
    let creds = Credentials::new(ACCESS_KEY, SECRET);
    let signed = |body: &[u8]| {
        let mut headers = HeaderMap::new();
        sign4::sign(
            &Method::GET,
            &url.parse().unwrap(),
            &mut headers,
            body,
            &creds,
            "us-west-1",
            SystemTime::now(),
        )
        .unwrap();
        headers
    };
    // Control: a GET with a body, signed over that body, is accepted (the router reads
    // and checks GET bodies).
    assert_eq!(send(&url, signed(b"hello"), b"hello").await.status, 200);

    // Signed over one body, sent with another.
    let tampered = send(&url, signed(b"hello"), b"hellO").await;
    assert_generic(&tampered, "a tampered body");
    // Signed with no body, sent with one.
    assert_generic(&send(&url, signed(b""), b"smuggled").await, "an added body");

    // A body hash header that differs from the body even though the signature covers it
    // (the hash is replaced after signing, which also breaks the signature).
    let mut headers = signed(b"hello");
    headers.insert(
        sign4::CONTENT_SHA256_HEADER,
        HeaderValue::from_static(sign4::EMPTY_BODY_SHA256),
    );
    assert_generic(
        &send(&url, headers, b"hello").await,
        "a swapped hash header",
    );
    router.shutdown().await;
}

#[tokio::test]
async fn a_signature_that_does_not_cover_host_or_date_is_refused() {
    let router = plain_router().await;
    let host = router.addr_string();
    let url = format!("{}/containers/json", router.base_url());
    let date = now_date(&url);
    let body_hash = sign4::EMPTY_BODY_SHA256.to_owned();
    let all = vec![
        ("content-type", "application/json".to_owned()),
        ("host", host.clone()),
        ("x-hyper-content-sha256", body_hash.clone()),
        ("x-hyper-date", date.clone()),
    ];
    let request = |signed: Vec<(&'static str, String)>| {
        let signer = ManualSigner {
            method: "GET",
            path: "/containers/json",
            query: "",
            headers: signed,
            body_hash: body_hash.clone(),
            date: date.clone(),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &all {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&signer.authorization(ACCESS_KEY, SECRET, "us-west-1")).unwrap(),
        );
        headers
    };

    // Control: the manual signer agrees with the library and the router over all four.
    assert_eq!(send(&url, request(all.clone()), b"").await.status, 200);

    let without = |name: &str| -> Vec<(&'static str, String)> {
        all.iter().filter(|(n, _)| *n != name).cloned().collect()
    };
    for (what, signed) in [
        ("no host in SignedHeaders", without("host")),
        ("no x-hyper-date in SignedHeaders", without("x-hyper-date")),
        (
            "an unsigned x-hyper-content-sha256",
            without("x-hyper-content-sha256"),
        ),
        (
            "only content-type signed",
            vec![("content-type", "application/json".to_owned())],
        ),
    ] {
        assert_generic(&send(&url, request(signed), b"").await, what);
    }

    // A signed header the request does not carry.
    let mut headers = request(all.clone());
    headers.remove(http::header::CONTENT_TYPE);
    assert_generic(&send(&url, headers, b"").await, "a signed header removed");

    // An x-hyper-* header added after signing.
    let mut headers = request(all.clone());
    headers.insert("x-hyper-extra", HeaderValue::from_static("1"));
    assert_generic(
        &send(&url, headers, b"").await,
        "an unsigned x-hyper header",
    );
    router.shutdown().await;
}

#[tokio::test]
async fn two_authorization_headers_are_malformed() {
    let router = plain_router().await;
    let url = format!("{}/containers/json", router.base_url());
    let mut headers = HeaderMap::new();
    sign4::sign(
        &Method::GET,
        &url.parse().unwrap(),
        &mut headers,
        b"",
        &Credentials::new(ACCESS_KEY, SECRET),
        "us-west-1",
        SystemTime::now(),
    )
    .unwrap();
    let auth = headers[http::header::AUTHORIZATION].clone();
    headers.append(http::header::AUTHORIZATION, auth);
    let answer = send(&url, headers, b"").await;
    assert_eq!(answer.status, 401, "{}", answer.message);
    router.shutdown().await;
}

/// Every 403 except the date window carries the same message, so a caller cannot tell
/// which check failed; the date message is the one exception the original API had.
#[tokio::test]
async fn refusals_share_one_message_except_the_date_window() {
    let router = plain_router().await;
    let url = format!("{}/containers/json", router.base_url());
    let sign = |creds: Credentials, at: SystemTime, body: &[u8]| {
        let mut headers = HeaderMap::new();
        sign4::sign(
            &Method::GET,
            &url.parse().unwrap(),
            &mut headers,
            body,
            &creds,
            "us-west-1",
            at,
        )
        .unwrap();
        headers
    };
    let now = SystemTime::now();
    let wrong_secret = send(&url, sign(Credentials::new(ACCESS_KEY, "x"), now, b""), b"").await;
    let unknown_key = send(
        &url,
        sign(Credentials::new("nobody", SECRET), now, b""),
        b"",
    )
    .await;
    let bad_body = send(
        &url,
        sign(Credentials::new(ACCESS_KEY, SECRET), now, b"a"),
        b"b",
    )
    .await;
    let stale = send(
        &url,
        sign(
            Credentials::new(ACCESS_KEY, SECRET),
            now - Duration::from_secs(600),
            b"",
        ),
        b"",
    )
    .await;
    for answer in [&wrong_secret, &unknown_key, &bad_body, &stale] {
        assert_eq!(answer.status, 403, "{}", answer.message);
    }
    assert_eq!(wrong_secret.message, unknown_key.message);
    assert_eq!(wrong_secret.message, bad_body.message);
    assert_ne!(stale.message, wrong_secret.message);
    assert!(stale.message.contains("5 minutes"), "{}", stale.message);
    router.shutdown().await;
}

/// A cloned configuration keeps the secret usable but hidden.
#[test]
fn client_config_is_cloneable_without_exposing_the_secret() {
    let config = ClientConfig::new("127.0.0.1:1", Credentials::new(ACCESS_KEY, SECRET)).unwrap();
    let clone = config.clone();
    assert_eq!(clone.credentials().secret_key().expose(), SECRET);
    assert_no_secret("a cloned config", &format!("{clone:?}"));
}
