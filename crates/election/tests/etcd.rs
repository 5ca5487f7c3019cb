//! Electors against a real private etcd (`tests/common`): one leader at every sample, a
//! killed leader replaced within the lease + 2 s, a resign handed over under 3 s, etcd
//! paused or restarted, a stalled leader that does not act on resuming, bad input.
//!
//! Each replica runs on a runtime of its own, on a thread of its own, so that "kill" (the
//! runtime dropped: no resign, the connection cut) and "stall" (the runtime's only thread
//! blocked, as a SIGSTOP would) touch that replica alone. Timing is shortened: lease 3 s,
//! renew deadline 2 s, retry 0.5 s.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Etcd, etcd_or_skip};
use hypersh_election::etcd::{Elector, EtcdConfig};
use hypersh_election::{
    Backoff, ElectionConfig, ElectionError, FencingToken, Leadership, StepDown, Timing,
};
use tokio::sync::{mpsc, oneshot};

const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);

/// The tests measure failover times: one at a time, so they do not slow each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn config(name: &str, identity: &str) -> ElectionConfig {
    ElectionConfig::new(name, identity)
        .unwrap()
        .with_timing(Timing::new(LEASE, RENEW, RETRY).unwrap())
        .with_backoff(Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
            jitter: true,
        })
}

enum Ctl {
    Resign(oneshot::Sender<Result<(), ElectionError>>),
    /// Blocks the replica's runtime for this long, then answers whether the replica said
    /// it may act, asked first thing on resuming.
    Stall(Duration, oneshot::Sender<bool>),
}

/// One replica: an elector on a runtime of its own.
struct Replica {
    identity: String,
    leadership: Leadership,
    ctl: Option<mpsc::Sender<Ctl>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Replica {
    fn start(name: &str, identity: &str, etcd: EtcdConfig) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (ctl, mut ctl_rx) = mpsc::channel(4);
        let config = config(name, identity);
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let elector = Elector::start(config, etcd).unwrap();
                tx.send(elector.leadership()).unwrap();
                while let Some(c) = ctl_rx.recv().await {
                    match c {
                        Ctl::Resign(reply) => {
                            let _ = reply.send(elector.resign().await);
                            return;
                        }
                        Ctl::Stall(d, reply) => {
                            std::thread::sleep(d);
                            let _ = reply.send(elector.leadership().current().is_some());
                        }
                    }
                }
                // The control channel closed: "kill" — the runtime goes with everything
                // on it, nothing said to etcd.
            });
        });
        let leadership = rx.recv().unwrap();
        Self {
            identity: identity.to_owned(),
            leadership,
            ctl: Some(ctl),
            thread: Some(thread),
        }
    }

    /// Kills the replica: its runtime is dropped without a resign.
    fn kill(&mut self) {
        self.ctl = None;
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    async fn resign(&mut self) -> Result<(), ElectionError> {
        let (tx, rx) = oneshot::channel();
        self.ctl
            .as_ref()
            .unwrap()
            .send(Ctl::Resign(tx))
            .await
            .unwrap();
        let r = rx.await.unwrap();
        self.kill();
        r
    }

    async fn stall(&self, d: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        self.ctl
            .as_ref()
            .unwrap()
            .send(Ctl::Stall(d, tx))
            .await
            .unwrap();
        rx.await.unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Samples every replica's `is_leader` every 20 ms on a thread of its own.
struct Sampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Samples>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Clone, Debug, Default)]
struct Samples {
    count: u64,
    /// Samples where more than one replica said it may act.
    overlaps: u64,
    /// Terms seen, in order: (identity, token).
    terms: Vec<(String, FencingToken)>,
}

impl Sampler {
    fn start(replicas: &[&Replica]) -> Self {
        let handles: Vec<(String, Leadership)> = replicas
            .iter()
            .map(|r| (r.identity.clone(), r.leadership.clone()))
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Samples::default()));
        let (flag, shared) = (Arc::clone(&stop), Arc::clone(&samples));
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let leaders: Vec<(String, FencingToken)> = handles
                    .iter()
                    .filter_map(|(id, l)| l.current().map(|t| (id.clone(), t.token())))
                    .collect();
                {
                    let mut s = shared.lock().unwrap();
                    s.count += 1;
                    if leaders.len() > 1 {
                        s.overlaps += 1;
                    }
                    for l in leaders {
                        if s.terms.last() != Some(&l) {
                            s.terms.push(l);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        Self {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    /// What the sampler has seen so far.
    fn seen(&self) -> Samples {
        self.samples.lock().unwrap().clone()
    }

    /// Waits until what the sampler has seen satisfies `done`; panics with `what` after
    /// `within`.
    async fn wait_until(&self, what: &str, within: Duration, done: impl Fn(&Samples) -> bool) {
        let start = Instant::now();
        while !done(&self.seen()) {
            assert!(
                start.elapsed() < within,
                "{what}: not within {within:?}: {:?}",
                self.seen()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn finish(mut self) -> Samples {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.seen()
    }
}

/// Checks what the sampler saw: never two leaders, each new term with a larger token.
fn check(samples: &Samples) {
    assert!(samples.count > 10, "{samples:?}");
    assert_eq!(
        samples.overlaps, 0,
        "two replicas acted at once: {samples:?}"
    );
    for w in samples.terms.windows(2) {
        assert!(
            w[1].1 > w[0].1,
            "tokens must grow with each term: {samples:?}"
        );
    }
}

/// Waits until one of `replicas` leads, returning its index and how long it took.
async fn wait_leader(replicas: &[&Replica], within: Duration) -> (usize, Duration) {
    let start = Instant::now();
    loop {
        if let Some(i) = replicas.iter().position(|r| r.leadership.is_leader()) {
            return (i, start.elapsed());
        }
        assert!(
            start.elapsed() < within,
            "no leader within {within:?}: {:?}",
            replicas
                .iter()
                .map(|r| r.leadership.status())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn three(etcd: &Etcd, name: &str) -> Vec<Replica> {
    let cfg = EtcdConfig::new([etcd.url()]).unwrap();
    ["a", "b", "c"]
        .iter()
        .map(|id| Replica::start(name, id, cfg.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_within_the_lease_and_one_leads_at_a_time() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = etcd_or_skip("kill") else {
        return;
    };
    let mut replicas = three(&etcd, "kill-test");
    let sampler = Sampler::start(&replicas.iter().collect::<Vec<_>>());
    let mut times = Vec::new();
    for round in 0..2 {
        let live: Vec<&Replica> = replicas.iter().filter(|r| r.ctl.is_some()).collect();
        let (i, _) = wait_leader(&live, Duration::from_secs(10)).await;
        let leader_id = live[i].identity.clone();
        let old = live[i].leadership.current().unwrap().token();
        // The sampler sees this term, for ten samples more (and checks it stays alone).
        let term = (leader_id.clone(), old);
        let count = sampler.seen().count;
        sampler
            .wait_until("the sampler sees the term", Duration::from_secs(10), |s| {
                s.terms.contains(&term) && s.count >= count + 10
            })
            .await;
        assert_eq!(live[i].leadership.current().map(|t| t.token()), Some(old));
        let killed = replicas
            .iter_mut()
            .find(|r| r.identity == leader_id)
            .unwrap();
        let t0 = Instant::now();
        killed.kill();
        let live: Vec<&Replica> = replicas.iter().filter(|r| r.ctl.is_some()).collect();
        let (j, _) = wait_leader(&live, LEASE + Duration::from_secs(2)).await;
        let took = t0.elapsed();
        let new = live[j].leadership.current().unwrap().token();
        assert!(new > old, "round {round}: {new} after {old}");
        assert_ne!(live[j].identity, leader_id);
        times.push(took);
    }
    // The first term and the two that followed the kills.
    sampler
        .wait_until(
            "the sampler sees three terms",
            Duration::from_secs(10),
            |s| s.terms.len() >= 3,
        )
        .await;
    let samples = sampler.finish();
    check(&samples);
    eprintln!("kill failover times: {times:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resign_hands_over_in_under_three_seconds_and_standbys_keep_their_leases() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = etcd_or_skip("resign") else {
        return;
    };
    let mut replicas = three(&etcd, "resign-test");
    let sampler = Sampler::start(&replicas.iter().collect::<Vec<_>>());
    let (i, _) = wait_leader(
        &replicas.iter().collect::<Vec<_>>(),
        Duration::from_secs(10),
    )
    .await;
    let old = replicas[i].leadership.current().unwrap().token();
    // Standbys campaign for more than twice the lease: their leases are kept alive all
    // along (one grant each, no failure), so no phantom leader appears.
    // The property is about time passing (a lease not kept alive expires after LEASE):
    // the wait is the input; each replica's recent renewal is the proof it was seen.
    tokio::time::sleep(LEASE * 2 + RETRY).await;
    for r in &replicas {
        let s = r.leadership.status();
        assert_eq!((s.lease_grants, s.failures), (1, 0), "{s:?}");
        assert!(
            s.since_renewal.is_some_and(|d| d < LEASE),
            "the lease is being renewed: {s:?}"
        );
    }
    assert_eq!(
        replicas[i].leadership.current().map(|t| t.token()),
        Some(old)
    );

    let t0 = Instant::now();
    replicas[i].resign().await.unwrap();
    assert!(replicas[i].leadership.current().is_none());
    assert_eq!(
        replicas[i].leadership.status().last_step_down,
        Some(StepDown::Resigned)
    );
    let live: Vec<&Replica> = replicas.iter().filter(|r| r.ctl.is_some()).collect();
    let (j, _) = wait_leader(&live, Duration::from_secs(3)).await;
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(3), "{took:?}");
    let new = live[j].leadership.current().unwrap().token();
    assert!(new > old);
    // The other standby sees the new leader through `Observe`.
    let other = live.iter().find(|r| !r.leadership.is_leader()).unwrap();
    let start = Instant::now();
    while other
        .leadership
        .status()
        .leader
        .map(|l| (l.identity, l.token))
        != Some((live[j].identity.clone(), new))
    {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            other.leadership.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let samples = sampler.finish();
    check(&samples);
    eprintln!("resign handover: {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_paused_the_leader_steps_down_by_the_renew_deadline_and_one_leads_after() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = etcd_or_skip("etcd-paused") else {
        return;
    };
    let replicas = three(&etcd, "pause-test");
    let all: Vec<&Replica> = replicas.iter().collect();
    let sampler = Sampler::start(&all);
    let (i, _) = wait_leader(&all, Duration::from_secs(10)).await;
    let old = replicas[i].leadership.current().unwrap().token();

    let t0 = Instant::now();
    etcd.signal("STOP");
    // Every renewal now fails: the leader stops within the renew deadline of its last
    // one, which was sent before the pause.
    let mut term_ended = None;
    while Instant::now() < t0 + Duration::from_secs(5) {
        if term_ended.is_none() && replicas.iter().all(|r| !r.leadership.is_leader()) {
            term_ended = Some(t0.elapsed());
        }
        if term_ended.is_some() {
            assert!(
                replicas.iter().all(|r| !r.leadership.is_leader()),
                "a replica acted while etcd was down"
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ended = term_ended.expect("the leader never stepped down");
    assert!(ended <= RENEW + Duration::from_millis(100), "{ended:?}");
    let s = replicas[i].leadership.status();
    assert_eq!(s.last_step_down, Some(StepDown::RenewDeadline), "{s:?}");
    assert!(s.failures > 0 && s.last_error.is_some(), "{s:?}");

    etcd.signal("CONT");
    let (j, after) = wait_leader(&all, Duration::from_secs(15)).await;
    let new = replicas[j].leadership.current().unwrap().token();
    assert!(new > old);
    let samples = sampler.finish();
    check(&samples);
    eprintln!("etcd paused 5 s: term ended after {ended:?}; a leader {after:?} after resuming");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_killed_and_restarted_nobody_leads_meanwhile_and_one_leads_after() {
    let _serial = SERIAL.lock().await;
    let Some(mut etcd) = etcd_or_skip("etcd-restart") else {
        return;
    };
    let replicas = three(&etcd, "restart-test");
    let all: Vec<&Replica> = replicas.iter().collect();
    let sampler = Sampler::start(&all);
    let (i, _) = wait_leader(&all, Duration::from_secs(10)).await;
    let old = replicas[i].leadership.current().unwrap().token();

    let t0 = Instant::now();
    etcd.kill();
    while Instant::now() < t0 + Duration::from_secs(5) {
        if t0.elapsed() > RENEW + Duration::from_millis(100) {
            assert!(
                replicas.iter().all(|r| !r.leadership.is_leader()),
                "a replica acted while etcd was down"
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    etcd.launch().unwrap();
    let (j, after) = wait_leader(&all, Duration::from_secs(20)).await;
    let new = replicas[j].leadership.current().unwrap().token();
    assert!(new > old);
    let samples = sampler.finish();
    check(&samples);
    eprintln!("etcd down 5 s: a leader {after:?} after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_leader_does_not_act_on_resuming() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = etcd_or_skip("stall") else {
        return;
    };
    let replicas = three(&etcd, "stall-test");
    let all: Vec<&Replica> = replicas.iter().collect();
    let sampler = Sampler::start(&all);
    let (i, _) = wait_leader(&all, Duration::from_secs(10)).await;
    let old = replicas[i].leadership.current().unwrap().token();

    // The leader's runtime is blocked past its lease: no renewal goes out, etcd expires
    // the lease and another replica takes over while it is stalled.
    let stall = replicas[i].stall(LEASE + Duration::from_secs(2));
    let others: Vec<&Replica> = replicas
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != i)
        .map(|(_, r)| r)
        .collect();
    let watch_takeover = async {
        let (j, took) = wait_leader(&others, LEASE + Duration::from_secs(2)).await;
        (others[j].leadership.current().map(|t| t.token()), took)
    };
    let (acted_on_resume, (new, took)) = tokio::join!(stall, watch_takeover);
    assert!(
        !acted_on_resume,
        "the stalled leader said it may act on resuming"
    );
    let new = new.expect("the new leader's term");
    assert!(new > old);
    // After resuming, the old leader learns of the new term, and never acts again under
    // its old one; the sampler checks the two never overlap.
    let start = Instant::now();
    loop {
        assert_ne!(
            replicas[i].leadership.current().map(|t| t.token()),
            Some(old)
        );
        let s = replicas[i].leadership.status();
        if s.leader.as_ref().is_some_and(|l| l.token >= new) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the resumed leader never saw the new term: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let samples = sampler.finish();
    check(&samples);
    eprintln!("stalled leader replaced after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_reported_and_retried() {
    let _serial = SERIAL.lock().await;
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = Replica::start(
        "unreachable",
        "a",
        EtcdConfig::new([format!("http://127.0.0.1:{port}")])
            .unwrap()
            .connect_timeout(Duration::from_millis(500))
            .request_timeout(Duration::from_millis(500)),
    );
    let start = Instant::now();
    loop {
        let s = r.leadership.status();
        if s.failures >= 3 {
            assert!(!s.is_leader);
            let err = s.last_error.unwrap();
            assert!(
                matches!(
                    err,
                    ElectionError::Unreachable { .. } | ElectionError::Timeout { .. }
                ),
                "{err}"
            );
            assert!(err.to_string().contains(&port.to_string()), "{err}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_with_authentication_refuses_no_credentials_clearly_and_accepts_good_ones() {
    let _serial = SERIAL.lock().await;
    let Some(etcd) = etcd_or_skip("auth") else {
        return;
    };
    etcd.enable_auth("pw-1").unwrap();
    let anonymous = Replica::start("auth-test", "anon", EtcdConfig::new([etcd.url()]).unwrap());
    let start = Instant::now();
    loop {
        let s = anonymous.leadership.status();
        if s.failures >= 2 {
            assert!(!s.is_leader);
            let err = s.last_error.unwrap();
            assert!(matches!(err, ElectionError::Unauthenticated(_)), "{err:?}");
            assert!(err.to_string().contains("user and password"), "{err}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wrong = Replica::start(
        "auth-test",
        "wrong",
        EtcdConfig::new([etcd.url()])
            .unwrap()
            .credentials("root", "nope"),
    );
    let root = Replica::start(
        "auth-test",
        "root",
        EtcdConfig::new([etcd.url()])
            .unwrap()
            .credentials("root", "pw-1"),
    );
    // A user without access to the election's keys.
    let limited = Replica::start(
        "auth-test",
        "limited",
        EtcdConfig::new([etcd.url()])
            .unwrap()
            .credentials("limited", "pw-1"),
    );
    let (k, _) = wait_leader(
        &[&anonymous, &wrong, &limited, &root],
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(k, 3, "only the replica with good credentials leads");
    // Each refused replica comes to the error that says what to do. etcd ends a denied
    // observation without a status; the elector then reads the keys to learn why, but a
    // campaign's own error may come first: the test waits, with a deadline, for the
    // error it names.
    let start = Instant::now();
    loop {
        let s = limited.leadership.status();
        if let Some(err @ ElectionError::PermissionDenied(_)) = &s.last_error {
            assert!(err.to_string().contains("grant the user"), "{err}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = Instant::now();
    loop {
        let s = wrong.leadership.status();
        if matches!(s.last_error, Some(ElectionError::Unauthenticated(_))) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
