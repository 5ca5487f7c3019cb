//! The Docker source against hostile daemons on a Unix socket: a fake dockerd that answers
//! `/_ping`, `/version` and the list like an engine, and then dribbles `/events`, a byte
//! at a time and never a newline, or sends only blank lines. Each must end the watch
//! within the idle period (plus the ping timeout) with an error that names the limit, and
//! an informer on it must reconnect, relist and converge once the attack ends. Paused
//! time: the periods are the defaults (10 s ping interval, 5 s ping timeout), the attack
//! a byte every 5 s, as measured in issue 25.
//!
//! Then the byte budgets: `/events` sends ~1 MiB valid lines while the list (or the
//! fetch of the lines' container) stalls. The events held must meet
//! `Limits::max_buffered_bytes`, and the informer converge once the list answers (real
//! time: the stall is a flood, not a wait).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use hypersh_docker::{DockerError, DockerHost, DockerSource};
use hypersh_reflector::{BackoffConfig, Informer, Phase, Source};
use hypersh_watch::Filters;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::time::Instant;

const A: &str = "aaaa0a06f79139a667976a4a7a218dc44383098bd6741b912a6c19a003ded487";
const B: &str = "bbbb0a06f79139a667976a4a7a218dc44383098bd6741b912a6c19a003ded487";
const C: &str = "cccc0a06f79139a667976a4a7a218dc44383098bd6741b912a6c19a003ded487";

/// What `/events` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    /// Sends the start of a line, one byte every 5 s, never a newline.
    Dribble,
    /// Sends a blank line every 5 s: bytes, complete lines, never an event.
    BlankLines,
    /// Sends valid lines of about 1 MiB about this container as fast as they are read
    /// (first its `create` if it is C), until the attack is `Off`.
    LargeLines(&'static str),
    /// None: an event for every listed container, then silence (a healthy daemon).
    Off,
}

/// The fake daemon's state, changed by the test while it runs.
struct Fake {
    attack: Mutex<Attack>,
    /// The listed containers' ids.
    containers: Mutex<Vec<&'static str>>,
    /// `/_ping` hangs instead of answering.
    frozen: AtomicBool,
    /// The list (`stall_list`) or a fetch (a list by id) sends nothing until cleared.
    stall_list: AtomicBool,
    stall_fetch: AtomicBool,
    pings: AtomicU32,
    watches: AtomicU32,
}

struct Daemon {
    dir: PathBuf,
    socket: PathBuf,
    fake: Arc<Fake>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Daemon {
    fn start(attack: Attack, containers: &[&'static str]) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hdh-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temporary directory");
        let socket = dir.join("d.sock");
        let listener = UnixListener::bind(&socket).expect("bind the socket");
        let fake = Arc::new(Fake {
            attack: Mutex::new(attack),
            containers: Mutex::new(containers.to_vec()),
            frozen: AtomicBool::new(false),
            stall_list: AtomicBool::new(false),
            stall_fetch: AtomicBool::new(false),
            pings: AtomicU32::new(0),
            watches: AtomicU32::new(0),
        });
        let f = fake.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, f.clone()));
            }
        });
        Self { dir, socket, fake }
    }

    /// A source with the default timers and limits.
    async fn source(&self) -> DockerSource {
        let host = DockerHost::parse(&format!("unix://{}", self.socket.display())).expect("url");
        DockerSource::builder(host)
            .connect()
            .await
            .expect("the fake negotiates")
    }
}

async fn serve(mut conn: UnixStream, fake: Arc<Fake>) {
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
    let path = target.split('?').next().unwrap_or("");
    let reply = |body: &str| {
        format!(
            "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    if path == "/_ping" {
        fake.pings.fetch_add(1, Ordering::Relaxed);
        if fake.frozen.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
        let _ = conn.write_all(reply("OK").as_bytes()).await;
    } else if path == "/version" {
        let _ = conn
            .write_all(reply(r#"{"ApiVersion":"1.41"}"#).as_bytes())
            .await;
    } else if path.ends_with("/containers/json") {
        let stall = if target.contains("%22id%22") {
            &fake.stall_fetch
        } else {
            &fake.stall_list
        };
        while stall.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ids = fake
            .containers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // A fetch asks for ids with the `id` filter: answer with those only.
        let wanted: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| !target.contains("%22id%22") || target.contains(id))
            .collect();
        let list: Vec<String> = wanted.iter().map(|id| container(id)).collect();
        let _ = conn
            .write_all(reply(&format!("[{}]", list.join(","))).as_bytes())
            .await;
    } else if path.ends_with("/events") {
        fake.watches.fetch_add(1, Ordering::Relaxed);
        let attack = *fake
            .attack
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = events(&mut conn, attack, &fake).await;
    } else {
        let _ = conn
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            .await;
    }
}

/// The `/events` answer: chunked, never ending by itself.
async fn events(conn: &mut UnixStream, attack: Attack, fake: &Fake) -> std::io::Result<()> {
    conn.write_all(
        b"HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await?;
    async fn chunk(conn: &mut UnixStream, data: &[u8]) -> std::io::Result<()> {
        let mut out = format!("{:x}\r\n", data.len()).into_bytes();
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
        conn.write_all(&out).await
    }
    if let Attack::LargeLines(about) = attack {
        if about == C {
            chunk(conn, format!("{}\n", event("create", C)).as_bytes()).await?;
        }
        let pad = "x".repeat(1000 * 1024);
        let lines = ["stop", "start"].map(|action| {
            format!(
                "{}\n",
                event(action, about).replace(r#""image":"#, &format!(r#""pad":"{pad}","image":"#))
            )
        });
        let mut n = 0;
        while !matches!(
            *fake
                .attack
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Attack::Off
        ) {
            chunk(conn, lines[n % 2].as_bytes()).await?;
            n += 1;
        }
        return events_off(conn, fake).await;
    }
    let line = event("start", A);
    let mut dribble = line.as_bytes().iter().cycle();
    loop {
        match attack {
            Attack::Dribble => {
                let byte = *dribble.next().unwrap_or(&b'x');
                chunk(conn, &[byte]).await?;
            }
            Attack::BlankLines => chunk(conn, b"\n").await?,
            Attack::Off | Attack::LargeLines(_) => return events_off(conn, fake).await,
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// A healthy `/events` after its header: an event for every listed container, then
/// silence until the client goes away.
async fn events_off(conn: &mut UnixStream, fake: &Fake) -> std::io::Result<()> {
    let ids = fake
        .containers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for id in ids {
        let line = format!("{}\n", event("start", id));
        let mut out = format!("{:x}\r\n", line.len()).into_bytes();
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
        conn.write_all(&out).await?;
    }
    let mut sink = [0u8; 64];
    while conn.read(&mut sink).await? > 0 {}
    Ok(())
}

fn event(action: &str, id: &str) -> String {
    format!(
        r#"{{"status":"{action}","id":"{id}","from":"img:1","Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"image":"img:1","name":"n{}"}}}},"scope":"local","time":1796462788,"timeNano":1796462788031704372}}"#,
        &id[..4]
    )
}

fn container(id: &str) -> String {
    format!(
        r#"{{"Id":"{id}","Names":["/n{}"],"Image":"img:1","ImageID":"sha256:65","Command":"true","Created":1796462791,"Labels":{{}},"State":"running","Status":"Up"}}"#,
        &id[..4]
    )
}

/// The next item of `watch`, and how long it took (paused time).
async fn next_item(
    watch: &mut hypersh_docker::DockerWatch,
) -> (
    Option<Result<hypersh_watch::WatchEvent, DockerError>>,
    Duration,
) {
    let started = Instant::now();
    let item = tokio::time::timeout(Duration::from_secs(120), watch.next())
        .await
        .expect("an item within 120 s");
    (item, started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_line_dribbled_a_byte_every_5_s_ends_the_watch_after_the_ping_interval() {
    let daemon = Daemon::start(Attack::Dribble, &[A]);
    let source = daemon.source().await;
    let mut watch = source.watch(&Filters::new()).await.expect("watch opens");
    let (item, took) = next_item(&mut watch).await;
    let e = item.expect("an item").expect_err("an error, not an event");
    assert!(
        matches!(&e, DockerError::LineStalled { after, .. } if *after == Duration::from_secs(10)),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("stayed incomplete for 10s (ping_interval)"),
        "the message names the limit: {text}"
    );
    // The first byte came at once: the line is stuck one ping interval later.
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(11),
        "{took:?}"
    );
    assert!(watch.next().await.is_none(), "the watch ended");
}

#[tokio::test(start_paused = true)]
async fn blank_lines_are_no_sign_of_life_and_an_unanswered_ping_ends_the_watch() {
    let daemon = Daemon::start(Attack::BlankLines, &[A]);
    let source = daemon.source().await;
    // The watch's handshake is answered (its `/_ping`); `/_ping` is frozen from then on.
    let mut watch = source.watch(&Filters::new()).await.expect("watch opens");
    daemon.fake.frozen.store(true, Ordering::Relaxed);
    let pings_before = daemon.fake.pings.load(Ordering::Relaxed);
    let (item, took) = next_item(&mut watch).await;
    let e = item.expect("an item").expect_err("an error, not an event");
    assert!(matches!(e, DockerError::Unresponsive { .. }), "{e:?}");
    // Pinged after the ping interval although a line came every 5 s; the ping timed out
    // after the ping timeout.
    assert!(
        took >= Duration::from_secs(15) && took < Duration::from_secs(16),
        "{took:?}"
    );
    assert_eq!(daemon.fake.pings.load(Ordering::Relaxed), pings_before + 1);
}

#[tokio::test(start_paused = true)]
async fn the_informer_relists_after_a_stuck_stream_and_converges_when_the_attack_ends() {
    let daemon = Daemon::start(Attack::Dribble, &[A]);
    let informer = Informer::builder(daemon.source().await)
        .backoff(
            BackoffConfig::default()
                .initial(Duration::from_millis(100))
                .max(Duration::from_secs(1))
                .jitter(false),
        )
        .build()
        .expect("informer");
    informer
        .wait_synced(Duration::from_secs(30))
        .await
        .expect("synced: the list is fine, only the stream dribbles");
    assert!(informer.store().get(A).is_some());

    // Under the attack: each watch ends one ping interval after it opened, and the
    // reflector opens another and relists.
    let attacked = Instant::now();
    let deadline = attacked + Duration::from_secs(60);
    loop {
        let status = informer.status();
        if status.failures >= 2 && status.relists >= 3 {
            let error = status.last_error.unwrap_or_default();
            assert!(error.contains("(ping_interval)"), "{error}");
            break;
        }
        assert!(Instant::now() < deadline, "{status:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two stuck streams, each found one ping interval after it opened, plus the backoffs.
    assert!(
        attacked.elapsed() < Duration::from_secs(25),
        "{:?}",
        attacked.elapsed()
    );

    // The attack ends, and a container appeared meanwhile.
    daemon
        .fake
        .containers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(B);
    *daemon
        .fake
        .attack
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Attack::Off;
    let healed = Instant::now();
    loop {
        let status = informer.status();
        let converged = status.phase == Phase::Watching
            && status.connected
            && informer.store().get(B).is_some()
            && informer.store().len() == 2;
        if converged {
            break;
        }
        // Within the stuck watch still open (10 s), a backoff and one list.
        assert!(
            healed.elapsed() < Duration::from_secs(15),
            "not converged: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Healthy now: the quiet stream is pinged and stays open.
    let failures = informer.status().failures;
    let pings = daemon.fake.pings.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(informer.status().failures, failures);
    assert!(daemon.fake.pings.load(Ordering::Relaxed) >= pings + 3);
    informer.shutdown().await;
}

/// Sets the fake's attack.
fn set_attack(daemon: &Daemon, attack: Attack) {
    *daemon
        .fake
        .attack
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = attack;
}

/// Waits (real time, at most 30 s) until `check` holds for the informer.
async fn wait_for(informer: &Informer, what: &str, check: impl Fn(&Informer) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check(informer) {
        assert!(
            Instant::now() < deadline,
            "{what}: {:#?}",
            informer.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A budget of four large lines.
fn four_large_lines() -> hypersh_reflector::Limits {
    hypersh_reflector::Limits::default().max_buffered_bytes(4 << 20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_lines_while_the_list_stalls_meet_the_byte_budget_and_the_informer_converges() {
    let daemon = Daemon::start(Attack::LargeLines(A), &[A, B]);
    daemon.fake.stall_list.store(true, Ordering::SeqCst);
    let informer = Informer::builder(daemon.source().await)
        .limits(four_large_lines())
        .build()
        .expect("informer");
    wait_for(&informer, "an overflow naming max_buffered_bytes", |i| {
        let status = i.status();
        status.overflows >= 1
            && status.last_error.is_some_and(|e| {
                e.contains("Limits::max_buffered_bytes") && e.contains("during the list")
            })
    })
    .await;
    assert!(!informer.status().synced);
    daemon.fake.stall_list.store(false, Ordering::SeqCst);
    set_attack(&daemon, Attack::Off);
    wait_for(&informer, "the informer to converge", |i| {
        let status = i.status();
        status.synced && status.phase == Phase::Watching && i.store().len() == 2
    })
    .await;
    informer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_lines_while_their_fetch_stalls_meet_the_byte_budget_and_the_informer_converges() {
    let daemon = Daemon::start(Attack::LargeLines(C), &[A]);
    daemon.fake.stall_fetch.store(true, Ordering::SeqCst);
    // C's `create` comes during the list or after it: its fetch is the list's or the
    // watch's, and its events are buffered or held for it; either way they meet the budget.
    let informer = Informer::builder(daemon.source().await)
        .limits(four_large_lines())
        .build()
        .expect("informer");
    wait_for(&informer, "an overflow naming max_buffered_bytes", |i| {
        let status = i.status();
        status.overflows >= 1
            && status
                .last_error
                .is_some_and(|e| e.contains("Limits::max_buffered_bytes"))
    })
    .await;
    daemon
        .fake
        .containers
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(C);
    daemon.fake.stall_fetch.store(false, Ordering::SeqCst);
    set_attack(&daemon, Attack::Off);
    wait_for(&informer, "the informer to converge", |i| {
        let status = i.status();
        status.synced && status.phase == Phase::Watching && i.store().get(C).is_some()
    })
    .await;
    informer.shutdown().await;
}
