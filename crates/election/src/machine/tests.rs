//! The machine driven by scripted inputs on a scripted clock (default timing: lease 15 s,
//! renew deadline 10 s, retry 2 s; backoff 0.5 s doubling to 4 s, no jitter).

use std::time::Duration;

use tokio::time::Instant;

use super::{Command, Input, Machine};
use crate::config::{Backoff, ElectionConfig};
use crate::error::ElectionError;
use crate::leadership::{FencingToken, LeaderInfo, Role, StepDown};

const LEASE: Duration = Duration::from_secs(15);

struct Script {
    m: Machine,
    t0: Instant,
}

fn unreachable() -> ElectionError {
    ElectionError::Unreachable {
        endpoints: "http://127.0.0.1:1".into(),
        detail: "connection refused".into(),
    }
}

fn tok(n: u64) -> FencingToken {
    FencingToken::new(n)
}

impl Script {
    fn new() -> Self {
        let config = ElectionConfig::new("ctl", "me")
            .unwrap()
            .with_backoff(Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(4),
                jitter: false,
            });
        Self {
            m: Machine::new(config),
            t0: Instant::now(),
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    fn step(&mut self, secs: f64, input: Input) -> Vec<Command> {
        let now = self.at(secs);
        self.m.step(now, input)
    }

    fn current(&self, secs: f64) -> Option<FencingToken> {
        self.m.current(self.at(secs)).map(|(t, _)| t)
    }

    fn wake(&self) -> Option<f64> {
        self.m
            .wake_at()
            .map(|w| (w - self.t0).as_secs_f64())
            .map(|s| (s * 1000.0).round() / 1000.0)
    }

    /// Start, lease 1 granted (sent at 0), campaign won at `won_at` with `token`.
    fn leader(won_at: f64, token: u64) -> Self {
        let mut s = Self::new();
        s.step(0.0, Input::Start);
        s.step(
            0.0,
            Input::Granted {
                lease: 1,
                ttl: LEASE,
                sent_at: s.at(0.0),
            },
        );
        let out = s.step(
            won_at,
            Input::Won {
                lease: 1,
                token: tok(token),
            },
        );
        assert_eq!(out, [Command::BecameLeader { token: tok(token) }]);
        s
    }
}

#[test]
fn start_grants_a_lease_and_observes() {
    let mut s = Script::new();
    assert_eq!(s.m.role(s.at(0.0)), Role::Standby);
    let out = s.step(0.0, Input::Start);
    assert_eq!(out, [Command::Grant { ttl: LEASE }, Command::Observe]);
    // Nothing more until the grant answers.
    assert_eq!(s.wake(), None);
    assert!(
        s.step(0.5, Input::Start).is_empty(),
        "a second start is ignored"
    );
}

#[test]
fn a_granted_lease_campaigns_and_is_kept_alive_every_retry_period() {
    let mut s = Script::new();
    s.step(0.0, Input::Start);
    let out = s.step(
        0.1,
        Input::Granted {
            lease: 7,
            ttl: LEASE,
            sent_at: s.at(0.0),
        },
    );
    assert_eq!(out, [Command::Campaign { lease: 7 }]);
    // The lease is kept alive while campaigning, from the grant's send time.
    assert_eq!(s.wake(), Some(2.0));
    assert_eq!(s.step(2.0, Input::Tick), [Command::KeepAlive { lease: 7 }]);
    assert_eq!(s.wake(), None, "one keep-alive at a time");
    let sent = s.at(2.0);
    s.step(
        2.3,
        Input::KeptAlive {
            lease: 7,
            ttl: LEASE,
            sent_at: sent,
        },
    );
    assert_eq!(s.wake(), Some(4.0));
    // Campaigning for longer than the lease is fine: renewals go on.
    for k in 2..20 {
        let t = f64::from(k) * 2.0;
        assert_eq!(s.step(t, Input::Tick), [Command::KeepAlive { lease: 7 }]);
        let sent_at = s.at(t);
        s.step(
            t + 0.1,
            Input::KeptAlive {
                lease: 7,
                ttl: LEASE,
                sent_at,
            },
        );
    }
    assert_eq!(s.m.status(s.at(40.0)).lease_grants, 1);
    assert_eq!(s.current(40.0), None, "a candidate never acts");
}

#[test]
fn a_won_campaign_leads_until_the_renew_deadline_after_the_last_renewal_sent() {
    let mut s = Script::leader(1.0, 42);
    assert_eq!(s.current(1.0), Some(tok(42)));
    assert_eq!(s.m.role(s.at(1.0)), Role::Leader(tok(42)));
    // The grant was sent at 0: the deadline is 10, whatever the campaign took.
    assert_eq!(s.current(9.999), Some(tok(42)));
    assert_eq!(s.current(10.0), None);
    // A renewal sent at 2 and answered at 6 moves the deadline to 12, not 16.
    assert_eq!(s.step(2.0, Input::Tick), [Command::KeepAlive { lease: 1 }]);
    let sent_at = s.at(2.0);
    s.step(
        6.0,
        Input::KeptAlive {
            lease: 1,
            ttl: LEASE,
            sent_at,
        },
    );
    assert_eq!(s.current(11.999), Some(tok(42)));
    assert_eq!(s.current(12.0), None);
    let status = s.m.status(s.at(6.0));
    assert!(status.is_leader);
    assert_eq!(status.term, Some(tok(42)));
    assert_eq!(status.leader_transitions, 1);
    assert_eq!(
        status.leader,
        Some(LeaderInfo {
            identity: "me".into(),
            token: tok(42)
        })
    );
    assert_eq!(status.since_renewal, Some(Duration::from_secs(4)));
}

#[test]
fn a_ttl_shorter_than_the_renew_deadline_bounds_the_term() {
    let mut s = Script::new();
    s.step(0.0, Input::Start);
    s.step(
        0.0,
        Input::Granted {
            lease: 1,
            ttl: Duration::from_secs(5),
            sent_at: s.at(0.0),
        },
    );
    s.step(
        0.1,
        Input::Won {
            lease: 1,
            token: tok(3),
        },
    );
    assert_eq!(s.current(4.9), Some(tok(3)));
    assert_eq!(s.current(5.0), None);
}

#[test]
fn at_the_renew_deadline_the_leader_steps_down_revokes_and_starts_over() {
    let mut s = Script::leader(0.5, 10);
    // Every keep-alive fails: the server is unreachable.
    for t in [2.0, 4.0, 6.0, 8.0] {
        assert_eq!(s.step(t, Input::Tick), [Command::KeepAlive { lease: 1 }]);
        let sent_at = s.at(t);
        s.step(
            t + 1.0,
            Input::KeepAliveFailed {
                lease: 1,
                sent_at,
                error: unreachable(),
            },
        );
        assert_eq!(
            s.current(t + 1.0),
            Some(tok(10)),
            "failures alone do not end the term"
        );
    }
    assert_eq!(s.wake(), Some(10.0), "the next wake-up is the deadline");
    let out = s.step(10.0, Input::Tick);
    assert_eq!(
        out,
        [
            Command::SteppedDown {
                token: tok(10),
                reason: StepDown::RenewDeadline
            },
            Command::Grant { ttl: LEASE },
            Command::Revoke { lease: 1 },
        ]
    );
    assert_eq!(s.m.role(s.at(10.0)), Role::Standby);
    let status = s.m.status(s.at(10.0));
    assert_eq!(status.failures, 4);
    assert_eq!(status.last_error, Some(unreachable()));
    assert_eq!(status.last_step_down, Some(StepDown::RenewDeadline));
}

#[test]
fn a_paused_process_sees_its_deadline_passed_before_anything_else() {
    // Leading since 0.5; a renewal goes out at 2, then the process is stopped for 30 s.
    let mut s = Script::leader(0.5, 10);
    assert_eq!(s.step(2.0, Input::Tick), [Command::KeepAlive { lease: 1 }]);
    // On resuming at 32, "may I act?" is asked before the shell has run at all.
    assert_eq!(s.current(32.0), None);
    assert_eq!(s.m.role(s.at(32.0)), Role::Standby);
    // Then the shell reads the answer that arrived during the pause: too late, the term
    // is over first and the late renewal is for an abandoned lease.
    let sent_at = s.at(2.0);
    let out = s.step(
        32.0,
        Input::KeptAlive {
            lease: 1,
            ttl: LEASE,
            sent_at,
        },
    );
    assert_eq!(
        out[0],
        Command::SteppedDown {
            token: tok(10),
            reason: StepDown::RenewDeadline
        }
    );
    assert!(out.contains(&Command::Revoke { lease: 1 }));
    assert!(out.contains(&Command::Grant { ttl: LEASE }));
    assert_eq!(s.current(32.0), None);
    // Even a renewal sent after resuming does not bring that term back.
    s.step(
        32.5,
        Input::KeptAlive {
            lease: 1,
            ttl: LEASE,
            sent_at: s.at(32.1),
        },
    );
    assert_eq!(s.current(32.6), None);
}

#[test]
fn a_late_answer_within_the_deadline_keeps_the_term() {
    let mut s = Script::leader(0.5, 10);
    s.step(8.0, Input::Tick); // keep-alive at 2 is due; ignore its command
    let sent_at = s.at(8.0);
    s.step(
        9.9,
        Input::KeptAlive {
            lease: 1,
            ttl: LEASE,
            sent_at,
        },
    );
    assert_eq!(s.current(17.9), Some(tok(10)));
    assert!(
        s.step(12.0, Input::Tick)
            .contains(&Command::KeepAlive { lease: 1 })
    );
    assert_eq!(s.current(12.0), Some(tok(10)));
}

#[test]
fn a_campaign_won_without_a_recent_renewal_is_not_led() {
    let mut s = Script::new();
    s.step(0.0, Input::Start);
    s.step(
        0.0,
        Input::Granted {
            lease: 1,
            ttl: LEASE,
            sent_at: s.at(0.0),
        },
    );
    // No renewal answered since 0; the campaign returns at 11.
    let out = s.step(
        11.0,
        Input::Won {
            lease: 1,
            token: tok(5),
        },
    );
    assert!(
        !out.iter()
            .any(|c| matches!(c, Command::BecameLeader { .. })),
        "{out:?}"
    );
    assert!(out.contains(&Command::Revoke { lease: 1 }));
    assert!(out.contains(&Command::Grant { ttl: LEASE }));
    assert_eq!(s.current(11.0), None);
    assert_eq!(s.m.status(s.at(11.0)).leader_transitions, 0);
}

#[test]
fn failed_campaigns_back_off_and_a_win_resets_the_backoff() {
    let mut s = Script::new();
    s.step(0.0, Input::Start);
    s.step(
        0.0,
        Input::Granted {
            lease: 1,
            ttl: LEASE,
            sent_at: s.at(0.0),
        },
    );
    let mut t = 0.0;
    let mut waits = Vec::new();
    for _ in 0..5 {
        let err = ElectionError::Server("etcdserver: too many requests".into());
        s.step(
            t,
            Input::CampaignFailed {
                lease: 1,
                error: err,
            },
        );
        let due = s.m.wake_at().map(|w| (w - s.t0).as_secs_f64()).unwrap();
        // The keep-alive at 2 s may come first; find the campaign retry.
        let mut next = t;
        let mut campaign_at = None;
        while campaign_at.is_none() {
            next = s.m.wake_at().map(|w| (w - s.t0).as_secs_f64()).unwrap();
            let out = s.step(next, Input::Tick);
            for c in out {
                match c {
                    Command::Campaign { lease: 1 } => campaign_at = Some(next),
                    Command::KeepAlive { lease: 1 } => {
                        let sent_at = s.at(next);
                        s.step(
                            next,
                            Input::KeptAlive {
                                lease: 1,
                                ttl: LEASE,
                                sent_at,
                            },
                        );
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
        assert!(due <= next);
        waits.push(((campaign_at.unwrap() - t) * 1000.0).round() / 1000.0);
        t = next;
    }
    assert_eq!(waits, [0.5, 1.0, 2.0, 4.0, 4.0]);
    assert_eq!(s.m.status(s.at(t)).failures, 5);
    s.step(
        t,
        Input::Won {
            lease: 1,
            token: tok(9),
        },
    );
    assert_eq!(s.current(t), Some(tok(9)));
}

#[test]
fn an_unreachable_server_is_retried_with_backoff_and_nobody_acts() {
    let mut s = Script::new();
    assert_eq!(s.step(0.0, Input::Start)[0], Command::Grant { ttl: LEASE });
    let mut t = 0.0;
    let mut waits = Vec::new();
    for _ in 0..4 {
        s.step(t, Input::GrantFailed(unreachable()));
        let next = s.wake().unwrap();
        waits.push(next - t);
        assert_eq!(s.step(next, Input::Tick), [Command::Grant { ttl: LEASE }]);
        t = next;
    }
    assert_eq!(waits, [0.5, 1.0, 2.0, 4.0]);
    let status = s.m.status(s.at(t));
    assert_eq!((status.failures, status.is_leader), (4, false));
    assert!(
        status
            .last_error
            .unwrap()
            .to_string()
            .contains("is it running")
    );
    // The server comes back: the grant resets the backoff.
    let out = s.step(
        t + 0.1,
        Input::Granted {
            lease: 2,
            ttl: LEASE,
            sent_at: s.at(t),
        },
    );
    assert_eq!(out, [Command::Campaign { lease: 2 }]);
    s.step(
        t + 0.2,
        Input::CampaignFailed {
            lease: 2,
            error: unreachable(),
        },
    );
    assert_eq!(s.wake(), Some(t + 0.2 + 0.5));
}

#[test]
fn a_server_down_across_the_deadline_ends_the_term_and_a_new_one_begins_after() {
    let mut s = Script::leader(0.5, 10);
    // Down from 1: keep-alives time out, nothing answers.
    for t in [2.0, 4.0, 6.0, 8.0] {
        s.step(t, Input::Tick);
        let sent_at = s.at(t);
        s.step(
            t + 1.9,
            Input::KeepAliveFailed {
                lease: 1,
                sent_at,
                error: ElectionError::Timeout {
                    op: "keep-alive",
                    timeout: Duration::from_secs(2),
                    endpoints: String::new(),
                },
            },
        );
    }
    assert_eq!(s.current(9.99), Some(tok(10)));
    let out = s.step(10.0, Input::Tick);
    assert!(out.contains(&Command::SteppedDown {
        token: tok(10),
        reason: StepDown::RenewDeadline
    }));
    // Grant and revoke fail while it is down.
    s.step(10.5, Input::GrantFailed(unreachable()));
    s.step(
        10.5,
        Input::Revoked {
            lease: 1,
            error: Some(unreachable()),
        },
    );
    for t in [11.0, 12.0, 13.0, 14.0, 15.0, 20.0] {
        assert_eq!(s.current(t), None, "nobody acts while the server is down");
    }
    // It comes back at 21: the revoke is retried, a lease granted, a new term won.
    let out = s.step(21.0, Input::Tick);
    assert!(out.contains(&Command::Grant { ttl: LEASE }), "{out:?}");
    assert!(out.contains(&Command::Revoke { lease: 1 }), "{out:?}");
    s.step(
        21.1,
        Input::Revoked {
            lease: 1,
            error: None,
        },
    );
    s.step(
        21.1,
        Input::Granted {
            lease: 2,
            ttl: LEASE,
            sent_at: s.at(21.0),
        },
    );
    let out = s.step(
        21.2,
        Input::Won {
            lease: 2,
            token: tok(30),
        },
    );
    assert_eq!(out, [Command::BecameLeader { token: tok(30) }]);
    let status = s.m.status(s.at(21.2));
    assert_eq!((status.term, status.leader_transitions), (Some(tok(30)), 2));
    // Nothing left to revoke.
    assert_eq!(s.wake(), Some(23.0));
}

#[test]
fn a_lost_lease_ends_the_campaign_or_the_term_without_a_revoke() {
    // A candidate.
    let mut s = Script::new();
    s.step(0.0, Input::Start);
    s.step(
        0.0,
        Input::Granted {
            lease: 1,
            ttl: LEASE,
            sent_at: s.at(0.0),
        },
    );
    s.step(2.0, Input::Tick);
    let out = s.step(
        2.1,
        Input::KeepAliveFailed {
            lease: 1,
            sent_at: s.at(2.0),
            error: ElectionError::LeaseNotFound,
        },
    );
    assert_eq!(out, [Command::AbortCampaign, Command::Grant { ttl: LEASE }]);
    // A stale answer about lease 1 changes nothing now.
    let out = s.step(
        2.2,
        Input::CampaignFailed {
            lease: 1,
            error: unreachable(),
        },
    );
    assert!(out.is_empty());
    assert_eq!(s.m.status(s.at(2.2)).failures, 1);

    // A leader.
    let mut s = Script::leader(0.5, 10);
    let out = s.step(
        1.0,
        Input::CampaignFailed {
            lease: 1,
            error: ElectionError::LeaseNotFound,
        },
    );
    assert!(
        out.is_empty(),
        "a campaign answer while leading is stale: {out:?}"
    );
    s.step(2.0, Input::Tick);
    let out = s.step(
        2.1,
        Input::KeepAliveFailed {
            lease: 1,
            sent_at: s.at(2.0),
            error: ElectionError::LeaseNotFound,
        },
    );
    assert_eq!(
        out,
        [
            Command::SteppedDown {
                token: tok(10),
                reason: StepDown::LeaseLost
            },
            Command::Grant { ttl: LEASE },
        ]
    );
    assert_eq!(s.current(2.1), None);
}

#[test]
fn a_newer_leader_observed_ends_the_term_and_older_reports_are_ignored() {
    let mut s = Script::leader(0.5, 10);
    let other = |n| LeaderInfo {
        identity: "other".into(),
        token: tok(n),
    };
    assert!(
        s.step(0.6, Input::Observed(other(4))).is_empty(),
        "older: stale"
    );
    assert_eq!(s.m.status(s.at(0.6)).leader.unwrap().identity, "me");
    assert!(
        s.step(
            0.7,
            Input::Observed(LeaderInfo {
                identity: "me".into(),
                token: tok(10)
            })
        )
        .is_empty()
    );
    assert_eq!(s.current(0.7), Some(tok(10)));
    let out = s.step(1.0, Input::Observed(other(12)));
    assert_eq!(
        out,
        [
            Command::SteppedDown {
                token: tok(10),
                reason: StepDown::Superseded
            },
            Command::Grant { ttl: LEASE },
            Command::Revoke { lease: 1 },
        ]
    );
    assert_eq!(s.m.status(s.at(1.0)).leader, Some(other(12)));
}

#[test]
fn the_observation_stream_is_reopened_after_a_failure() {
    let mut s = Script::new();
    s.step(0.0, Input::Start);
    s.step(1.0, Input::ObserveFailed(unreachable()));
    assert_eq!(s.wake(), Some(3.0));
    assert_eq!(s.step(3.0, Input::Tick), [Command::Observe]);
}

#[test]
fn resigning_ends_the_term_here_before_the_server_is_told() {
    let mut s = Script::leader(0.5, 10);
    let out = s.step(1.0, Input::Resign);
    assert_eq!(
        out,
        [
            Command::SteppedDown {
                token: tok(10),
                reason: StepDown::Resigned
            },
            Command::Resign {
                lease: Some(1),
                leader: Some(tok(10)),
                abandoned: vec![]
            },
        ]
    );
    assert_eq!(s.current(1.0), None);
    assert_eq!(s.m.role(s.at(1.0)), Role::Stopped);
    assert_eq!(s.wake(), None, "no keep-alive after a resign");
    // A grant or a win arriving now is given back or ignored.
    assert_eq!(
        s.step(
            1.1,
            Input::Granted {
                lease: 9,
                ttl: LEASE,
                sent_at: s.at(1.0)
            }
        ),
        [Command::Revoke { lease: 9 }]
    );
    assert!(
        s.step(
            1.1,
            Input::Won {
                lease: 1,
                token: tok(10)
            }
        )
        .is_empty()
    );
    assert_eq!(s.step(1.2, Input::Resigned(None)), [Command::Stop]);
    assert!(s.step(1.3, Input::Resign).is_empty());
}

#[test]
fn resigning_a_candidate_or_before_any_lease() {
    let mut s = Script::new();
    s.step(0.0, Input::Start);
    s.step(
        0.0,
        Input::Granted {
            lease: 1,
            ttl: LEASE,
            sent_at: s.at(0.0),
        },
    );
    assert_eq!(
        s.step(0.5, Input::Resign),
        [
            Command::AbortCampaign,
            Command::Resign {
                lease: Some(1),
                leader: None,
                abandoned: vec![]
            }
        ]
    );
    let err = ElectionError::Timeout {
        op: "resign",
        timeout: Duration::from_secs(5),
        endpoints: String::new(),
    };
    assert_eq!(
        s.step(5.5, Input::Resigned(Some(err.clone()))),
        [Command::Stop]
    );
    assert_eq!(s.m.status(s.at(5.5)).last_error, Some(err));

    let mut s = Script::new();
    s.step(0.0, Input::Start);
    assert_eq!(s.step(0.1, Input::Resign), [Command::Stop]);
}

#[test]
fn resigning_revokes_abandoned_leases_too() {
    let mut s = Script::leader(0.5, 10);
    s.step(10.0, Input::Tick); // deadline: lease 1 abandoned, a grant asked for
    let out = s.step(10.5, Input::Resign);
    assert_eq!(
        out,
        [Command::Resign {
            lease: None,
            leader: None,
            abandoned: vec![1]
        }]
    );
}

#[test]
fn revokes_are_retried_then_given_up_after_twice_the_lease() {
    let mut s = Script::leader(0.5, 10);
    s.step(10.0, Input::Tick);
    s.step(10.1, Input::GrantFailed(unreachable()));
    let mut revokes = 0;
    let mut t = 10.1;
    s.step(
        t,
        Input::Revoked {
            lease: 1,
            error: Some(unreachable()),
        },
    );
    while let Some(next) = s.wake() {
        if next > 100.0 {
            break;
        }
        t = next;
        for c in s.step(t, Input::Tick) {
            match c {
                Command::Revoke { lease: 1 } => {
                    revokes += 1;
                    s.step(
                        t,
                        Input::Revoked {
                            lease: 1,
                            error: Some(unreachable()),
                        },
                    );
                }
                Command::Grant { .. } => {
                    s.step(t, Input::GrantFailed(unreachable()));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    // Every 2 s from 12 until 40 (10 + 2 x 15).
    assert_eq!(revokes, 14, "at {t}");
}

#[test]
fn abandoning_ends_the_term_and_stops() {
    let mut s = Script::leader(0.5, 10);
    assert_eq!(
        s.step(1.0, Input::Abandon),
        [
            Command::SteppedDown {
                token: tok(10),
                reason: StepDown::Stopped
            },
            Command::Stop
        ]
    );
    assert_eq!(s.current(1.0), None);
    assert!(s.step(1.1, Input::Abandon).is_empty());
    assert_eq!(s.wake(), None);
}
