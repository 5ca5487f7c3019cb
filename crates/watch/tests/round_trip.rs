//! Both frame shapes, encoded by `event::docker` and `event::kubernetes` (as the reference
//! router writes them): for generated events (ids, names, images, labels, exit codes,
//! actions), the frame means the event encoded.
//!
//! The encoder and `WatchEvent::decode` share the shapes' field-name constants, so a
//! misspelt wire name would survive a round trip through them alone. Each frame is
//! therefore also read by the oracle (`oracle/`: serde derive with the spec's names
//! spelt out on their own) and, for the Docker attributes, as plain JSON under literal
//! names: both must find the event encoded.

mod oracle;

use std::borrow::Cow;
use std::collections::BTreeMap;

use hypersh_watch::container::{Labels, PodPhase};
use hypersh_watch::event::docker::DockerFrame;
use hypersh_watch::event::kubernetes::KubernetesFrame;
use hypersh_watch::event::{Shape, WatchEvent};
use oracle::Decoded;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    ProptestConfig::with_cases(cases)
}

/// Any text, escapes included (`.` is any character but a newline), or an id as sent.
fn text(min: usize) -> impl Strategy<Value = String> {
    let regex = |r: String| proptest::string::string_regex(&r).expect("a valid regex");
    prop_oneof![
        regex(format!("[0-9a-f]{{{},64}}", min.max(1))),
        regex(format!(".{{{min},16}}")),
        regex(format!("[a-z_]{{{min},12}}")),
    ]
}

fn docker_action() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "create",
            "start",
            "restart",
            "pause",
            "unpause",
            "stop",
            "kill",
            "die",
            "oom",
            "rename",
            "update",
            "destroy",
            "health_status: healthy",
            "exec_start: sh -c ls",
            "exec_die",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,12}(: .{0,8})?",
    ]
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-zA-Z0-9_.-]{1,10}|.{1,6}", ".{0,10}", 0..5)
}

fn phase() -> impl Strategy<Value = PodPhase> {
    prop::sample::select(vec![
        PodPhase::Pending,
        PodPhase::Running,
        PodPhase::Succeeded,
        PodPhase::Failed,
    ])
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

/// What the frame means to the decoder and, read with names of its own, to the oracle:
/// they must agree.
fn decode(frame: &str) -> Decoded {
    let (fast, oracle) = oracle::both(frame.as_bytes());
    let fast = fast.unwrap_or_else(|e| panic!("{frame} does not decode: {e:?}"));
    let oracle = oracle.unwrap_or_else(|e| panic!("the oracle refuses {frame}: {e:?}"));
    assert_eq!(
        fast, oracle,
        "the decoder and the oracle read {frame} differently"
    );
    fast
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn docker_frames_decode_to_the_event_encoded(
        action in docker_action(),
        id in text(1),
        image in text(0),
        name in text(0),
        exit_code in prop::option::of(any::<i64>()),
        labels in labels(),
        time_nano in any::<i64>(),
    ) {
        // Docker flattens the labels beside these attributes, which win over them.
        let labels: BTreeMap<String, String> = labels
            .into_iter()
            .filter(|(k, _)| !["name", "image", "exitCode"].contains(&k.as_str()))
            .collect();
        let frame = DockerFrame {
            action: &action,
            id: &id,
            image: &image,
            name: &name,
            exit_code,
            attributes: labels.iter().map(|(k, v)| (k.as_str(), Cow::Borrowed(v.as_str()))).collect(),
            time_nano,
        };
        let encoded = frame.encode();
        let decoded = decode(&encoded);
        let expected = Decoded {
            kind: match action.as_str() {
                "create" => "ADDED",
                "destroy" => "DELETED",
                _ => "MODIFIED",
            },
            id: id.clone(),
            action: action.clone(),
            image: non_empty(&image),
            name: non_empty(&name),
            shape: Shape::Docker,
            phase: None,
            labels: None,
            exit_code,
            time_nano,
        };
        prop_assert_eq!(decoded, expected);
        let mut attributes = labels.clone();
        attributes.insert("image".into(), image.clone());
        attributes.insert("name".into(), name.clone());
        if let Some(code) = exit_code {
            attributes.insert("exitCode".into(), code.to_string());
        }
        // Docker's attributes, under the names Docker writes (spec section 3).
        let json: serde_json::Value = serde_json::from_str(&encoded).unwrap();
        let written: BTreeMap<String, String> = json["Actor"]["Attributes"]
            .as_object()
            .unwrap_or_else(|| panic!("no Actor.Attributes object in {encoded}"))
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
        prop_assert_eq!(&written, &attributes);
        prop_assert_eq!(&json["Actor"]["ID"], &serde_json::Value::from(id.as_str()));
        prop_assert_eq!(&json["Action"], &serde_json::Value::from(action.as_str()));
        prop_assert_eq!(&json["Type"], &serde_json::Value::from("container"));
        let event = WatchEvent::decode(encoded).unwrap();
        prop_assert_eq!(event.event().attributes(), attributes);
    }

    #[test]
    fn kubernetes_frames_decode_to_the_event_encoded(
        action in prop::sample::select(vec!["ADDED", "MODIFIED", "DELETED"]),
        phase in phase(),
        id in text(1),
        image in text(0),
        name in text(0),
        exit_code in prop::option::of(any::<i64>()),
        labels in labels(),
        time_nano in any::<i64>(),
    ) {
        let wire_labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let frame = KubernetesFrame {
            action,
            phase,
            id: &id,
            image: &image,
            name: &name,
            exit_code,
            labels: &wire_labels,
            time_nano,
        };
        let expected = Decoded {
            kind: action,
            id: id.clone(),
            action: action.to_owned(),
            image: non_empty(&image),
            name: non_empty(&name),
            shape: Shape::Kubernetes,
            phase: Some(phase),
            labels: Some(labels),
            exit_code,
            time_nano,
        };
        prop_assert_eq!(decode(&frame.encode()), expected);
    }
}
