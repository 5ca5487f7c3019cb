//! Benchmark mode (`--emit N`): pre-serialised frames written to each new watch connection
//! as fast as the socket takes them (or at `--emit-rate` frames per second), then a normal
//! close frame.
//!
//! The frames are built once at start from the runtime's containers (or, with none, from a
//! few made-up ones), alternating realistic actions, and shared: sending one is a reference
//! count increment, not an allocation or a serialisation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use hypersh_watch::container::ContainerState;
use hypersh_watch::event::Shape;
use hypersh_watch::filters::Filters;

use crate::runtime::{Runtime, RuntimeEvent};
use crate::shape;

/// How many distinct events the pool holds at least (fewer when N is smaller).
const POOL_EVENTS: usize = 256;
/// How many of the runtime's containers the events are about, at most: taken evenly
/// over the whole list, so with a large runtime the events touch containers all over the
/// informer's cache rather than the same few.
const POOL_CONTAINERS: usize = 4_095;
/// How often a paced emit sends what is due.
const PACE_TICK: std::time::Duration = std::time::Duration::from_millis(1);
/// How many made-up containers back the pool when the runtime has none.
const SYNTHETIC_CONTAINERS: usize = 16;

/// The actions cycled through, with the state and exit code each leaves a container in.
const ACTIONS: &[(&str, ContainerState, Option<i64>)] = &[
    ("create", ContainerState::Created, None),
    ("start", ContainerState::Running, None),
    ("pause", ContainerState::Paused, None),
    ("unpause", ContainerState::Running, None),
    ("kill", ContainerState::Running, None),
    ("die", ContainerState::Exited, Some(137)),
    ("restart", ContainerState::Running, None),
    ("stop", ContainerState::Exited, Some(0)),
];

/// The pre-serialised events and how many frames each connection gets.
pub(crate) struct EmitPool {
    /// Each event with its frames (one, or two for a Kubernetes `DELETED`+`ADDED` pair).
    entries: Vec<(RuntimeEvent, Vec<Utf8Bytes>)>,
    /// Frames per connection.
    count: u64,
    /// Frames per second, or as fast as the socket takes them.
    rate: Option<u64>,
    /// How long a connection waits before its first frame.
    delay: Duration,
}

impl EmitPool {
    /// Builds the pool from `runtime`'s containers (made-up ones from `seed` when empty).
    pub(crate) fn build(runtime: &Runtime, shape: Shape, count: u64, seed: u64) -> Self {
        let mut containers = runtime.list_spread(POOL_CONTAINERS);
        // Container `c` gets the events `c`, `c + len`, `c + 2 len`, ... of the pool, and
        // event `i` is action `i mod 8`. With `len` 7 modulo 8 (as 31 is), each container
        // goes through the 8 actions in the same order however many containers there are.
        let actions = ACTIONS.len();
        if containers.len() > actions {
            let keep = containers.len() - (containers.len() + 1) % actions;
            containers.truncate(keep);
        }
        if containers.is_empty() {
            let scratch = Runtime::new(seed);
            scratch.populate(SYNTHETIC_CONTAINERS);
            containers = scratch.list(true);
        }
        let base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let size = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .clamp(1, POOL_EVENTS.max(containers.len() * actions));
        let entries = (0..size)
            .zip(ACTIONS.iter().cycle())
            .zip(containers.iter().cycle())
            .map(|((i, &(action, state, exit_code)), container)| {
                let container = container.clone().into_builder().state(state).build();
                let event = RuntimeEvent {
                    action,
                    container,
                    exit_code,
                    time_nano: base + i64::try_from(i).unwrap_or(0) * 1_000,
                    old_name: None,
                };
                let frames = shape::encode(shape, &event)
                    .into_iter()
                    .map(Utf8Bytes::from)
                    .collect();
                (event, frames)
            })
            .collect();
        Self {
            entries,
            count,
            rate: None,
            delay: Duration::ZERO,
        }
    }

    /// Sends at `rate` frames per second (`None`: as fast as possible).
    pub(crate) fn paced(self, rate: Option<u64>) -> Self {
        Self { rate, ..self }
    }

    /// Waits `delay` on each connection before the first frame.
    pub(crate) fn delayed(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }

    /// Sends the frames matching `filters` (cycling through the pool until `count` frames
    /// are sent; none when nothing matches) and flushes. Returns early when the socket
    /// fails, or when one write or flush takes longer than `limit` (the client does not
    /// read).
    pub(crate) async fn send(
        &self,
        socket: &mut WebSocket,
        filters: &Filters,
        limit: Duration,
    ) -> Result<(), SendError> {
        let matching: Vec<&Utf8Bytes> = self
            .entries
            .iter()
            .filter(|(event, _)| shape::matches(filters, event))
            .flat_map(|(_, frames)| frames)
            .collect();
        if matching.is_empty() {
            return Ok(());
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let count = usize::try_from(self.count).unwrap_or(usize::MAX);
        let mut frames = matching.iter().cycle().take(count);
        let Some(rate) = self.rate else {
            for frame in frames {
                bounded(limit, socket.feed(Message::Text((*frame).clone()))).await?;
            }
            return bounded(limit, socket.flush()).await;
        };
        // Paced: every millisecond, whatever is due by now (so a late tick catches up).
        let started = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(PACE_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent = 0usize;
        while sent < count {
            tick.tick().await;
            let due = (started.elapsed().as_secs_f64() * rate as f64) as usize;
            while sent < due.min(count) {
                let Some(frame) = frames.next() else {
                    return bounded(limit, socket.flush()).await;
                };
                bounded(limit, socket.feed(Message::Text((*frame).clone()))).await?;
                sent += 1;
            }
            bounded(limit, socket.flush()).await?;
        }
        Ok(())
    }
}

/// Why [`EmitPool::send`] stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// A write or flush did not complete in time: the client is not reading.
    #[error("send timed out")]
    TimedOut,
    /// The socket failed.
    #[error(transparent)]
    Socket(#[from] axum::Error),
}

/// One socket operation within `limit`.
async fn bounded(
    limit: Duration,
    operation: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), SendError> {
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(SendError::TimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypersh_watch::event::WatchEvent;

    #[test]
    fn pool_frames_decode_and_look_realistic() {
        let pool = EmitPool::build(&Runtime::new(0), Shape::Docker, 1000, 7);
        assert_eq!(pool.entries.len(), POOL_EVENTS);
        assert_eq!(pool.count, 1000);
        for (event, frames) in &pool.entries {
            assert_eq!(frames.len(), 1);
            let decoded = WatchEvent::decode(bytes::Bytes::from(frames[0].clone())).unwrap();
            assert_eq!(decoded.id(), event.container.id());
            assert!(
                (250..700).contains(&frames[0].len()),
                "{} bytes",
                frames[0].len()
            );
        }
        let actions: Vec<_> = pool.entries.iter().take(8).map(|(e, _)| e.action).collect();
        assert_eq!(
            actions,
            [
                "create", "start", "pause", "unpause", "kill", "die", "restart", "stop"
            ]
        );
    }

    #[test]
    fn pool_uses_existing_containers_and_small_counts() {
        let rt = Runtime::new(1);
        rt.populate(3);
        let ids: Vec<_> = rt
            .list(true)
            .into_iter()
            .map(|c| c.id().to_owned())
            .collect();
        let pool = EmitPool::build(&rt, Shape::Kubernetes, 5, 0);
        assert_eq!(pool.entries.len(), 5);
        assert!(
            pool.entries
                .iter()
                .all(|(e, _)| ids.iter().any(|id| id == e.container.id()))
        );
    }
}
