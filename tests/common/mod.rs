//! Helpers shared by the integration tests: a router on port 0, a client that trusts it,
//! condition waits with a deadline, and the cache-versus-truth comparison.
#![allow(dead_code)]

pub mod raw;

use std::collections::BTreeMap;
use std::time::Duration;

use hypersh::Informer;
use hypersh::reflector::BackoffConfig;
use hypersh::watch::{Client, ClientConfig, Container, Credentials, TlsMode};
use hypersh_apirouter::{Router, RouterConfig};

/// How long any condition may take before a test fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The path of a built example (`target/<profile>/examples/<name>`): `cargo test`
/// builds the examples beside the test binaries.
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = profile_dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built; run through cargo test",
        path.display()
    );
    path
}

/// Starts a router on 127.0.0.1:0 with self-signed TLS.
pub async fn router(config: RouterConfig) -> Router {
    Router::start(config).await.expect("router starts")
}

/// A client config that trusts the router's certificate, with short timeouts so
/// dead connections are found within a test's patience.
pub fn config_for(router: &Router) -> ClientConfig {
    let creds = router.credentials()[0].clone();
    config_with(router, creds)
}

/// As [`config_for`] with other credentials.
pub fn config_with(router: &Router, creds: Credentials) -> ClientConfig {
    let ca = router
        .ca_pem()
        .expect("self-signed router has a CA")
        .as_bytes()
        .to_vec();
    ClientConfig::new(&router.base_url(), creds)
        .expect("router URL parses")
        .tls(TlsMode::CustomCa(ca))
        .with_ping_interval(Duration::from_millis(200))
        .with_idle_timeout(Duration::from_secs(1))
        .connect_timeout(Duration::from_secs(2))
        .request_timeout(Duration::from_secs(2))
}

/// A client for [`config_for`].
pub fn client_for(router: &Router) -> Client {
    Client::new(config_for(router)).expect("client builds")
}

/// Backoff for tests: quick, without jitter so timing is predictable.
pub fn fast_backoff() -> BackoffConfig {
    BackoffConfig::default()
        .initial(Duration::from_millis(20))
        .max(Duration::from_millis(300))
        .jitter(false)
}

/// An informer on `router` with test settings.
pub fn informer(router: &Router) -> Informer {
    informer_on(client_for(router))
}

/// An informer on `router` with a [`Replica`] of its handler calls, once it has synced.
pub async fn synced_informer(router: &Router) -> (Informer, Replica) {
    let informer = informer(router);
    let replica = Replica::attach(&informer);
    informer
        .wait_synced(PATIENCE)
        .await
        .expect("the informer syncs");
    (informer, replica)
}

/// An informer on `client` with test settings ([`fast_backoff`]).
pub fn informer_on(client: Client) -> Informer {
    Informer::builder(client)
        .backoff(fast_backoff())
        .build()
        .expect("informer builds")
}

/// Polls `check` until it returns `Ok`, failing with its last message after [`PATIENCE`].
pub async fn eventually<F>(what: &str, mut check: F)
where
    F: FnMut() -> Result<(), String>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match check() {
            Ok(()) => return,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out waiting for {what}: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// The fields a cache must agree on with the server. `Status` is left out: it is a
/// human-readable text that ages ("Up 3 seconds").
fn comparable(c: &Container) -> Container {
    c.clone().into_builder().status("").build()
}

/// `Ok` when the informer's cache equals the router's list, else a short diff.
pub fn cache_matches(informer: &Informer, router: &Router) -> Result<(), String> {
    let cache = by_id(informer.store().list().iter().map(|c| &**c));
    diff(&cache, &truth(router))
}

/// Containers by id, comparable (see [`comparable`]).
fn by_id<'a>(containers: impl Iterator<Item = &'a Container>) -> BTreeMap<String, Container> {
    containers
        .map(|c| (c.id().to_string(), comparable(c)))
        .collect()
}

/// The router's containers, as [`by_id`].
fn truth(router: &Router) -> BTreeMap<String, Container> {
    by_id(router.runtime().list(true).iter())
}

/// A short description of how two id-keyed maps differ.
pub fn diff(
    cache: &BTreeMap<String, Container>,
    truth: &BTreeMap<String, Container>,
) -> Result<(), String> {
    if cache == truth {
        return Ok(());
    }
    let missing: Vec<_> = truth.keys().filter(|k| !cache.contains_key(*k)).collect();
    let extra: Vec<_> = cache.keys().filter(|k| !truth.contains_key(*k)).collect();
    let differ: Vec<String> = truth
        .iter()
        .filter_map(|(k, t)| {
            cache
                .get(k)
                .filter(|c| *c != t)
                .map(|c| format!("{k}: cache {c:?} vs truth {t:?}"))
        })
        .take(3)
        .collect();
    Err(format!(
        "{} cached vs {} true; missing {missing:?}; extra {extra:?}; differing {differ:?}",
        cache.len(),
        truth.len()
    ))
}

/// A copy of the cache rebuilt only from what a handler was told: if it equals the
/// truth, the handler saw a delete for every container that vanished.
#[derive(Clone, Default)]
pub struct Replica {
    pub objects: std::sync::Arc<std::sync::Mutex<BTreeMap<String, Container>>>,
    pub tombstones: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl hypersh::store::Handler<Container> for Replica {
    fn on_add(&mut self, obj: &std::sync::Arc<Container>) {
        let prev = self.lock().insert(obj.id().to_string(), comparable(obj));
        assert!(
            prev.is_none(),
            "add for a container the handler already had: {}",
            obj.id()
        );
    }
    fn on_update(&mut self, old: &std::sync::Arc<Container>, new: &std::sync::Arc<Container>) {
        assert_eq!(old.id(), new.id());
        let prev = self.lock().insert(new.id().to_string(), comparable(new));
        assert!(
            prev.is_some(),
            "update for a container the handler never saw: {}",
            new.id()
        );
    }
    fn on_delete(&mut self, obj: &hypersh::store::Deleted<Container>) {
        if obj.is_final_state_unknown() {
            self.tombstones
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let prev = self.lock().remove(obj.key());
        assert!(
            prev.is_some(),
            "delete for a container the handler never saw: {}",
            obj.key()
        );
    }
}

impl Replica {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Container>> {
        self.objects
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a replica on the informer.
    pub fn attach(informer: &Informer) -> Self {
        let replica = Self::default();
        informer.register(replica.clone());
        replica
    }

    /// `Ok` when the replica equals the router's list.
    pub fn matches(&self, router: &Router) -> Result<(), String> {
        diff(&self.lock(), &truth(router)).map_err(|e| format!("handler replica: {e}"))
    }
}

/// Waits until both the cache and a handler replica equal the router's list.
pub async fn converged(informer: &Informer, replica: &Replica, router: &Router) {
    eventually("the cache and the handlers to converge", || {
        cache_matches(informer, router)?;
        replica.matches(router)
    })
    .await;
}

/// An `informer --dump-cache` file: each container with the `"Host"` it carries (which
/// must be a string), in the file's order.
pub fn read_host_dump(path: &std::path::Path) -> Vec<(String, hypersh::Container)> {
    let values: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(path).expect("the dump is written"))
            .expect("a JSON array");
    values
        .into_iter()
        .map(|mut value| {
            let host = value
                .as_object_mut()
                .and_then(|o| o.remove("Host"))
                .and_then(|h| h.as_str().map(str::to_owned))
                .unwrap_or_else(|| panic!("a dumped container without \"Host\": {value}"));
            let container = serde_json::from_value(value).expect("a container of the list");
            (host, container)
        })
        .collect()
}

/// The containers of a dump whose every `"Host"` is `host`.
pub fn read_dump_of(path: &std::path::Path, host: &str) -> Vec<hypersh::Container> {
    read_host_dump(path)
        .into_iter()
        .map(|(h, c)| {
            assert_eq!(h, host, "\"Host\" is the URL as given on the command line");
            c
        })
        .collect()
}

/// A directory under the system's temporary directory, named by the process and `tag`,
/// made empty on creation and removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Makes `$TMP/<pid>-<tag>`, empty.
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary directory");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
