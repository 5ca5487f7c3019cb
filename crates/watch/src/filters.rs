//! Docker-style `filters`: a typed builder, the CLI form, both JSON wire forms, and the
//! matching semantics of Docker's `filters.Args` (spec section 4).
//!
//! - Different keys are ANDed; the values of one key are ORed, except `label`, whose
//!   values are ANDed (every label value must match).
//! - A label value `key` needs the key present, `key=value` that value, `key=` an empty
//!   value; `k=a=b` is key `k`, value `a=b`.
//! - A key with no values matches everything.
//!
//! ```
//! # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
//! use hypersh::watch::filters::Filters;
//!
//! let f = Filters::new().container("web").label("app=api");
//! assert_eq!(f.to_json(), r#"{"container":{"web":true},"label":{"app=api":true}}"#);
//! assert_eq!(Filters::parse_cli("container=web,label=app=api")?, f);
//! assert_eq!(Filters::from_json(r#"{"container":["web"],"label":["app=api"]}"#)?, f);
//! # Ok::<(), hypersh_watch::filters::FilterError>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::container::{Container, Labels};

/// The keys the event stream understands (spec section 4).
pub const EVENT_KEYS: &[&str] = &["container", "image", "label", "event", "type"];
/// The keys the container list understands (spec section 2).
pub const LIST_KEYS: &[&str] = &[
    "id", "name", "label", "status", "exited", "ancestor", "image",
];
/// The keys the original client's `--filter` flag accepts.
pub const CLI_KEYS: &[&str] = &["container", "image", "label", "event"];

/// A set of filters: each key holds a set of values.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    fields: BTreeMap<String, BTreeSet<String>>,
}

/// Why filters could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FilterError {
    /// A CLI item has no `=` (`container` instead of `container=x`).
    #[error("bad filter {item:?}: expected NAME=VALUE")]
    MissingEquals {
        /// The offending item.
        item: String,
    },
    /// A CLI item has an empty name (`=x`).
    #[error("bad filter {item:?}: the filter name is empty")]
    EmptyName {
        /// The offending item.
        item: String,
    },
    /// The key is not one the receiver understands.
    #[error("invalid filter {key:?}: expected one of {allowed}")]
    UnknownKey {
        /// The unknown key.
        key: String,
        /// The accepted keys, comma-separated.
        allowed: String,
    },
    /// The JSON is neither `{"k":{"v":true}}` nor `{"k":["v"]}`.
    #[error("malformed filters JSON: {0}")]
    Json(String),
}

impl Filters {
    /// No filters: everything matches.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` under `key` (builder form).
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.add(key, value);
        self
    }

    /// Adds `value` under `key`.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.fields
            .entry(key.into())
            .or_default()
            .insert(value.into());
    }

    /// Events of a container: full id, id prefix or name.
    #[must_use]
    pub fn container(self, value: impl Into<String>) -> Self {
        self.with("container", value)
    }

    /// Events or containers of an image: name, `name:tag` or image id.
    #[must_use]
    pub fn image(self, value: impl Into<String>) -> Self {
        self.with("image", value)
    }

    /// A label condition: `key`, `key=value` or `key=` (ANDed with other labels).
    #[must_use]
    pub fn label(self, value: impl Into<String>) -> Self {
        self.with("label", value)
    }

    /// A Docker action (`start`, `stop`, ...).
    #[must_use]
    pub fn event(self, value: impl Into<String>) -> Self {
        self.with("event", value)
    }

    /// An event type (`container`).
    #[must_use]
    pub fn kind(self, value: impl Into<String>) -> Self {
        self.with("type", value)
    }

    /// A container id (list filter; full id or prefix).
    #[must_use]
    pub fn id(self, value: impl Into<String>) -> Self {
        self.with("id", value)
    }

    /// A name substring (list filter).
    #[must_use]
    pub fn name(self, value: impl Into<String>) -> Self {
        self.with("name", value)
    }

    /// A container state (list filter): created, restarting, running, paused, exited.
    #[must_use]
    pub fn status(self, value: impl Into<String>) -> Self {
        self.with("status", value)
    }

    /// True when no key is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The values of `key`, if the key is set.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&BTreeSet<String>> {
        self.fields.get(key)
    }

    /// The keys that are set.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// Parses the CLI form of the original client: `container=x,image=y,label=k=v,event=start`.
    /// Items are split on `,`, then on the first `=`; only `container`, `image`, `label` and
    /// `event` are accepted. An empty string gives no filters.
    ///
    /// # Errors
    /// An item without `=`, with an empty name, or with another name.
    pub fn parse_cli(s: &str) -> Result<Self, FilterError> {
        Self::parse_cli_keys(s, CLI_KEYS)
    }

    /// As [`parse_cli`](Self::parse_cli), accepting only the names in `keys` (an
    /// informer passes its own, which leave out `event`), so that the error for another
    /// name lists the names this receiver accepts.
    ///
    /// # Errors
    /// An item without `=`, with an empty name, or with a name not in `keys`.
    pub fn parse_cli_keys(s: &str, keys: &[&str]) -> Result<Self, FilterError> {
        let mut filters = Self::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(FilterError::MissingEquals {
                    item: item.to_owned(),
                });
            };
            let key = key.trim();
            if key.is_empty() {
                return Err(FilterError::EmptyName {
                    item: item.to_owned(),
                });
            }
            let key = key.to_ascii_lowercase();
            if !keys.contains(&key.as_str()) {
                return Err(unknown_key(&key, keys));
            }
            filters.add(key, value);
        }
        Ok(filters)
    }

    /// The `event` values that name no action Docker emits for containers (a typo such
    /// as `strat`): such a value matches nothing.
    #[must_use]
    pub fn unknown_events(&self) -> Vec<&str> {
        self.get("event")
            .into_iter()
            .flatten()
            .map(String::as_str)
            .filter(|v| !crate::event::DockerAction::is_emitted(v))
            .collect()
    }

    /// Checks that every key is one of `allowed`.
    ///
    /// # Errors
    /// [`FilterError::UnknownKey`] for the first key that is not allowed.
    pub fn validate(&self, allowed: &[&str]) -> Result<(), FilterError> {
        match self.keys().find(|k| !allowed.contains(k)) {
            Some(key) => Err(unknown_key(key, allowed)),
            None => Ok(()),
        }
    }

    /// The wire form `{"key":{"value":true}}`, keys and values sorted.
    #[must_use]
    pub fn to_json(&self) -> String {
        let map: BTreeMap<&str, BTreeMap<&str, bool>> = self
            .fields
            .iter()
            .map(|(k, vs)| (k.as_str(), vs.iter().map(|v| (v.as_str(), true)).collect()))
            .collect();
        // Serialising a map of strings to booleans cannot fail.
        serde_json::to_string(&map).unwrap_or_default()
    }

    /// The `filters` query value, or `None` when empty (an empty set is sent as no
    /// parameter).
    #[must_use]
    pub fn query_value(&self) -> Option<String> {
        (!self.is_empty()).then(|| self.to_json())
    }

    /// Parses either wire form: `{"key":{"value":true}}` or the legacy `{"key":["value"]}`.
    /// An empty string or `{}` gives no filters. Boolean values are not interpreted: a
    /// listed value is a value (as Docker does).
    ///
    /// # Errors
    /// [`FilterError::Json`] for anything else.
    pub fn from_json(s: &str) -> Result<Self, FilterError> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Values {
            Map(BTreeMap<String, serde_json::Value>),
            List(Vec<String>),
        }
        if s.trim().is_empty() {
            return Ok(Self::new());
        }
        let raw: BTreeMap<String, Values> =
            serde_json::from_str(s).map_err(|e| FilterError::Json(e.to_string()))?;
        let mut filters = Self::new();
        for (key, values) in raw {
            let set = filters.fields.entry(key).or_default();
            match values {
                Values::Map(m) => set.extend(m.into_keys()),
                Values::List(l) => set.extend(l),
            }
        }
        Ok(filters)
    }

    /// True when `key` is unset or one of its values equals `value`.
    #[must_use]
    pub fn exact_match(&self, key: &str, value: &str) -> bool {
        self.get(key).is_none_or(|vs| vs.contains(value))
    }

    /// True when `key` is unset or one of its values satisfies `pred` (values ORed).
    pub fn any_match(&self, key: &str, pred: impl Fn(&str) -> bool) -> bool {
        self.get(key).is_none_or(|vs| vs.iter().any(|v| pred(v)))
    }

    /// True when `key` is unset or every one of its `k[=v]` values holds for `labels`
    /// (values ANDed).
    #[must_use]
    pub fn match_labels(&self, key: &str, labels: &Labels) -> bool {
        self.get(key)
            .is_none_or(|vs| vs.iter().all(|v| label_matches(v, labels)))
    }

    /// Event matching (spec section 4), as the server applies it to each event.
    #[must_use]
    pub fn matches_event(&self, e: &EventSubject<'_>) -> bool {
        let action_head = e.action.split(':').next().unwrap_or(e.action).trim();
        self.any_match("type", |v| v == e.kind)
            && self.any_match("event", |v| v == e.action || v == action_head)
            && self.any_match("container", |v| {
                id_matches(v, e.id)
                    || e.name
                        .is_some_and(|n| n.trim_start_matches('/') == v.trim_start_matches('/'))
            })
            && self.any_match("image", |v| image_matches(v, e.image, e.image_id))
            && self.match_labels("label", e.labels)
    }

    /// Container list matching (spec section 2). `exit_code` is the container's last exit
    /// code, used by the `exited` key (which only matches exited containers).
    #[must_use]
    pub fn matches_container(&self, c: &Container, exit_code: Option<i64>) -> bool {
        self.any_match("id", |v| id_matches(v, &c.id))
            && self.any_match("name", |v| {
                c.names.iter().any(|n| {
                    n.trim_start_matches('/')
                        .contains(v.trim_start_matches('/'))
                })
            })
            && self.match_labels("label", &c.labels)
            && self.any_match("status", |v| v == c.state.as_str())
            && self.any_match("exited", |v| {
                c.state == crate::container::ContainerState::Exited
                    && exit_code.is_some_and(|code| v.parse() == Ok(code))
            })
            && self.any_match("ancestor", |v| image_matches(v, &c.image, &c.image_id))
            && self.any_match("image", |v| image_matches(v, &c.image, &c.image_id))
    }
}

/// What an event filter is matched against: the container an event is about.
#[derive(Clone, Copy, Debug)]
pub struct EventSubject<'a> {
    /// The event type, `container`.
    pub kind: &'a str,
    /// The Docker action (`start`, `health_status: healthy`).
    pub action: &'a str,
    /// The full container id.
    pub id: &'a str,
    /// The container name, with or without a leading `/`.
    pub name: Option<&'a str>,
    /// The image as named at create time.
    pub image: &'a str,
    /// The image id (`sha256:...`), or empty.
    pub image_id: &'a str,
    /// The container's labels.
    pub labels: &'a Labels,
}

fn unknown_key(key: &str, allowed: &[&str]) -> FilterError {
    FilterError::UnknownKey {
        key: key.to_owned(),
        allowed: allowed.join(", "),
    }
}

/// `label` value semantics: `k` (present), `k=v` (equal), `k=` (empty), split on first `=`.
fn label_matches(condition: &str, labels: &Labels) -> bool {
    match condition.split_once('=') {
        None => labels.contains_key(condition),
        Some((k, v)) => labels.get(k).is_some_and(|actual| actual == v),
    }
}

/// Full id or id prefix.
fn id_matches(filter: &str, id: &str) -> bool {
    !filter.is_empty() && id.starts_with(filter)
}

/// Image by name (`busybox` matches `busybox:1.36`), `name:tag` (an untagged image is
/// `:latest`), or image id (with or without `sha256:`, full or prefix).
fn image_matches(filter: &str, image: &str, image_id: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let (name, tag) = split_tag(image);
    let filter_has_tag = split_tag(filter).1.is_some();
    let by_name = if filter_has_tag {
        filter == image || (tag.is_none() && filter.strip_suffix(":latest") == Some(name))
    } else {
        filter == name
    };
    let by_id = !image_id.is_empty()
        && (image_id.starts_with(filter)
            || image_id
                .strip_prefix("sha256:")
                .is_some_and(|hex| hex.starts_with(filter)));
    by_name || by_id
}

/// Splits `repo/name:tag` into name and tag; a `:` inside a registry host port is not a tag.
fn split_tag(image: &str) -> (&str, Option<&str>) {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (image, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::ContainerState;
    use std::sync::Arc;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().copied().collect()
    }

    fn subject<'a>(labels: &'a Labels) -> EventSubject<'a> {
        EventSubject {
            kind: "container",
            action: "start",
            id: "d180511d5b5c9e34c769adbf6a4c292249a26e71fc64e54aef67fcc0940dad45",
            name: Some("test2"),
            image: "busybox",
            image_id: "sha256:2b8fd9751c4c",
            labels,
        }
    }

    #[test]
    fn cli_form_matches_the_original_client_cases() {
        // The original client's test list.
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("container=test2", &[("container", "test2")]),
            ("event=start", &[("event", "start")]),
            ("image=busybox", &[("image", "busybox")]),
            ("label=test1", &[("label", "test1")]),
            ("label=empty=", &[("label", "empty=")]),
            ("label=key=test1=test1", &[("label", "key=test1=test1")]),
            (
                "container=x,image=y,label=k=v,event=start",
                &[
                    ("container", "x"),
                    ("image", "y"),
                    ("label", "k=v"),
                    ("event", "start"),
                ],
            ),
            ("label=a,label=b=c", &[("label", "a"), ("label", "b=c")]),
            ("container=", &[("container", "")]),
        ];
        for (input, expected) in cases {
            let mut want = Filters::new();
            for (k, v) in *expected {
                want.add(*k, *v);
            }
            assert_eq!(Filters::parse_cli(input).unwrap(), want, "{input}");
        }
        assert_eq!(Filters::parse_cli("").unwrap(), Filters::new());
    }

    #[test]
    fn cli_form_rejects_bad_items_clearly() {
        assert_eq!(
            Filters::parse_cli("container"),
            Err(FilterError::MissingEquals {
                item: "container".into()
            })
        );
        assert_eq!(
            Filters::parse_cli("=x"),
            Err(FilterError::EmptyName { item: "=x".into() })
        );
        let err = Filters::parse_cli("type=container").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid filter "type": expected one of container, image, label, event"#
        );
        // A receiver with its own keys names only those.
        let err = Filters::parse_cli_keys("event=start", &["container", "label"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid filter "event": expected one of container, label"#
        );
    }

    #[test]
    fn unknown_events_are_the_actions_docker_does_not_emit() {
        let f = Filters::parse_cli("event=strat,event=start,event=health_status: healthy").unwrap();
        assert_eq!(f.unknown_events(), ["strat"]);
        assert!(
            Filters::parse_cli("event=exec_start,event=die")
                .unwrap()
                .unknown_events()
                .is_empty()
        );
        assert!(Filters::new().unknown_events().is_empty());
    }

    #[test]
    fn json_encode_and_both_decode_forms() {
        let f = Filters::new().label("a=b").label("c").event("stop");
        let json = f.to_json();
        assert_eq!(
            json,
            r#"{"event":{"stop":true},"label":{"a=b":true,"c":true}}"#
        );
        assert_eq!(Filters::from_json(&json).unwrap(), f);
        assert_eq!(
            Filters::from_json(r#"{"event":["stop"],"label":["c","a=b"]}"#).unwrap(),
            f
        );
        assert_eq!(Filters::from_json("").unwrap(), Filters::new());
        assert_eq!(Filters::from_json("{}").unwrap(), Filters::new());
        assert_eq!(Filters::new().query_value(), None);
        for bad in [
            "[]",
            "{\"a\":1}",
            "{\"a\":\"b\"}",
            "not json",
            "{\"a\":[1]}",
        ] {
            assert!(
                matches!(Filters::from_json(bad), Err(FilterError::Json(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn validate_names_the_unknown_key() {
        let f = Filters::new().with("colour", "red");
        assert!(
            matches!(f.validate(EVENT_KEYS), Err(FilterError::UnknownKey { key, .. }) if key == "colour")
        );
        assert!(Filters::new().container("x").validate(EVENT_KEYS).is_ok());
    }

    #[test]
    fn empty_filters_and_empty_keys_match_everything() {
        let l = labels(&[]);
        assert!(Filters::new().matches_event(&subject(&l)));
        assert!(Filters::new().match_labels("label", &l));
    }

    #[test]
    fn container_by_full_id_prefix_or_name() {
        let l = labels(&[]);
        let s = subject(&l);
        assert!(Filters::new().container(s.id).matches_event(&s));
        assert!(Filters::new().container("d180511d").matches_event(&s));
        assert!(Filters::new().container("test2").matches_event(&s));
        assert!(
            Filters::new().container("/test2").matches_event(&s),
            "a leading / is ignored"
        );
        assert!(
            !Filters::new().container("test").matches_event(&s),
            "names match whole"
        );
        assert!(!Filters::new().container("").matches_event(&s));
        assert!(!Filters::new().container("e180511d").matches_event(&s));
        // Values of one key are ORed.
        assert!(
            Filters::new()
                .container("nope")
                .container("test2")
                .matches_event(&s)
        );
    }

    #[test]
    fn image_by_name_tag_or_id() {
        let l = labels(&[]);
        let mut s = subject(&l);
        assert!(Filters::new().image("busybox").matches_event(&s));
        assert!(Filters::new().image("busybox:latest").matches_event(&s));
        assert!(!Filters::new().image("busybox:1.36").matches_event(&s));
        assert!(
            Filters::new()
                .image("sha256:2b8fd9751c4c")
                .matches_event(&s)
        );
        assert!(Filters::new().image("2b8fd975").matches_event(&s));
        assert!(!Filters::new().image("busy").matches_event(&s));
        s.image = "registry:5000/team/app:1.2";
        assert!(
            Filters::new()
                .image("registry:5000/team/app")
                .matches_event(&s)
        );
        assert!(
            Filters::new()
                .image("registry:5000/team/app:1.2")
                .matches_event(&s)
        );
        assert!(
            !Filters::new()
                .image("registry:5000/team/app:1.3")
                .matches_event(&s)
        );
    }

    #[test]
    fn event_and_type_values_are_ored() {
        let l = labels(&[]);
        let mut s = subject(&l);
        assert!(
            Filters::new()
                .event("stop")
                .event("start")
                .matches_event(&s)
        );
        assert!(!Filters::new().event("stop").matches_event(&s));
        s.action = "health_status: healthy";
        assert!(Filters::new().event("health_status").matches_event(&s));
        assert!(
            Filters::new()
                .event("health_status: healthy")
                .matches_event(&s)
        );
        assert!(Filters::new().kind("container").matches_event(&s));
        assert!(!Filters::new().kind("image").matches_event(&s));
    }

    #[test]
    fn label_semantics() {
        let l = labels(&[
            ("test1", "x"),
            ("empty", ""),
            ("key", "test1=test1"),
            ("a", "b"),
        ]);
        let s = subject(&l);
        let m = |f: &str| Filters::new().label(f).matches_event(&s);
        assert!(m("test1"), "key present");
        assert!(!m("missing"));
        assert!(m("test1=x"));
        assert!(!m("test1=y"));
        assert!(m("empty="), "key= needs an empty value");
        assert!(!m("test1="));
        assert!(m("empty"));
        assert!(m("key=test1=test1"), "split on the first =");
        assert!(!m("key=test1"));
        // Label values are ANDed.
        assert!(Filters::new().label("test1").label("a=b").matches_event(&s));
        assert!(!Filters::new().label("test1").label("a=c").matches_event(&s));
    }

    #[test]
    fn different_keys_are_anded() {
        let l = labels(&[("app", "web")]);
        let s = subject(&l);
        assert!(
            Filters::new()
                .container("test2")
                .label("app=web")
                .event("start")
                .matches_event(&s)
        );
        assert!(
            !Filters::new()
                .container("test2")
                .label("app=db")
                .matches_event(&s)
        );
        assert!(
            !Filters::new()
                .container("other")
                .label("app=web")
                .matches_event(&s)
        );
    }

    #[test]
    fn list_filters() {
        let c = Container {
            id: "7275e762abc".into(),
            names: vec!["/coolName".into()].into(),
            image: "ubuntu:latest".into(),
            image_id: "sha256:d745".into(),
            labels: Arc::new(labels(&[("sh_hyper_instancetype", "xxs")])),
            state: ContainerState::Exited,
            ..Container::default()
        };
        let m = |f: Filters| f.matches_container(&c, Some(3));
        assert!(m(Filters::new()));
        assert!(m(Filters::new().id("7275e762abc")));
        assert!(m(Filters::new().id("7275")));
        assert!(!m(Filters::new().id("abc")));
        assert!(m(Filters::new().name("cool")), "name is a substring match");
        assert!(m(Filters::new().name("/coolName")));
        assert!(!m(Filters::new().name("warm")));
        assert!(m(Filters::new().label("sh_hyper_instancetype=xxs")));
        assert!(!m(Filters::new().label("sh_hyper_instancetype=s4")));
        assert!(m(Filters::new().status("exited")));
        assert!(m(Filters::new().status("running").status("exited")));
        assert!(!m(Filters::new().status("running")));
        assert!(m(Filters::new().with("exited", "3")));
        assert!(!m(Filters::new().with("exited", "0")));
        assert!(m(Filters::new().with("ancestor", "ubuntu")));
        assert!(m(Filters::new().image("ubuntu:latest")));
        assert!(!m(Filters::new().image("debian")));
        let running = Container {
            state: ContainerState::Running,
            ..c.clone()
        };
        assert!(
            !Filters::new()
                .with("exited", "3")
                .matches_container(&running, Some(3))
        );
    }
}
