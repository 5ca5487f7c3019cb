//! Event lines captured from real engines (`tests/data/`, see its README): Docker
//! Engine 20.10 and Podman 4.3.1, every action each sends. Each line decodes (or is
//! refused as not a container event) the same way through the fast decoder and the
//! oracle, and a container's events, read with its engine's meaning, move it through the
//! states the engine's list shows.

mod oracle;

use std::collections::BTreeMap;

use hypersh_watch::event::{DecodeError, DockerAction, Engine};
use hypersh_watch::{Container, ContainerState, WatchEvent};

const DOCKER: &str = include_str!("data/docker-20.10-events.jsonl");
const PODMAN: &str = include_str!("data/podman-4.3.1-events.jsonl");

fn engines() -> [(Engine, &'static str); 2] {
    [(Engine::Docker, DOCKER), (Engine::Podman, PODMAN)]
}

#[test]
fn every_captured_line_decodes_as_its_type_says() {
    for (engine, lines) in engines() {
        let mut actions = BTreeMap::<String, usize>::new();
        for line in lines.lines() {
            let raw: serde_json::Value = serde_json::from_str(line).unwrap();
            let (fast, plain) = oracle::both(line.as_bytes());
            assert_eq!(fast, plain, "{engine}: {line}");
            match WatchEvent::decode(line.to_owned()) {
                Ok(ev) => {
                    assert_eq!(raw["Type"], "container", "{line}");
                    let action = ev.event().action().to_owned();
                    let kind = match action.as_str() {
                        "create" => "ADDED",
                        "destroy" | "remove" => "DELETED",
                        _ => "MODIFIED",
                    };
                    assert_eq!(ev.kind_str(), kind, "{line}");
                    assert_eq!(ev.id(), raw["Actor"]["ID"].as_str().unwrap());
                    assert_eq!(
                        ev.event().name(),
                        raw["Actor"]["Attributes"]["name"].as_str()
                    );
                    *actions.entry(action).or_default() += 1;
                }
                Err(DecodeError::NotContainer(kind)) => {
                    assert_ne!(kind, "container", "{line}");
                }
                // Docker's `container prune` is about no one container: it has no id
                // (the Docker source skips it).
                Err(DecodeError::MissingId) if raw["Action"] == "prune" => {}
                Err(e) => panic!("{engine}: {e}: {line}"),
            }
        }
        // Each engine's own words for the same actions.
        let has = |a: &str| {
            actions
                .keys()
                .any(|k| k == a || k.starts_with(&format!("{a}:")))
        };
        match engine {
            Engine::Docker => {
                for a in [
                    "create",
                    "start",
                    "die",
                    "stop",
                    "destroy",
                    "exec_create",
                    "health_status",
                ] {
                    assert!(has(a), "docker sends {a}: {actions:?}");
                }
                assert!(!has("remove") && !has("init") && !has("cleanup"));
            }
            _ => {
                for a in [
                    "create",
                    "init",
                    "start",
                    "die",
                    "cleanup",
                    "remove",
                    "exec",
                    "exec_died",
                    "health_status",
                    "sync",
                ] {
                    assert!(has(a), "podman sends {a}: {actions:?}");
                }
                assert!(!has("destroy") && !has("exec_create"));
            }
        }
    }
}

/// Every container's events in order, each with the state it leaves the container in
/// (`None` once removed), read with `engine`'s meaning.
fn replay(engine: Engine, lines: &str) -> BTreeMap<String, Vec<(String, Option<ContainerState>)>> {
    let mut cached: BTreeMap<String, Container> = BTreeMap::new();
    let mut traces: BTreeMap<String, Vec<(String, Option<ContainerState>)>> = BTreeMap::new();
    for line in lines.lines() {
        let Ok(ev) = WatchEvent::decode(line.to_owned()) else {
            continue;
        };
        let ev = ev.on_engine(engine);
        let id = ev.id().to_owned();
        let name = ev.event().name().unwrap_or_default().to_owned();
        let state = match &ev {
            WatchEvent::Deleted(_) => {
                cached.remove(&id);
                None
            }
            WatchEvent::Added(e) | WatchEvent::Modified(e) => {
                let c = cached
                    .remove(&id)
                    .unwrap_or_else(|| Container::builder(&id).name(&name).build());
                let next = e.apply_to(&c);
                let state = next.state();
                cached.insert(id.clone(), next);
                Some(state)
            }
        };
        let head = DockerAction::parse(ev.event().action());
        let action = match head {
            DockerAction::Exec => "exec".to_owned(),
            _ => ev
                .event()
                .action()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned(),
        };
        traces
            .entry(name_key(&traces, &id, &name))
            .or_default()
            .push((action, state));
    }
    traces
}

/// Traces are keyed by the container's first name.
fn name_key(
    traces: &BTreeMap<String, Vec<(String, Option<ContainerState>)>>,
    id: &str,
    name: &str,
) -> String {
    let _ = traces;
    let first = FIRST_NAMES
        .iter()
        .find(|(prefix, _)| id.starts_with(prefix));
    first.map_or_else(|| name.to_owned(), |(_, n)| (*n).to_owned())
}

/// The renamed container (`cap1`, then `cap1b`) in each file.
const FIRST_NAMES: &[(&str, &str)] = &[("2e170abd", "cap1"), ("a62e2dcb", "cap1")];

fn trace(states: &[(&str, Option<ContainerState>)]) -> Vec<(String, Option<ContainerState>)> {
    states.iter().map(|(a, s)| ((*a).to_owned(), *s)).collect()
}

#[test]
fn each_engines_events_move_a_container_through_its_list_states() {
    use ContainerState::{Created, Exited, Paused, Running, Stopped};
    let docker = replay(Engine::Docker, DOCKER);
    assert_eq!(
        docker["cap1"],
        trace(&[
            ("create", Some(Created)),
            ("start", Some(Running)),
            ("pause", Some(Paused)),
            ("unpause", Some(Running)),
            ("exec", Some(Running)),
            ("exec", Some(Running)),
            ("exec", Some(Running)),
            ("rename", Some(Running)),
            // restart -t 0: kill, die, stop, start, restart.
            ("kill", Some(Running)),
            ("kill", Some(Running)),
            ("die", Some(Exited)),
            ("stop", Some(Exited)),
            ("start", Some(Running)),
            ("restart", Some(Running)),
            ("kill", Some(Running)),
            ("die", Some(Exited)),
            ("start", Some(Running)),
            ("kill", Some(Running)),
            ("kill", Some(Running)),
            ("kill", Some(Running)),
            ("die", Some(Exited)),
            ("stop", Some(Exited)),
            ("destroy", None),
        ])
    );
    let podman = replay(Engine::Podman, PODMAN);
    assert_eq!(
        podman["cap1"],
        trace(&[
            ("create", Some(Created)),
            ("init", Some(Created)),
            ("start", Some(Running)),
            ("sync", Some(Running)),
            ("sync", Some(Running)),
            ("pause", Some(Paused)),
            ("sync", Some(Paused)),
            ("unpause", Some(Running)),
            ("exec", Some(Running)),
            ("exec", Some(Running)),
            ("rename", Some(Running)),
            ("sync", Some(Running)),
            // restart -t 0: restart first, then it stops and starts again.
            ("restart", Some(Running)),
            ("die", Some(Stopped)),
            ("cleanup", Some(Exited)),
            ("init", Some(Created)),
            ("start", Some(Running)),
            ("sync", Some(Running)),
            ("sync", Some(Running)),
            ("kill", Some(Running)),
            ("die", Some(Stopped)),
            ("cleanup", Some(Exited)),
            ("sync", Some(Exited)),
            ("init", Some(Created)),
            ("start", Some(Running)),
            ("sync", Some(Running)),
            ("kill", Some(Running)),
            ("sync", Some(Running)),
            // stop -t 1: no stop event; cleanup twice.
            ("die", Some(Stopped)),
            ("cleanup", Some(Exited)),
            ("cleanup", Some(Exited)),
            ("sync", Some(Exited)),
            ("sync", Some(Exited)),
            ("sync", Some(Exited)),
            ("sync", Some(Exited)),
            ("remove", None),
        ])
    );
    // A container that exits on its own: exited, with its code, on both.
    for traces in [&docker, &podman] {
        let cap4: Vec<Option<ContainerState>> = traces["cap4"].iter().map(|(_, s)| *s).collect();
        assert!(cap4.contains(&Some(Exited)), "{cap4:?}");
        assert_eq!(cap4.last(), Some(&None), "removed at the end");
    }
}
