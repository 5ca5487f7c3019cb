//! Event encoding: one runtime event as the JSON text frames of `/events/ws`, in the
//! Docker shape (the published API) or the Kubernetes shape (the early API router).
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
use std::fmt;
use std::str::FromStr;

use hypersh_watch::container::{ContainerState, Labels, PodPhase};
use hypersh_watch::filters::{EventSubject, Filters};
use serde::Serialize;

use crate::runtime::RuntimeEvent;

/// The wire shape of event frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EventShape {
    /// Docker events (`"Action":"start"`), the published API. The default.
    #[default]
    Docker,
    /// Kubernetes-style watch events (`"Action":"ADDED"`), the early API router.
    Kubernetes,
}

impl EventShape {
    /// The CLI spelling: `docker` or `k8s`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Docker => "docker",
            Self::Kubernetes => "k8s",
        }
    }
}

impl fmt::Display for EventShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an [`EventShape`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown event shape {0:?}: expected docker or k8s")]
pub struct UnknownShape(pub String);

impl FromStr for EventShape {
    type Err = UnknownShape;

    /// `docker`, or `k8s` / `kubernetes` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "docker" => Ok(Self::Docker),
            "k8s" | "kubernetes" => Ok(Self::Kubernetes),
            _ => Err(UnknownShape(s.to_owned())),
        }
    }
}

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
pub fn encode(shape: EventShape, event: &RuntimeEvent) -> Vec<String> {
    let frames = match shape {
        EventShape::Docker => vec![serde_json::to_string(&docker_frame(event))],
        EventShape::Kubernetes => k8s_frames(event)
            .iter()
            .map(serde_json::to_string)
            .collect(),
    };
    // Serialising these structs of strings and integers cannot fail.
    frames.into_iter().filter_map(Result::ok).collect()
}

#[derive(Serialize)]
struct DockerFrame<'a> {
    status: &'a str,
    id: &'a str,
    from: &'a str,
    #[serde(rename = "Type")]
    kind: &'static str,
    #[serde(rename = "Action")]
    action: &'a str,
    #[serde(rename = "Actor")]
    actor: DockerActor<'a>,
    time: i64,
    #[serde(rename = "timeNano")]
    time_nano: i64,
}

#[derive(Serialize)]
struct DockerActor<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Attributes")]
    attributes: BTreeMap<&'a str, Cow<'a, str>>,
}

fn docker_frame(event: &RuntimeEvent) -> DockerFrame<'_> {
    let c = &event.container;
    let mut attributes: BTreeMap<&str, Cow<'_, str>> = c
        .labels()
        .iter()
        .map(|(k, v)| (k, Cow::Borrowed(v)))
        .collect();
    attributes.insert("image", Cow::Borrowed(c.image()));
    attributes.insert("name", Cow::Borrowed(c.name().unwrap_or_default()));
    if event.action == "die" {
        attributes.insert(
            "exitCode",
            Cow::Owned(event.exit_code.unwrap_or(0).to_string()),
        );
    }
    if let Some(old) = &event.old_name {
        attributes.insert("oldName", Cow::Owned(format!("/{old}")));
    }
    DockerFrame {
        status: event.action,
        id: c.id(),
        from: c.image(),
        kind: "container",
        action: event.action,
        actor: DockerActor {
            id: c.id(),
            attributes,
        },
        time: event.time_nano / 1_000_000_000,
        time_nano: event.time_nano,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct K8sFrame<'a> {
    action: &'static str,
    status: &'static str,
    id: &'a str,
    from: &'a str,
    #[serde(rename = "Type")]
    kind: &'static str,
    actor: K8sActor<'a>,
    time: i64,
    time_nano: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct K8sActor<'a> {
    id: &'a str,
    attributes: K8sAttributes<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct K8sAttributes<'a> {
    exit_code: String,
    image: &'a str,
    labels: Option<&'a Labels>,
    name: &'a str,
}

fn k8s_frames(event: &RuntimeEvent) -> Vec<K8sFrame<'_>> {
    let c = &event.container;
    let code = event.exit_code.unwrap_or(0);
    let frame = |action: &'static str, phase: PodPhase, exit_code: String| K8sFrame {
        action,
        status: phase.as_str(),
        id: c.id(),
        from: c.image(),
        kind: "container",
        actor: K8sActor {
            id: c.id(),
            attributes: K8sAttributes {
                exit_code,
                image: c.image(),
                labels: (!c.labels().is_empty()).then_some(c.labels()),
                name: c.name().unwrap_or_default(),
            },
        },
        time: event.time_nano / 1_000_000_000,
        time_nano: event.time_nano,
    };
    let exit_text = if c.state() == ContainerState::Exited {
        code.to_string()
    } else {
        String::new()
    };
    let phase = c.state().phase(code);
    match event.action {
        "create" => vec![frame("ADDED", phase, exit_text)],
        "destroy" => vec![frame("DELETED", phase, exit_text)],
        // A start with a known exit code is a start of an exited container (a created one
        // has never exited): the original router reported it as a removal and a new object.
        "start" if event.exit_code.is_some() => vec![
            frame(
                "DELETED",
                ContainerState::Exited.phase(code),
                code.to_string(),
            ),
            frame("ADDED", phase, exit_text),
        ],
        _ => vec![frame("MODIFIED", phase, exit_text)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hypersh_watch::container::Container;
    use hypersh_watch::event::{Shape, WatchEvent};

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
            EventShape::Docker,
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
        assert_eq!(decoded.event().exit_code, Some(137));
        assert_eq!(decoded.event().shape, Shape::Docker);

        let start = encode(
            EventShape::Docker,
            &event("start", ContainerState::Running, Some(1)),
        );
        let v: serde_json::Value = serde_json::from_str(&start[0]).unwrap();
        assert!(
            v["Actor"]["Attributes"].get("exitCode").is_none(),
            "exitCode on die only"
        );

        let mut rename = event("rename", ContainerState::Running, None);
        rename.old_name = Some("old".into());
        let frames = encode(EventShape::Docker, &rename);
        let decoded = WatchEvent::decode(frames[0].clone()).unwrap();
        assert_eq!(decoded.event().attributes()["oldName"], "/old");
        assert_eq!(decoded.event().name(), Some("test4"));
    }

    #[test]
    fn k8s_frames_map_actions_and_decode() {
        let kinds = |ev: &RuntimeEvent| {
            encode(EventShape::Kubernetes, ev)
                .into_iter()
                .map(|f| {
                    let d = WatchEvent::decode(f).unwrap();
                    (
                        d.kind_str(),
                        d.event().phase.map(PodPhase::as_str),
                        d.event().exit_code,
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
        let frame = &encode(EventShape::Kubernetes, &ev)[0];
        let decoded = WatchEvent::decode(frame.clone()).unwrap();
        assert_eq!(decoded.event().labels.as_ref(), Some(ev.container.labels()));
        let c = decoded.event().to_container().unwrap();
        assert_eq!(c.name(), Some("test4"));
        let mut bare = ev.clone();
        bare.container = bare.container.into_builder().labels(Labels::new()).build();
        let frame = &encode(EventShape::Kubernetes, &bare)[0];
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

    #[test]
    fn shapes_parse() {
        assert_eq!("docker".parse(), Ok(EventShape::Docker));
        assert_eq!("K8S".parse(), Ok(EventShape::Kubernetes));
        assert_eq!("kubernetes".parse(), Ok(EventShape::Kubernetes));
        assert!("yaml".parse::<EventShape>().is_err());
        assert_eq!(EventShape::default().to_string(), "docker");
    }
}
