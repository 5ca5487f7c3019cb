//! Event encoding: one runtime event as the JSON text frames of `/events/ws`, in the
//! Docker shape (the published API) or the Kubernetes shape (the early API router). The
//! frames themselves are `hypersh_watch::event::docker` and `::kubernetes`, the modules
//! the client decodes with; this module turns a runtime event into them.
//!
//! - Docker: `{"status","id","from","Type":"container","Action","Actor":{"ID","Attributes"},
//!   "time","timeNano"}`; the attributes are the labels flattened beside `image`, `name`
//!   (no leading `/`), `exitCode` (on `die` only) and `oldName` (on `rename`, with the
//!   leading `/` as Docker sends it).
//! - Kubernetes: `{"Action":"ADDED"|"MODIFIED"|"DELETED","Status":<phase>,"Id","From",
//!   "Type":"container","Actor":{"Id","Attributes":{"ExitCode","Image","Labels","Name"}},
//!   "Time","TimeNano"}`; `create` is `ADDED`, `destroy` is `DELETED`, a `start` of an
//!   exited container is `DELETED` then `ADDED` (as the original router did), anything else
//!   `MODIFIED`. `ExitCode` is the last exit code while the container is exited, else empty;
//!   `Labels` is `null` when there are none.

use std::borrow::Cow;
use std::collections::BTreeMap;

use hypersh_watch::container::ContainerState;
use hypersh_watch::event::Shape;
use hypersh_watch::event::docker::DockerFrame;
use hypersh_watch::event::kubernetes::KubernetesFrame;
use hypersh_watch::filters::{EventSubject, Filters};

use crate::runtime::RuntimeEvent;

/// What event filters are matched against for this event.
#[must_use]
pub fn subject(event: &RuntimeEvent) -> EventSubject<'_> {
    let c = &event.container;
    EventSubject {
        kind: "container",
        action: event.action,
        id: c.id(),
        name: c.name(),
        image: c.image(),
        image_id: c.image_id(),
        labels: c.labels(),
    }
}

/// Whether `event` passes `filters` (Docker semantics, on the container after the change).
#[must_use]
pub fn matches(filters: &Filters, event: &RuntimeEvent) -> bool {
    filters.matches_event(&subject(event))
}

/// The frames for one runtime event: one, or two for a Kubernetes `DELETED`+`ADDED` pair.
#[must_use]
pub fn encode(shape: Shape, event: &RuntimeEvent) -> Vec<String> {
    match shape {
        Shape::Docker => vec![docker_frame(event).encode()],
        Shape::Kubernetes => k8s_frames(event)
            .iter()
            .map(KubernetesFrame::encode)
            .collect(),
    }
}

/// The Docker frame of a runtime event: its labels, and `oldName` on `rename`, as
/// attributes; `exitCode` on `die` only.
fn docker_frame(event: &RuntimeEvent) -> DockerFrame<'_> {
    let c = &event.container;
    let mut attributes: BTreeMap<&str, Cow<'_, str>> = c
        .labels()
        .iter()
        .map(|(k, v)| (k, Cow::Borrowed(v)))
        .collect();
    if let Some(old) = &event.old_name {
        attributes.insert("oldName", Cow::Owned(format!("/{old}")));
    }
    DockerFrame {
        action: event.action,
        id: c.id(),
        image: c.image(),
        name: c.name().unwrap_or_default(),
        exit_code: (event.action == "die").then(|| event.exit_code.unwrap_or(0)),
        attributes,
        time_nano: event.time_nano,
    }
}

/// The Kubernetes frames of a runtime event: the action as `ADDED`, `MODIFIED` or
/// `DELETED` (two frames for a start of an exited container), the phase of the state,
/// and the exit code while the container is exited.
fn k8s_frames(event: &RuntimeEvent) -> Vec<KubernetesFrame<'_>> {
    let c = &event.container;
    let code = event.exit_code.unwrap_or(0);
    let frame =
        |action: &'static str, state: ContainerState, exit_code: Option<i64>| KubernetesFrame {
            action,
            phase: state.phase(code),
            id: c.id(),
            image: c.image(),
            name: c.name().unwrap_or_default(),
            exit_code,
            labels: c.labels(),
            time_nano: event.time_nano,
        };
    let exit_code = (c.state() == ContainerState::Exited).then_some(code);
    match event.action {
        "create" => vec![frame("ADDED", c.state(), exit_code)],
        "destroy" => vec![frame("DELETED", c.state(), exit_code)],
        // A start with a known exit code is a start of an exited container (a created one
        // has never exited): the original router reported it as a removal and a new object.
        "start" if event.exit_code.is_some() => vec![
            frame("DELETED", ContainerState::Exited, Some(code)),
            frame("ADDED", c.state(), exit_code),
        ],
        _ => vec![frame("MODIFIED", c.state(), exit_code)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypersh_watch::container::Container;
    use hypersh_watch::container::PodPhase;
    use hypersh_watch::event::WatchEvent;

    fn event(action: &'static str, state: ContainerState, exit_code: Option<i64>) -> RuntimeEvent {
        RuntimeEvent {
            action,
            container: Container::builder(&"f29698ca".repeat(8))
                .name("test4")
                .image("busybox")
                .image_id("sha256:abc")
                .label("sh_hyper_instancetype", "s4")
                .label("test2", "test2")
                .state(state)
                .build(),
            exit_code,
            time_nano: 1_476_375_774_255_155_116,
            old_name: None,
        }
    }

    #[test]
    fn docker_frames_match_the_spec_and_decode() {
        let frames = encode(
            Shape::Docker,
            &event("die", ContainerState::Exited, Some(137)),
        );
        assert_eq!(frames.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&frames[0]).unwrap();
        assert_eq!(v["status"], "die");
        assert_eq!(v["Action"], "die");
        assert_eq!(v["Type"], "container");
        assert_eq!(v["from"], "busybox");
        assert_eq!(v["time"], 1_476_375_774);
        assert_eq!(v["timeNano"], 1_476_375_774_255_155_116_i64);
        let attrs = &v["Actor"]["Attributes"];
        assert_eq!(attrs["exitCode"], "137");
        assert_eq!(attrs["name"], "test4");
        assert_eq!(attrs["image"], "busybox");
        assert_eq!(attrs["test2"], "test2");
        let decoded = WatchEvent::decode(frames[0].clone()).unwrap();
        assert_eq!(decoded.kind_str(), "MODIFIED");
        assert_eq!(decoded.event().exit_code(), Some(137));
        assert_eq!(decoded.event().shape(), Shape::Docker);

        let start = encode(
            Shape::Docker,
            &event("start", ContainerState::Running, Some(1)),
        );
        let v: serde_json::Value = serde_json::from_str(&start[0]).unwrap();
        assert!(
            v["Actor"]["Attributes"].get("exitCode").is_none(),
            "exitCode on die only"
        );

        let mut rename = event("rename", ContainerState::Running, None);
        rename.old_name = Some("old".into());
        let frames = encode(Shape::Docker, &rename);
        let decoded = WatchEvent::decode(frames[0].clone()).unwrap();
        assert_eq!(decoded.event().attributes()["oldName"], "/old");
        assert_eq!(decoded.event().name(), Some("test4"));
    }

    #[test]
    fn k8s_frames_map_actions_and_decode() {
        let kinds = |ev: &RuntimeEvent| {
            encode(Shape::Kubernetes, ev)
                .into_iter()
                .map(|f| {
                    let d = WatchEvent::decode(f).unwrap();
                    (
                        d.kind_str(),
                        d.event().phase().map(PodPhase::as_str),
                        d.event().exit_code(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            kinds(&event("create", ContainerState::Created, None)),
            [("ADDED", Some("Pending"), None)]
        );
        assert_eq!(
            kinds(&event("die", ContainerState::Exited, Some(1))),
            [("MODIFIED", Some("Failed"), Some(1))]
        );
        assert_eq!(
            kinds(&event("start", ContainerState::Running, None)),
            [("MODIFIED", Some("Running"), None)],
            "start of a created container"
        );
        assert_eq!(
            kinds(&event("start", ContainerState::Running, Some(0))),
            [
                ("DELETED", Some("Succeeded"), Some(0)),
                ("ADDED", Some("Running"), None)
            ],
            "start of an exited container"
        );
        assert_eq!(
            kinds(&event("destroy", ContainerState::Exited, Some(137))),
            [("DELETED", Some("Failed"), Some(137))]
        );
    }

    #[test]
    fn k8s_labels_are_an_object_or_null() {
        let ev = event("pause", ContainerState::Paused, None);
        let frame = &encode(Shape::Kubernetes, &ev)[0];
        let decoded = WatchEvent::decode(frame.clone()).unwrap();
        assert_eq!(decoded.event().labels(), Some(ev.container.labels()));
        let c = decoded.event().to_container().unwrap();
        assert_eq!(c.name(), Some("test4"));
        let mut bare = ev.clone();
        bare.container = bare
            .container
            .into_builder()
            .labels(hypersh_watch::container::Labels::new())
            .build();
        let frame = &encode(Shape::Kubernetes, &bare)[0];
        let v: serde_json::Value = serde_json::from_str(frame).unwrap();
        assert!(v["Actor"]["Attributes"]["Labels"].is_null());
        assert_eq!(v["Actor"]["Attributes"]["ExitCode"], "");
        assert_eq!(v["Status"], "Running");
    }

    #[test]
    fn filters_match_the_container_after_the_change() {
        let ev = event("start", ContainerState::Running, None);
        assert!(matches(&Filters::new(), &ev));
        assert!(matches(
            &Filters::new().event("start").label("test2=test2"),
            &ev
        ));
        assert!(matches(&Filters::new().container("test4"), &ev));
        assert!(!matches(&Filters::new().event("stop"), &ev));
        assert!(!matches(&Filters::new().kind("image"), &ev));
    }
}
