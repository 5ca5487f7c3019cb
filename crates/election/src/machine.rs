//! The decisions of one replica in an election, with no I/O and no clock of its own.
//!
//! The shell feeds [`Machine::step`] what happened (a lease granted, a keep-alive answered
//! or failed, a campaign won, a leader observed, a timer) with the time it read on the
//! monotonic clock, and does the [`Command`]s it returns. [`Machine::current`] answers
//! "may this replica act now?" from the same state: a leader acts only while
//! `now < renewed_at + min(renew_deadline, lease ttl)`, where `renewed_at` is when the last
//! renewal that the server answered was *sent* — the server's own timer started later, so
//! the lease outlives that deadline by at least `lease_duration - renew_deadline`.
//!
//! Every step first checks that deadline: once `now` has passed it the term is over, even
//! if the input is a late answer that would have renewed it. So a replica that was paused
//! (SIGSTOP, a stall) sees, on resuming, a deadline in the past before anything else, and
//! never resumes a term that it could not prove throughout.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio::time::Instant;

use crate::config::{Backoff, ElectionConfig, MAX_PENDING_REVOKES};
use crate::error::ElectionError;
use crate::leadership::{FencingToken, LeaderInfo, Role, StepDown};
use crate::status::ElectionStatus;

#[cfg(test)]
mod tests;

/// A lease's id on the server.
pub(crate) type LeaseId = i64;

/// What the shell saw.
#[derive(Debug)]
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
pub(crate) enum Input {
    /// Begin: grant a lease, campaign, observe.
    Start,
    /// A lease was granted; its grant request was sent at `sent_at`.
    Granted {
        lease: LeaseId,
        ttl: Duration,
        sent_at: Instant,
    },
    /// The grant failed.
    GrantFailed(ElectionError),
    /// The server answered a keep-alive sent at `sent_at` with the lease's new TTL.
    KeptAlive {
        lease: LeaseId,
        ttl: Duration,
        sent_at: Instant,
    },
    /// A keep-alive sent at `sent_at` failed (`LeaseNotFound`: the lease is gone).
    KeepAliveFailed {
        lease: LeaseId,
        sent_at: Instant,
        error: ElectionError,
    },
    /// The campaign with `lease` returned, and the election's leader key was checked to be
    /// this replica's key, created at revision `token`.
    Won { lease: LeaseId, token: FencingToken },
    /// The campaign with `lease` failed (`NotLeader`: it returned without the key).
    CampaignFailed {
        lease: LeaseId,
        error: ElectionError,
    },
    /// The election's leader, as the server reported it.
    Observed(LeaderInfo),
    /// The observation stream failed or ended.
    ObserveFailed(ElectionError),
    /// A revoke of an abandoned lease finished (`None`: done).
    Revoked {
        lease: LeaseId,
        error: Option<ElectionError>,
    },
    /// A timer: the time in [`Machine::wake_at`] has come.
    Tick,
    /// A graceful stop was asked: end the term here, then resign on the server.
    Resign,
    /// The resign (and revoke) asked by [`Command::Resign`] finished.
    Resigned(Option<ElectionError>),
    /// The elector was dropped: stop without telling the server.
    Abandon,
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    /// Grant a lease of `ttl`; answer with `Granted` or `GrantFailed`.
    Grant { ttl: Duration },
    /// Send one keep-alive for `lease`; answer with `KeptAlive` or `KeepAliveFailed`.
    KeepAlive { lease: LeaseId },
    /// Campaign with `lease`; answer with `Won` or `CampaignFailed`.
    Campaign { lease: LeaseId },
    /// Drop the campaign in flight, if any (its lease is gone or abandoned).
    AbortCampaign,
    /// Open the stream of the election's leaders; report `Observed` / `ObserveFailed`.
    Observe,
    /// Revoke an abandoned lease (deleting its key); answer with `Revoked`.
    Revoke { lease: LeaseId },
    /// Resign the term `leader` (if any), revoke `lease` and the `abandoned` leases; answer
    /// with `Resigned`.
    Resign {
        lease: Option<LeaseId>,
        leader: Option<FencingToken>,
        abandoned: Vec<LeaseId>,
    },
    /// This replica's term `token` began.
    BecameLeader { token: FencingToken },
    /// This replica's term `token` ended.
    SteppedDown {
        token: FencingToken,
        reason: StepDown,
    },
    /// Nothing more to do: end the shell.
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lease {
    id: LeaseId,
    ttl: Duration,
    /// When the last renewal the server answered (or the grant) was sent.
    renewed_at: Instant,
    keep_alive: KeepAlive,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeepAlive {
    DueAt(Instant),
    InFlight,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Campaign {
    Running,
    RetryAt(Instant),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Not started.
    Idle,
    /// Without a lease: a grant is in flight, or due at `retry_at`.
    NoLease { granting: bool, retry_at: Instant },
    /// A candidate: holds a lease (kept alive) and campaigns with it.
    Candidate { lease: Lease, campaign: Campaign },
    /// The leader of term `token`, while its lease is proven.
    Leader { lease: Lease, token: FencingToken },
    /// The term (if any) is over here; the resign is in flight on the server.
    Resigning,
    /// Done.
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Observe {
    Closed,
    Open,
    ReopenAt(Instant),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingRevoke {
    lease: LeaseId,
    due: Option<Instant>,
    give_up_at: Instant,
}

/// One replica's election state.
#[derive(Debug)]
pub(crate) struct Machine {
    config: ElectionConfig,
    state: State,
    observe: Observe,
    revokes: Vec<PendingRevoke>,
    backoff: ExponentialBackoff,
    observed: Option<LeaderInfo>,
    terms: u64,
    lease_grants: u64,
    failures: u64,
    last_error: Option<ElectionError>,
    last_step_down: Option<StepDown>,
}

impl Machine {
    pub(crate) fn new(config: ElectionConfig) -> Self {
        let backoff = build_backoff(config.backoff());
        Self {
            config,
            state: State::Idle,
            observe: Observe::Closed,
            revokes: Vec::new(),
            backoff,
            observed: None,
            terms: 0,
            lease_grants: 0,
            failures: 0,
            last_error: None,
            last_step_down: None,
        }
    }

    pub(crate) fn config(&self) -> &ElectionConfig {
        &self.config
    }

    /// Applies `input`, seen at `now`, and returns what to do.
    pub(crate) fn step(&mut self, now: Instant, input: Input) -> Vec<Command> {
        let mut out = Vec::new();
        self.check_deadline(now, &mut out);
        match input {
            Input::Start => {
                if self.state == State::Idle {
                    self.state = State::NoLease {
                        granting: false,
                        retry_at: now,
                    };
                    self.observe = Observe::ReopenAt(now);
                }
            }
            Input::Granted {
                lease,
                ttl,
                sent_at,
            } => self.granted(now, lease, ttl, sent_at, &mut out),
            Input::GrantFailed(error) => {
                if let State::NoLease { granting: true, .. } = self.state {
                    self.failed(error);
                    self.state = State::NoLease {
                        granting: false,
                        retry_at: now + self.next_backoff(),
                    };
                }
            }
            Input::KeptAlive {
                lease,
                ttl,
                sent_at,
            } => {
                let retry = self.config.timing().retry_period();
                if let Some(held) = self.lease_mut(lease) {
                    held.renewed_at = held.renewed_at.max(sent_at);
                    held.ttl = ttl;
                    held.keep_alive = KeepAlive::DueAt(sent_at + retry);
                }
            }
            Input::KeepAliveFailed {
                lease,
                sent_at,
                error,
            } => {
                let retry = self.config.timing().retry_period();
                if let Some(held) = self.lease_mut(lease) {
                    held.keep_alive = KeepAlive::DueAt(sent_at + retry);
                    let gone = error == ElectionError::LeaseNotFound;
                    self.failed(error);
                    if gone {
                        self.lease_lost(now, StepDown::LeaseLost, &mut out);
                    }
                }
            }
            Input::Won { lease, token } => self.won(now, lease, token, &mut out),
            Input::CampaignFailed { lease, error } => {
                if let State::Candidate {
                    lease: held,
                    campaign: Campaign::Running,
                } = self.state
                    && held.id == lease
                {
                    let gone = error == ElectionError::LeaseNotFound;
                    self.failed(error);
                    if gone {
                        self.lease_lost(now, StepDown::LeaseLost, &mut out);
                    } else {
                        let retry_at = now + self.next_backoff();
                        self.state = State::Candidate {
                            lease: held,
                            campaign: Campaign::RetryAt(retry_at),
                        };
                    }
                }
            }
            Input::Observed(info) => self.observed(now, info, &mut out),
            Input::ObserveFailed(error) => {
                if self.observe == Observe::Open {
                    self.failed(error);
                    self.observe = Observe::ReopenAt(now + self.config.timing().retry_period());
                }
            }
            Input::Revoked { lease, error } => {
                let retry = self.config.timing().retry_period();
                if let Some(i) = self.revokes.iter().position(|r| r.lease == lease) {
                    match error {
                        None | Some(ElectionError::LeaseNotFound) => {
                            self.revokes.remove(i);
                        }
                        Some(error) => {
                            self.revokes[i].due = Some(now + retry);
                            self.failed(error);
                        }
                    }
                }
            }
            Input::Tick => {}
            Input::Resign => self.resign(&mut out),
            Input::Resigned(error) => {
                if self.state == State::Resigning {
                    if let Some(error) = error {
                        self.failed(error);
                    }
                    self.state = State::Stopped;
                    out.push(Command::Stop);
                }
            }
            Input::Abandon => {
                if let State::Leader { token, .. } = self.state {
                    self.stepped_down(token, StepDown::Stopped, &mut out);
                }
                if self.state != State::Stopped {
                    self.state = State::Stopped;
                    out.push(Command::Stop);
                }
            }
        }
        self.issue_due(now, &mut out);
        out
    }

    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    /// When [`Input::Tick`] is next needed: the leader's deadline, a keep-alive, a retry.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        let mut at: Option<Instant> = None;
        let mut consider = |t: Instant| at = Some(at.map_or(t, |a| a.min(t)));
        match self.state {
            State::NoLease {
                granting: false,
                retry_at,
            } => consider(retry_at),
            State::Candidate { lease, campaign } => {
                if let KeepAlive::DueAt(t) = lease.keep_alive {
                    consider(t);
                }
                if let Campaign::RetryAt(t) = campaign {
                    consider(t);
                }
            }
            State::Leader { lease, .. } => {
                if let KeepAlive::DueAt(t) = lease.keep_alive {
                    consider(t);
                }
                consider(self.deadline(&lease));
            }
            State::Idle | State::NoLease { .. } | State::Resigning | State::Stopped => {}
        }
        if !self.finished() {
            if let Observe::ReopenAt(t) = self.observe {
                consider(t);
            }
            for r in &self.revokes {
                if let Some(due) = r.due {
                    consider(due);
                }
            }
        }
        at
    }

    /// The term this replica may act for at `now`, and until when, or `None`.
    pub(crate) fn current(&self, now: Instant) -> Option<(FencingToken, Instant)> {
        match self.state {
            State::Leader { lease, token } => {
                let deadline = self.deadline(&lease);
                (now < deadline).then_some((token, deadline))
            }
            _ => None,
        }
    }

    /// The role to publish: a leader past its deadline is already a standby.
    pub(crate) fn role(&self, now: Instant) -> Role {
        match self.state {
            State::Stopped | State::Resigning => Role::Stopped,
            _ => match self.current(now) {
                Some((token, _)) => Role::Leader(token),
                None => Role::Standby,
            },
        }
    }

    /// Failed calls so far.
    pub(crate) fn failures(&self) -> u64 {
        self.failures
    }

    /// The last failure.
    pub(crate) fn last_error(&self) -> Option<&ElectionError> {
        self.last_error.as_ref()
    }

    /// A snapshot for users.
    pub(crate) fn status(&self, now: Instant) -> ElectionStatus {
        let lease = match self.state {
            State::Candidate { lease, .. } | State::Leader { lease, .. } => Some(lease),
            _ => None,
        };
        let current = self.current(now);
        ElectionStatus {
            election: self.config.name().to_owned(),
            identity: self.config.identity().to_owned(),
            role: self.role(now),
            is_leader: current.is_some(),
            term: current.map(|(t, _)| t),
            leader: self.observed.clone(),
            leader_transitions: self.terms,
            lease_grants: self.lease_grants,
            since_renewal: lease.map(|l| now.saturating_duration_since(l.renewed_at)),
            failures: self.failures,
            last_error: self.last_error.clone(),
            last_step_down: self.last_step_down,
        }
    }

    fn finished(&self) -> bool {
        matches!(self.state, State::Resigning | State::Stopped)
    }

    fn deadline(&self, lease: &Lease) -> Instant {
        lease.renewed_at + self.config.timing().renew_deadline().min(lease.ttl)
    }

    fn next_backoff(&mut self) -> Duration {
        let b = self.config.backoff();
        self.backoff.next().unwrap_or(b.max)
    }

    fn failed(&mut self, error: ElectionError) {
        self.failures += 1;
        self.last_error = Some(error);
    }

    fn lease_mut(&mut self, id: LeaseId) -> Option<&mut Lease> {
        match &mut self.state {
            State::Candidate { lease, .. } | State::Leader { lease, .. } if lease.id == id => {
                Some(lease)
            }
            _ => None,
        }
    }

    /// A leader past its deadline stops leading before anything else is looked at.
    fn check_deadline(&mut self, now: Instant, out: &mut Vec<Command>) {
        if let State::Leader { lease, token } = self.state
            && now >= self.deadline(&lease)
        {
            self.stepped_down(token, StepDown::RenewDeadline, out);
            self.abandon(now, lease.id);
            self.state = State::NoLease {
                granting: false,
                retry_at: now,
            };
        }
    }

    fn granted(
        &mut self,
        now: Instant,
        id: LeaseId,
        ttl: Duration,
        sent_at: Instant,
        out: &mut Vec<Command>,
    ) {
        if let State::NoLease { granting: true, .. } = self.state {
            self.lease_grants += 1;
            self.reset_backoff();
            let retry = self.config.timing().retry_period();
            self.state = State::Candidate {
                lease: Lease {
                    id,
                    ttl,
                    renewed_at: sent_at,
                    keep_alive: KeepAlive::DueAt(sent_at + retry),
                },
                campaign: Campaign::RetryAt(now),
            };
        } else {
            // Granted after a resign or a stop: nobody will keep it, give it back.
            out.push(Command::Revoke { lease: id });
        }
    }

    fn won(&mut self, now: Instant, id: LeaseId, token: FencingToken, out: &mut Vec<Command>) {
        let State::Candidate {
            lease,
            campaign: Campaign::Running,
        } = self.state
        else {
            return;
        };
        if lease.id != id {
            return;
        }
        if now < self.deadline(&lease) {
            self.reset_backoff();
            self.terms += 1;
            self.state = State::Leader { lease, token };
            self.observed = Some(LeaderInfo {
                identity: self.config.identity().to_owned(),
                token,
            });
            out.push(Command::BecameLeader { token });
        } else {
            // Elected, but the lease has not been proven recently enough to act on: start
            // over with a new lease (and so a new, higher token) rather than lead unproven.
            self.failed(ElectionError::Unproven(
                self.config.timing().renew_deadline(),
            ));
            self.abandon(now, lease.id);
            self.state = State::NoLease {
                granting: false,
                retry_at: now,
            };
        }
    }

    fn observed(&mut self, now: Instant, info: LeaderInfo, out: &mut Vec<Command>) {
        if self.observed.as_ref().is_some_and(|o| o.token > info.token) {
            // An older report arriving late: the election has moved on.
            return;
        }
        if let State::Leader { token, .. } = self.state
            && info.token > token
        {
            // Another replica holds a newer term: this one's key is gone.
            self.lease_lost(now, StepDown::Superseded, out);
        }
        self.observed = Some(info);
    }

    /// The lease is gone or may no longer be used: drop it and start over.
    fn lease_lost(&mut self, now: Instant, reason: StepDown, out: &mut Vec<Command>) {
        match self.state {
            State::Candidate { lease, campaign } => {
                if campaign == Campaign::Running {
                    out.push(Command::AbortCampaign);
                }
                if reason != StepDown::LeaseLost {
                    self.abandon(now, lease.id);
                }
            }
            State::Leader { lease, token } => {
                self.stepped_down(token, reason, out);
                if reason != StepDown::LeaseLost {
                    self.abandon(now, lease.id);
                }
            }
            _ => return,
        }
        self.state = State::NoLease {
            granting: false,
            retry_at: now,
        };
    }

    fn resign(&mut self, out: &mut Vec<Command>) {
        let abandoned: Vec<LeaseId> = self.revokes.drain(..).map(|r| r.lease).collect();
        let (lease, leader) = match self.state {
            State::Leader { lease, token } => {
                self.stepped_down(token, StepDown::Resigned, out);
                (Some(lease.id), Some(token))
            }
            State::Candidate { lease, campaign } => {
                if campaign == Campaign::Running {
                    out.push(Command::AbortCampaign);
                }
                (Some(lease.id), None)
            }
            State::Idle | State::NoLease { .. } => (None, None),
            State::Resigning | State::Stopped => return,
        };
        if lease.is_none() && abandoned.is_empty() {
            self.state = State::Stopped;
            out.push(Command::Stop);
        } else {
            self.state = State::Resigning;
            out.push(Command::Resign {
                lease,
                leader,
                abandoned,
            });
        }
    }

    fn stepped_down(&mut self, token: FencingToken, reason: StepDown, out: &mut Vec<Command>) {
        self.last_step_down = Some(reason);
        out.push(Command::SteppedDown { token, reason });
    }

    /// Remembers a lease this replica no longer uses, to revoke it (its key may still block
    /// the election until it expires).
    fn abandon(&mut self, now: Instant, lease: LeaseId) {
        if self.revokes.len() == MAX_PENDING_REVOKES {
            self.revokes.remove(0);
        }
        // Past twice the lease, the server has surely expired it (even after restarting,
        // which extends every lease by its TTL once).
        let give_up_at = now + 2 * self.config.timing().lease_duration();
        self.revokes.push(PendingRevoke {
            lease,
            due: Some(now),
            give_up_at,
        });
    }

    fn reset_backoff(&mut self) {
        self.backoff = build_backoff(self.config.backoff());
    }

    /// Issues what is due at `now`.
    fn issue_due(&mut self, now: Instant, out: &mut Vec<Command>) {
        if matches!(self.state, State::Idle) || self.finished() {
            return;
        }
        let lease_duration = self.config.timing().lease_duration();
        match &mut self.state {
            State::NoLease { granting, retry_at } if !*granting && *retry_at <= now => {
                *granting = true;
                out.push(Command::Grant {
                    ttl: lease_duration,
                });
            }
            State::Candidate { lease, campaign } => {
                if let Campaign::RetryAt(t) = *campaign
                    && t <= now
                {
                    *campaign = Campaign::Running;
                    out.push(Command::Campaign { lease: lease.id });
                }
                keep_alive_if_due(now, lease, out);
            }
            State::Leader { lease, .. } => keep_alive_if_due(now, lease, out),
            _ => {}
        }
        if let Observe::ReopenAt(t) = self.observe
            && t <= now
        {
            self.observe = Observe::Open;
            out.push(Command::Observe);
        }
        self.revokes.retain(|r| r.give_up_at > now);
        for r in &mut self.revokes {
            if r.due.is_some_and(|d| d <= now) {
                r.due = None;
                out.push(Command::Revoke { lease: r.lease });
            }
        }
    }
}

fn keep_alive_if_due(now: Instant, lease: &mut Lease, out: &mut Vec<Command>) {
    if let KeepAlive::DueAt(t) = lease.keep_alive
        && t <= now
    {
        lease.keep_alive = KeepAlive::InFlight;
        out.push(Command::KeepAlive { lease: lease.id });
    }
}

fn build_backoff(b: Backoff) -> ExponentialBackoff {
    let builder = ExponentialBuilder::default()
        .with_min_delay(b.initial)
        .with_max_delay(b.max.max(b.initial))
        .with_factor(2.0)
        .without_max_times();
    if b.jitter {
        builder.with_jitter().build()
    } else {
        builder.build()
    }
}
