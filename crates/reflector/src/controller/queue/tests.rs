//! The queue's decisions, driven by scripted calls and instants.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn limits() -> Limits {
    Limits {
        concurrency: 2,
        backoff_base: 5 * MS,
        backoff_max: Duration::from_secs(1000),
        qps: 10.0,
        burst: 100,
        aging: Duration::from_secs(5),
    }
}

fn run<S: Clone>(q: &mut Queue<S>, now: Instant) -> Work<S> {
    match q.next(now) {
        Next::Run(w) => w,
        other => panic!(
            "nothing to run at {now:?}: {:?}",
            matches!(other, Next::Wait(_))
        ),
    }
}

fn keys<S: Clone>(q: &mut Queue<S>, now: Instant) -> Vec<String> {
    let mut out = Vec::new();
    while let Next::Run(w) = q.next(now) {
        out.push(w.key.clone());
        q.done(&w.key, Outcome::Done, now);
    }
    out
}

#[test]
fn a_waiting_key_is_queued_once_with_its_latest_state() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    q.add("a", Some(1), Priority::High, t);
    q.add("b", Some(1), Priority::High, t);
    q.add("a", Some(2), Priority::High, t + MS);
    q.add("a", None, Priority::High, t + MS);
    assert_eq!(q.depth(), 2);
    let w = run(&mut q, t + MS);
    assert_eq!((w.key.as_str(), w.state, w.attempt), ("a", 2, 1));
    assert_eq!(w.waited, MS, "it waits since its first add");
    // A trigger for a key with no known state queues nothing.
    assert!(!q.add("z", None, Priority::High, t));
}

#[test]
fn one_key_never_runs_twice_at_once_and_a_change_meanwhile_runs_after() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    q.add("a", Some(1), Priority::High, t);
    assert_eq!(run(&mut q, t).state, 1);
    q.add("a", Some(2), Priority::High, t);
    q.add("a", Some(3), Priority::High, t);
    assert_eq!(q.next(t), Next::Wait(None), "a runs already");
    q.done("a", Outcome::Done, t + MS);
    let again = run(&mut q, t + MS);
    assert_eq!((again.state, again.attempt), (3, 1));
    q.done("a", Outcome::Done, t + MS);
    assert_eq!(q.next(t + MS), Next::Wait(None));
    assert!(
        q.waiting_keys().is_empty() && q.state("a").is_none(),
        "forgotten"
    );
}

#[test]
fn no_more_than_the_concurrency_bound_run() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    for k in ["a", "b", "c"] {
        q.add(k, Some(0), Priority::High, t);
    }
    run(&mut q, t);
    run(&mut q, t);
    assert_eq!(q.next(t), Next::Wait(None));
    assert_eq!(q.running(), 2);
    assert_eq!(q.running_keys(), ["a", "b"]);
    q.done("b", Outcome::Done, t);
    assert_eq!(run(&mut q, t).key, "c");
}

#[test]
fn requeue_after_runs_again_then_and_an_earlier_change_wins() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    q.add("a", Some(1), Priority::High, t);
    run(&mut q, t);
    assert_eq!(
        q.done("a", Outcome::RequeueAfter(Duration::from_secs(10)), t),
        None
    );
    assert_eq!(q.next(t), Next::Wait(Some(t + Duration::from_secs(10))));
    assert_eq!(run(&mut q, t + Duration::from_secs(10)).state, 1);
    q.done(
        "a",
        Outcome::RequeueAfter(Duration::from_secs(10)),
        t + Duration::from_secs(10),
    );
    q.add("a", Some(2), Priority::High, t + Duration::from_secs(11));
    let w = run(&mut q, t + Duration::from_secs(11));
    assert_eq!(w.state, 2, "the change goes now, not at the requeue time");
}

#[test]
fn failures_back_off_exponentially_up_to_the_cap_and_success_forgets_them() {
    let t = Instant::now();
    let mut lim = limits();
    lim.backoff_max = 40 * MS;
    lim.qps = 0.0; // no overall limit here
    let mut q = Queue::new(lim, t);
    q.add("a", Some(()), Priority::High, t);
    let mut now = t;
    let mut delays = Vec::new();
    for attempt in 1..=6 {
        let w = run(&mut q, now);
        assert_eq!(w.attempt, attempt);
        let d = q.done("a", Outcome::Failed, now).expect("a retry delay");
        delays.push(d.as_millis());
        assert_eq!(q.next(now), Next::Wait(Some(now + d)));
        now += d;
    }
    assert_eq!(delays, [5, 10, 20, 40, 40, 40]);
    run(&mut q, now);
    q.done("a", Outcome::Done, now);
    q.add("a", Some(()), Priority::High, now);
    assert_eq!(run(&mut q, now).attempt, 1, "success forgets the failures");
    q.done("a", Outcome::Failed, now);
    assert_eq!(q.next(now), Next::Wait(Some(now + 5 * MS)));
}

#[test]
fn the_default_per_item_backoff_is_client_go_s() {
    let (base, max) = (5 * MS, Duration::from_secs(1000));
    assert_eq!(backoff(base, max, 0), 5 * MS);
    assert_eq!(backoff(base, max, 10), 5120 * MS);
    assert_eq!(backoff(base, max, 18), max, "5 ms * 2^18 > 1000 s");
    assert_eq!(backoff(base, max, u32::MAX), max);
}

#[test]
fn retries_beyond_the_burst_are_spread_at_the_overall_rate() {
    let t = Instant::now();
    let mut lim = limits();
    lim.concurrency = 1000;
    lim.backoff_base = Duration::ZERO;
    lim.burst = 3;
    lim.qps = 10.0;
    let mut q = Queue::new(lim, t);
    let names: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
    for k in &names {
        q.add(k, Some(()), Priority::High, t);
    }
    let delays: Vec<u128> = names
        .iter()
        .map(|k| {
            run(&mut q, t);
            q.done(k, Outcome::Failed, t).expect("delay").as_millis()
        })
        .collect();
    assert_eq!(delays, [0, 0, 0, 100, 200], "3 at once, then 10 per second");
    assert_eq!(q.depth(), 5);
}

#[test]
fn high_goes_before_low_and_low_ages_past_the_aging_period() {
    let t = Instant::now();
    let mut lim = limits();
    lim.concurrency = 1;
    let mut q = Queue::new(lim, t);
    for k in ["l1", "l2", "l3"] {
        q.add(k, Some(()), Priority::Low, t);
    }
    q.add("h1", Some(()), Priority::High, t + MS);
    assert_eq!(keys(&mut q, t + MS), ["h1", "l1", "l2", "l3"]);

    // A low item ready 6 s ago goes before a high one that just arrived: it aged.
    q.add("old", Some(()), Priority::Low, t);
    q.add("new", Some(()), Priority::High, t + Duration::from_secs(6));
    assert_eq!(keys(&mut q, t + Duration::from_secs(6)), ["old", "new"]);

    // A live change upgrades a waiting low item.
    q.add("x", Some(()), Priority::Low, t);
    q.add("y", Some(()), Priority::Low, t);
    q.add("y", Some(()), Priority::High, t + MS);
    assert_eq!(keys(&mut q, t + MS), ["y", "x"]);
}

#[test]
fn a_steady_stream_of_high_items_does_not_starve_low_ones() {
    let t = Instant::now();
    let mut lim = limits();
    lim.concurrency = 1;
    let mut q = Queue::new(lim, t);
    q.add("low", Some(()), Priority::Low, t);
    // One high item a second, each taking a second: the low one runs by the aging period.
    let mut ran_low_at = None;
    for s in 0..20u64 {
        let now = t + Duration::from_secs(s);
        q.add(&format!("h{s}"), Some(()), Priority::High, now);
        let w = run(&mut q, now);
        if w.key == "low" {
            ran_low_at = Some(s);
            q.done(&w.key, Outcome::Done, now);
            let w = run(&mut q, now);
            q.done(&w.key, Outcome::Done, now + Duration::from_secs(1));
            continue;
        }
        q.done(&w.key, Outcome::Done, now + Duration::from_secs(1));
    }
    assert_eq!(
        ran_low_at,
        Some(5),
        "once it has waited the 5 s aging period"
    );
}

#[test]
fn shutdown_stops_handing_out_work_and_reports_what_waits() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    for k in ["a", "b", "c"] {
        q.add(k, Some(()), Priority::High, t);
    }
    run(&mut q, t);
    q.shut_down();
    assert_eq!(q.next(t), Next::Wait(None));
    assert!(!q.add("d", Some(()), Priority::High, t));
    assert_eq!(q.running_keys(), ["a"]);
    assert_eq!(q.waiting_keys(), ["b", "c"]);
    q.done("a", Outcome::Failed, t);
    assert_eq!(
        q.waiting_keys(),
        ["a", "b", "c"],
        "a failure left behind is reported"
    );
}

#[test]
fn oldest_is_the_age_of_the_longest_waiting_due_key() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    assert_eq!(q.oldest(t), Duration::ZERO);
    q.add("a", Some(()), Priority::Low, t);
    q.add("b", Some(()), Priority::High, t + MS);
    assert_eq!(q.oldest(t + 10 * MS), 10 * MS);
}
