//! Leader election with fencing for controllers that run as several replicas, of which
//! exactly one may act.
//!
//! Replicas campaign under one election name, each with an identity. The one elected
//! holds a *term*: it may act while it can prove its lease — until the renew deadline
//! after its last renewal the server answered, on the monotonic clock — and each term has
//! a [`FencingToken`] larger than every term's before it, to give to the writes it makes.
//! Timing is client-go's (`lease_duration` 15 s, `renew_deadline` 10 s, `retry_period`
//! 2 s, see [`Timing`]).
//!
//! The decisions are a state machine without I/O (lease granted, keep-alive answered or
//! failed, campaign won, leader observed, deadlines), driven by scripted inputs in its
//! tests; the I/O is a thin shell over etcd's election API and leases, in the `etcd` module behind
//! the `etcd` cargo feature (its client needs `protoc` to build). [`FakeElection`] drives
//! the same machine from a test, without a server.
//!
//! What a controller uses is a [`Leadership`]:
//!
//! ```
//! use hypersh_election::{ElectionConfig, FakeElection, FencingToken, Leadership};
//!
//! async fn work(leadership: &Leadership) {
//!     // "May I start now?": a cheap, synchronous check against the deadline.
//!     let Some(term) = leadership.current() else { return };
//!     let token = term.token(); // written with every change, for fencing
//!     tokio::select! {
//!         () = term.ended() => { /* cancelled: the term ended (by its deadline at the latest) */ }
//!         () = async { let _ = token; /* the work */ } => {}
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), hypersh_election::ConfigError> {
//! let election = FakeElection::new(ElectionConfig::new("ctl", "replica-a")?);
//! election.win(FencingToken::new(3));
//! work(&election.leadership()).await;
//! assert_eq!(election.leadership().status().leader_transitions, 1);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod config;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
mod fake;
mod leadership;
mod machine;
pub mod metrics;
mod status;

pub use config::{
    Backoff, ConfigError, DEFAULT_BACKOFF_INITIAL, DEFAULT_BACKOFF_MAX, DEFAULT_LEASE_DURATION,
    DEFAULT_RENEW_DEADLINE, DEFAULT_RETRY_PERIOD, ElectionConfig, MAX_NAME_LEN,
    MAX_PENDING_REVOKES, Timing,
};
pub use error::ElectionError;
pub use fake::FakeElection;
pub use leadership::{FencingToken, LeaderInfo, Leadership, Role, StepDown, Term};
pub use status::ElectionStatus;
