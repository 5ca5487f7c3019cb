//! What differs between engines in how a watch is asked for: which of the user's filters
//! an engine's events endpoint can be trusted with, and what is checked on our side.
//!
//! Docker Engine applies every event filter as the informer means it. Podman's
//! Docker-compatible service does not (`shared/spec/podman.md`, Podman's
//! `libpod/events/filters.go`): a `label=KEY` filter without a value matches no event at
//! all, several `label` values match an event that has any one of them (Docker: all of
//! them), an `image` filter matches image events only, and `event` filters name libpod's
//! actions (`died`, `remove`, `exec`, `exec_died`) rather than Docker's. So on Podman the
//! watch asks for less (the `container` filter, `label=KEY=VALUE` values, `event` values
//! in libpod's words), and the `label` and `image` filters are checked here, on each
//! event's attributes, before the reflector pays for a fetch: an event that cannot match
//! is dropped; one that may match goes on, and the reflector's own selector decides on
//! the container it fetches, as on every engine.

use hypersh_watch::filters::{EventSubject, Filters};
use hypersh_watch::{Event, Labels};

pub use hypersh_watch::event::Engine;

/// Attributes Podman writes over a label of the same name (`libpod/events`, the compat
/// events handler): a filter on such a label cannot be decided from an event.
const PODMAN_ATTRIBUTES: &[&str] = &["image", "name", "containerExitCode", "podId", "exitCode"];

/// The user's watch filters, split for one engine: what the engine is asked for, and
/// what is checked on each event it sends.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct WatchFilters {
    /// Sent in the `filters` query.
    pub(crate) ask: Filters,
    /// Checked on each event ([`may_match`]); `None` when the engine applies every filter.
    pub(crate) check: Option<Filters>,
}

/// Splits `filters` for `engine` (see the module docs).
pub(crate) fn watch_filters(filters: &Filters, engine: Engine) -> WatchFilters {
    if engine != Engine::Podman {
        return WatchFilters {
            ask: filters.clone(),
            check: None,
        };
    }
    let mut ask = Filters::new();
    let mut check = Filters::new();
    for key in filters.keys() {
        for value in filters.get(key).into_iter().flatten() {
            match key {
                "label" => {
                    check.add(key, value.clone());
                    if value.contains('=') {
                        ask.add(key, value.clone());
                    }
                }
                "image" => check.add(key, value.clone()),
                "event" => {
                    for libpod in podman_event_names(value) {
                        ask.add(key, libpod);
                    }
                }
                _ => ask.add(key, value.clone()),
            }
        }
    }
    // Podman matches an event with any one of several `label=KEY=VALUE` values: that is
    // more than asked for, and the check here keeps what all of them match.
    WatchFilters {
        ask,
        check: (!check.is_empty()).then_some(check),
    }
}

/// The libpod action names a Docker `event` filter value stands for on Podman's events
/// endpoint (which compares them with libpod's own names, and sends `died` as `die`).
fn podman_event_names(docker: &str) -> Vec<String> {
    let head = docker.split(':').next().unwrap_or(docker).trim();
    let names: &[&str] = match head {
        "die" => &["died"],
        "destroy" => &["remove"],
        "exec_create" | "exec_start" => &["exec"],
        "exec_die" => &["exec_died"],
        _ => return vec![head.to_owned()],
    };
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Whether the container `event` is about may match `check` (the `label` and `image`
/// filters the engine was not trusted with), judged from the event's attributes: `false`
/// only when it certainly cannot. An event's attributes hold every label of its
/// container, but Podman writes some attributes over labels of the same name: a filter
/// on one of those is left to the reflector's selector.
pub(crate) fn may_match(check: &Filters, event: &Event) -> bool {
    let undecidable = check.get("label").into_iter().flatten().any(|v| {
        let key = v.split_once('=').map_or(v.as_str(), |(k, _)| k);
        PODMAN_ATTRIBUTES.contains(&key)
    });
    if undecidable {
        return true;
    }
    let attributes = event.attributes();
    let labels: Labels = attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    check.matches_event(&EventSubject {
        kind: "container",
        action: event.action(),
        id: event.id(),
        name: event.name(),
        image: event.image().unwrap_or_default(),
        image_id: "",
        labels: &labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypersh_watch::WatchEvent;

    fn podman_event(action: &str, attributes: &str) -> WatchEvent {
        WatchEvent::decode(format!(
            r#"{{"status":"{action}","id":"c1","from":"localhost/bb:1","Type":"container","Action":"{action}","Actor":{{"ID":"c1","Attributes":{{{attributes}"containerExitCode":"0","image":"localhost/bb:1","name":"web","podId":""}}}},"scope":"local","time":1,"timeNano":1}}"#
        ))
        .unwrap()
    }

    #[test]
    fn docker_is_asked_for_everything() {
        let f = Filters::new().label("app").label("tier=web").image("nginx");
        let split = watch_filters(&f, Engine::Docker);
        assert_eq!(split.ask, f);
        assert_eq!(split.check, None);
    }

    #[test]
    fn podman_is_asked_only_what_it_matches_as_docker_does() {
        let f = Filters::new()
            .label("app")
            .label("tier=web")
            .image("bb:1")
            .container("web")
            .event("die")
            .event("exec_start: sh")
            .event("start");
        let split = watch_filters(&f, Engine::Podman);
        assert_eq!(
            split.ask,
            Filters::new()
                .label("tier=web")
                .container("web")
                .event("died")
                .event("exec")
                .event("start")
        );
        let check = split.check.clone().unwrap();
        assert_eq!(
            check,
            Filters::new().label("app").label("tier=web").image("bb:1")
        );
        // Nothing to check: nothing is asked for less.
        let plain = watch_filters(&Filters::new().container("web"), Engine::Podman);
        assert_eq!(plain.check, None);
        assert_eq!(podman_event_names("destroy"), ["remove"], "Podman's remove");
        assert_eq!(podman_event_names("exec_die"), ["exec_died"]);
    }

    #[test]
    fn events_that_cannot_match_are_told_from_their_attributes() {
        let key_only = Filters::new().label("app");
        assert!(may_match(
            &key_only,
            podman_event("start", r#""app":"","#).event()
        ));
        assert!(may_match(
            &key_only,
            podman_event("start", r#""app":"web","#).event()
        ));
        assert!(!may_match(
            &key_only,
            podman_event("start", r#""other":"1","#).event()
        ));
        // Every label filter must match, as Docker means it.
        let both = Filters::new().label("app").label("tier=web");
        assert!(may_match(
            &both,
            podman_event("die", r#""app":"x","tier":"web","#).event()
        ));
        assert!(!may_match(
            &both,
            podman_event("die", r#""tier":"web","#).event()
        ));
        assert!(!may_match(
            &both,
            podman_event("die", r#""app":"x","tier":"db","#).event()
        ));
        // A label Podman overwrites with its own attribute cannot be judged here.
        let name = Filters::new().label("name=front");
        assert!(may_match(&name, podman_event("start", "").event()));
        // The image, as Podman names it.
        assert!(may_match(
            &Filters::new().image("localhost/bb:1"),
            podman_event("start", "").event()
        ));
        assert!(!may_match(
            &Filters::new().image("nginx"),
            podman_event("start", "").event()
        ));
    }
}
