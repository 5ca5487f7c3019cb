//! The controller example's `--elect`: a replica of an election on etcd, its stderr lines
//! (`leader: ID term=N`, `standby: ID`), and its graceful stop (resign).
//!
//! Built with the facade's `etcd` feature (`cargo run --example controller --features etcd
//! -- --elect http://HOST:PORT ...`); without it `--elect` is a clear error.

use std::time::Duration;

use hypersh::election::{ElectionConfig, Leadership, Role, Term, Timing};

/// The election flags.
#[derive(clap::Args, Debug)]
pub struct ElectArgs {
    /// Run as one replica of several: campaign on this etcd (http://HOST:PORT); only the
    /// leader writes or deletes in --out-dir. Needs a build with `--features etcd`.
    #[arg(long, value_name = "URL")]
    pub elect: Option<String>,
    /// The election's name: replicas of one controller share it.
    #[arg(long, default_value = "hypersh-controller", requires = "elect")]
    pub election: String,
    /// This replica's identity (default: the host name and the process id).
    #[arg(long, requires = "elect")]
    pub identity: Option<String>,
    /// Seconds a leader's lease lasts without renewal (client-go's 15).
    #[arg(long, default_value_t = 15.0, value_name = "SECS", requires = "elect")]
    pub lease_duration: f64,
    /// Seconds after its last proven renewal a leader stops acting (client-go's 10).
    #[arg(long, default_value_t = 10.0, value_name = "SECS", requires = "elect")]
    pub renew_deadline: f64,
    /// Seconds between renewals and campaign retries (client-go's 2).
    #[arg(long, default_value_t = 2.0, value_name = "SECS", requires = "elect")]
    pub retry_period: f64,
}

/// A running replica: its leadership, and the task that says its role on stderr.
pub struct Replica {
    identity: String,
    leadership: Leadership,
    #[cfg(feature = "etcd")]
    elector: hypersh::election::etcd::Elector,
    announcer: tokio::task::JoinHandle<()>,
}

impl ElectArgs {
    /// Starts campaigning if `--elect` was given. `on_lead` runs at the start of each term,
    /// after its `leader:` line.
    pub fn start(
        &self,
        on_lead: impl Fn(Term) + Send + 'static,
    ) -> Result<Option<Replica>, String> {
        let Some(url) = &self.elect else {
            return Ok(None);
        };
        let seconds = |flag: &str, s: f64| super::common::seconds(flag, s);
        let timing = Timing::new(
            seconds("--lease-duration", self.lease_duration)?,
            seconds("--renew-deadline", self.renew_deadline)?,
            seconds("--retry-period", self.retry_period)?,
        )
        .map_err(|e| e.to_string())?;
        let identity = self.identity.clone().unwrap_or_else(default_identity);
        let config = ElectionConfig::new(&self.election, &identity)
            .map_err(|e| e.to_string())?
            .with_timing(timing);
        start(url, config, identity, on_lead).map(Some)
    }
}

#[cfg(feature = "etcd")]
fn start(
    url: &str,
    config: ElectionConfig,
    identity: String,
    on_lead: impl Fn(Term) + Send + 'static,
) -> Result<Replica, String> {
    use hypersh::election::etcd::{Elector, EtcdConfig};
    let etcd = EtcdConfig::new([url]).map_err(|e| format!("--elect {url}: {e}"))?;
    let elector = Elector::start(config, etcd).map_err(|e| e.to_string())?;
    let leadership = elector.leadership();
    let announcer = tokio::spawn(announce(leadership.clone(), identity.clone(), on_lead));
    Ok(Replica {
        identity,
        leadership,
        elector,
        announcer,
    })
}

#[cfg(not(feature = "etcd"))]
fn start(
    url: &str,
    _: ElectionConfig,
    _: String,
    _: impl Fn(Term) + Send + 'static,
) -> Result<Replica, String> {
    Err(format!(
        "--elect {url}: this build has no etcd client; build the example with \
         `cargo run --example controller --features etcd -- --elect ...` \
         (the etcd client's build needs protoc: Debian's protobuf-compiler)"
    ))
}

/// Says the role on stderr: `standby: ID` at the start and whenever a term ends,
/// `leader: ID term=N` when one begins. Returns once the replica stopped.
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
async fn announce(leadership: Leadership, identity: String, on_lead: impl Fn(Term)) {
    let mut role = leadership.subscribe();
    let mut leading = None;
    let mut said_standby = false;
    loop {
        let now = *role.borrow_and_update();
        match now {
            Role::Leader(token) if leading != Some(token) => {
                if leading.is_some() {
                    super::common::stderr_line(format_args!("standby: {identity}"));
                }
                leading = Some(token);
                super::common::stderr_line(format_args!("leader: {identity} term={token}"));
                if let Some(term) = leadership.current().filter(|t| t.token() == token) {
                    on_lead(term);
                }
            }
            Role::Leader(_) => {}
            Role::Standby | Role::Stopped => {
                if leading.take().is_some() || !said_standby {
                    super::common::stderr_line(format_args!("standby: {identity}"));
                }
                said_standby = true;
                if now == Role::Stopped {
                    return;
                }
            }
        }
        if role.changed().await.is_err() {
            return;
        }
    }
}

/// The host name and the process id.
fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let host = if host.is_empty() {
        "controller".to_owned()
    } else {
        host
    };
    format!("{host}-{}", std::process::id())
}

/// How long the last `standby:` line may take after a resign.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(1);

impl Replica {
    /// The leadership that gates the controller.
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// The term this replica leads now, if any.
    pub fn current(&self) -> Option<Term> {
        self.leadership.current()
    }

    /// Resigns (the next replica leads at once), and says `standby:` if it led.
    pub async fn resign(self) {
        #[cfg(feature = "etcd")]
        if let Err(e) = self.elector.resign().await {
            tracing::warn!(identity = %self.identity, error = %e, "resign failed; the lease expires on its own");
        }
        #[cfg(not(feature = "etcd"))]
        let _ = &self.identity;
        let mut announcer = self.announcer;
        if tokio::time::timeout(ANNOUNCE_TIMEOUT, &mut announcer)
            .await
            .is_err()
        {
            announcer.abort();
        }
    }
}
