//! An election without a server, for testing the code that acts only while leading.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::time::Instant;

use crate::config::ElectionConfig;
use crate::error::ElectionError;
use crate::leadership::{FencingToken, LeaderInfo, Leadership, Shared};
use crate::machine::{Command, Input};

/// A scripted election: the test says when this replica wins, renews and loses; the same
/// decisions as a real elector follow (the renew deadline runs on tokio's clock, so a
/// paused-time test can let a term lapse with `tokio::time::advance`).
///
/// See [`Leadership`] for an example.
pub struct FakeElection {
    leadership: Leadership,
    shared: Arc<Shared>,
    lease: AtomicI64,
}

impl std::fmt::Debug for FakeElection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeElection")
            .field("leadership", &self.leadership)
            .finish_non_exhaustive()
    }
}

impl FakeElection {
    /// A standby replica of `config`.
    #[must_use]
    pub fn new(config: ElectionConfig) -> Self {
        let shared = Shared::new(config);
        shared.step(Input::Start);
        Self {
            leadership: Leadership::new(Arc::clone(&shared)),
            shared,
            lease: AtomicI64::new(0),
        }
    }

    /// The handle to give to the code under test.
    #[must_use]
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// This replica wins the term `token` now (its lease granted and proven now). A term
    /// already held ends first, as when its lease is lost.
    pub fn win(&self, token: FencingToken) {
        self.lose();
        let lease = self.lease.fetch_add(1, Ordering::Relaxed) + 1;
        let ttl = self.config_lease_duration();
        // Granted while a grant is asked for: the machine campaigns at once with it.
        let commands = self.shared.step(Input::Granted {
            lease,
            ttl,
            sent_at: Instant::now(),
        });
        debug_assert!(commands.contains(&Command::Campaign { lease }));
        self.shared.step(Input::Won { lease, token });
    }

    /// The server answered a renewal sent now: the term's deadline moves on.
    pub fn renew(&self) {
        let lease = self.lease.load(Ordering::Relaxed);
        self.shared.step(Input::KeptAlive {
            lease,
            ttl: self.config_lease_duration(),
            sent_at: Instant::now(),
        });
    }

    /// The server says the lease is gone: the term ends now.
    pub fn lose(&self) {
        let lease = self.lease.load(Ordering::Relaxed);
        self.shared.step(Input::KeepAliveFailed {
            lease,
            sent_at: Instant::now(),
            error: ElectionError::LeaseNotFound,
        });
    }

    /// Another replica is seen leading `token` (which ends this one's term if older).
    pub fn observe(&self, identity: &str, token: FencingToken) {
        self.shared.step(Input::Observed(LeaderInfo {
            identity: identity.to_owned(),
            token,
        }));
    }

    /// Lets the elector look at the clock (a term past its deadline is published as
    /// ended).
    pub fn tick(&self) {
        self.shared.step(Input::Tick);
    }

    fn config_lease_duration(&self) -> std::time::Duration {
        self.shared.timing().lease_duration()
    }
}
