//! A controller's settings: [`ControllerConfig`] and its defaults, client-go's and
//! controller-runtime's where they have one.

use std::time::Duration;

use super::queue::QueueConfig;

/// How many reconciles run at once by default: controller-runtime's
/// `MaxConcurrentReconciles` default.
pub const DEFAULT_CONCURRENCY: usize = 1;
/// The first retry delay of a key: client-go's `DefaultControllerRateLimiter`
/// (`ItemExponentialFailureRateLimiter(5*time.Millisecond, 1000*time.Second)`).
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_millis(5);
/// The longest retry delay of a key (client-go's, as above).
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(1000);
/// Retries per second over all keys: client-go's `DefaultControllerRateLimiter`
/// (`BucketRateLimiter{rate.NewLimiter(rate.Limit(10), 100)}`).
pub const DEFAULT_QPS: f64 = 10.0;
/// Retries allowed at once above the rate (client-go's, as above).
pub const DEFAULT_BURST: u32 = 100;
/// How much later a flood item (first list, resync, ...) is ordered than a live change
/// that became due at the same time; also the longest a flood item waits behind live
/// changes that arrive after it. Chosen here (client-go's queue has no priorities, and
/// controller-runtime's priority queue has no aging: it starved initial-list items,
/// controller-runtime#3496).
pub const DEFAULT_AGING: Duration = Duration::from_secs(5);
/// How long running reconciles may take to finish at shutdown: controller-runtime's
/// `GracefulShutdownTimeout` default.
pub const DEFAULT_SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);
/// A controller's settings. Every default is one of this module's `DEFAULT_*` consts.
#[derive(Clone, Debug)]
#[must_use]
pub struct ControllerConfig {
    pub(super) name: String,
    concurrency: usize,
    backoff_base: Duration,
    backoff_max: Duration,
    qps: f64,
    burst: u32,
    aging: Duration,
    pub(super) shutdown_deadline: Duration,
}

impl ControllerConfig {
    /// The defaults, for a controller called `name` (the `controller` label of its
    /// metrics, and its logs' span field).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            concurrency: DEFAULT_CONCURRENCY,
            backoff_base: DEFAULT_BACKOFF_BASE,
            backoff_max: DEFAULT_BACKOFF_MAX,
            qps: DEFAULT_QPS,
            burst: DEFAULT_BURST,
            aging: DEFAULT_AGING,
            shutdown_deadline: DEFAULT_SHUTDOWN_DEADLINE,
        }
    }

    /// Runs at most `n` reconciles at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// A key's retry delay after `n` failures in a row is `base * 2^(n-1)`, at most `max`.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_max = max.max(base);
        self
    }

    /// Retries over all keys are limited to `qps` per second, `burst` at once; a `qps` of
    /// 0 (or not finite) turns the overall limit off.
    pub fn rate_limit(mut self, qps: f64, burst: u32) -> Self {
        self.qps = qps;
        self.burst = burst.max(1);
        self
    }

    /// Sets the aging period (see [`DEFAULT_AGING`]).
    pub fn aging(mut self, aging: Duration) -> Self {
        self.aging = aging;
        self
    }

    /// How long running reconciles may take to finish at shutdown.
    pub fn shutdown_deadline(mut self, deadline: Duration) -> Self {
        self.shutdown_deadline = deadline;
        self
    }

    /// The controller's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(super) fn queue(&self) -> QueueConfig {
        QueueConfig {
            concurrency: self.concurrency,
            backoff_base: self.backoff_base,
            backoff_max: self.backoff_max,
            qps: self.qps,
            burst: self.burst,
            aging: self.aging,
        }
    }
}
