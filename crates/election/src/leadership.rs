//! What a controller asks of the election: "may I act now, and under which term?"

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::ElectionConfig;
use crate::machine::{Command, Input, Machine};
use crate::metrics;
use crate::status::ElectionStatus;

/// A term's fencing token: the revision at which the leader's key was created on the
/// server. Every new term has a larger one than every term before it, in the whole
/// election, so a system that remembers the largest token it has seen can refuse writes
/// from a leader that has been replaced ("fencing").
///
/// ```
/// use hypersh_election::FencingToken;
///
/// let old = FencingToken::new(41);
/// let new = FencingToken::new(57);
/// assert!(new > old);
/// assert_eq!(new.to_string(), "57");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(u64);

impl FencingToken {
    /// A token of value `n` (for tests and for reading one back from storage).
    #[must_use]
    pub const fn new(n: u64) -> Self {
        Self(n)
    }

    /// Its value.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An election's leader as some replica saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// Its identity.
    pub identity: String,
    /// Its term's fencing token.
    pub token: FencingToken,
}

/// Where this replica stands, as published on [`Leadership::subscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Leading the term of this token.
    Leader(FencingToken),
    /// Not leading (campaigning, or waiting to retry).
    Standby,
    /// Stopped: resigned or dropped.
    Stopped,
}

/// Why a term ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepDown {
    /// No renewal was proven within the renew deadline (the server unreachable, or this
    /// process paused).
    RenewDeadline,
    /// The server said the lease is gone.
    LeaseLost,
    /// Another replica leads a newer term.
    Superseded,
    /// A graceful stop: the term was resigned.
    Resigned,
    /// The elector was dropped.
    Stopped,
}

impl fmt::Display for StepDown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RenewDeadline => "no lease renewal proven within the renew deadline",
            Self::LeaseLost => "the lease is gone on the server",
            Self::Superseded => "another replica leads a newer term",
            Self::Resigned => "resigned",
            Self::Stopped => "the elector stopped",
        })
    }
}

/// The machine and what watches it, shared by the shell and every handle.
pub(crate) struct Shared {
    machine: Mutex<Machine>,
    role: watch::Sender<Role>,
    labels: [(&'static str, String); 2],
}

impl Shared {
    pub(crate) fn new(config: ElectionConfig) -> Arc<Self> {
        let labels = [
            ("election", config.name().to_owned()),
            ("identity", config.identity().to_owned()),
        ];
        metrics::describe(&labels);
        Arc::new(Self {
            machine: Mutex::new(Machine::new(config)),
            role: watch::Sender::new(Role::Standby),
            labels,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Machine> {
        self.machine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Steps the machine at the current time. The clock is read under the lock, so every
    /// [`Leadership::current`] is ordered with every step: once one has seen a deadline
    /// pass, no later step can extend that term.
    pub(crate) fn step(&self, input: Input) -> Vec<Command> {
        let (commands, role, failed, error) = {
            let mut machine = self.lock();
            let before = machine.failures();
            let before_error = machine.last_error().cloned();
            let commands = machine.step(Instant::now(), input);
            let failed = machine.failures() - before;
            let error = machine.last_error().cloned();
            let error = (failed > 0).then_some(error).flatten();
            let changed = error != before_error;
            (
                commands,
                machine.role(Instant::now()),
                failed,
                error.map(|e| (e, changed)),
            )
        };
        let [(_, name), (_, identity)] = &self.labels;
        for c in &commands {
            match c {
                Command::BecameLeader { token } => {
                    tracing::info!(election = %name, %identity, term = %token, "became leader");
                    metrics::became_leader(&self.labels, *token);
                }
                Command::SteppedDown { token, reason } => {
                    tracing::warn!(election = %name, %identity, term = %token, %reason, "stopped leading");
                    metrics::stepped_down(&self.labels);
                }
                _ => {}
            }
        }
        if failed > 0 {
            metrics::failed(&self.labels, failed);
            if let Some((error, changed)) = error {
                if changed {
                    tracing::warn!(election = %name, %identity, %error, "election call failed (retrying)");
                } else {
                    tracing::debug!(election = %name, %identity, %error, "election call failed (retrying)");
                }
            }
        }
        self.role.send_if_modified(|r| {
            let modified = *r != role;
            *r = role;
            modified
        });
        commands
    }

    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn timing(&self) -> crate::Timing {
        self.lock().config().timing()
    }

    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        self.lock().wake_at()
    }

    fn current(&self) -> Option<(crate::FencingToken, Instant)> {
        let machine = self.lock();
        machine.current(Instant::now())
    }
}

/// A replica's view of its election, for the code that must act only while leading.
/// Cheap to clone; every clone sees the same election.
///
/// [`current`](Self::current) is the truth, checked against the monotonic clock at each
/// call: it says no from the moment the renew deadline has passed, even if the task that
/// talks to the server has not run since (a paused process sees that first on resuming).
/// [`subscribe`](Self::subscribe) tells when to look.
///
/// ```
/// use hypersh_election::{ElectionConfig, FakeElection, FencingToken};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), hypersh_election::ConfigError> {
/// let election = FakeElection::new(ElectionConfig::new("ctl", "a")?);
/// let leadership = election.leadership();
/// assert!(leadership.current().is_none());
/// election.win(FencingToken::new(7));
/// let term = leadership.current().expect("leading");
/// assert_eq!(term.token(), FencingToken::new(7));
/// election.lose();
/// assert!(!term.is_current());
/// term.ended().await; // returns at once: the term is over
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Leadership {
    shared: Arc<Shared>,
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("role", &*self.shared.role.borrow())
            .finish_non_exhaustive()
    }
}

impl Leadership {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// The term this replica may act for now, or `None`: ask before starting each piece
    /// of work, and give it the term (its token fences the work's writes; its
    /// [`ended`](Term::ended) cancels it). A lock and a clock read: cheap, synchronous.
    #[must_use]
    pub fn current(&self) -> Option<Term> {
        self.shared.current().map(|(token, _)| Term {
            token,
            shared: Arc::clone(&self.shared),
        })
    }

    /// Whether this replica may act now (as `current().is_some()`).
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.shared.current().is_some()
    }

    /// The role as last published: changes when a term begins or ends. A term can end by
    /// its deadline before this says so; [`current`](Self::current) and
    /// [`Term::ended`] do not wait for that.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.shared.role.subscribe()
    }

    /// A snapshot of the election as this replica sees it.
    #[must_use]
    pub fn status(&self) -> ElectionStatus {
        self.shared.lock().status(Instant::now())
    }
}

/// One term of leadership, given to each piece of work started under it.
#[derive(Clone)]
pub struct Term {
    token: FencingToken,
    shared: Arc<Shared>,
}

impl fmt::Debug for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Term")
            .field("token", &self.token)
            .field("current", &self.is_current())
            .finish()
    }
}

impl Term {
    /// The fencing token: write it with every change made to an outside system, and have
    /// that system refuse a token smaller than the largest it has seen.
    #[must_use]
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// Whether this term still holds now (check before each write that cannot be fenced).
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.deadline().is_some()
    }

    /// Until when this term holds unless renewed (the renew deadline, which moves on with
    /// each renewal), or `None` once it has ended.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.shared
            .current()
            .and_then(|(token, deadline)| (token == self.token).then_some(deadline))
    }

    /// Completes when this term ends: a deadline that passed without a renewal (waited for
    /// here, on this task's timer, not on the elector's), a lost lease, a newer leader, a
    /// resign. Run each piece of work against it to cancel the work by the deadline.
    pub async fn ended(&self) {
        let mut role = self.shared.role.subscribe();
        loop {
            let Some(deadline) = self.deadline() else {
                return;
            };
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => {}
                changed = role.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }
}
