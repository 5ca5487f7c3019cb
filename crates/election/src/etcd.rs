//! The shell on etcd (feature `etcd`): the machine's commands as calls to etcd's election
//! API (`Campaign`, `Leader`, `Observe`, `Resign`) and leases (`LeaseGrant`,
//! `LeaseKeepAlive`, `LeaseRevoke`), through the `etcd-client` crate.
//!
//! Each candidate holds its own lease, granted with the lease duration and kept alive every
//! retry period *while it campaigns* (a campaign that outlives its lease would otherwise
//! return to a replica whose key is gone). A returned campaign is checked with `Leader`:
//! the election's leader key must be this replica's key, created at the revision the
//! campaign returned — that revision is the term's [`FencingToken`].
//!
//! ```no_run
//! use hypersh_election::ElectionConfig;
//! use hypersh_election::etcd::{EtcdConfig, Elector};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let elector = Elector::start(
//!     ElectionConfig::new("billing-controller", "replica-a")?,
//!     EtcdConfig::new(["http://127.0.0.1:2379"])?,
//! )?;
//! let leadership = elector.leadership();
//! let mut role = leadership.subscribe();
//! role.changed().await?;
//! if let Some(term) = leadership.current() {
//!     println!("leading, term {}", term.token());
//! }
//! elector.resign().await?; // a graceful stop: the next replica leads within moments
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, LeaderKey, LeaseKeepAliveStream, LeaseKeeper, ResignOptions,
};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::config::{ConfigError, ElectionConfig};
use crate::error::ElectionError;
use crate::leadership::{FencingToken, LeaderInfo, Leadership, Shared};
use crate::machine::{Command, Input, LeaseId};

/// How long connecting (and authenticating) may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a grant, revoke, resign or leader check may take (a campaign waits as long
/// as another replica leads; a keep-alive gets one retry period).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Leader changes and call results waiting for the elector's loop, at most.
pub const EVENT_QUEUE: usize = 64;

/// How to reach etcd.
///
/// Plain `http://` endpoints only: this build has no TLS for etcd (the workspace keeps one
/// TLS stack, OpenSSL; `etcd-client`'s `tls-openssl` feature would be the way to add it).
#[derive(Clone)]
pub struct EtcdConfig {
    endpoints: Vec<String>,
    credentials: Option<(String, String)>,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl std::fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl EtcdConfig {
    /// The client endpoints (`http://HOST:PORT`) of one etcd cluster.
    ///
    /// # Errors
    /// [`ConfigError::Endpoint`] for no endpoint, an `https://` endpoint (no TLS in this
    /// build), or one that is not `http://HOST:PORT`.
    pub fn new<I, S>(endpoints: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let endpoints: Vec<String> = endpoints.into_iter().map(Into::into).collect();
        if endpoints.is_empty() {
            return Err(ConfigError::Endpoint {
                endpoint: String::new(),
                reason: "no endpoint given: name at least one http://HOST:PORT".into(),
            });
        }
        for e in &endpoints {
            check_endpoint(e)?;
        }
        Ok(Self {
            endpoints,
            credentials: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        })
    }

    /// Authenticates as `user` (etcd with authentication enabled).
    #[must_use]
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Sets how long connecting may take ([`DEFAULT_CONNECT_TIMEOUT`]).
    #[must_use]
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets how long a grant, revoke, resign or leader check may take
    /// ([`DEFAULT_REQUEST_TIMEOUT`]).
    #[must_use]
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.request_timeout = d;
        self
    }

    /// The endpoints.
    #[must_use]
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }
}

fn check_endpoint(e: &str) -> Result<(), ConfigError> {
    let bad = |reason: &str| ConfigError::Endpoint {
        endpoint: e.to_owned(),
        reason: reason.to_owned(),
    };
    if e.starts_with("https://") {
        return Err(bad(
            "https is not supported: this build has no TLS for etcd; use http:// on a trusted network",
        ));
    }
    let Some(rest) = e.strip_prefix("http://") else {
        return Err(bad("write it as http://HOST:PORT"));
    };
    let hostport = rest.trim_end_matches('/');
    match hostport.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(())
        }
        _ => Err(bad("write it as http://HOST:PORT, with a port")),
    }
}

enum Request {
    Resign(oneshot::Sender<Option<ElectionError>>),
}

/// A running replica of an election on etcd: campaigns, leads, renews, steps down and
/// campaigns again until it is resigned or dropped.
///
/// Dropping it stops campaigning at once *without* telling etcd (as a crash would: the
/// lease expires after the lease duration); [`resign`](Self::resign) hands over at once.
pub struct Elector {
    shared: Arc<Shared>,
    requests: mpsc::Sender<Request>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("leadership", &Leadership::new(Arc::clone(&self.shared)))
            .finish_non_exhaustive()
    }
}

impl Elector {
    /// Starts campaigning, on the current tokio runtime.
    ///
    /// # Errors
    /// [`ConfigError::NoRuntime`] outside a tokio runtime. Everything that can go wrong
    /// with etcd itself is retried and reported in the status instead.
    pub fn start(election: ElectionConfig, etcd: EtcdConfig) -> Result<Self, ConfigError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigError::NoRuntime)?;
        let shared = Shared::new(election.clone());
        let (requests, requests_rx) = mpsc::channel(4);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let shell = Shell {
            shared: Arc::clone(&shared),
            calls: Calls {
                connector: Arc::new(Connector {
                    config: etcd,
                    client: Mutex::new(None),
                }),
                name: election.name().to_owned(),
                identity: election.identity().to_owned(),
                events: events_tx,
                keep_alive: Arc::new(Mutex::new(None)),
                won: Arc::new(std::sync::Mutex::new(None)),
                retry_period: election.timing().retry_period(),
            },
            events,
            requests: requests_rx,
            campaign: None,
            observe: None,
            others: Vec::new(),
            resigned: None,
        };
        let task = runtime.spawn(shell.run());
        Ok(Self {
            shared,
            requests,
            task: Some(task),
        })
    }

    /// The handle for the code that acts only while leading.
    #[must_use]
    pub fn leadership(&self) -> Leadership {
        Leadership::new(Arc::clone(&self.shared))
    }

    /// A graceful stop: the term (if any) ends here first ([`Leadership::current`] says no
    /// from now on), then the leader key is resigned and the lease revoked, so the next
    /// replica leads within moments rather than after the lease. Call it once the work
    /// started under the term has finished.
    ///
    /// # Errors
    /// The etcd error if the resign or the revoke did not go through within the request
    /// timeout (the lease then expires on its own).
    pub async fn resign(mut self) -> Result<(), ElectionError> {
        let (tx, rx) = oneshot::channel();
        if self.requests.send(Request::Resign(tx)).await.is_err() {
            return Ok(());
        }
        let result = rx.await.ok().flatten();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        result.map_or(Ok(()), Err)
    }
}

impl Drop for Elector {
    fn drop(&mut self) {
        self.shared.step(Input::Abandon);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Connects once, lazily, and keeps the client (which reconnects by itself).
struct Connector {
    config: EtcdConfig,
    client: Mutex<Option<Client>>,
}

impl Connector {
    async fn client(&self) -> Result<Client, ElectionError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = &*slot {
            return Ok(client.clone());
        }
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.config.connect_timeout)
            // HTTP/2 pings notice a dead connection under a campaign that waits for long.
            .with_keep_alive(self.config.request_timeout, self.config.request_timeout)
            .with_keep_alive_while_idle(true);
        if let Some((user, password)) = &self.config.credentials {
            options = options
                .with_user(user.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        let connect = Client::connect(&self.config.endpoints, Some(options));
        let client = match timeout(self.config.connect_timeout, connect).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => return Err(self.classify(e)),
            Err(_) => {
                return Err(ElectionError::Unreachable {
                    endpoints: self.config.endpoints.join(","),
                    detail: format!("no connection within {:?}", self.config.connect_timeout),
                });
            }
        };
        *slot = Some(client.clone());
        Ok(client)
    }

    fn classify(&self, e: etcd_client::Error) -> ElectionError {
        classify(e, &self.config.endpoints.join(","))
    }

    fn unanswered(&self, op: &'static str, timeout: Duration) -> ElectionError {
        ElectionError::Timeout {
            op,
            timeout,
            endpoints: self.config.endpoints.join(","),
        }
    }
}

/// gRPC status codes (the numbers are the protocol's).
const NOT_FOUND: i32 = 5;
const PERMISSION_DENIED: i32 = 7;
const UNAVAILABLE: i32 = 14;
const UNAUTHENTICATED: i32 = 16;

fn classify(e: etcd_client::Error, endpoints: &str) -> ElectionError {
    use etcd_client::Error as E;
    match e {
        E::GRpcStatus(status) => {
            let message = status.message().to_owned();
            let code = status.code() as i32;
            if message.contains("lease not found") {
                ElectionError::LeaseNotFound
            } else if code == UNAUTHENTICATED
                || message.contains("user name is empty")
                || message.contains("invalid auth token")
                || message.contains("authentication failed")
            {
                ElectionError::Unauthenticated(message)
            } else if code == PERMISSION_DENIED || message.contains("permission denied") {
                ElectionError::PermissionDenied(message)
            } else if code == UNAVAILABLE {
                ElectionError::Unreachable {
                    endpoints: endpoints.to_owned(),
                    detail: message,
                }
            } else if code == NOT_FOUND {
                ElectionError::Server(format!("not found: {message}"))
            } else {
                ElectionError::Server(message)
            }
        }
        E::TransportError(t) => ElectionError::Unreachable {
            endpoints: endpoints.to_owned(),
            detail: error_chain(&t),
        },
        E::IoError(io) => ElectionError::Unreachable {
            endpoints: endpoints.to_owned(),
            detail: io.to_string(),
        },
        E::LeaseKeepAliveError(m) if m.contains("not found") => ElectionError::LeaseNotFound,
        other => ElectionError::Server(other.to_string()),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// The lease's keep-alive stream, kept between renewals.
struct KeepAliveConn {
    lease: LeaseId,
    keeper: LeaseKeeper,
    stream: LeaseKeepAliveStream,
}

/// Everything a call needs, cloned into the task that makes it.
#[derive(Clone)]
struct Calls {
    connector: Arc<Connector>,
    name: String,
    identity: String,
    events: mpsc::Sender<Input>,
    keep_alive: Arc<Mutex<Option<KeepAliveConn>>>,
    /// The leader key of the last campaign won, for resigning it.
    won: Arc<std::sync::Mutex<Option<LeaderKey>>>,
    retry_period: Duration,
}

impl Calls {
    async fn send(&self, input: Input) {
        // The loop is gone only when the elector stops: nothing to tell then.
        let _ = self.events.send(input).await;
    }

    fn request_timeout(&self) -> Duration {
        self.connector.config.request_timeout
    }

    async fn grant(self, ttl: Duration) {
        let sent_at = Instant::now();
        let bound = self.request_timeout();
        let result = timeout(bound, async {
            let mut client = self.connector.client().await?;
            let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
            client
                .lease_grant(secs, None)
                .await
                .map_err(|e| self.connector.classify(e))
        })
        .await;
        let input = match result {
            Ok(Ok(resp)) => Input::Granted {
                lease: resp.id(),
                ttl: Duration::from_secs(u64::try_from(resp.ttl()).unwrap_or(0)),
                sent_at,
            },
            Ok(Err(e)) => Input::GrantFailed(e),
            Err(_) => Input::GrantFailed(self.connector.unanswered("lease grant", bound)),
        };
        self.send(input).await;
    }

    async fn keep_alive(self, lease: LeaseId, ttl: Duration) {
        let sent_at = Instant::now();
        // One retry period: the next renewal is due then anyway.
        let bound = self.retry_period;
        let mut conn = self.keep_alive.lock().await;
        let result = timeout(bound, async {
            if let Some(c) = conn.as_mut().filter(|c| c.lease == lease) {
                c.keeper
                    .keep_alive()
                    .await
                    .map_err(|e| self.connector.classify(e))?;
                match c.stream.message().await {
                    Ok(Some(resp)) if resp.ttl() > 0 => {
                        Ok(Duration::from_secs(u64::try_from(resp.ttl()).unwrap_or(0)))
                    }
                    Ok(Some(_)) => Err(ElectionError::LeaseNotFound),
                    Ok(None) => Err(ElectionError::Server("the keep-alive stream ended".into())),
                    Err(e) => Err(self.connector.classify(e)),
                }
            } else {
                let mut client = self.connector.client().await?;
                // Opening the stream sends a first keep-alive and waits for its answer.
                let (keeper, stream) = client
                    .lease_keep_alive(lease)
                    .await
                    .map_err(|e| self.connector.classify(e))?;
                *conn = Some(KeepAliveConn {
                    lease,
                    keeper,
                    stream,
                });
                Ok(ttl)
            }
        })
        .await;
        let input = match result {
            Ok(Ok(ttl)) => Input::KeptAlive {
                lease,
                ttl,
                sent_at,
            },
            Ok(Err(error)) => {
                *conn = None;
                Input::KeepAliveFailed {
                    lease,
                    sent_at,
                    error,
                }
            }
            Err(_) => {
                *conn = None;
                Input::KeepAliveFailed {
                    lease,
                    sent_at,
                    error: self.connector.unanswered("lease keep-alive", bound),
                }
            }
        };
        drop(conn);
        self.send(input).await;
    }

    async fn campaign(self, lease: LeaseId) {
        let input = match self.try_campaign(lease).await {
            Ok((key, token)) => {
                *self
                    .won
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(key);
                Input::Won { lease, token }
            }
            Err(error) => Input::CampaignFailed { lease, error },
        };
        self.send(input).await;
    }

    async fn try_campaign(
        &self,
        lease: LeaseId,
    ) -> Result<(LeaderKey, FencingToken), ElectionError> {
        let client = self.connector.client().await?;
        let mut election = client.election_client();
        // Waits while another replica leads: no timeout (the lease is kept alive meanwhile,
        // and the call is dropped if the lease is lost).
        let mut resp = election
            .campaign(self.name.as_str(), self.identity.as_str(), lease)
            .await
            .map_err(|e| self.connector.classify(e))?;
        let key = resp
            .take_leader()
            .ok_or_else(|| ElectionError::Server("the campaign answer has no leader key".into()))?;
        // The campaign also returns when this replica's key was deleted while it waited
        // (its lease expired or was revoked): check that the leader key is ours.
        let bound = self.request_timeout();
        let mut leader = timeout(bound, election.leader(self.name.as_str()))
            .await
            .map_err(|_| self.connector.unanswered("election leader", bound))?
            .map_err(|e| self.connector.classify(e))?;
        let kv = leader
            .take_kv()
            .ok_or_else(|| ElectionError::NotLeader("the election has no leader".into()))?;
        if kv.key() != key.key() || kv.create_revision() != key.rev() || kv.lease() != lease {
            return Err(ElectionError::NotLeader(format!(
                "the leader is {:?} created at revision {}",
                String::from_utf8_lossy(kv.value()),
                kv.create_revision()
            )));
        }
        let token = u64::try_from(key.rev())
            .map(FencingToken::new)
            .map_err(|_| ElectionError::Server(format!("bad revision {}", key.rev())))?;
        Ok((key, token))
    }

    async fn observe(self) {
        let error = match self.try_observe().await {
            Ok(()) => self.why_observation_ended().await,
            Err(e) => e,
        };
        self.send(Input::ObserveFailed(error)).await;
    }

    /// etcd ends an observation without a status when it cannot serve it (a user without
    /// read access to the election's keys among others): a read of those keys says why.
    async fn why_observation_ended(&self) -> ElectionError {
        let ended = || ElectionError::Server("the leader observation stream ended".into());
        let Ok(client) = self.connector.client().await else {
            return ended();
        };
        let bound = self.request_timeout();
        let mut kv = client.kv_client();
        let read = kv.get(
            self.name.as_str(),
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        );
        match timeout(bound, read).await {
            Ok(Err(e)) => self.connector.classify(e),
            Ok(Ok(_)) | Err(_) => ended(),
        }
    }

    async fn try_observe(&self) -> Result<(), ElectionError> {
        let client = self.connector.client().await?;
        let mut stream = client
            .election_client()
            .observe(self.name.as_str())
            .await
            .map_err(|e| self.connector.classify(e))?;
        while let Some(mut resp) = stream
            .message()
            .await
            .map_err(|e| self.connector.classify(e))?
        {
            let Some(kv) = resp.take_kv() else { continue };
            let Ok(token) = u64::try_from(kv.create_revision()) else {
                continue;
            };
            self.send(Input::Observed(LeaderInfo {
                identity: String::from_utf8_lossy(kv.value()).into_owned(),
                token: FencingToken::new(token),
            }))
            .await;
        }
        Ok(())
    }

    async fn revoke(self, lease: LeaseId) {
        let error = self.try_revoke(lease).await.err();
        self.send(Input::Revoked { lease, error }).await;
    }

    async fn try_revoke(&self, lease: LeaseId) -> Result<(), ElectionError> {
        let bound = self.request_timeout();
        let result = timeout(bound, async {
            let mut client = self.connector.client().await?;
            client
                .lease_revoke(lease)
                .await
                .map(drop)
                .map_err(|e| self.connector.classify(e))
        })
        .await
        .map_err(|_| self.connector.unanswered("lease revoke", bound))?;
        match result {
            Err(ElectionError::LeaseNotFound) => Ok(()),
            other => other,
        }
    }

    async fn resign(
        &self,
        lease: Option<LeaseId>,
        leader: Option<FencingToken>,
        abandoned: Vec<LeaseId>,
    ) -> Option<ElectionError> {
        let mut first_error = None;
        let key = self
            .won
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let (Some(token), Some(key)) = (leader, key)
            && u64::try_from(key.rev()).ok() == Some(token.get())
        {
            let bound = self.request_timeout();
            let result = timeout(bound, async {
                let client = self.connector.client().await?;
                client
                    .election_client()
                    .resign(Some(ResignOptions::new().with_leader(key)))
                    .await
                    .map(drop)
                    .map_err(|e| self.connector.classify(e))
            })
            .await
            .unwrap_or_else(|_| Err(self.connector.unanswered("election resign", bound)));
            first_error = result.err();
        }
        // Revoking the lease deletes the key too: a resign that failed is covered by it.
        for lease in lease.into_iter().chain(abandoned) {
            if let Err(e) = self.try_revoke(lease).await {
                first_error.get_or_insert(e);
            }
        }
        first_error
    }
}

/// The loop: steps the machine on each call result, request and timer, and does its
/// commands, each call in a task of its own.
struct Shell {
    shared: Arc<Shared>,
    calls: Calls,
    events: mpsc::Receiver<Input>,
    requests: mpsc::Receiver<Request>,
    campaign: Option<JoinHandle<()>>,
    observe: Option<JoinHandle<()>>,
    others: Vec<JoinHandle<()>>,
    resigned: Option<oneshot::Sender<Option<ElectionError>>>,
}

impl Shell {
    async fn run(mut self) {
        let mut commands = self.shared.step(Input::Start);
        loop {
            if self.execute(commands).await {
                break;
            }
            let wake = self.shared.wake_at();
            let input = tokio::select! {
                Some(input) = self.events.recv() => input,
                request = self.requests.recv() => match request {
                    Some(Request::Resign(reply)) => {
                        self.resigned = Some(reply);
                        Input::Resign
                    }
                    None => Input::Abandon,
                },
                () = sleep_until(wake) => Input::Tick,
            };
            commands = self.shared.step(input);
        }
        self.stop_all();
    }

    /// Does `commands`; true when the loop must end.
    async fn execute(&mut self, commands: Vec<Command>) -> bool {
        self.others.retain(|t| !t.is_finished());
        for command in commands {
            match command {
                Command::Grant { ttl } => self.spawn(self.calls.clone().grant(ttl)),
                Command::KeepAlive { lease } => {
                    let ttl = self.shared.timing().lease_duration();
                    self.spawn(self.calls.clone().keep_alive(lease, ttl));
                }
                Command::Campaign { lease } => {
                    if let Some(old) = self.campaign.take() {
                        old.abort();
                    }
                    self.campaign = Some(tokio::spawn(self.calls.clone().campaign(lease)));
                }
                Command::AbortCampaign => {
                    if let Some(old) = self.campaign.take() {
                        old.abort();
                    }
                }
                Command::Observe => {
                    if let Some(old) = self.observe.take() {
                        old.abort();
                    }
                    self.observe = Some(tokio::spawn(self.calls.clone().observe()));
                }
                Command::Revoke { lease } => self.spawn(self.calls.clone().revoke(lease)),
                Command::Resign {
                    lease,
                    leader,
                    abandoned,
                } => {
                    // The term is already over here; stop everything else before telling
                    // etcd, so that no renewal races the resign.
                    self.stop_all();
                    let result = self.calls.resign(lease, leader, abandoned).await;
                    let commands = self.shared.step(Input::Resigned(result.clone()));
                    if let Some(reply) = self.resigned.take() {
                        let _ = reply.send(result);
                    }
                    return commands.contains(&Command::Stop) || commands.is_empty();
                }
                Command::BecameLeader { .. } | Command::SteppedDown { .. } => {}
                Command::Stop => {
                    if let Some(reply) = self.resigned.take() {
                        let _ = reply.send(None);
                    }
                    return true;
                }
            }
        }
        false
    }

    fn spawn(&mut self, call: impl Future<Output = ()> + Send + 'static) {
        self.others.push(tokio::spawn(call));
    }

    fn stop_all(&mut self) {
        for task in self
            .campaign
            .take()
            .into_iter()
            .chain(self.observe.take())
            .chain(self.others.drain(..))
        {
            task.abort();
        }
    }
}

impl Drop for Shell {
    /// The elector's task ends (stopped, or aborted with the elector): its calls end too.
    fn drop(&mut self) {
        self.stop_all();
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        assert!(EtcdConfig::new(["http://127.0.0.1:2379"]).is_ok());
        assert!(EtcdConfig::new(["http://etcd-0.etcd:2379/", "http://[::1]:2379"]).is_ok());
        for bad in [
            "127.0.0.1:2379",
            "https://h:2379",
            "http://h",
            "http://:2379",
            "http://h:0",
        ] {
            let err = EtcdConfig::new([bad]).unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
        assert!(EtcdConfig::new(Vec::<String>::new()).is_err());
        let debug = format!(
            "{:?}",
            EtcdConfig::new(["http://h:1"])
                .unwrap()
                .credentials("u", "secret")
        );
        assert!(!debug.contains("secret"), "{debug}");
    }
}
