//! Populating a runtime and churning it: random but seeded life-cycle activity.
//!
//! Churn picks one valid action at a time with the runtime's seeded generator, so two
//! runtimes made with the same seed and driven the same way produce the same actions,
//! ids and names. The mix is weighted so the population stays around its target: the
//! size after [`Runtime::populate`] (or when churn first ran), at least one.

use std::time::{Duration, SystemTime};

use hypersh_watch::container::ContainerState;
use rand::Rng;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::machine::{Op, State, unique_name};
use super::{Runtime, generate};

/// Weight of "act on an existing container" against create (1 + 4 per missing container)
/// and destroy (1 + 4 per extra container).
const LIFECYCLE_WEIGHT: usize = 8;
/// Extra weight per container of distance from the target population.
const STEER_WEIGHT: usize = 4;

impl Runtime {
    /// Adds `n` containers with random names, images and labels from the seeded generator,
    /// in mixed states (mostly running; some paused, exited or just created). Emits the
    /// events of each step. The population churn steers towards becomes the new size.
    pub fn populate(&self, n: usize) {
        let mut st = self.inner.state.lock();
        let first = st.next_seq;
        for _ in 0..n {
            let now = SystemTime::now();
            let raw_name = generate::name(&mut st.rng);
            let name = unique_name(&mut st, &raw_name);
            let image = generate::image(&mut st.rng);
            let labels = generate::labels(&mut st.rng);
            let Ok((_, seq)) = self.create_locked(&mut st, &name, image, labels) else {
                continue;
            };
            let ops: Vec<Op> = match st.rng.random_range(0..20) {
                0..11 => vec![Op::Start],
                11..13 => vec![Op::Start, Op::Pause],
                13..17 => {
                    let code = generate::exit_code(&mut st.rng);
                    vec![Op::Start, Op::Die(code)]
                }
                _ => Vec::new(),
            };
            for op in ops {
                // Each op is valid after the previous one; an error would only skip it.
                let _ = self.apply(&mut st, seq, op, now);
            }
        }
        // The list items of the new containers, made once they are in their states.
        let State {
            records,
            list_cache,
            ..
        } = &mut *st;
        list_cache.settle_all(records.range_mut(first..).map(|(_, rec)| rec));
        st.target = Some(st.records.len());
    }

    /// Performs one random valid action and returns its name (`create`, `start`, `stop`,
    /// `kill`, `die`, `pause`, `unpause`, `restart`, `rename` or `destroy`), or `None` when
    /// the chosen action could not be applied (it is not expected to happen).
    pub fn churn_once(&self) -> Option<&'static str> {
        let mut st = self.inner.state.lock();
        let now = SystemTime::now();
        let n = st.records.len();
        let target = *st.target.get_or_insert(n.max(1));
        let create_w = 1 + STEER_WEIGHT * target.saturating_sub(n);
        let (destroy_w, lifecycle_w) = if n == 0 {
            (0, 0)
        } else {
            (
                1 + STEER_WEIGHT * n.saturating_sub(target),
                LIFECYCLE_WEIGHT,
            )
        };
        let roll = st.rng.random_range(0..create_w + destroy_w + lifecycle_w);
        if roll < create_w {
            let raw_name = generate::name(&mut st.rng);
            let name = unique_name(&mut st, &raw_name);
            let image = generate::image(&mut st.rng);
            let labels = generate::labels(&mut st.rng);
            let (_, seq) = self.create_locked(&mut st, &name, image, labels).ok()?;
            st.settle(seq);
            return Some("create");
        }
        // A random container through the slot vector: constant time, where walking the
        // records to the index took time linear in their number on every action.
        let index = st.rng.random_range(0..n);
        let seq = st.slots.get(index).copied()?;
        let state = st.records.get(&seq).map(|r| r.container.state())?;
        let op = if roll < create_w + destroy_w {
            Op::Destroy
        } else {
            pick_op(&mut st, state)?
        };
        let name = op.name();
        let applied = self.apply(&mut st, seq, op, now);
        st.settle(seq);
        applied.ok().map(|()| name)
    }

    /// Spawns a task that performs about `events_per_sec` random actions per second (one
    /// [`Runtime::churn_once`] per tick of a `tokio::time::interval`, so paused-time tests
    /// can drive it), for `for_` if given, until [`Runtime::stop_churn`] or until the task
    /// is aborted. A rate that is not a positive finite number does nothing. An action may
    /// emit several events (`stop` emits three), so the event rate is somewhat higher.
    ///
    /// # Panics
    /// When called outside a Tokio runtime (as `tokio::spawn` does).
    pub fn spawn_churn(&self, events_per_sec: f64, for_: Option<Duration>) -> JoinHandle<()> {
        let stop = self.inner.churn_stop.lock().clone();
        let runtime = self.clone();
        tokio::spawn(async move {
            if !(events_per_sec.is_finite() && events_per_sec > 0.0) {
                return;
            }
            {
                let mut st = runtime.inner.state.lock();
                let n = st.records.len();
                st.target.get_or_insert(n.max(1));
            }
            let period =
                Duration::from_secs_f64(1.0 / events_per_sec).max(Duration::from_micros(1));
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
            let deadline = for_.map(|d| Instant::now() + d);
            let expired = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(expired);
            loop {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    () = &mut expired => break,
                    _ = ticks.tick() => {
                        runtime.churn_once();
                    }
                }
            }
        })
    }

    /// Stops every churn task spawned so far (they end at their next poll). Churn spawned
    /// later runs normally.
    pub fn stop_churn(&self) {
        let mut stop = self.inner.churn_stop.lock();
        stop.cancel();
        *stop = tokio_util::sync::CancellationToken::new();
    }
}

/// A random life-cycle operation valid in `state` (destroy and create are chosen apart).
fn pick_op(st: &mut State, state: ContainerState) -> Option<Op> {
    use ContainerState::{Created, Exited, Paused, Running};
    let choices: &[u8] = match state {
        Created => &[0, 7],
        Running => &[1, 2, 3, 4, 6, 7],
        Paused => &[5, 1],
        Exited => &[0, 6, 7],
        _ => return None,
    };
    let pick = choices[st.rng.random_range(0..choices.len())];
    Some(match pick {
        0 => Op::Start,
        1 => Op::Stop,
        2 => Op::Kill,
        3 => Op::Die(generate::exit_code(&mut st.rng)),
        4 => Op::Pause,
        5 => Op::Unpause,
        6 => Op::Restart,
        _ => {
            let raw = generate::name(&mut st.rng);
            Op::Rename(unique_name(st, &raw))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn populate_makes_mixed_states_deterministically() {
        let a = Runtime::new(42);
        let b = Runtime::new(42);
        a.populate(100);
        b.populate(100);
        let la = a.list(true);
        let lb = b.list(true);
        assert_eq!(la.len(), 100);
        let key = |v: &[hypersh_watch::container::Container]| {
            v.iter()
                .map(|c| {
                    (
                        c.id().to_owned(),
                        c.names().map(str::to_owned).collect::<Vec<_>>(),
                        c.state(),
                        c.labels().clone(),
                        c.image().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(key(&la), key(&lb));
        for state in [
            ContainerState::Running,
            ContainerState::Paused,
            ContainerState::Exited,
            ContainerState::Created,
        ] {
            assert!(la.iter().any(|c| c.state() == state), "some {state}");
        }
        assert_ne!(key(&la), key(&Runtime::new(43).tap_populate(40).list(true)));
    }

    #[test]
    fn churn_is_deterministic_for_a_seed() {
        let a = Runtime::new(9);
        let b = Runtime::new(9);
        a.populate(10);
        b.populate(10);
        let seq_a: Vec<_> = (0..500).map(|_| a.churn_once()).collect();
        let seq_b: Vec<_> = (0..500).map(|_| b.churn_once()).collect();
        assert_eq!(seq_a, seq_b);
        assert!(
            seq_a.iter().all(Option::is_some),
            "every chosen action is valid"
        );
        let ids = |r: &Runtime| {
            r.list(true)
                .into_iter()
                .map(|c| {
                    let names: Vec<String> = c.names().map(str::to_owned).collect();
                    (c.id().to_owned(), names, c.state())
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&a), ids(&b));
        for action in [
            "create", "destroy", "start", "stop", "kill", "die", "pause", "restart", "rename",
        ] {
            assert!(seq_a.contains(&Some(action)), "{action} appears");
        }
    }

    #[test]
    fn churn_keeps_the_population_near_its_target() {
        let rt = Runtime::new(5);
        rt.populate(20);
        for _ in 0..3000 {
            rt.churn_once();
        }
        let n = rt.len();
        assert!((8..=32).contains(&n), "population {n} drifted");
        let empty = Runtime::new(5);
        assert_eq!(
            empty.churn_once(),
            Some("create"),
            "an empty runtime can only create"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn spawned_churn_runs_at_its_rate_and_stops() {
        let rt = Runtime::new(3);
        rt.populate(5);
        let before = rt.event_count();
        let mut rx = rt.subscribe();
        rt.spawn_churn(10.0, Some(Duration::from_secs(2)))
            .await
            .unwrap();
        let after = rt.event_count();
        // 20 ticks in two seconds, each one action of one to three events.
        assert!(
            (20..=60).contains(&(after - before)),
            "{} events",
            after - before
        );
        assert!(rx.try_recv().is_ok());

        let handle = rt.spawn_churn(1000.0, None);
        tokio::time::sleep(Duration::from_millis(50)).await;
        rt.stop_churn();
        handle.await.unwrap();
        let stopped_at = rt.event_count();
        assert!(stopped_at > after);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(rt.event_count(), stopped_at, "no churn once stopped");

        assert!(
            rt.spawn_churn(0.0, None).await.is_ok(),
            "zero rate ends at once"
        );
        assert!(rt.spawn_churn(f64::NAN, None).await.is_ok());
        assert_eq!(rt.event_count(), stopped_at);
    }

    trait TapPopulate {
        fn tap_populate(self, n: usize) -> Self;
    }
    impl TapPopulate for Runtime {
        fn tap_populate(self, n: usize) -> Self {
            self.populate(n);
            self
        }
    }
}
