//! Every branch of the core, driven with scripted inputs: no network, no clock, no sleep.

use std::time::Duration;

use hypersh_watch::ContainerState::{Created, Exited, Paused, Running};
use hypersh_watch::{Container, Filters};
use tokio::time::Instant;

use super::*;
use crate::backoff::BackoffConfig;
use crate::testkit::{MapCache, container, docker, k8s, labelled};

const SECOND: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(30);

fn core() -> Core {
    core_with(Selector::default())
}

fn core_with(selector: Selector) -> Core {
    let backoff = BackoffConfig::default()
        .initial(SECOND)
        .max(MAX)
        .jitter(false);
    let settings = Settings {
        backoff,
        ..Settings::default()
    };
    Core::new(selector, &settings, fastrand::Rng::with_seed(1))
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

/// The command that starts fetch number `n` of `asked`.
fn fetch(n: u64, asked: &[&str]) -> Command {
    Command::Fetch {
        fetch: FetchId(n),
        ids: ids(asked),
    }
}

/// The answer to the fetch in flight that asked for `asked` (a fetch no longer in flight
/// when there is none).
fn fetched(core: &Core, asked: &[&str], found: Vec<Container>) -> Input {
    let asked = ids(asked);
    let fetch = match core.state() {
        State::Watching(w) => w
            .fetches
            .iter()
            .find(|(_, ids)| **ids == asked)
            .map(|(fetch, _)| *fetch),
        State::Listing(
            Listing::Fetching { fetch, .. }
            | Listing::Overflowed {
                fetch: Some(fetch), ..
            },
        ) => Some(*fetch),
        _ => None,
    };
    Input::Fetched {
        fetch: fetch.unwrap_or_default(),
        found,
        now: Instant::now(),
    }
}

/// What a failure makes the core do: disconnect, forget pooled connections, wait `delay`.
fn backs_off(delay: Duration) -> Vec<Command> {
    vec![
        Command::Disconnect,
        Command::ResetSource,
        Command::Sleep(delay),
    ]
}

fn refresh(request: u64, asked: &[&str]) -> Input {
    Input::Refresh {
        request: RefreshId(request),
        ids: ids(asked),
    }
}

fn failure(text: &str) -> Input {
    Input::Failed {
        error: Some(Failure {
            auth: false,
            text: text.to_owned(),
        }),
        now: Instant::now(),
    }
}

fn auth_failure() -> Input {
    Input::Failed {
        error: Some(Failure {
            auth: true,
            text: "authentication failed (HTTP 403): bad signature".to_owned(),
        }),
        now: Instant::now(),
    }
}

fn list_done() -> Input {
    Input::ListDone {
        now: Instant::now(),
    }
}

/// Steps with a cache the input does not use.
fn step(core: &mut Core, input: Input) -> Vec<Command> {
    core.step(input, &mut MapCache::default())
}

/// Drives a fresh core to the list: `Start`, then `WatchOpened`.
fn listing(core: &mut Core) {
    assert_eq!(step(core, Input::Start), [Command::OpenWatch]);
    assert_eq!(step(core, Input::WatchOpened), [Command::List]);
}

/// Drives a fresh core to the watch phase with `cache` as the listed containers.
fn watching(core: &mut Core, cache: &mut MapCache) {
    listing(core);
    assert_eq!(core.step(list_done(), cache), [Command::CommitRelist]);
    assert!(matches!(core.state(), State::Watching(_)));
}

fn held(core: &Core) -> usize {
    match core.state() {
        State::Watching(w) => w.held.len(),
        other => panic!("not watching: {other:?}"),
    }
}

fn pending(core: &Core) -> Vec<String> {
    match core.state() {
        State::Watching(w) => w.pending.iter().cloned().collect(),
        other => panic!("not watching: {other:?}"),
    }
}

// Connecting and listing.

#[test]
fn start_opens_the_watch_before_anything_else() {
    let mut core = core();
    assert_eq!(core.status().phase, Phase::Connecting);
    assert_eq!(step(&mut core, Input::Start), [Command::OpenWatch]);
    assert!(matches!(core.state(), State::Connecting));
}

#[test]
fn an_open_watch_starts_the_list() {
    let mut core = core();
    listing(&mut core);
    assert_eq!(core.status().phase, Phase::Listing);
    assert!(!core.status().synced);
    assert_eq!(core.status().reconnects, 0);
}

#[test]
fn events_during_the_list_are_buffered_not_applied() {
    let mut core = core();
    listing(&mut core);
    let mut cache = MapCache::default();
    assert!(
        core.step(Input::Event(docker("create", "a")), &mut cache)
            .is_empty()
    );
    assert!(cache.0.is_empty());
    assert_eq!(core.status().events_received, 1);
    assert_eq!(core.status().events_applied, 0);
    let State::Listing(Listing::Running { buffered }) = core.state() else {
        panic!("still listing")
    };
    assert_eq!(buffered.len(), 1);
}

#[test]
fn a_list_without_events_is_committed_and_watching_begins() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    let s = core.status();
    assert_eq!(s.phase, Phase::Watching);
    assert!(s.synced && s.connected);
    assert_eq!(s.relists, 1);
    assert_eq!(cache.states(), [("a".to_owned(), Running)]);
}

#[test]
fn buffered_events_replay_onto_the_list_to_the_net_state() {
    let mut core = core();
    listing(&mut core);
    let mut listed = MapCache::of([container("a", Running), container("b", Exited)]);
    // Older than the list, then newer: the last one wins.
    for event in [
        docker("die", "a"),
        docker("start", "a"),
        docker("destroy", "b"),
        docker("create", "d"),
        docker("destroy", "d"),
    ] {
        core.step(Input::Event(event), &mut listed);
    }
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert_eq!(listed.states(), [("a".to_owned(), Running)]);
}

#[test]
fn a_container_created_during_the_list_is_fetched_before_the_commit() {
    let mut core = core();
    listing(&mut core);
    let mut listed = MapCache::default();
    core.step(Input::Event(docker("create", "c")), &mut listed);
    core.step(Input::Event(docker("start", "c")), &mut listed);
    assert_eq!(core.step(list_done(), &mut listed), [fetch(1, &["c"])]);
    assert!(!core.status().synced, "not ready before the fetch answers");
    let answer = fetched(
        &core,
        &["c"],
        vec![container("c", Running), container("zz", Running)],
    );
    assert_eq!(core.step(answer, &mut listed), [Command::CommitRelist]);
    assert_eq!(
        listed.states(),
        [("c".to_owned(), Running)],
        "only what was asked"
    );
    assert_eq!(core.status().fetches, 1);
    assert!(core.status().synced);
}

#[test]
fn a_delete_cancels_a_pending_fetch_of_a_listed_container() {
    let mut core = core();
    listing(&mut core);
    let mut listed = MapCache::of([container("a", Running)]);
    // Same phase: the event cannot say what changed, so the container must be fetched...
    core.step(Input::Event(k8s("MODIFIED", "a", "Running")), &mut listed);
    // ...unless it is gone.
    core.step(Input::Event(k8s("DELETED", "a", "Succeeded")), &mut listed);
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert!(listed.0.is_empty());
}

#[test]
fn a_kubernetes_restart_during_the_list_is_deleted_then_fetched() {
    let mut core = core();
    listing(&mut core);
    let mut listed = MapCache::of([container("a", Exited)]);
    core.step(Input::Event(k8s("DELETED", "a", "Succeeded")), &mut listed);
    core.step(Input::Event(k8s("ADDED", "a", "Running")), &mut listed);
    assert_eq!(core.step(list_done(), &mut listed), [fetch(1, &["a"])]);
    assert!(listed.0.is_empty(), "the DELETED removed it");
    core.step(
        fetched(&core, &["a"], vec![container("a", Running)]),
        &mut listed,
    );
    assert_eq!(listed.states(), [("a".to_owned(), Running)]);
}

#[test]
fn events_during_the_list_fetch_are_replayed_on_top_of_its_answer() {
    let mut core = core();
    listing(&mut core);
    let mut listed = MapCache::default();
    core.step(Input::Event(docker("create", "c")), &mut listed);
    assert_eq!(core.step(list_done(), &mut listed), [fetch(1, &["c"])]);
    // While the fetch runs, `c` stops: the answer may predate that.
    core.step(Input::Event(docker("die", "c")), &mut listed);
    let commands = core.step(
        fetched(&core, &["c"], vec![container("c", Running)]),
        &mut listed,
    );
    assert_eq!(commands, [Command::CommitRelist]);
    assert_eq!(listed.states(), [("c".to_owned(), Exited)]);
}

#[test]
fn a_container_created_during_the_list_fetch_is_fetched_after_the_commit() {
    let mut core = core();
    listing(&mut core);
    let mut listed = MapCache::default();
    core.step(Input::Event(docker("create", "c")), &mut listed);
    core.step(list_done(), &mut listed);
    core.step(Input::Event(docker("create", "d")), &mut listed);
    let commands = core.step(
        fetched(&core, &["c"], vec![container("c", Created)]),
        &mut listed,
    );
    assert_eq!(commands, [Command::CommitRelist, fetch(2, &["d"])]);
    assert_eq!(listed.states(), [("c".to_owned(), Created)]);
}

#[test]
fn a_list_that_fails_while_events_are_buffered_drops_them_and_backs_off() {
    let mut core = core();
    listing(&mut core);
    let mut listed = MapCache::default();
    core.step(Input::Event(docker("create", "c")), &mut listed);
    assert_eq!(
        step(&mut core, failure("HTTP: connection reset")),
        backs_off(SECOND)
    );
    assert_eq!(core.status().phase, Phase::Backoff);
    assert_eq!(core.status().failures, 1);
    assert_eq!(
        core.status().last_error.as_deref(),
        Some("HTTP: connection reset")
    );
    assert!(!core.status().synced);
    // The next session starts from an empty buffer.
    assert_eq!(step(&mut core, Input::BackoffDone), [Command::OpenWatch]);
    assert_eq!(step(&mut core, Input::WatchOpened), [Command::List]);
    assert_eq!(core.status().reconnects, 1);
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert!(listed.0.is_empty());
}

#[test]
fn a_fetch_that_fails_during_the_sync_ends_the_session_without_a_commit() {
    let mut core = core();
    listing(&mut core);
    let mut listed = MapCache::default();
    core.step(Input::Event(docker("create", "c")), &mut listed);
    core.step(list_done(), &mut listed);
    let commands = step(&mut core, failure("list request timed out after 60s"));
    assert_eq!(commands, backs_off(SECOND));
    assert!(!core.status().synced);
    assert_eq!(core.status().relists, 0);
}

// Watching.

#[test]
fn a_live_event_for_an_unknown_container_is_fetched() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    let commands = core.step(Input::Event(docker("create", "a")), &mut cache);
    assert_eq!(commands, [fetch(1, &["a"])]);
    assert_eq!(core.status().fetches, 1);
    core.step(
        fetched(&core, &["a"], vec![container("a", Created)]),
        &mut cache,
    );
    assert_eq!(cache.states(), [("a".to_owned(), Created)]);
    assert_eq!(core.status().events_applied, 1);
}

#[test]
fn a_docker_state_change_of_a_cached_container_applies_without_a_fetch() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    assert!(
        core.step(Input::Event(docker("pause", "a")), &mut cache)
            .is_empty()
    );
    assert_eq!(cache.states(), [("a".to_owned(), Paused)]);
    assert_eq!(core.status().events_applied, 1);
}

#[test]
fn a_start_of_a_networked_container_applies_at_once_then_fetches_its_addresses() {
    use hypersh_watch::container::Network;
    let on_bridge = |state, ip: &str| {
        container("a", state)
            .into_builder()
            .network(Network::new("bridge").with_ip_address(ip))
            .build()
    };
    let mut core = core();
    let mut cache = MapCache::of([on_bridge(Created, "")]);
    watching(&mut core, &mut cache);
    assert_eq!(
        core.step(Input::Event(docker("start", "a")), &mut cache),
        [fetch(1, &["a"])]
    );
    assert_eq!(cache.states(), [("a".to_owned(), Running)], "at once");
    // An event while the fetch runs is held, and replayed on its answer.
    assert!(
        core.step(Input::Event(docker("pause", "a")), &mut cache)
            .is_empty()
    );
    core.step(
        fetched(&core, &["a"], vec![on_bridge(Running, "172.17.0.2")]),
        &mut cache,
    );
    let a = &cache.0["a"];
    assert_eq!(a.state(), Paused);
    assert_eq!(a.networks()[0].ip_address(), "172.17.0.2");
    assert_eq!(core.status().events_applied, 3);
}

#[test]
fn exec_and_kill_events_change_nothing() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    for action in [
        "exec_create: ls",
        "exec_start: ls",
        "exec_die",
        "kill",
        "attach",
    ] {
        assert!(
            core.step(Input::Event(docker(action, "a")), &mut cache)
                .is_empty()
        );
    }
    assert_eq!(core.status().events_received, 5);
    assert_eq!(core.status().events_applied, 0);
    assert_eq!(cache.states(), [("a".to_owned(), Running)]);
}

#[test]
fn a_destroy_removes_and_a_destroy_of_an_unknown_container_counts_as_nothing() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Exited)]);
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("destroy", "a")), &mut cache);
    core.step(Input::Event(docker("destroy", "zz")), &mut cache);
    assert!(cache.0.is_empty());
    assert_eq!(core.status().events_applied, 1);
}

#[test]
fn a_kubernetes_phase_that_does_not_decide_the_state_is_fetched() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running), container("b", Exited)]);
    watching(&mut core, &mut cache);
    // Same phase (a pause, a rename?): fetch.
    let commands = core.step(Input::Event(k8s("MODIFIED", "a", "Running")), &mut cache);
    assert_eq!(commands, [fetch(1, &["a"])]);
    // Pending does not say whether created or restarting: fetch.
    let commands = core.step(Input::Event(k8s("MODIFIED", "b", "Pending")), &mut cache);
    assert_eq!(commands, [fetch(2, &["b"])]);
    assert_eq!(core.status().events_applied, 0);
}

#[test]
fn a_kubernetes_move_into_running_or_a_stop_applies_at_once() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Exited), container("b", Running)]);
    watching(&mut core, &mut cache);
    assert!(
        core.step(Input::Event(k8s("ADDED", "a", "Running")), &mut cache)
            .is_empty()
    );
    assert!(
        core.step(Input::Event(k8s("MODIFIED", "b", "Failed")), &mut cache)
            .is_empty()
    );
    assert_eq!(
        cache.states(),
        [("a".to_owned(), Running), ("b".to_owned(), Exited)]
    );
}

#[test]
fn a_live_kubernetes_restart_is_a_delete_then_a_fetch() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Exited)]);
    watching(&mut core, &mut cache);
    assert!(
        core.step(Input::Event(k8s("DELETED", "a", "Succeeded")), &mut cache)
            .is_empty()
    );
    assert!(cache.0.is_empty());
    let commands = core.step(Input::Event(k8s("ADDED", "a", "Running")), &mut cache);
    assert_eq!(commands, [fetch(1, &["a"])]);
    core.step(
        fetched(&core, &["a"], vec![container("a", Running)]),
        &mut cache,
    );
    assert_eq!(cache.states(), [("a".to_owned(), Running)]);
}

#[test]
fn at_most_four_fetches_run_and_the_next_takes_every_pending_container() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    for (n, id) in (1..).zip(["a", "b", "c", "d"]) {
        let commands = core.step(Input::Event(docker("create", id)), &mut cache);
        assert_eq!(commands, [fetch(n, &[id])]);
    }
    for id in ["e", "f"] {
        assert!(
            core.step(Input::Event(docker("create", id)), &mut cache)
                .is_empty()
        );
    }
    assert_eq!(pending(&core), ids(&["e", "f"]));
    let commands = core.step(
        fetched(&core, &["a"], vec![container("a", Created)]),
        &mut cache,
    );
    assert_eq!(commands, [fetch(5, &["e", "f"])]);
    assert!(pending(&core).is_empty());
}

#[test]
fn an_event_for_a_container_in_flight_is_held_and_replayed_on_the_answer() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("create", "a")), &mut cache);
    core.step(Input::Event(docker("start", "a")), &mut cache);
    core.step(Input::Event(docker("die", "a")), &mut cache);
    assert_eq!(held(&core), 2);
    // The answer predates the two events: they are replayed on top of it.
    core.step(
        fetched(&core, &["a"], vec![container("a", Created)]),
        &mut cache,
    );
    assert_eq!(cache.states(), [("a".to_owned(), Exited)]);
    assert_eq!(held(&core), 0);
}

#[test]
fn held_events_of_other_fetches_stay_held() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("create", "a")), &mut cache);
    core.step(Input::Event(docker("create", "b")), &mut cache);
    core.step(Input::Event(docker("start", "b")), &mut cache);
    core.step(
        fetched(&core, &["a"], vec![container("a", Created)]),
        &mut cache,
    );
    assert_eq!(held(&core), 1, "b's event waits for b's fetch");
    core.step(
        fetched(&core, &["b"], vec![container("b", Created)]),
        &mut cache,
    );
    assert_eq!(
        cache.states(),
        [("a".to_owned(), Created), ("b".to_owned(), Running)]
    );
}

#[test]
fn a_delete_for_a_pending_container_is_applied_now_and_its_fetch_dropped() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    for id in ["a", "b", "c", "d", "e"] {
        core.step(Input::Event(docker("create", id)), &mut cache);
    }
    assert_eq!(pending(&core), ids(&["e"]));
    core.step(Input::Event(docker("destroy", "e")), &mut cache);
    assert!(pending(&core).is_empty());
    let commands = core.step(
        fetched(&core, &["a"], vec![container("a", Created)]),
        &mut cache,
    );
    assert!(commands.is_empty(), "nothing left to fetch");
}

#[test]
fn a_container_the_fetch_does_not_find_is_gone() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("create", "a")), &mut cache);
    core.step(Input::Event(docker("destroy", "a")), &mut cache);
    core.step(fetched(&core, &["a"], Vec::new()), &mut cache);
    assert!(cache.0.is_empty());
    assert_eq!(core.status().events_applied, 0);
}

#[test]
fn a_fetched_container_the_selector_does_not_admit_leaves_the_cache() {
    let selector = Selector::new(&Filters::new().label("app=web")).expect("valid filters");
    let mut core = core_with(selector);
    let mut cache = MapCache::of([labelled("a", Running, &[("app", "web")])]);
    watching(&mut core, &mut cache);
    core.step(Input::Event(k8s("MODIFIED", "a", "Running")), &mut cache);
    core.step(Input::Event(docker("create", "b")), &mut cache);
    let a = vec![labelled("a", Running, &[("app", "db")])];
    core.step(fetched(&core, &["a"], a), &mut cache);
    let b = vec![labelled("b", Running, &[])];
    core.step(fetched(&core, &["b"], b), &mut cache);
    assert!(cache.0.is_empty());
    assert_eq!(core.status().events_applied, 1, "only a's removal");
}

#[test]
fn a_fetched_container_equal_to_the_cached_one_changes_nothing() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    core.step(Input::Event(k8s("MODIFIED", "a", "Running")), &mut cache);
    core.step(
        fetched(&core, &["a"], vec![container("a", Running)]),
        &mut cache,
    );
    assert_eq!(core.status().events_applied, 0);
}

#[test]
fn a_fetch_answer_names_only_what_it_asked_for() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("create", "a")), &mut cache);
    core.step(
        fetched(
            &core,
            &["a"],
            vec![container("a", Created), container("x", Running)],
        ),
        &mut cache,
    );
    assert_eq!(cache.states(), [("a".to_owned(), Created)]);
}

#[test]
fn frame_errors_are_counted_and_the_watch_goes_on() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    let commands = step(&mut core, Input::FrameError("not JSON".to_owned()));
    assert!(commands.is_empty());
    assert_eq!(core.status().decode_errors, 1);
    assert!(matches!(core.state(), State::Watching(_)));
}

// Relists.

#[test]
fn a_relist_tick_lists_again_on_the_same_watch_and_abandons_fetches() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    assert_eq!(
        core.step(Input::Event(docker("create", "a")), &mut cache),
        [fetch(1, &["a"])]
    );
    assert_eq!(step(&mut core, Input::RelistTick), [Command::List]);
    assert_eq!(core.status().phase, Phase::Listing);
    assert!(core.status().synced, "still synced from before");
    // The abandoned fetch's answer, were it to come, changes nothing: the list covers it.
    let abandoned = Input::Fetched {
        fetch: FetchId(1),
        found: vec![container("a", Created)],
        now: Instant::now(),
    };
    assert!(core.step(abandoned, &mut cache).is_empty());
    assert!(cache.0.is_empty());
    let mut listed = MapCache::of([container("a", Created)]);
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert_eq!(core.status().relists, 2);
    assert_eq!(core.status().reconnects, 0);
}

#[test]
fn a_relist_tick_outside_the_watch_phase_is_ignored() {
    let mut core = core();
    assert!(step(&mut core, Input::RelistTick).is_empty());
    listing(&mut core);
    assert!(step(&mut core, Input::RelistTick).is_empty());
}

#[tokio::test]
async fn a_relist_turns_what_vanished_into_tombstones() {
    use hypersh_store::{StoreConfig, store};
    let (mut writer, cache) = store::<Container>(StoreConfig::default());
    writer
        .replace([container("a", Running), container("b", Running)])
        .await;
    let (tx, mut deleted) = tokio::sync::mpsc::unbounded_channel();
    let handle = cache.on_delete(move |d| {
        let _ = tx.send((d.key().to_owned(), d.is_final_state_unknown()));
    });
    let mut core = core();
    listing(&mut core);
    let mut relist = writer.relist();
    relist.insert(container("a", Exited));
    assert_eq!(core.step(list_done(), &mut relist), [Command::CommitRelist]);
    relist.commit().await;
    handle.wait_synced().await.expect("the handler runs");
    assert_eq!(deleted.recv().await, Some(("b".to_owned(), true)));
    assert_eq!(cache.get("a").map(|c| c.state()), Some(Exited));
}

// Failures and backoff.

#[test]
fn a_watch_that_cannot_open_backs_off_and_tries_again() {
    let mut core = core();
    step(&mut core, Input::Start);
    assert_eq!(
        step(&mut core, failure("websocket: Connection refused")),
        backs_off(SECOND)
    );
    assert_eq!(step(&mut core, Input::BackoffDone), [Command::OpenWatch]);
    assert_eq!(core.status().phase, Phase::Connecting);
    assert_eq!(core.status().failures, 1);
}

#[test]
fn the_backoff_doubles_up_to_its_maximum() {
    let mut core = core();
    step(&mut core, Input::Start);
    let mut delays = Vec::new();
    for _ in 0..7 {
        match step(&mut core, failure("refused")).as_slice() {
            [Command::Disconnect, Command::ResetSource, Command::Sleep(d)] => {
                delays.push(d.as_secs())
            }
            other => panic!("expected a sleep, got {other:?}"),
        }
        step(&mut core, Input::BackoffDone);
    }
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
}

#[test]
fn a_healthy_session_resets_the_backoff_and_a_short_one_does_not() {
    let mut core = core();
    step(&mut core, Input::Start);
    step(&mut core, failure("refused"));
    step(&mut core, Input::BackoffDone);
    step(&mut core, failure("refused"));
    step(&mut core, Input::BackoffDone);
    // A session that lasted a second: the backoff goes on growing.
    let t0 = Instant::now();
    step(&mut core, Input::WatchOpened);
    core.step(Input::ListDone { now: t0 }, &mut MapCache::default());
    let short = Input::Failed {
        error: None,
        now: t0 + SECOND,
    };
    assert_eq!(step(&mut core, short), backs_off(4 * SECOND));
    // A session healthy for longer than `reset_after`: back to the first delay.
    step(&mut core, Input::BackoffDone);
    step(&mut core, Input::WatchOpened);
    core.step(Input::ListDone { now: t0 }, &mut MapCache::default());
    let long = Input::Failed {
        error: None,
        now: t0 + Duration::from_secs(121),
    };
    assert_eq!(step(&mut core, long), backs_off(SECOND));
}

#[test]
fn an_authentication_failure_waits_the_maximum_and_says_so_until_a_sync() {
    let mut core = core();
    step(&mut core, Input::Start);
    assert_eq!(step(&mut core, auth_failure()), backs_off(MAX));
    let s = core.status();
    assert!(s.auth_failing);
    assert_eq!((s.failures, s.auth_failures), (1, 1));
    assert!(
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 403"))
    );
    step(&mut core, Input::BackoffDone);
    step(&mut core, Input::WatchOpened);
    core.step(list_done(), &mut MapCache::default());
    assert!(!core.status().auth_failing);
    assert_eq!(core.status().auth_failures, 1);
}

#[test]
fn a_stream_closed_by_the_server_is_not_a_failure_but_reconnects() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    let closed = Input::Failed {
        error: None,
        now: Instant::now(),
    };
    assert_eq!(step(&mut core, closed), backs_off(SECOND));
    let s = core.status();
    assert_eq!(s.failures, 0);
    assert!(!s.connected);
    assert!(s.synced, "the cache stays, marked not connected");
    assert_eq!(s.last_error.as_deref(), Some("server closed the watch"));
}

#[test]
fn a_fetch_failure_ends_the_session_and_the_next_one_starts_clean() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("create", "a")), &mut cache);
    core.step(Input::Event(docker("start", "a")), &mut cache);
    assert_eq!(step(&mut core, failure("HTTP: reset")), backs_off(SECOND));
    step(&mut core, Input::BackoffDone);
    step(&mut core, Input::WatchOpened);
    let mut listed = MapCache::of([container("a", Running)]);
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert_eq!(held(&core), 0);
    assert!(pending(&core).is_empty());
}

#[test]
fn inputs_that_do_not_belong_to_the_state_are_ignored() {
    let mut core = core();
    let mut cache = MapCache::default();
    // No watch is open yet.
    assert!(
        core.step(Input::Event(docker("create", "a")), &mut cache)
            .is_empty()
    );
    assert!(step(&mut core, list_done()).is_empty());
    let answer = fetched(&core, &["a"], vec![container("a", Running)]);
    assert!(step(&mut core, answer).is_empty());
    assert!(cache.0.is_empty());
    step(&mut core, Input::Start);
    step(&mut core, failure("refused"));
    // A second failure while backing off does not back off twice.
    assert!(step(&mut core, failure("refused")).is_empty());
    assert_eq!(core.status().failures, 1);
    // A watch reported open while backing off is not a session.
    assert!(step(&mut core, Input::WatchOpened).is_empty());
}

#[test]
fn shutdown_stops_from_any_state_and_nothing_restarts_it() {
    for setup in 0..4 {
        let mut core = core();
        let mut cache = MapCache::default();
        match setup {
            0 => {}
            1 => listing(&mut core),
            2 => watching(&mut core, &mut cache),
            _ => {
                step(&mut core, Input::Start);
                step(&mut core, failure("refused"));
            }
        }
        assert_eq!(step(&mut core, Input::Shutdown), [Command::Stop]);
        assert_eq!(core.status().phase, Phase::Stopped);
        assert!(!core.status().connected);
        assert!(step(&mut core, Input::BackoffDone).is_empty());
        assert!(step(&mut core, Input::Start).is_empty());
        assert!(step(&mut core, failure("late")).is_empty());
        assert!(matches!(core.state(), State::Stopped));
    }
}

#[test]
fn each_watch_after_the_first_counts_as_a_reconnect() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    for n in 1..=3 {
        step(&mut core, failure("reset"));
        step(&mut core, Input::BackoffDone);
        step(&mut core, Input::WatchOpened);
        assert_eq!(core.status().reconnects, n);
    }
}

#[test]
fn the_status_counts_every_event_received_and_each_that_changed_the_cache() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    for action in ["pause", "pause", "unpause", "kill"] {
        core.step(Input::Event(docker(action, "a")), &mut cache);
    }
    assert_eq!(core.status().events_received, 4);
    assert_eq!(core.status().events_applied, 2);
}

// Memory bounds.

fn core_limited(limits: Limits) -> Core {
    let backoff = BackoffConfig::default().jitter(false);
    let settings = Settings {
        backoff,
        limits,
        ..Settings::default()
    };
    Core::new(Selector::default(), &settings, fastrand::Rng::with_seed(1))
}

#[test]
fn a_flood_during_the_list_is_dropped_and_the_list_taken_again() {
    let mut core = core_limited(Limits::default().max_buffered_events(3));
    listing(&mut core);
    let mut listed = MapCache::default();
    for n in 0..10 {
        core.step(
            Input::Event(docker("create", &format!("c{n}"))),
            &mut listed,
        );
    }
    // The buffer is freed, not kept at its bound.
    assert!(matches!(
        core.state(),
        State::Listing(Listing::Overflowed { fetch: None })
    ));
    assert_eq!(core.status().overflows, 1);
    assert!(
        core.status()
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("max_buffered_events"))
    );
    // The list cannot be brought up to date: it is not committed, but taken again.
    assert_eq!(core.step(list_done(), &mut listed), [Command::List]);
    assert!(!core.status().synced);
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert!(core.status().synced);
}

#[test]
fn a_flood_during_the_lists_fetch_also_lists_again() {
    let mut core = core_limited(Limits::default().max_buffered_events(2));
    listing(&mut core);
    let mut listed = MapCache::default();
    core.step(Input::Event(docker("create", "a")), &mut listed);
    assert_eq!(core.step(list_done(), &mut listed), [fetch(1, &["a"])]);
    for _ in 0..3 {
        core.step(Input::Event(docker("start", "a")), &mut listed);
    }
    let answer = fetched(&core, &["a"], vec![container("a", Running)]);
    assert_eq!(core.step(answer, &mut listed), [Command::List]);
    assert_eq!(core.status().relists, 0);
}

#[test]
fn too_many_events_held_for_fetches_relist_instead() {
    let mut core = core_limited(Limits::default().max_buffered_events(2));
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("create", "a")), &mut cache);
    core.step(Input::Event(docker("start", "a")), &mut cache);
    core.step(Input::Event(docker("pause", "a")), &mut cache);
    let commands = core.step(Input::Event(docker("unpause", "a")), &mut cache);
    assert_eq!(commands, [Command::List]);
    assert_eq!(core.status().overflows, 1);
    assert_eq!(core.status().phase, Phase::Listing);
}

/// A Docker event about `id` whose frame is padded to about `bytes`.
fn large(action: &str, id: &str, bytes: usize) -> WatchEvent {
    let frame = format!(
        r#"{{"Type":"container","Action":"{action}","Actor":{{"ID":"{id}","Attributes":{{"pad":"{}"}}}}}}"#,
        "x".repeat(bytes)
    );
    WatchEvent::decode(frame).expect("a valid event")
}

#[test]
fn large_events_during_the_list_pass_the_byte_bound_and_the_list_is_taken_again() {
    // Few events, within the count, but their bytes pass the bound.
    let mut core = core_limited(Limits::default().max_buffered_bytes(10_000));
    listing(&mut core);
    let mut listed = MapCache::default();
    core.step(Input::Event(large("create", "a", 4_000)), &mut listed);
    core.step(Input::Event(large("start", "a", 4_000)), &mut listed);
    let State::Listing(Listing::Running { buffered }) = core.state() else {
        panic!("still listing: {:?}", core.state());
    };
    assert_eq!(buffered.len(), 2);
    assert!(
        (8_000..10_000).contains(&buffered.bytes()),
        "{}",
        buffered.bytes()
    );
    core.step(Input::Event(large("stop", "a", 4_000)), &mut listed);
    assert!(matches!(
        core.state(),
        State::Listing(Listing::Overflowed { fetch: None })
    ));
    assert_eq!(core.status().overflows, 1);
    let error = core.status().last_error.clone().unwrap_or_default();
    assert!(error.contains("Limits::max_buffered_bytes"), "{error}");
    assert!(error.contains("10000 bytes"), "{error}");
    // Then it recovers: the list is taken again, and the next one is committed.
    assert_eq!(core.step(list_done(), &mut listed), [Command::List]);
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert!(core.status().synced);
}

#[test]
fn large_events_during_the_lists_fetch_pass_the_byte_bound_and_list_again() {
    let mut core = core_limited(Limits::default().max_buffered_bytes(10_000));
    listing(&mut core);
    let mut listed = MapCache::default();
    core.step(Input::Event(docker("create", "a")), &mut listed);
    assert_eq!(core.step(list_done(), &mut listed), [fetch(1, &["a"])]);
    for _ in 0..3 {
        core.step(Input::Event(large("start", "a", 4_000)), &mut listed);
    }
    let answer = fetched(&core, &["a"], vec![container("a", Running)]);
    assert_eq!(core.step(answer, &mut listed), [Command::List]);
    assert_eq!(core.status().relists, 0);
    assert!(
        core.status()
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("max_buffered_bytes"))
    );
}

#[test]
fn large_events_held_for_a_fetch_pass_the_byte_bound_and_relist() {
    let mut core = core_limited(Limits::default().max_buffered_bytes(10_000));
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("create", "a")), &mut cache);
    assert!(
        core.step(Input::Event(large("start", "a", 4_000)), &mut cache)
            .is_empty()
    );
    assert!(
        core.step(Input::Event(large("pause", "a", 4_000)), &mut cache)
            .is_empty()
    );
    assert_eq!(held(&core), 2);
    let commands = core.step(Input::Event(large("unpause", "a", 4_000)), &mut cache);
    assert_eq!(commands, [Command::List]);
    assert_eq!(core.status().overflows, 1);
    let error = core.status().last_error.clone().unwrap_or_default();
    assert!(error.contains("held for fetches"), "{error}");
    assert!(error.contains("Limits::max_buffered_bytes"), "{error}");
    // It converges: the relist is committed and the watch goes on.
    let mut listed = MapCache::of([container("a", Running)]);
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert_eq!(core.status().phase, Phase::Watching);
}

#[test]
fn the_bytes_held_follow_the_events_replayed_and_those_still_held() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    core.step(Input::Event(docker("create", "a")), &mut cache);
    core.step(Input::Event(docker("create", "b")), &mut cache);
    core.step(Input::Event(large("start", "a", 1_000)), &mut cache);
    core.step(Input::Event(large("start", "b", 3_000)), &mut cache);
    let bytes = |core: &Core| match core.state() {
        State::Watching(w) => w.held.bytes(),
        other => panic!("not watching: {other:?}"),
    };
    let both = bytes(&core);
    assert!(both > 4_000, "{both}");
    let answer = fetched(&core, &["a"], vec![container("a", Created)]);
    core.step(answer, &mut cache);
    let b_only = bytes(&core);
    assert_eq!(held(&core), 1);
    assert!(
        (3_000..both - 1_000).contains(&b_only),
        "{b_only} of {both}"
    );
}

#[test]
fn too_many_containers_to_fetch_relist_instead() {
    let mut core = core_limited(Limits::default().max_pending_fetches(5));
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    let mut last = Vec::new();
    for n in 0..6 {
        last = core.step(Input::Event(docker("create", &format!("c{n}"))), &mut cache);
    }
    assert_eq!(last, [Command::List]);
    assert!(
        core.status()
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("max_pending_fetches"))
    );
    // The relist's answer covers every container that was to be fetched.
    let mut listed = MapCache::of((0..6).map(|n| container(&format!("c{n}"), Created)));
    assert_eq!(core.step(list_done(), &mut listed), [Command::CommitRelist]);
    assert!(pending(&core).is_empty());
}

// Refresh (`Informer::refresh`): a fetch asked for by the user.

#[test]
fn a_refresh_while_watching_fetches_the_ids_and_applies_the_answer() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running), container("b", Running)]);
    watching(&mut core, &mut cache);
    assert_eq!(
        step(&mut core, refresh(1, &["a", "b"])),
        [fetch(1, &["a", "b"])]
    );
    // `a` changed without an event; `b` is gone: the refresh removes it, and is answered.
    let commands = core.step(
        fetched(&core, &["a", "b"], vec![container("a", Exited)]),
        &mut cache,
    );
    assert_eq!(commands, [Command::Refreshed(vec![RefreshId(1)])]);
    assert_eq!(cache.states(), [("a".to_owned(), Exited)]);
}

#[test]
fn a_fetch_for_an_event_that_finds_nothing_leaves_the_removal_to_the_stream() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    assert_eq!(
        core.step(Input::Event(k8s("MODIFIED", "a", "Running")), &mut cache),
        [fetch(1, &["a"])]
    );
    core.step(fetched(&core, &["a"], Vec::new()), &mut cache);
    assert_eq!(cache.states(), [("a".to_owned(), Running)]);
}

#[test]
fn a_refresh_of_a_container_in_flight_fetches_it_again_after_the_answer() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    assert_eq!(
        core.step(Input::Event(k8s("MODIFIED", "a", "Running")), &mut cache),
        [fetch(1, &["a"])]
    );
    // The fetch in flight may have been answered before the request: not enough.
    assert!(step(&mut core, refresh(1, &["a"])).is_empty());
    assert_eq!(pending(&core), ["a"]);
    let commands = core.step(
        fetched(&core, &["a"], vec![container("a", Running)]),
        &mut cache,
    );
    assert_eq!(commands, [fetch(2, &["a"])]);
    // Events during the second fetch are held for it, as for any fetch, and replayed
    // on top of its answer.
    core.step(Input::Event(docker("unpause", "a")), &mut cache);
    assert_eq!(held(&core), 1);
    core.step(
        fetched(&core, &["a"], vec![container("a", Paused)]),
        &mut cache,
    );
    assert_eq!(cache.states(), [("a".to_owned(), Running)]);
}

#[test]
fn a_refresh_outside_the_watch_phase_is_left_to_the_coming_list() {
    let mut core = core();
    listing(&mut core);
    assert!(step(&mut core, refresh(1, &["a"])).is_empty());
    assert!(matches!(
        core.state(),
        State::Listing(Listing::Running { .. })
    ));
}

// Refresh accounting: which requests a fetch or a list serves.

#[test]
fn an_empty_refresh_is_answered_at_once_in_any_state_but_stopped() {
    let mut core = core();
    assert_eq!(
        step(&mut core, refresh(1, &[])),
        [Command::Refreshed(vec![RefreshId(1)])]
    );
    listing(&mut core);
    assert_eq!(
        step(&mut core, refresh(2, &[])),
        [Command::Refreshed(vec![RefreshId(2)])]
    );
    step(&mut core, Input::Shutdown);
    assert!(step(&mut core, refresh(3, &[])).is_empty());
}

#[test]
fn a_refresh_is_answered_only_by_a_fetch_started_after_it() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    // A fetch of `a` for an event is in flight before the request.
    core.step(Input::Event(k8s("MODIFIED", "a", "Running")), &mut cache);
    assert!(step(&mut core, refresh(1, &["a"])).is_empty());
    let commands = core.step(
        fetched(&core, &["a"], vec![container("a", Running)]),
        &mut cache,
    );
    assert_eq!(commands, [fetch(2, &["a"])], "not answered by fetch 1");
    let commands = core.step(
        fetched(&core, &["a"], vec![container("a", Running)]),
        &mut cache,
    );
    assert_eq!(commands, [Command::Refreshed(vec![RefreshId(1)])]);
    assert_eq!(core.refreshes.len(), 0);
}

#[test]
fn a_refresh_of_several_ids_waits_for_every_one() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running), container("b", Running)]);
    watching(&mut core, &mut cache);
    core.step(Input::Event(k8s("MODIFIED", "a", "Running")), &mut cache);
    // `a` is in flight: only `b` goes now; `a` follows its fetch.
    assert_eq!(step(&mut core, refresh(1, &["a", "b"])), [fetch(2, &["b"])]);
    let answer = fetched(&core, &["b"], vec![container("b", Running)]);
    assert!(core.step(answer, &mut cache).is_empty(), "a is still due");
    let answer = fetched(&core, &["a"], vec![container("a", Running)]);
    assert_eq!(core.step(answer, &mut cache), [fetch(3, &["a"])]);
    let answer = fetched(&core, &["a"], vec![container("a", Paused)]);
    assert_eq!(
        core.step(answer, &mut cache),
        [Command::Refreshed(vec![RefreshId(1)])]
    );
    assert_eq!(
        cache.states(),
        [("a".to_owned(), Paused), ("b".to_owned(), Running)]
    );
}

#[test]
fn requests_waiting_together_are_answered_together() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    assert_eq!(step(&mut core, refresh(1, &["a"])), [fetch(1, &["a"])]);
    // The second request comes while fetch 1 runs: fetch 1 may predate it.
    assert!(step(&mut core, refresh(2, &["a"])).is_empty());
    let answer = fetched(&core, &["a"], vec![container("a", Running)]);
    assert_eq!(
        core.step(answer, &mut cache),
        [Command::Refreshed(vec![RefreshId(1)]), fetch(2, &["a"])]
    );
    let answer = fetched(&core, &["a"], vec![container("a", Running)]);
    assert_eq!(
        core.step(answer, &mut cache),
        [Command::Refreshed(vec![RefreshId(2)])]
    );
}

#[test]
fn a_refresh_while_connecting_or_backing_off_is_served_by_the_next_list() {
    let mut core = core();
    step(&mut core, Input::Start);
    assert!(step(&mut core, refresh(1, &["a"])).is_empty());
    step(&mut core, failure("refused"));
    assert!(step(&mut core, refresh(2, &["b"])).is_empty());
    step(&mut core, Input::BackoffDone);
    step(&mut core, Input::WatchOpened);
    assert_eq!(
        core.step(list_done(), &mut MapCache::default()),
        [
            Command::CommitRelist,
            Command::Refreshed(vec![RefreshId(1), RefreshId(2)])
        ]
    );
}

#[test]
fn a_refresh_during_a_list_is_fetched_after_its_commit() {
    let mut core = core();
    listing(&mut core);
    assert!(step(&mut core, refresh(1, &["a"])).is_empty());
    let mut listed = MapCache::of([container("a", Running)]);
    // The list may have read `a` before the request: it does not answer it.
    assert_eq!(
        core.step(list_done(), &mut listed),
        [Command::CommitRelist, fetch(1, &["a"])]
    );
    let answer = fetched(&core, &["a"], Vec::new());
    assert_eq!(
        core.step(answer, &mut listed),
        [Command::Refreshed(vec![RefreshId(1)])]
    );
    assert!(
        listed.0.is_empty(),
        "a refreshed container not found is gone"
    );
}

#[test]
fn a_relist_serves_the_refreshes_that_wait_for_fetches() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    assert_eq!(step(&mut core, refresh(1, &["a"])), [fetch(1, &["a"])]);
    assert_eq!(step(&mut core, Input::RelistTick), [Command::List]);
    let mut listed = MapCache::of([container("a", Exited)]);
    assert_eq!(
        core.step(list_done(), &mut listed),
        [
            Command::CommitRelist,
            Command::Refreshed(vec![RefreshId(1)])
        ]
    );
    assert!(pending(&core).is_empty(), "nothing left to fetch for it");
}

#[test]
fn a_failure_keeps_the_refreshes_for_the_next_list() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    step(&mut core, refresh(1, &["a"]));
    assert_eq!(step(&mut core, failure("reset")), backs_off(SECOND));
    // The fetch's answer comes from a session that ended: ignored.
    let stale = Input::Fetched {
        fetch: FetchId(1),
        found: vec![container("a", Exited)],
        now: Instant::now(),
    };
    assert!(core.step(stale, &mut cache).is_empty());
    step(&mut core, Input::BackoffDone);
    step(&mut core, Input::WatchOpened);
    assert_eq!(
        core.step(list_done(), &mut MapCache::default()),
        [
            Command::CommitRelist,
            Command::Refreshed(vec![RefreshId(1)])
        ]
    );
}

#[test]
fn shutdown_forgets_the_waiting_refreshes_and_later_ones() {
    let mut core = core();
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    step(&mut core, refresh(1, &["a"]));
    assert_eq!(core.refreshes.len(), 1);
    assert_eq!(step(&mut core, Input::Shutdown), [Command::Stop]);
    assert_eq!(core.refreshes.len(), 0);
    assert!(step(&mut core, refresh(2, &["a"])).is_empty());
    assert_eq!(core.refreshes.len(), 0);
}

// The list as it streams, the selector, timers, stale answers, jitter.

#[test]
fn only_what_the_selector_admits_is_listed() {
    let selector = Selector::new(&Filters::new().label("app=web")).expect("valid filters");
    let mut core = core_with(selector);
    listing(&mut core);
    let mut relist = MapCache::default();
    for c in [
        labelled("web", Running, &[("app", "web")]),
        labelled("db", Running, &[("app", "db")]),
    ] {
        listed(core.selector(), c, &mut relist);
    }
    assert_eq!(relist.states(), [("web".to_owned(), Running)]);
}

#[test]
fn a_rename_out_of_a_container_filter_leaves_the_cache() {
    let selector = Selector::new(&Filters::new().container("n-a")).expect("valid filters");
    let mut core = core_with(selector);
    let mut cache = MapCache::of([container("a", Running)]);
    watching(&mut core, &mut cache);
    let rename = WatchEvent::decode(
        r#"{"Type":"container","Action":"rename","id":"a","Actor":{"Attributes":{"name":"other","oldName":"/n-a"}}}"#,
    )
    .expect("a valid frame");
    core.step(Input::Event(rename), &mut cache);
    assert!(cache.0.is_empty());
    assert_eq!(core.status().events_applied, 1);
}

#[test]
fn a_fetch_during_the_sync_keeps_only_what_the_selector_admits() {
    let selector = Selector::new(&Filters::new().label("app=web")).expect("valid filters");
    let mut core = core_with(selector);
    listing(&mut core);
    let mut relist = MapCache::default();
    core.step(Input::Event(docker("create", "a")), &mut relist);
    core.step(Input::Event(docker("create", "b")), &mut relist);
    core.step(list_done(), &mut relist);
    let found = vec![
        labelled("a", Running, &[("app", "web")]),
        labelled("b", Running, &[("app", "db")]),
    ];
    let answer = fetched(&core, &["a", "b"], found);
    assert_eq!(core.step(answer, &mut relist), [Command::CommitRelist]);
    assert_eq!(relist.states(), [("a".to_owned(), Running)]);
}

#[test]
fn the_relist_timer_starts_at_each_commit_when_configured() {
    let settings = Settings {
        relist_every: Some(Duration::from_secs(300)),
        ..Settings::default()
    };
    let mut core = Core::new(Selector::default(), &settings, fastrand::Rng::with_seed(1));
    listing(&mut core);
    let mut relist = MapCache::default();
    let relist_after = Command::RelistAfter(Duration::from_secs(300));
    assert_eq!(
        core.step(list_done(), &mut relist),
        [Command::CommitRelist, relist_after]
    );
    assert_eq!(step(&mut core, Input::RelistTick), [Command::List]);
    assert_eq!(
        core.step(list_done(), &mut relist),
        [
            Command::CommitRelist,
            Command::RelistAfter(Duration::from_secs(300))
        ]
    );
}

#[test]
fn an_overflow_during_the_lists_fetch_waits_for_that_fetch_only() {
    let mut core = core_limited(Limits::default().max_buffered_events(1));
    listing(&mut core);
    let mut relist = MapCache::default();
    core.step(Input::Event(docker("create", "a")), &mut relist);
    assert_eq!(core.step(list_done(), &mut relist), [fetch(1, &["a"])]);
    core.step(Input::Event(docker("start", "a")), &mut relist);
    core.step(Input::Event(docker("pause", "a")), &mut relist);
    assert!(matches!(
        core.state(),
        State::Listing(Listing::Overflowed {
            fetch: Some(FetchId(1))
        })
    ));
    // Another fetch's answer (or a late list end) does not restart the list.
    let other = Input::Fetched {
        fetch: FetchId(7),
        found: Vec::new(),
        now: Instant::now(),
    };
    assert!(core.step(other, &mut relist).is_empty());
    assert!(core.step(list_done(), &mut relist).is_empty());
    let answer = fetched(&core, &["a"], vec![container("a", Running)]);
    assert_eq!(core.step(answer, &mut relist), [Command::List]);
}

#[test]
fn a_stale_fetch_answer_while_watching_is_ignored() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    let stale = Input::Fetched {
        fetch: FetchId(9),
        found: vec![container("a", Running)],
        now: Instant::now(),
    };
    assert!(core.step(stale, &mut cache).is_empty());
    assert!(cache.0.is_empty());
}

#[test]
fn a_backoff_timer_outside_the_backoff_is_ignored() {
    let mut core = core();
    let mut cache = MapCache::default();
    watching(&mut core, &mut cache);
    assert!(step(&mut core, Input::BackoffDone).is_empty());
    assert!(matches!(core.state(), State::Watching(_)));
}

#[test]
fn the_jitter_comes_from_the_rng_the_core_is_given() {
    let delays = |seed| {
        let settings = Settings {
            backoff: BackoffConfig::default().initial(SECOND).max(MAX),
            ..Settings::default()
        };
        let mut core = Core::new(
            Selector::default(),
            &settings,
            fastrand::Rng::with_seed(seed),
        );
        step(&mut core, Input::Start);
        (0..5)
            .map(|_| {
                let commands = step(&mut core, failure("refused"));
                step(&mut core, Input::BackoffDone);
                match commands.as_slice() {
                    [.., Command::Sleep(d)] => *d,
                    other => panic!("expected a sleep, got {other:?}"),
                }
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(delays(1), delays(1));
    assert_ne!(delays(1), delays(2));
    let caps = [1, 2, 4, 8, 16].map(|s| SECOND * s);
    assert!(delays(3).iter().zip(caps).all(|(d, cap)| *d <= cap));
}
