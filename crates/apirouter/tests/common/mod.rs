//! Test helpers: a signing client for the router (HTTPS list calls and WSS watches).

#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use hypersh_apirouter::Router;
use hypersh_watch::container::Container;
use hypersh_watch::credentials::Credentials;
use hypersh_watch::event::WatchEvent;
use hypersh_watch::sign4;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// How long a test waits for anything before failing.
pub const WAIT: Duration = Duration::from_secs(10);

/// A websocket to the router.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Percent-encodes a query value (raw JSON is not a valid `http::Uri`).
pub fn enc(value: &str) -> String {
    utf8_percent_encode(value, NON_ALPHANUMERIC).to_string()
}

/// `?filters=<encoded json>`.
pub fn filters(json: &str) -> String {
    format!("filters={}", enc(json))
}

/// A client of one router, signing with one credential.
pub struct Client {
    /// `https://127.0.0.1:PORT` or `http://...`.
    pub base: String,
    /// `wss://127.0.0.1:PORT` or `ws://...`.
    pub ws_base: String,
    pub credentials: Credentials,
    pub region: String,
    http: reqwest::Client,
    tls: Option<native_tls::TlsConnector>,
}

impl Client {
    /// Signs with the router's first credential and trusts its certificate as a CA.
    pub fn new(router: &Router) -> Self {
        let credentials = router.credentials()[0].clone();
        Self::with(router, credentials)
    }

    /// Signs with `credentials`.
    pub fn with(router: &Router, credentials: Credentials) -> Self {
        let mut http = reqwest::Client::builder().timeout(WAIT);
        let mut tls = None;
        if let Some(pem) = router.ca_pem() {
            http = http.tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()]);
            tls = Some(
                native_tls::TlsConnector::builder()
                    .disable_built_in_roots(true)
                    .add_root_certificate(
                        native_tls::Certificate::from_pem(pem.as_bytes()).unwrap(),
                    )
                    .build()
                    .unwrap(),
            );
        }
        let base = router.base_url();
        let ws_base = base.replacen("http", "ws", 1);
        Self {
            base,
            ws_base,
            credentials,
            region: hypersh_watch::sign4::DEFAULT_REGION.to_owned(),
            http: http.build().unwrap(),
            tls,
        }
    }

    /// Signed headers for `GET <url>` at `now`, with a fresh nonce (the router accepts
    /// each signature once).
    pub fn signed_headers(&self, url: &str, now: SystemTime) -> http::HeaderMap {
        let uri: http::Uri = url.parse().unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(sign4::NONCE_HEADER, sign4::nonce().unwrap());
        sign4::sign(
            &http::Method::GET,
            &uri,
            &mut headers,
            b"",
            &self.credentials,
            &self.region,
            now,
        )
        .unwrap();
        headers
    }

    /// A signed `GET <base><path_and_query>`.
    pub async fn get(&self, path_and_query: &str) -> reqwest::Response {
        self.get_at(path_and_query, SystemTime::now()).await
    }

    /// A `GET` signed as if at `now`.
    pub async fn get_at(&self, path_and_query: &str, now: SystemTime) -> reqwest::Response {
        let url = format!("{}{path_and_query}", self.base);
        let headers = self.signed_headers(&url, now);
        self.http.get(&url).headers(headers).send().await.unwrap()
    }

    /// A `GET <base><path_and_query>` with these headers as they are (a captured request
    /// sent again).
    pub async fn get_with(
        &self,
        path_and_query: &str,
        headers: http::HeaderMap,
    ) -> reqwest::Response {
        let url = format!("{}{path_and_query}", self.base);
        self.http.get(&url).headers(headers).send().await.unwrap()
    }

    /// An unsigned `GET`.
    pub async fn get_unsigned(&self, path_and_query: &str) -> reqwest::Response {
        let url = format!("{}{path_and_query}", self.base);
        self.http.get(&url).send().await.unwrap()
    }

    /// `GET /containers/json?<query>`, expecting 200.
    pub async fn list(&self, query: &str) -> Vec<Container> {
        let response = self.get(&format!("/containers/json?{query}")).await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        response.json().await.unwrap()
    }

    /// Opens a signed websocket to `<ws_base><path_and_query>`.
    pub async fn ws(&self, path_and_query: &str) -> Result<Ws, tungstenite::Error> {
        let url = format!("{}{path_and_query}", self.ws_base);
        let signed = self.signed_headers(&url, SystemTime::now());
        self.ws_with(path_and_query, signed).await
    }

    /// Opens a websocket to `<ws_base><path_and_query>` with these headers as they are
    /// (a captured upgrade sent again).
    pub async fn ws_with(
        &self,
        path_and_query: &str,
        headers: http::HeaderMap,
    ) -> Result<Ws, tungstenite::Error> {
        let url = format!("{}{path_and_query}", self.ws_base);
        let mut request = url.as_str().into_client_request()?;
        request.headers_mut().extend(headers);
        let connector = self.tls.clone().map(Connector::NativeTls);
        let connect =
            tokio_tungstenite::connect_async_tls_with_config(request, None, true, connector);
        let (ws, _) = tokio::time::timeout(WAIT, connect)
            .await
            .expect("connect timed out")?;
        Ok(ws)
    }

    /// Opens `/events/ws?<query>`, expecting success.
    pub async fn watch(&self, query: &str) -> Ws {
        self.ws(&format!("/events/ws?{query}")).await.unwrap()
    }
}

/// The HTTP status of a refused websocket handshake, with its body.
pub fn handshake_status(result: Result<Ws, tungstenite::Error>) -> (u16, String) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (response.status().as_u16(), String::from_utf8(body).unwrap())
        }
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected an HTTP refusal, got a websocket"),
    }
}

/// The next message (not ping/pong), or `None` when the stream ends. Fails after [`WAIT`].
pub async fn next_message(ws: &mut Ws) -> Option<Result<Message, tungstenite::Error>> {
    tokio::time::timeout(WAIT, async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                other => return other,
            }
        }
    })
    .await
    .expect("no message within the wait")
}

/// The next text frame, decoded.
pub async fn next_event(ws: &mut Ws) -> WatchEvent {
    match next_message(ws).await {
        Some(Ok(Message::Text(text))) => WatchEvent::decode(text.as_str().to_owned()).unwrap(),
        other => panic!("expected an event frame, got {other:?}"),
    }
}
