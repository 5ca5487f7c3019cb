//! The byte budgets against a hostile Hyper.sh API (issue 25, item 1): a list that
//! dribbles while large valid events flood the stream, a fetch that dribbles while large
//! events about its container arrive, endless lists of large or small containers, and a
//! container of very many labels. Each must end in an error (or overflow) that names the
//! limit it met, and the informer must converge once the attack ends.
//!
//! The server is plain HTTP and websocket on 127.0.0.1 port 0; signatures are not
//! checked. Budgets are set small so that each attack meets its bound in well under a
//! second.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{eventually, fast_backoff};
use futures_util::{SinkExt, StreamExt};
use hypersh::Informer;
use hypersh::reflector::Limits;
use hypersh::watch::{Client, ClientConfig, Credentials};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const A: &str = "aaaa000000000000000000000000000000000000000000000000000000000000";
const B: &str = "bbbb000000000000000000000000000000000000000000000000000000000000";
const C: &str = "cccc000000000000000000000000000000000000000000000000000000000000";

/// The padding of a large event: 64 KiB, so a budget of 256 KiB holds three.
const LARGE: usize = 64 * 1024;

/// What the server does while the attack is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attack {
    /// The list sends a byte every 100 ms; the stream sends large events about A.
    ListDribble,
    /// The list is [A]; the stream sends `create` of C, then large events about C; the
    /// fetch of C sends a byte every 100 ms.
    FetchDribble,
    /// An endless list of containers of 64 KiB each.
    LargeList,
    /// An endless list of small containers.
    SmallList,
    /// A list of one container with 86 000 short labels (just under 1 MiB).
    ManyLabels,
}

struct Hostile {
    addr: std::net::SocketAddr,
    attack: Arc<AtomicBool>,
}

impl Hostile {
    async fn start(mode: Attack) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let attack = Arc::new(AtomicBool::new(true));
        let on = Arc::clone(&attack);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, mode, Arc::clone(&on)));
            }
        });
        Self { addr, attack }
    }

    fn end_attack(&self) {
        self.attack.store(false, Ordering::SeqCst);
    }

    fn informer(
        &self,
        limits: Limits,
        client: impl FnOnce(ClientConfig) -> ClientConfig,
    ) -> Informer {
        let config = ClientConfig::new(
            &format!("http://{}", self.addr),
            Credentials::new("ak", "sk"),
        )
        .expect("config")
        .with_ping_interval(Duration::from_millis(500))
        .with_idle_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(20))
        .list_progress_timeout(Duration::from_secs(5));
        Informer::builder(Client::new(client(config)).expect("client"))
            .backoff(fast_backoff())
            .limits(limits)
            .build()
            .expect("informer")
    }
}

fn container(id: &str, extra: &str) -> String {
    format!(
        r#"{{"Id":"{id}","Names":["/n{}"],"Image":"img:1","Created":1796462791,"State":"running","Status":"Up"{extra}}}"#,
        &id[..4]
    )
}

fn event(id: &str, action: &str, pad: usize) -> String {
    format!(
        r#"{{"status":"{action}","id":"{id}","Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"image":"img:1","pad":"{}"}}}},"time":1796462788}}"#,
        "x".repeat(pad)
    )
}

const CHUNKED_200: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";

async fn chunk<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    w.write_all(format!("{:x}\r\n", data.len()).as_bytes())
        .await?;
    w.write_all(data).await?;
    w.write_all(b"\r\n").await
}

async fn serve(stream: TcpStream, mode: Attack, attack: Arc<AtomicBool>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut head = Vec::new();
    loop {
        let before = head.len();
        if reader.read_until(b'\n', &mut head).await.unwrap_or(0) == 0 || head.len() > 64 * 1024 {
            return;
        }
        if head[before..] == *b"\r\n" {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let on = || attack.load(Ordering::SeqCst);
    if text.to_ascii_lowercase().contains("upgrade: websocket") {
        let replay = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(head), reader);
        let Ok(ws) = tokio_tungstenite::accept_async(tokio::io::join(replay, write)).await else {
            return;
        };
        let (mut sink, mut source) = ws.split();
        // Pings are answered by reading; the reads run beside the flood.
        let reading = tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} });
        let about = match mode {
            Attack::ListDribble => Some(A),
            Attack::FetchDribble => Some(C),
            _ => None,
        };
        if let (Some(about), true) = (about, on()) {
            if about == C
                && sink
                    .send(Message::text(event(C, "create", 0)))
                    .await
                    .is_err()
            {
                return;
            }
            let mut n = 0u64;
            while on() && !reading.is_finished() {
                let action = if n.is_multiple_of(2) { "stop" } else { "start" };
                if sink
                    .send(Message::text(event(about, action, LARGE)))
                    .await
                    .is_err()
                {
                    return;
                }
                n += 1;
            }
        }
        let _ = reading.await;
        return;
    }
    let target = text.split(' ').nth(1).unwrap_or_default();
    let fetch = target.contains("%22id%22") || target.contains("\"id\"");
    if on() {
        let _ = attack_list(&mut write, mode, fetch, &on).await;
        return;
    }
    let mut ids = vec![A, B];
    if mode == Attack::FetchDribble {
        ids.push(C);
    }
    if fetch {
        ids.retain(|id| target.contains(id));
    }
    let body: Vec<String> = ids.iter().map(|id| container(id, "")).collect();
    let body = format!("[{}]", body.join(","));
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = write.write_all(response.as_bytes()).await;
}

/// The list (or fetch) while the attack is on.
async fn attack_list<W: AsyncWrite + Unpin>(
    w: &mut W,
    mode: Attack,
    fetch: bool,
    on: &impl Fn() -> bool,
) -> std::io::Result<()> {
    w.write_all(CHUNKED_200).await?;
    let dribble = |id| format!("[{}]", container(id, ""));
    match (mode, fetch) {
        (Attack::ListDribble, _) | (Attack::FetchDribble, true) => {
            let body = dribble(if fetch { C } else { A });
            let mut sent = 0;
            while on() && sent + 1 < body.len() {
                chunk(w, &body.as_bytes()[sent..=sent]).await?;
                sent += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            while on() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            chunk(w, &body.as_bytes()[sent..]).await?;
        }
        (Attack::FetchDribble, false) => chunk(w, dribble(A).as_bytes()).await?,
        (Attack::LargeList, _) => {
            chunk(w, b"[").await?;
            let command = format!(r#","Command":"{}""#, "x".repeat(LARGE));
            for n in 0u64.. {
                chunk(
                    w,
                    format!("{},", container(&format!("{n:064x}"), &command)).as_bytes(),
                )
                .await?;
            }
        }
        (Attack::SmallList, _) => {
            chunk(w, b"[").await?;
            for n in 0u64.. {
                chunk(
                    w,
                    format!("{},", container(&format!("{n:064x}"), "")).as_bytes(),
                )
                .await?;
            }
        }
        (Attack::ManyLabels, _) => {
            let labels: Vec<String> = (0..86_000).map(|i| format!(r#""{i:x}":"""#)).collect();
            let extra = format!(r#","Labels":{{{}}}"#, labels.join(","));
            chunk(w, format!("[{}]", container(A, &extra)).as_bytes()).await?;
        }
    }
    w.write_all(b"0\r\n\r\n").await
}

/// Waits until the informer's last error contains `limit`, then ends the attack and waits
/// until the informer holds `expect` and is synced.
async fn meets_then_converges(informer: &Informer, server: &Hostile, limit: &str, expect: &str) {
    eventually(&format!("an error naming {limit}"), || {
        let status = informer.status();
        match status.last_error.as_deref() {
            Some(e) if e.contains(limit) => Ok(()),
            other => Err(format!("last error {other:?}")),
        }
    })
    .await;
    server.end_attack();
    eventually("the informer to converge after the attack", || {
        let status = informer.status();
        if status.synced && informer.store().get(expect).is_some() {
            Ok(())
        } else {
            Err(format!("{status:?}"))
        }
    })
    .await;
}

fn budget() -> Limits {
    Limits::default().max_buffered_bytes(4 * LARGE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_during_a_dribbled_list_meet_the_byte_budget() {
    let server = Hostile::start(Attack::ListDribble).await;
    let informer = server.informer(budget(), |c| c);
    meets_then_converges(&informer, &server, "Limits::max_buffered_bytes", B).await;
    assert!(informer.status().overflows >= 1);
    informer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_events_held_for_a_dribbled_fetch_meet_the_byte_budget() {
    let server = Hostile::start(Attack::FetchDribble).await;
    let informer = server.informer(budget(), |c| c);
    meets_then_converges(&informer, &server, "Limits::max_buffered_bytes", C).await;
    let status = informer.status();
    assert!(status.overflows >= 1);
    informer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_list_of_large_containers_meets_the_list_byte_budget() {
    let server = Hostile::start(Attack::LargeList).await;
    let informer = server.informer(Limits::default(), |c| c.max_list_bytes(4 << 20));
    meets_then_converges(&informer, &server, "ClientConfig::max_list_bytes", B).await;
    informer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_list_of_small_containers_meets_the_container_budget() {
    let server = Hostile::start(Attack::SmallList).await;
    let informer = server.informer(Limits::default(), |c| c.max_list_containers(5_000));
    meets_then_converges(&informer, &server, "ClientConfig::max_list_containers", B).await;
    informer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_of_very_many_labels_fails_the_list_naming_the_bound() {
    let server = Hostile::start(Attack::ManyLabels).await;
    let informer = server.informer(Limits::default(), |c| c);
    meets_then_converges(&informer, &server, "container::MAX_LABELS_BYTES", B).await;
    informer.shutdown().await;
}
