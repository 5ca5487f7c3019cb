//! The Docker source against a scripted daemon on a Unix socket (no dockerd needed):
//! version negotiation, errors, the events line splitter and its limits, liveness pings,
//! and every container action a real engine sends going through an informer untouched.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use hypersh_docker::{ApiVersion, DockerError, DockerHost, DockerSource, Engine};
use hypersh_reflector::{Informer, Source};
use hypersh_watch::{ContainerState, Filters, WatchEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const ID: &str = "c4140a06f79139a667976a4a7a218dc44383098bd6741b912a6c19a003ded487";

/// What the scripted daemon answers.
#[derive(Default)]
struct Script {
    api_version: Mutex<Option<&'static str>>,
    /// More header lines for every answer (`Libpod-Api-Version: 4.3.1\r\n`).
    headers: Mutex<String>,
    /// The body of `/version` (when `/_ping` has no `Api-Version`).
    version_body: &'static str,
    list: String,
    list_status: u16,
    /// Chunks of the events body, then the body ends (`end`) or stays open.
    events: Vec<Vec<u8>>,
    end: bool,
    /// `/_ping` hangs instead of answering.
    frozen: AtomicBool,
    pings: AtomicU32,
    /// The query strings of the requests, in order.
    requests: Mutex<Vec<String>>,
}

struct Daemon {
    dir: PathBuf,
    socket: PathBuf,
    script: Arc<Script>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A new empty directory for a daemon's socket.
fn fresh_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hdf-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Daemon {
    fn start(script: Script) -> Self {
        Self::start_in(fresh_dir(), script)
    }

    /// Listens on `dir/d.sock`.
    fn start_in(dir: PathBuf, script: Script) -> Self {
        let socket = dir.join("d.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let script = Arc::new(script);
        let s = script.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, s.clone()));
            }
        });
        Self {
            dir,
            socket,
            script,
        }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    async fn source(&self) -> Result<DockerSource, DockerError> {
        self.builder()?.connect().await
    }

    fn builder(&self) -> Result<hypersh_docker::DockerSourceBuilder, DockerError> {
        Ok(DockerSource::builder(DockerHost::parse(&self.url())?)
            .ping_interval(Duration::from_millis(200))
            .ping_timeout(Duration::from_millis(200))
            .max_line(4096))
    }
}

async fn serve(mut conn: UnixStream, script: Arc<Script>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match conn.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split(' ').nth(1).unwrap_or("").to_owned();
    script.requests.lock().unwrap().push(target.clone());
    let path = target.split('?').next().unwrap_or("");
    let mut version = script
        .api_version
        .lock()
        .unwrap()
        .map(|v| format!("Api-Version: {v}\r\n"))
        .unwrap_or_default();
    version.push_str(&script.headers.lock().unwrap());
    let reply = |status: u16, body: &str| {
        format!(
            "HTTP/1.1 {status} X\r\n{version}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    if path == "/_ping" {
        script.pings.fetch_add(1, Ordering::Relaxed);
        if script.frozen.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        let _ = conn.write_all(reply(200, "OK").as_bytes()).await;
    } else if path.ends_with("/version") {
        let _ = conn
            .write_all(reply(200, script.version_body).as_bytes())
            .await;
    } else if path.ends_with("/containers/json") {
        let status = if script.list_status == 0 {
            200
        } else {
            script.list_status
        };
        let _ = conn.write_all(reply(status, &script.list).as_bytes()).await;
    } else if path.ends_with("/events") {
        let head = format!(
            "HTTP/1.1 200 OK\r\n{version}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        if conn.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for chunk in &script.events {
            let mut out = format!("{:x}\r\n", chunk.len()).into_bytes();
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
            if conn.write_all(&out).await.is_err() {
                return;
            }
        }
        if script.end {
            let _ = conn.write_all(b"0\r\n\r\n").await;
        } else {
            let mut sink = [0u8; 64];
            while let Ok(n) = conn.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        }
    } else {
        let _ = conn
            .write_all(reply(404, r#"{"message":"page not found"}"#).as_bytes())
            .await;
    }
}

/// One container event of `action`, labels mixed into the attributes as Docker does.
fn frame(action: &str, extra: &str) -> String {
    format!(
        r#"{{"status":"{action}","id":"{ID}","from":"localbb:1","Type":"container","Action":"{action}","Actor":{{"ID":"{ID}","Attributes":{{"app":"web","image":"localbb:1","name":"h1"{extra}}}}},"scope":"local","time":1796462788,"timeNano":1796462788031704372}}"#
    )
}

/// Every container action a 20.10 engine sends (docker.md), and a network event.
fn real_engine_lines() -> Vec<String> {
    let mut lines = vec![frame("create", "")];
    lines.push(r#"{"Type":"network","Action":"connect","Actor":{"ID":"dd2b","Attributes":{"container":"c414","name":"none","type":"null"}},"scope":"local","time":1796462788,"timeNano":1796462788037865205}"#.to_owned());
    for (action, extra) in [
        ("attach", ""),
        ("start", ""),
        ("resize", r#","height":"24","width":"80""#),
        ("exec_create: /bin/sh -c true", r#","execID":"8ba4""#),
        ("exec_start: /bin/sh -c true", r#","execID":"8ba4""#),
        ("exec_die", r#","execID":"8ba4","exitCode":"0""#),
        ("health_status: healthy", ""),
        ("top", ""),
        ("update", ""),
        ("commit", ""),
        ("export", ""),
        ("rename", r#","oldName":"/h0""#),
        ("kill", r#","signal":"15""#),
        ("oom", ""),
        ("die", r#","exitCode":"137""#),
        ("stop", ""),
        ("some_future_action", ""),
    ] {
        lines.push(frame(action, extra));
    }
    lines
}

fn list_of(state: &str) -> String {
    format!(
        r#"[{{"Id":"{ID}","Names":["/h1"],"Image":"localbb:1","ImageID":"sha256:65","Command":"true","Created":1796462791,"Ports":[],"Labels":{{"app":"web"}},"State":"{state}","Status":"Up","HostConfig":{{"NetworkMode":"none"}},"NetworkSettings":{{"Networks":{{}}}},"Mounts":[]}}]"#
    )
}

/// The stream's items until it ends or `n` were read.
async fn take(
    watch: &mut hypersh_docker::DockerWatch,
    n: usize,
) -> Vec<Result<WatchEvent, DockerError>> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(5), watch.next()).await {
            Ok(Some(item)) => out.push(item),
            Ok(None) => break,
            Err(_) => panic!("no item within 5 s after {} items", out.len()),
        }
    }
    out
}

#[tokio::test]
async fn negotiates_the_version_and_uses_it_as_the_path_prefix() {
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.41")),
        list: "[]".to_owned(),
        ..Script::default()
    });
    let source = daemon.source().await.unwrap();
    assert_eq!(source.api_version(), Some(ApiVersion::new(1, 41)));
    source
        .list(&Filters::new().label("app=web"), |_| {})
        .await
        .unwrap();
    let requests = daemon.script.requests.lock().unwrap().clone();
    assert_eq!(
        requests.last().map(String::as_str),
        Some("/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%5B%22app%3Dweb%22%5D%7D")
    );

    // No Api-Version header: /version says it.
    let daemon = Daemon::start(Script {
        version_body: r#"{"Version":"26.1.0","ApiVersion":"1.45","MinAPIVersion":"1.24"}"#,
        ..Script::default()
    });
    assert_eq!(
        daemon.source().await.unwrap().api_version(),
        Some(ApiVersion::new(1, 45))
    );

    // Too old, and not a Docker daemon.
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.19")),
        ..Script::default()
    });
    let e = daemon.source().await.unwrap_err();
    assert!(matches!(e, DockerError::ApiTooOld { .. }), "{e}");
    assert!(
        e.to_string().contains("1.19") && e.to_string().contains("1.24"),
        "{e}"
    );
    let daemon = Daemon::start(Script {
        version_body: "<html>",
        ..Script::default()
    });
    let e = daemon.source().await.unwrap_err();
    assert!(matches!(e, DockerError::BadVersion { .. }), "{e}");
}

#[tokio::test]
async fn says_clearly_when_nothing_listens() {
    let e = DockerSource::connect("unix:///nonexistent/hde/docker.sock")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string().split(" (").next().unwrap(),
        "cannot connect to the Docker daemon at unix:///nonexistent/hde/docker.sock: is dockerd running?"
    );
    // A port nothing listens on.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let e = DockerSource::connect(&format!("tcp://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert!(matches!(e, DockerError::NotRunning { .. }), "{e}");
    let e = DockerSource::connect("npipe:////./pipe/docker_engine")
        .await
        .unwrap_err();
    assert!(matches!(e, DockerError::InvalidHost { .. }), "{e}");
}

#[tokio::test]
async fn error_statuses_carry_the_daemon_message() {
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.41")),
        list: r#"{"message":"proxy says no"}"#.to_owned(),
        list_status: 403,
        ..Script::default()
    });
    let source = daemon.source().await.unwrap();
    let e = source.list(&Filters::new(), |_| {}).await.unwrap_err();
    assert!(e.is_auth(), "{e}");
    assert!(e.to_string().contains("proxy says no"), "{e}");

    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.41")),
        list: r#"{"message":"invalid filter"}"#.to_owned(),
        list_status: 400,
        ..Script::default()
    });
    let e = daemon
        .source()
        .await
        .unwrap()
        .list(&Filters::new(), |_| {})
        .await
        .unwrap_err();
    assert!(!e.is_auth());
    assert!(e.to_string().contains("HTTP 400: invalid filter"), "{e}");
}

#[tokio::test]
async fn every_line_a_real_engine_sends_decodes_however_it_is_cut() {
    let lines = real_engine_lines();
    let body: Vec<u8> = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    for size in [1, 7, 100, 4096] {
        let daemon = Daemon::start(Script {
            api_version: Mutex::new(Some("1.41")),
            events: body.chunks(size).map(<[u8]>::to_vec).collect(),
            end: true,
            ..Script::default()
        });
        let source = daemon.source().await.unwrap();
        let mut watch = source.watch(&Filters::new().label("app")).await.unwrap();
        let items = take(&mut watch, 100).await;
        let (last, events) = items.split_last().unwrap();
        let events: Vec<WatchEvent> = events
            .iter()
            .map(|r| match r {
                Ok(e) => Ok(e.clone()),
                Err(e) => Err(e.to_string()),
            })
            .collect::<Result<_, _>>()
            .unwrap();
        // The network event is skipped; every container line is an event.
        assert_eq!(events.len(), lines.len() - 1, "chunks of {size}");
        assert!(matches!(events[0], WatchEvent::Added(_)));
        assert!(
            events[1..]
                .iter()
                .all(|e| matches!(e, WatchEvent::Modified(_)))
        );
        assert!(events.iter().all(|e| e.id() == ID));
        assert_eq!(
            events[0].event().raw_str(),
            lines[0],
            "the line, without its newline"
        );
        assert!(
            matches!(last, Err(DockerError::StreamEnded { .. })),
            "{last:?}"
        );
        assert!(watch.next().await.is_none());
        let requests = daemon.script.requests.lock().unwrap().clone();
        assert!(
            requests.iter().any(|r| r
                == "/v1.41/events?filters=%7B%22label%22%3A%5B%22app%22%5D%2C%22type%22%3A%5B%22container%22%5D%7D"),
            "{requests:?}"
        );
    }
}

#[tokio::test]
async fn a_bad_line_is_a_frame_error_and_a_long_one_ends_the_stream() {
    let mut body = format!(
        "{}\n\r\nnot json\n{}\n",
        frame("start", ""),
        frame("die", "")
    );
    body.push_str(&"x".repeat(5000));
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.41")),
        events: vec![body.into_bytes()],
        ..Script::default()
    });
    let source = daemon.source().await.unwrap();
    let mut watch = source.watch(&Filters::new()).await.unwrap();
    let items = take(&mut watch, 10).await;
    assert_eq!(items.len(), 4, "{items:?}");
    assert!(items[0].is_ok());
    assert!(
        matches!(&items[1], Err(e) if e.is_frame_error()),
        "{:?}",
        items[1]
    );
    assert!(items[2].is_ok());
    assert!(
        matches!(&items[3], Err(DockerError::LineTooLong { limit: 4096 })),
        "{:?}",
        items[3]
    );
}

#[tokio::test]
async fn an_idle_stream_pings_and_ends_when_the_daemon_stops_answering() {
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.41")),
        ..Script::default()
    });
    let source = daemon.source().await.unwrap();
    let mut watch = source.watch(&Filters::new()).await.unwrap();
    // Alive: silence is not an error. Three more pings reach the daemon while the stream
    // yields nothing, so the watch has had at least two of them answered (a ping is sent
    // one ping interval after the last answer) and carried on.
    let before = daemon.script.pings.load(Ordering::Relaxed);
    let pinged = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while daemon.script.pings.load(Ordering::Relaxed) < before + 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "pings while idle: {}",
                daemon.script.pings.load(Ordering::Relaxed) - before
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        item = watch.next() => panic!("an idle, answering daemon ended or sent {item:?}"),
        () = pinged => {}
    }
    // Frozen: the next ping times out and ends the watch.
    daemon.script.frozen.store(true, Ordering::Relaxed);
    let item = tokio::time::timeout(Duration::from_secs(2), watch.next())
        .await
        .expect("the dead daemon is noticed within ping_interval + ping_timeout");
    let e = item.unwrap().unwrap_err();
    assert!(matches!(e, DockerError::Unresponsive { .. }), "{e}");
    assert!(e.to_string().contains("stopped answering /_ping"), "{e}");
    assert!(watch.next().await.is_none());
}

#[tokio::test]
async fn an_informer_takes_every_action_without_a_decode_error() {
    let lines = real_engine_lines();
    let body: Vec<u8> = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.41")),
        list: list_of("running"),
        events: vec![body],
        ..Script::default()
    });
    let informer = Informer::builder(daemon.source().await.unwrap())
        .build()
        .unwrap();
    informer.wait_synced(Duration::from_secs(5)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while informer.status().events_received < (lines.len() - 1) as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:#?}",
            informer.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = informer.status();
    assert_eq!(status.decode_errors, 0, "{status:#?}");
    assert_eq!(status.failures, 0, "{status:#?}");
    let c = informer.store().get(ID).expect("cached");
    assert_eq!(c.state(), ContainerState::Exited, "die, then stop");
    assert_eq!(c.name(), Some("h1"));
    assert_eq!(c.label("app"), Some("web"));
    informer.shutdown().await;
}

/// Podman's headers, as a real Podman 4.3.1 sends them.
const PODMAN_HEADERS: &str = "Libpod-Api-Version: 4.3.1\r\nServer: Libpod/4.3.1 (linux)\r\n";

/// A Podman event line (`shared/spec/podman.md`) about container `id`, with `labels`
/// before Podman's own attributes.
fn podman_frame(action: &str, id: &str, labels: &str) -> String {
    format!(
        r#"{{"status":"{action}","id":"{id}","from":"localhost/bb:1","Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{{labels}"containerExitCode":"0","image":"localhost/bb:1","name":"web2","podId":""}}}},"scope":"local","time":1796632903,"timeNano":1796632903534600265}}"#
    )
}

#[tokio::test]
async fn podman_is_told_by_its_headers_and_its_events_read_with_its_meaning() {
    let other = "9d4e2c".repeat(10) + "abcd";
    let lines = [
        podman_frame("die", ID, r#""app":"web","#),
        // Not ours: Podman was not asked for the key-only label, so it sends these.
        podman_frame("start", &other, r#""tier":"db","#),
        podman_frame("cleanup", ID, r#""app":"web","#),
        r#"{"status":"pull","id":"localhost/bb:1","Type":"image","Action":"pull","Actor":{"ID":"localhost/bb:1","Attributes":{"name":"localhost/bb:1"}},"scope":"local","time":1,"timeNano":1}"#.to_owned(),
        podman_frame("remove", ID, r#""app":"web","#),
    ];
    let body: Vec<u8> = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.41")),
        headers: Mutex::new(PODMAN_HEADERS.to_owned()),
        events: vec![body],
        end: true,
        ..Script::default()
    });
    let source = daemon.builder().unwrap().build().expect("the source");
    assert_eq!(source.server_version(), None, "nothing asked yet");
    assert!(daemon.script.requests.lock().unwrap().is_empty());
    let mut watch = source
        .watch(&Filters::new().label("app").label("tier=web"))
        .await
        .unwrap();
    let server = source.server_version().expect("the watch asked");
    assert_eq!(server.engine, Engine::Podman);
    assert_eq!(server.to_string(), "Podman 4.3.1 (API 1.41)");
    assert_eq!(
        Source::server(&source).as_deref(),
        Some("Podman 4.3.1 (API 1.41)")
    );
    let requests = daemon.script.requests.lock().unwrap().clone();
    assert_eq!(requests[0], "/_ping", "{requests:?}");
    // Only what Podman matches as Docker does: `tier=web`, not the key-only `app`.
    assert_eq!(
        requests.last().map(String::as_str),
        Some(
            "/v1.41/events?filters=%7B%22label%22%3A%5B%22tier%3Dweb%22%5D%2C%22type%22%3A%5B%22container%22%5D%7D"
        ),
        "{requests:?}"
    );
    let items = take(&mut watch, 10).await;
    let events: Vec<&WatchEvent> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
    // die and cleanup of ours fail the `tier=web` check too: only the key-only filter.
    assert!(events.is_empty(), "{events:?}");

    let mut watch = source.watch(&Filters::new().label("app")).await.unwrap();
    let items = take(&mut watch, 10).await;
    let events: Vec<&WatchEvent> = items.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind_str(), e.event().action()))
            .collect::<Vec<_>>(),
        [
            ("MODIFIED", "die"),
            ("MODIFIED", "cleanup"),
            ("DELETED", "remove")
        ]
    );
    assert!(events.iter().all(|e| e.event().engine() == Engine::Podman));
    let running = hypersh_watch::Container::builder(ID)
        .state(ContainerState::Running)
        .build();
    let stopped = events[0].event().apply_to(&running);
    assert_eq!(stopped.state(), ContainerState::Stopped);
    assert_eq!(
        events[1].event().apply_to(&stopped).state(),
        ContainerState::Exited
    );
}

#[tokio::test]
async fn the_engine_and_version_are_asked_again_at_every_session() {
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.41")),
        headers: Mutex::new("Server: Docker/20.10.24+dfsg1 (linux)\r\n".to_owned()),
        ..Script::default()
    });
    let source = daemon.builder().unwrap().build().expect("the source");
    assert_eq!(source.api_version(), None);
    drop(source.watch(&Filters::new()).await.unwrap());
    assert_eq!(source.api_version(), Some(ApiVersion::new(1, 41)));
    assert_eq!(
        source.server_version().unwrap().to_string(),
        "Docker 20.10.24+dfsg1 (API 1.41)"
    );
    // Upgraded under us, to Podman.
    *daemon.script.api_version.lock().unwrap() = Some("1.43");
    *daemon.script.headers.lock().unwrap() = PODMAN_HEADERS.to_owned();
    drop(source.watch(&Filters::new()).await.unwrap());
    assert_eq!(source.api_version(), Some(ApiVersion::new(1, 43)));
    assert_eq!(source.server_version().unwrap().engine, Engine::Podman);
    source.list(&Filters::new(), |_| {}).await.unwrap_err();
    let requests = daemon.script.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(|r| r.starts_with("/v1.43/events")),
        "{requests:?}"
    );
    assert!(
        requests
            .last()
            .unwrap()
            .starts_with("/v1.43/containers/json"),
        "{requests:?}"
    );
    // A pinned version is kept; the engine is still asked for.
    let pinned = daemon
        .builder()
        .unwrap()
        .api_version(ApiVersion::new(1, 40))
        .build()
        .expect("the source");
    assert_eq!(pinned.api_version(), Some(ApiVersion::new(1, 40)));
    drop(pinned.watch(&Filters::new()).await.unwrap());
    assert_eq!(
        pinned.server_version().unwrap().to_string(),
        "Podman 4.3.1 (API 1.40)"
    );
}

#[tokio::test]
async fn a_daemon_that_refuses_our_newest_version_is_spoken_to_in_its_oldest() {
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.70")),
        headers: Mutex::new("Server: Docker/40.0.0 (linux)\r\n".to_owned()),
        version_body: r#"{"Version":"40.0.0","ApiVersion":"1.70","MinAPIVersion":"1.60"}"#,
        ..Script::default()
    });
    let source = daemon.builder().unwrap().build().expect("the source");
    drop(source.watch(&Filters::new()).await.unwrap());
    assert_eq!(source.api_version(), Some(ApiVersion::new(1, 60)));
    let requests = daemon.script.requests.lock().unwrap().clone();
    assert_eq!(requests[..2], ["/_ping", "/v1.70/version"], "{requests:?}");
    assert!(requests[2].starts_with("/v1.60/events"), "{requests:?}");
    // A newer daemon that still takes ours: ours.
    let daemon = Daemon::start(Script {
        api_version: Mutex::new(Some("1.70")),
        version_body: r#"{"Version":"40.0.0","ApiVersion":"1.70","MinAPIVersion":"1.44"}"#,
        ..Script::default()
    });
    let source = daemon.source().await.unwrap();
    assert_eq!(source.api_version(), Some(ApiVersion::MAXIMUM));
    assert_eq!(
        source.server_version().unwrap().to_string(),
        format!("Docker 40.0.0 (API {})", ApiVersion::MAXIMUM)
    );
}

#[tokio::test]
async fn an_informer_started_before_its_daemon_waits_and_converges() {
    let dir = fresh_dir();
    let url = format!("unix://{}", dir.join("d.sock").display());
    let source = DockerSource::builder(DockerHost::parse(&url).unwrap())
        .ping_interval(Duration::from_millis(200))
        .build()
        .expect("the source");
    let informer = Informer::builder(source)
        .backoff(
            hypersh_reflector::BackoffConfig::default()
                .initial(Duration::from_millis(50))
                .max(Duration::from_millis(200)),
        )
        .build()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while informer.status().failures < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:#?}",
            informer.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = informer.status();
    assert!(!status.synced && status.server.is_none(), "{status:#?}");
    let error = status.last_error.unwrap_or_default();
    assert!(error.contains("is dockerd running?"), "{error}");

    let _daemon = Daemon::start_in(
        dir,
        Script {
            api_version: Mutex::new(Some("1.41")),
            headers: Mutex::new("Server: Docker/20.10.24+dfsg1 (linux)\r\n".to_owned()),
            list: list_of("running"),
            ..Script::default()
        },
    );
    informer
        .wait_synced(Duration::from_secs(5))
        .await
        .expect("ready once the daemon is up");
    assert_eq!(informer.store().len(), 1);
    assert_eq!(
        informer.status().server.as_deref(),
        Some("Docker 20.10.24+dfsg1 (API 1.41)")
    );
    informer.shutdown().await;
}

#[tokio::test]
async fn captured_engine_streams_go_through_without_a_frame_error() {
    for (file, headers, engine) in [
        (
            include_str!("../../watch/tests/data/docker-20.10-events.jsonl"),
            "Server: Docker/20.10.24+dfsg1 (linux)\r\n",
            Engine::Docker,
        ),
        (
            include_str!("../../watch/tests/data/podman-4.3.1-events.jsonl"),
            PODMAN_HEADERS,
            Engine::Podman,
        ),
    ] {
        // Container events about one container: the others (network, image, Docker's
        // container prune) are skipped.
        let expected = file
            .lines()
            .filter(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["Type"] == "container" && v["Actor"]["ID"] != ""
            })
            .count();
        let daemon = Daemon::start(Script {
            api_version: Mutex::new(Some("1.41")),
            headers: Mutex::new(headers.to_owned()),
            events: file.as_bytes().chunks(1000).map(<[u8]>::to_vec).collect(),
            end: true,
            ..Script::default()
        });
        let source = daemon.builder().unwrap().build().expect("the source");
        let mut watch = source.watch(&Filters::new()).await.unwrap();
        let items = take(&mut watch, 1000).await;
        let (last, events) = items.split_last().unwrap();
        assert!(
            matches!(last, Err(DockerError::StreamEnded { .. })),
            "{last:?}"
        );
        let events: Vec<&WatchEvent> = events
            .iter()
            .map(|r| r.as_ref().unwrap_or_else(|e| panic!("{engine}: {e}")))
            .collect();
        assert_eq!(events.len(), expected, "{engine}");
        assert!(events.iter().all(|e| e.event().engine() == engine));
    }
}
