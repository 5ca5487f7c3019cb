//! What an elector is told: the election, who it is, and the timing.

use std::time::Duration;

/// How long a leader's lease lives on the server without a renewal: client-go's
/// `LeaseDuration` default.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long after its last proven renewal a leader stops acting: client-go's
/// `RenewDeadline` default.
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often the lease is renewed (and a failed campaign or grant is first retried):
/// client-go's `RetryPeriod` default.
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// The first wait after a failed campaign or lease grant.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_millis(500);
/// The largest wait after failed campaigns or grants (before jitter, which adds up to as
/// much again).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(4);
/// The longest election name and identity, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// At most this many abandoned leases are remembered for revoking (each retried every
/// retry period); older ones expire on the server by themselves.
pub const MAX_PENDING_REVOKES: usize = 4;

/// A configuration that cannot work, found before anything is started.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The election name is empty.
    #[error("the election name is empty: give every replica of one controller the same name")]
    EmptyName,
    /// The identity is empty.
    #[error("the identity is empty: give each replica its own (the host name, the pod name)")]
    EmptyIdentity,
    /// A name or identity longer than [`MAX_NAME_LEN`] bytes.
    #[error("the {what} is {len} bytes long; at most {MAX_NAME_LEN} are allowed")]
    TooLong {
        /// `election name` or `identity`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// A name or identity holding whitespace or a control character (it is printed in logs
    /// and status lines, and an election name is an etcd key prefix).
    #[error(
        "the {what} {value:?} holds whitespace or a control character; use letters, digits and punctuation"
    )]
    BadCharacter {
        /// `election name` or `identity`.
        what: &'static str,
        /// The refused value.
        value: String,
    },
    /// An election name ending in `/`: candidates' keys are `NAME/...`, so the name must not
    /// end with the separator itself.
    #[error("the election name {0:?} ends with `/`; drop the trailing slash")]
    TrailingSlash(String),
    /// Timings that cannot keep one leader: they must satisfy
    /// `lease_duration > renew_deadline > retry_period > 0`, with the lease a whole number of
    /// seconds (etcd leases are).
    #[error(
        "bad timing: {0} (need lease_duration > renew_deadline > retry_period > 0, the lease in whole seconds)"
    )]
    Timing(String),
    /// An elector must be started inside a tokio runtime.
    #[error("no tokio runtime: start the elector from within one (e.g. under #[tokio::main])")]
    NoRuntime,
    /// Something wrong with how to reach the election's server.
    #[error("bad endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The refused endpoint.
        endpoint: String,
        /// What is wrong with it and what to write instead.
        reason: String,
    },
}

/// The timing of an election, client-go's three knobs.
///
/// - `lease_duration` (15 s): how long the server keeps a replica's lease without a
///   renewal; a dead leader is replaced after about this long.
/// - `renew_deadline` (10 s): a leader acts only while its last proven renewal is younger
///   than this, measured on the monotonic clock from when that renewal was *sent*. The
///   difference with the lease (5 s by default) is the margin for cancelling running work
///   before anybody else can be elected.
/// - `retry_period` (2 s): how often the lease is renewed.
///
/// ```
/// use std::time::Duration;
/// use hypersh_election::Timing;
///
/// let t = Timing::default();
/// assert_eq!(t.lease_duration(), Duration::from_secs(15));
/// let fast = Timing::new(Duration::from_secs(3), Duration::from_secs(2), Duration::from_millis(500))?;
/// assert!(Timing::new(Duration::from_secs(3), Duration::from_secs(3), Duration::from_secs(1)).is_err());
/// # Ok::<(), hypersh_election::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    lease_duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }
}

impl Timing {
    /// Checked timings.
    ///
    /// # Errors
    /// [`ConfigError::Timing`] unless `lease_duration > renew_deadline > retry_period > 0`
    /// and `lease_duration` is a whole number of seconds.
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Result<Self, ConfigError> {
        if retry_period.is_zero() {
            return Err(ConfigError::Timing("retry_period is zero".into()));
        }
        if renew_deadline <= retry_period {
            return Err(ConfigError::Timing(format!(
                "renew_deadline {renew_deadline:?} is not longer than retry_period {retry_period:?}: \
                 the leader would give up before its first retry"
            )));
        }
        if lease_duration <= renew_deadline {
            return Err(ConfigError::Timing(format!(
                "lease_duration {lease_duration:?} is not longer than renew_deadline {renew_deadline:?}: \
                 another replica could be elected while the leader still acts"
            )));
        }
        if lease_duration.subsec_nanos() != 0 {
            return Err(ConfigError::Timing(format!(
                "lease_duration {lease_duration:?} is not a whole number of seconds"
            )));
        }
        Ok(Self {
            lease_duration,
            renew_deadline,
            retry_period,
        })
    }

    /// How long the server keeps the lease without a renewal.
    #[must_use]
    pub fn lease_duration(&self) -> Duration {
        self.lease_duration
    }

    /// How long after its last proven renewal a leader stops acting.
    #[must_use]
    pub fn renew_deadline(&self) -> Duration {
        self.renew_deadline
    }

    /// How often the lease is renewed.
    #[must_use]
    pub fn retry_period(&self) -> Duration {
        self.retry_period
    }
}

/// The wait between failed campaigns or lease grants: exponential from `initial` to `max`,
/// doubled each time, with jitter (up to as much again) unless turned off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait ([`DEFAULT_BACKOFF_INITIAL`]).
    pub initial: Duration,
    /// The largest wait before jitter ([`DEFAULT_BACKOFF_MAX`]).
    pub max: Duration,
    /// Jitter on (the default): replicas that failed together do not retry together.
    pub jitter: bool,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: DEFAULT_BACKOFF_INITIAL,
            max: DEFAULT_BACKOFF_MAX,
            jitter: true,
        }
    }
}

/// One replica's part in one election.
///
/// ```
/// use hypersh_election::{ElectionConfig, ConfigError};
///
/// let config = ElectionConfig::new("billing-controller", "replica-a")?;
/// assert_eq!(config.name(), "billing-controller");
/// assert!(matches!(ElectionConfig::new("", "a"), Err(ConfigError::EmptyName)));
/// assert!(matches!(ElectionConfig::new("x", "has space"), Err(ConfigError::BadCharacter { .. })));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    name: String,
    identity: String,
    timing: Timing,
    backoff: Backoff,
}

impl ElectionConfig {
    /// Replica `identity` campaigning in the election `name` (every replica of one
    /// controller uses the same name), with client-go's default timing.
    ///
    /// # Errors
    /// [`ConfigError`] for an empty, overlong or unprintable name or identity, or a name
    /// ending with `/`.
    pub fn new(name: impl Into<String>, identity: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        let identity = identity.into();
        if name.is_empty() {
            return Err(ConfigError::EmptyName);
        }
        if identity.is_empty() {
            return Err(ConfigError::EmptyIdentity);
        }
        check_text("election name", &name)?;
        check_text("identity", &identity)?;
        if name.ends_with('/') {
            return Err(ConfigError::TrailingSlash(name));
        }
        Ok(Self {
            name,
            identity,
            timing: Timing::default(),
            backoff: Backoff::default(),
        })
    }

    /// Sets the timing.
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// Sets the backoff between failed campaigns or grants.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The election's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This replica's identity.
    #[must_use]
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The timing.
    #[must_use]
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// The backoff.
    #[must_use]
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }
}

fn check_text(what: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.len() > MAX_NAME_LEN {
        return Err(ConfigError::TooLong {
            what,
            len: value.len(),
        });
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::BadCharacter {
            what,
            value: value.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(ElectionConfig::new("", "a"), Err(ConfigError::EmptyName));
        assert_eq!(
            ElectionConfig::new("a", ""),
            Err(ConfigError::EmptyIdentity)
        );
        assert!(matches!(
            ElectionConfig::new("a/", "x"),
            Err(ConfigError::TrailingSlash(_))
        ));
        assert!(matches!(
            ElectionConfig::new("a\0b", "x"),
            Err(ConfigError::BadCharacter { .. })
        ));
        assert!(matches!(
            ElectionConfig::new("a", "x".repeat(MAX_NAME_LEN + 1)),
            Err(ConfigError::TooLong {
                what: "identity",
                ..
            })
        ));
        let ok = ElectionConfig::new("team/ctl", "host-1:42").unwrap();
        assert_eq!((ok.name(), ok.identity()), ("team/ctl", "host-1:42"));
    }

    #[test]
    fn timing_is_checked() {
        let s = Duration::from_secs;
        assert!(Timing::new(s(15), s(10), s(2)).is_ok());
        assert!(Timing::new(s(15), s(10), Duration::ZERO).is_err());
        assert!(Timing::new(s(15), s(2), s(2)).is_err());
        assert!(Timing::new(s(10), s(10), s(2)).is_err());
        assert!(Timing::new(Duration::from_millis(15_500), s(10), s(2)).is_err());
        let err = Timing::new(s(5), s(10), s(2)).unwrap_err().to_string();
        assert!(err.contains("another replica could be elected"), "{err}");
    }
}
