//! The container model shared by the list response and the event stream.
//!
//! [`Container`] is the Docker container summary returned by `GET /containers/json`
//! (spec section 2), reduced to the fields a cache needs. Unknown fields are ignored on
//! decode; numbers may be integers or floats.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
pub use smol_str::SmolStr;

mod de;

use de::shared_str;
pub(crate) use de::{lenient_i64, null_as_default};

/// A container's labels, key to value, sorted by key.
///
/// A flat sorted vector ([`litemap::LiteMap`]) rather than a `BTreeMap`: a container has a
/// handful of labels, and a B-tree's first node alone takes about 540 bytes for them. Keys
/// and values are [`SmolStr`]s: up to 23 bytes they are stored inline, with no allocation
/// of their own, and most labels are that short. It reads like a `BTreeMap` (`get`,
/// `contains_key`, `iter`, `len`) and collects from pairs:
///
/// ```
/// use hypersh_watch::container::Labels;
///
/// let labels: Labels = [("app", "web")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
/// assert_eq!(labels.get("app").map(|v| v.as_str()), Some("web"));
/// ```
pub type Labels = litemap::LiteMap<SmolStr, SmolStr>;

/// A container as the list endpoint describes it.
///
/// Field names serialise in the Docker list format (`Id`, `Names`, `Image`, ...), so a
/// `Vec<Container>` written as JSON can be compared with `GET /containers/json?all=1`.
/// `Ports`, `HostConfig` and `NetworkSettings` are not kept: a cache of many containers
/// should not pay for them, and no filter or index uses them.
///
/// Cloning a container to apply an event costs a few reference counts, not a dozen
/// allocations: the id, the names and the labels are shared (`Arc`), and the other texts
/// are [`SmolStr`]s, copied inline up to 23 bytes and shared above. Two versions of the
/// same container can share them (see [`Container::share_unchanged`]). Compare the id
/// through `&*` or `as_ref()`: `&*c.id == "7275e762"`; the others compare with `&str`.
///
/// ```
/// # // The facade `hypersh` re-exports these; this crate's doctests cannot depend on it.
/// # mod hypersh { pub use hypersh_watch::{Container, ContainerState}; }
/// use hypersh::{Container, ContainerState};
///
/// let c: Container = serde_json::from_str(
///     r#"{"Id":"7275e762","Names":["/web"],"Image":"nginx","State":"running","Created":1.5e9}"#,
/// )?;
/// assert_eq!(c.name(), Some("web"));
/// assert_eq!(c.image, "nginx");
/// assert_eq!(c.state, ContainerState::Running);
/// assert_eq!(c.created, 1_500_000_000);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Container {
    /// The full container id (64 hex characters on a real server).
    #[serde(rename = "Id", deserialize_with = "shared_str")]
    pub id: Arc<str>,
    /// Names, each with a leading `/` as Docker reports them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub names: Arc<[SmolStr]>,
    /// The image the container was created from, as the user named it (`nginx:1.25`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub image: SmolStr,
    /// The image id (`sha256:...`).
    #[serde(rename = "ImageID", default, deserialize_with = "null_as_default")]
    pub image_id: SmolStr,
    /// The command line.
    #[serde(default, deserialize_with = "null_as_default")]
    pub command: SmolStr,
    /// Creation time, seconds since the Unix epoch.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub created: i64,
    /// Labels, fixed when the container is created. Always written as a JSON object,
    /// `{}` when there are none (as Docker's list does).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        serialize_with = "labels_as_object"
    )]
    pub labels: Arc<Labels>,
    /// The machine-readable state.
    #[serde(default)]
    pub state: ContainerState,
    /// The human-readable status (`Up 2 minutes`, `Exited (0) 3 seconds ago`): inline up
    /// to 23 bytes, so a new version of a container copies it without allocating.
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: SmolStr,
}

impl Container {
    /// The full container id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The first name without its leading `/`, if the container has a name.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.names.first().map(|n| n.strip_prefix('/').unwrap_or(n))
    }

    /// Makes this container share `older`'s allocations for every field whose value is
    /// equal (id, names, labels, and the image, image id and command when too long to be
    /// inline).
    ///
    /// A newly listed version of a cached container then costs only what changed: a
    /// relist holds the new versions beside the cached ones until it is applied, and this
    /// keeps that second copy small.
    ///
    /// ```
    /// use std::sync::Arc;
    /// # // The facade `hypersh` re-exports it; this crate's doctests cannot depend on it.
    /// # mod hypersh { pub use hypersh_watch::Container; }
    /// use hypersh::Container;
    ///
    /// let old = Container { id: "a".into(), image: "nginx".into(), ..Container::default() };
    /// let mut new = Container { id: "a".into(), image: "nginx".into(), ..Container::default() };
    /// new.share_unchanged(&old);
    /// assert!(Arc::ptr_eq(&new.id, &old.id));
    /// ```
    pub fn share_unchanged(&mut self, older: &Container) {
        fn share<T: ?Sized + PartialEq>(new: &mut Arc<T>, old: &Arc<T>) {
            if !Arc::ptr_eq(new, old) && **new == **old {
                *new = Arc::clone(old);
            }
        }
        fn share_text(new: &mut SmolStr, old: &SmolStr) {
            if new.is_heap_allocated() && new == old {
                new.clone_from(old);
            }
        }
        share(&mut self.id, &older.id);
        share(&mut self.names, &older.names);
        share_text(&mut self.image, &older.image);
        share_text(&mut self.image_id, &older.image_id);
        share_text(&mut self.command, &older.command);
        share(&mut self.labels, &older.labels);
    }
}

#[cfg(feature = "store")]
impl hypersh_store::Keyed for Container {
    fn key(&self) -> &str {
        &self.id
    }

    fn shared_key(&self) -> Arc<str> {
        Arc::clone(&self.id)
    }
}

/// A container's state, as the list endpoint's `State` field spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Restarting after a failure or a `restart`.
    Restarting,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Stopped; the exit code is in the status text.
    Exited,
    /// Dead (failed to be removed).
    Dead,
    /// Being removed.
    Removing,
    /// A state this library does not know (or none was given).
    #[default]
    #[serde(other)]
    Unknown,
}

impl ContainerState {
    /// The lower-case name used on the wire and in the `status` list filter.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Restarting => "restarting",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Exited => "exited",
            Self::Dead => "dead",
            Self::Removing => "removing",
            Self::Unknown => "unknown",
        }
    }

    /// A short status text for this state, like Docker's without the age
    /// (`Up`, `Up (Paused)`, `Exited (137)`, `Created`). Used when an event changes the
    /// state of a cached container: the age in the server's text is not known here.
    #[must_use]
    pub fn summary(self, exit_code: i64) -> SmolStr {
        match self {
            Self::Created => SmolStr::new_static("Created"),
            Self::Restarting => SmolStr::new_static("Restarting"),
            Self::Running => SmolStr::new_static("Up"),
            Self::Paused => SmolStr::new_static("Up (Paused)"),
            Self::Exited => smol_str::format_smolstr!("Exited ({exit_code})"),
            Self::Dead => SmolStr::new_static("Dead"),
            Self::Removing => SmolStr::new_static("Removal In Progress"),
            Self::Unknown => SmolStr::default(),
        }
    }

    /// The Kubernetes-style phase the early API router reported for this state
    /// (spec section 3a): `Pending`, `Running`, `Succeeded` or `Failed`.
    ///
    /// `exit_code` decides between `Succeeded` (0) and `Failed` for a stopped container.
    #[must_use]
    pub fn phase(self, exit_code: i64) -> Phase {
        match self {
            Self::Created | Self::Restarting | Self::Unknown => Phase::Pending,
            Self::Running | Self::Paused => Phase::Running,
            Self::Exited | Self::Dead | Self::Removing if exit_code == 0 => Phase::Succeeded,
            Self::Exited | Self::Dead | Self::Removing => Phase::Failed,
        }
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phase carried by Kubernetes-style events (spec section 3a).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Created or restarting, not running yet.
    Pending,
    /// Running (or paused).
    Running,
    /// Stopped with exit code 0.
    Succeeded,
    /// Stopped with a non-zero exit code.
    Failed,
}

impl Phase {
    /// Parses a phase as the wire spells it (`Running`); case-insensitive.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Running, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s))
    }

    /// The wire spelling.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Running => "Running",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
        }
    }

    /// The container state a cache records for a container last seen in this phase
    /// when no better information is at hand.
    #[must_use]
    pub fn state(self) -> ContainerState {
        match self {
            Self::Pending => ContainerState::Created,
            Self::Running => ContainerState::Running,
            Self::Succeeded | Self::Failed => ContainerState::Exited,
        }
    }
}

/// Ready-made index functions for a [`Container`] cache (client-go's `Indexers`).
///
/// Each returns the index values of one container; register them on a store with
/// `store.add_index(name, function)`.
pub mod index {
    use super::Container;

    /// Index name conventionally used with [`by_name`].
    pub const NAME: &str = "name";
    /// Index name conventionally used with [`by_image`].
    pub const IMAGE: &str = "image";
    /// Index name conventionally used with [`by_label`].
    pub const LABEL: &str = "label";

    /// Every name of the container, without the leading `/`.
    #[must_use]
    pub fn by_name(c: &Container) -> Vec<String> {
        c.names
            .iter()
            .map(|n| n.strip_prefix('/').unwrap_or(n).to_owned())
            .collect()
    }

    /// The image as named at create time.
    #[must_use]
    pub fn by_image(c: &Container) -> Vec<String> {
        if c.image.is_empty() {
            Vec::new()
        } else {
            vec![c.image.to_string()]
        }
    }

    /// One `key=value` entry per label.
    #[must_use]
    pub fn by_label(c: &Container) -> Vec<String> {
        c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// Writes labels as a JSON object: `LiteMap` writes an empty map as `[]` to
/// human-readable formats (it cannot tell its key type from an empty map).
fn labels_as_object<S: serde::Serializer>(labels: &Arc<Labels>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(labels.iter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_always_a_json_object() {
        let none = serde_json::to_value(Container::default()).unwrap();
        assert_eq!(none["Labels"], serde_json::json!({}));
        let c: Container = serde_json::from_str(LIST_ITEM).unwrap();
        let some = serde_json::to_value(&c).unwrap();
        assert_eq!(
            some["Labels"],
            serde_json::json!({"sh_hyper_instancetype": "xxs"})
        );
        let back: Container = serde_json::from_value(some).unwrap();
        assert_eq!(back, c);
    }

    const LIST_ITEM: &str = r#"{"Id":"7275e762","Names":["/coolName"],"Image":"ubuntu:latest",
        "ImageID":"sha256:d745","Command":"echo 222222","Created":1367854155,"Ports":[],
        "Labels":{"sh_hyper_instancetype":"xxs"},"State":"running","Status":"Up 2 minutes",
        "HostConfig":{"NetworkMode":"bridge"},"NetworkSettings":{"Networks":{}}}"#;

    #[test]
    fn decodes_the_spec_list_item_and_ignores_unknown_fields() {
        let c: Container = serde_json::from_str(LIST_ITEM).unwrap();
        assert_eq!(&*c.id, "7275e762");
        assert_eq!(c.name(), Some("coolName"));
        assert_eq!(&*c.image, "ubuntu:latest");
        assert_eq!(&*c.image_id, "sha256:d745");
        assert_eq!(c.created, 1_367_854_155);
        assert_eq!(
            c.labels.get("sh_hyper_instancetype").map(SmolStr::as_str),
            Some("xxs")
        );
        assert_eq!(c.state, ContainerState::Running);
        assert_eq!(c.status, "Up 2 minutes");
    }

    #[test]
    fn round_trips_in_list_format() {
        let c: Container = serde_json::from_str(LIST_ITEM).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["Id"], "7275e762");
        assert_eq!(json["Names"][0], "/coolName");
        assert_eq!(json["State"], "running");
        assert_eq!(json["ImageID"], "sha256:d745");
        let back: Container = serde_json::from_value(json).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn tolerates_nulls_floats_and_unknown_states() {
        let c: Container = serde_json::from_str(
            r#"{"Id":"a","Names":null,"Labels":null,"Created":1.47601746e+09,"State":"zombie"}"#,
        )
        .unwrap();
        assert!(c.names.is_empty());
        assert!(c.labels.is_empty());
        assert_eq!(c.created, 1_476_017_460);
        assert_eq!(c.state, ContainerState::Unknown);
        assert_eq!(c.name(), None);
    }

    #[test]
    fn missing_or_null_id_is_an_error() {
        assert!(serde_json::from_str::<Container>(r#"{"Names":["/x"]}"#).is_err());
        assert!(serde_json::from_str::<Container>(r#"{"Id":null}"#).is_err());
        assert!(serde_json::from_str::<Container>(r#"{"Id":7}"#).is_err());
    }

    #[test]
    fn share_unchanged_shares_equal_fields_only() {
        let item = LIST_ITEM.replace("sha256:d745", &format!("sha256:{:064x}", 0xd745));
        let old: Container = serde_json::from_str(&item).unwrap();
        let mut new: Container = serde_json::from_str(
            &item
                .replace("Up 2 minutes", "Up 3 minutes")
                .replace("echo 222222", "sh"),
        )
        .unwrap();
        assert!(!Arc::ptr_eq(&new.labels, &old.labels));
        new.share_unchanged(&old);
        assert!(Arc::ptr_eq(&new.id, &old.id));
        assert!(Arc::ptr_eq(&new.names, &old.names));
        // A long text is shared; a short one is inline, copied, never allocated.
        assert!(new.image_id.is_heap_allocated());
        assert_eq!(new.image_id.as_ptr(), old.image_id.as_ptr());
        assert!(!new.image.is_heap_allocated());
        assert_eq!(new.image, old.image);
        assert!(Arc::ptr_eq(&new.labels, &old.labels));
        assert_eq!(&*new.command, "sh");
        assert_eq!(new.status, "Up 3 minutes");
    }

    #[test]
    fn phases_map_both_ways() {
        assert_eq!(ContainerState::Running.phase(0), Phase::Running);
        assert_eq!(ContainerState::Paused.phase(0), Phase::Running);
        assert_eq!(ContainerState::Exited.phase(0), Phase::Succeeded);
        assert_eq!(ContainerState::Exited.phase(137), Phase::Failed);
        assert_eq!(ContainerState::Created.phase(0), Phase::Pending);
        assert_eq!(Phase::parse("running"), Some(Phase::Running));
        assert_eq!(Phase::parse("Bogus"), None);
        assert_eq!(Phase::Failed.state(), ContainerState::Exited);
    }

    #[test]
    fn index_functions() {
        let c: Container = serde_json::from_str(LIST_ITEM).unwrap();
        assert_eq!(index::by_name(&c), vec!["coolName"]);
        assert_eq!(index::by_image(&c), vec!["ubuntu:latest"]);
        assert_eq!(index::by_label(&c), vec!["sh_hyper_instancetype=xxs"]);
        assert!(index::by_image(&Container::default()).is_empty());
    }
}
