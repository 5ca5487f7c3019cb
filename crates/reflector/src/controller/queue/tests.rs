//! The queue's decisions, driven by scripted calls and instants.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn limits() -> QueueConfig {
    QueueConfig {
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
    q.add("a", Some(1), Priority::High, Reason::Changed, t);
    q.add("b", Some(1), Priority::High, Reason::Changed, t);
    q.add("a", Some(2), Priority::High, Reason::Changed, t + MS);
    q.add("a", None, Priority::High, Reason::Changed, t + MS);
    assert_eq!(q.depth(), 2);
    let w = run(&mut q, t + MS);
    assert_eq!((w.key.as_str(), w.state, w.attempt), ("a", 2, 1));
    assert_eq!(w.waited, MS, "it waits since its first add");
    // A trigger for a key with no known state queues nothing.
    assert!(!q.add("z", None, Priority::High, Reason::Changed, t));
}

#[test]
fn one_key_never_runs_twice_at_once_and_a_change_meanwhile_runs_after() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    q.add("a", Some(1), Priority::High, Reason::Changed, t);
    assert_eq!(run(&mut q, t).state, 1);
    q.add("a", Some(2), Priority::High, Reason::Changed, t);
    q.add("a", Some(3), Priority::High, Reason::Changed, t);
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
        q.add(k, Some(0), Priority::High, Reason::Changed, t);
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
    q.add("a", Some(1), Priority::High, Reason::Changed, t);
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
    q.add(
        "a",
        Some(2),
        Priority::High,
        Reason::Changed,
        t + Duration::from_secs(11),
    );
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
    q.add("a", Some(()), Priority::High, Reason::Changed, t);
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
    q.add("a", Some(()), Priority::High, Reason::Changed, now);
    assert_eq!(run(&mut q, now).attempt, 1, "success forgets the failures");
    q.done("a", Outcome::Failed, now);
    assert_eq!(q.next(now), Next::Wait(Some(now + 5 * MS)));
}

#[test]
fn the_default_per_item_backoff_is_client_go_s() {
    let (base, max) = (5 * MS, Duration::from_secs(1000));
    let backoff = Exponential::new(base, 2.0, max);
    assert_eq!(backoff.delay(0), 5 * MS);
    assert_eq!(backoff.delay(10), 5120 * MS);
    assert_eq!(backoff.delay(18), max, "5 ms * 2^18 > 1000 s");
    assert_eq!(backoff.delay(u32::MAX), max);
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
        q.add(k, Some(()), Priority::High, Reason::Changed, t);
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
        q.add(k, Some(()), Priority::Low, Reason::Changed, t);
    }
    q.add("h1", Some(()), Priority::High, Reason::Changed, t + MS);
    assert_eq!(keys(&mut q, t + MS), ["h1", "l1", "l2", "l3"]);

    // A low item ready 6 s ago goes before a high one that just arrived: it aged.
    q.add("old", Some(()), Priority::Low, Reason::Changed, t);
    q.add(
        "new",
        Some(()),
        Priority::High,
        Reason::Changed,
        t + Duration::from_secs(6),
    );
    assert_eq!(keys(&mut q, t + Duration::from_secs(6)), ["old", "new"]);

    // A live change upgrades a waiting low item.
    q.add("x", Some(()), Priority::Low, Reason::Changed, t);
    q.add("y", Some(()), Priority::Low, Reason::Changed, t);
    q.add("y", Some(()), Priority::High, Reason::Changed, t + MS);
    assert_eq!(keys(&mut q, t + MS), ["y", "x"]);
}

#[test]
fn a_steady_stream_of_high_items_does_not_starve_low_ones() {
    let t = Instant::now();
    let mut lim = limits();
    lim.concurrency = 1;
    let mut q = Queue::new(lim, t);
    q.add("low", Some(()), Priority::Low, Reason::Changed, t);
    // One high item a second, each taking a second: the low one runs by the aging period.
    let mut ran_low_at = None;
    for s in 0..20u64 {
        let now = t + Duration::from_secs(s);
        q.add(
            &format!("h{s}"),
            Some(()),
            Priority::High,
            Reason::Changed,
            now,
        );
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
        q.add(k, Some(()), Priority::High, Reason::Changed, t);
    }
    run(&mut q, t);
    q.shut_down();
    assert_eq!(q.next(t), Next::Wait(None));
    assert!(!q.add("d", Some(()), Priority::High, Reason::Changed, t));
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
    q.add("a", Some(()), Priority::Low, Reason::Changed, t);
    q.add("b", Some(()), Priority::High, Reason::Changed, t + MS);
    assert_eq!(q.oldest(t + 10 * MS), 10 * MS);
}

#[test]
fn a_waiting_key_runs_for_the_reason_of_its_latest_add_at_the_highest_priority() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    q.add("a", Some(1), Priority::High, Reason::Changed, t);
    // The flood does not hide a change...
    q.add("a", Some(2), Priority::Low, Reason::Resync, t + MS);
    // ...but a later change of the same priority is the reason.
    q.add("b", Some(1), Priority::Low, Reason::Resync, t);
    q.add("b", None, Priority::High, Reason::Trigger, t + MS);
    q.add("c", Some(1), Priority::High, Reason::Changed, t);
    q.add("c", Some(2), Priority::High, Reason::Deleted, t + MS);
    let mut reasons = Vec::new();
    while let Next::Run(w) = q.next(t + MS) {
        reasons.push((w.key.clone(), w.reason));
        q.done(&w.key, Outcome::Done, t + MS);
    }
    reasons.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        reasons,
        [
            ("a".to_owned(), Reason::Changed),
            ("b".to_owned(), Reason::Trigger),
            ("c".to_owned(), Reason::Deleted)
        ]
    );
}

#[test]
fn requeues_and_retries_say_so_and_a_change_meanwhile_says_changed() {
    let t = Instant::now();
    let mut lim = limits();
    lim.qps = 0.0;
    let mut q = Queue::new(lim, t);
    q.add("a", Some(1), Priority::High, Reason::Changed, t);
    run(&mut q, t);
    q.done("a", Outcome::RequeueAfter(MS), t);
    assert_eq!(run(&mut q, t + MS).reason, Reason::Requeue);
    q.done("a", Outcome::Failed, t + MS);
    let retry = run(&mut q, t + 10 * MS);
    assert_eq!((retry.reason, retry.attempt), (Reason::Retry, 2));
    q.add("a", Some(2), Priority::High, Reason::Changed, t + 10 * MS);
    q.done("a", Outcome::Failed, t + 10 * MS);
    let again = run(&mut q, t + 10 * MS);
    assert_eq!(again.reason, Reason::Changed, "the change is due first");
}

#[test]
fn an_error_that_says_when_waits_that_long_and_a_terminal_one_is_forgotten() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    q.add("a", Some(1), Priority::High, Reason::Changed, t);
    run(&mut q, t);
    let secs = Duration::from_secs(3);
    assert_eq!(q.done("a", Outcome::RetryAfter(secs), t), Some(secs));
    assert_eq!(q.next(t), Next::Wait(Some(t + secs)));
    let retry = run(&mut q, t + secs);
    assert_eq!((retry.attempt, retry.reason), (2, Reason::Retry));
    assert_eq!(q.done("a", Outcome::Terminal, t + secs), None);
    assert_eq!(q.next(t + secs), Next::Wait(None));
    assert!(q.state("a").is_none(), "forgotten until it changes");
    q.add("a", Some(2), Priority::High, Reason::Changed, t + secs);
    assert_eq!(
        run(&mut q, t + secs).attempt,
        1,
        "its failures are forgotten"
    );
}

#[test]
fn a_paused_queue_hands_nothing_out_but_keeps_queueing() {
    let t = Instant::now();
    let mut q = Queue::new(limits(), t);
    q.set_paused(true);
    q.add("a", Some(1), Priority::High, Reason::Changed, t);
    q.add("a", Some(2), Priority::High, Reason::Changed, t);
    assert_eq!(q.next(t), Next::Wait(None));
    assert_eq!(q.depth(), 1);
    q.set_paused(false);
    assert_eq!(run(&mut q, t).state, 2);
}
