//! The container model shared by the list response and the event stream.
//!
//! [`Container`] is the Docker container summary returned by `GET /containers/json`
//! (spec section 2), reduced to the fields a cache needs: identity, image, state, labels,
//! and what a proxy or a monitor needs to reach it ([`Port`]s, [`Network`]s, [`Mount`]s).
//! Unknown fields are ignored on decode; numbers may be integers or floats.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

mod builder;
mod de;
mod labels;
mod mount;
mod network;
mod port;
mod scan;
mod shared;

pub use builder::ContainerBuilder;
use de::shared_str;
pub(crate) use de::{lenient_i64, null_as_default};
pub use labels::{Labels, MAX_LABELS_BYTES};
pub use mount::{Mount, MountType};
pub use network::Network;
pub use port::{Port, PortType};
pub use shared::MAX_KEPT_BYTES;
use shared::Shared;

/// A container as the list endpoint describes it.
///
/// Field names serialise in the Docker list format (`Id`, `Names`, `Image`, ...), so a
/// `Vec<Container>` written as JSON can be compared with `GET /containers/json?all=1`, and
/// read back with the same decoder. Of `Ports`, `NetworkSettings.Networks` and `Mounts`
/// the fields a proxy or a monitor acts on are kept ([`Port`], [`Network`], [`Mount`]);
/// `HostConfig` and the rest are not: a cache of many containers should not pay for them.
///
/// Fields are read through accessors that borrow (`&str`, [`Labels`], slices of records)
/// or copy ([`ContainerState`], `i64`). A container is decoded from JSON, built with
/// [`Container::builder`], or made by the reflector from events. Cloning one costs a few
/// reference counts: its texts, labels and records are shared between versions. A
/// container without ports, networks or mounts keeps nothing for them.
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::container::{Container, ContainerState};
///
/// let c: Container = serde_json::from_str(
///     r#"{"Id":"7275e762","Names":["/web"],"Image":"nginx","State":"running","Created":1.5e9}"#,
/// )?;
/// assert_eq!(c.id(), "7275e762");
/// assert_eq!(c.name(), Some("web"));
/// assert_eq!(c.image(), "nginx");
/// assert_eq!(c.state(), ContainerState::Running);
/// assert_eq!(c.created(), 1_500_000_000);
///
/// let mut image_of = std::collections::HashMap::<String, String>::new();
/// image_of.insert(c.id().to_owned(), c.image().to_owned());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Container {
    /// The full container id (64 hex characters on a real server). Shared with the
    /// store's key map.
    #[serde(rename = "Id", deserialize_with = "shared_str")]
    pub(crate) id: Arc<str>,
    /// Names, each with a leading `/` as Docker reports them.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) names: Arc<[SmolStr]>,
    /// The image the container was created from, as the user named it (`nginx:1.25`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) image: SmolStr,
    /// The image id (`sha256:...`).
    #[serde(rename = "ImageID", default, deserialize_with = "de::image_id")]
    pub(crate) image_id: SmolStr,
    /// The command line.
    #[serde(default, deserialize_with = "de::command")]
    pub(crate) command: SmolStr,
    /// Creation time, seconds since the Unix epoch.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub(crate) created: i64,
    /// Exposed and published ports.
    #[serde(default)]
    pub(crate) ports: Shared<Port>,
    /// Labels, fixed when the container is created.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) labels: Arc<Labels>,
    /// The machine-readable state.
    #[serde(default)]
    pub(crate) state: ContainerState,
    /// The human-readable status (`Up 2 minutes`, `Exited (0) 3 seconds ago`): inline up
    /// to 23 bytes, so a new version of a container copies it without allocating.
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) status: SmolStr,
    /// The networks, in name order: `NetworkSettings.Networks` on the wire.
    #[serde(
        rename = "NetworkSettings",
        default,
        serialize_with = "network::serialize_settings",
        deserialize_with = "network::deserialize_settings"
    )]
    pub(crate) networks: Shared<Network>,
    /// Volumes, bind mounts and tmpfs mounts.
    #[serde(default)]
    pub(crate) mounts: Shared<Mount>,
}

impl Container {
    /// Decodes one element of a container list (`GET /containers/json`, an element the
    /// [`list`](crate::list) splitter found): the same container, and the same error, as
    /// `serde_json::from_slice::<Container>(element)`, faster.
    ///
    /// PERFORMANCE: an element without escapes or control characters, up to 4 KiB (every
    /// element the engines and the router write in practice) is read by a scanner over
    /// its quotes; any other element is left to serde, which reads it from the start and
    /// decides every error.
    ///
    /// ```
    /// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
    /// use hypersh::watch::Container;
    ///
    /// let element = br#"{"Id":"7275e762","Names":["/web"],"Image":"nginx","Labels":{"app":"web"}}"#;
    /// let c = Container::from_list_element(element)?;
    /// assert_eq!(c, serde_json::from_slice::<Container>(element)?);
    /// assert_eq!((c.name(), c.label("app")), (Some("web"), Some("web")));
    /// assert!(Container::from_list_element(br#"{"Names":["/web"]}"#).is_err(), "no Id");
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    ///
    /// # Errors
    /// The error serde gives for an element that is not a container's JSON object.
    pub fn from_list_element(element: &[u8]) -> Result<Container, serde_json::Error> {
        if let Ok(text) = std::str::from_utf8(element)
            && let Some(container) = scan::scan(text)
        {
            return Ok(container);
        }
        serde_json::from_slice(element)
    }

    /// Starts building a container with this id (see [`ContainerBuilder`]): for tests and
    /// fake sources.
    ///
    /// ```
    /// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
    /// use hypersh::watch::{Container, ContainerState};
    ///
    /// let c = Container::builder("7275e762")
    ///     .name("web")
    ///     .image("nginx:1.25")
    ///     .state(ContainerState::Running)
    ///     .status("Up 2 minutes")
    ///     .label("app", "web")
    ///     .build();
    /// assert_eq!(c.name(), Some("web"));
    /// assert_eq!(c.names().collect::<Vec<_>>(), ["/web"]);
    /// assert_eq!(c.label("app"), Some("web"));
    /// ```
    pub fn builder(id: &str) -> ContainerBuilder {
        ContainerBuilder::new(id)
    }

    /// A builder that starts from this container, to make a changed copy of it.
    ///
    /// ```
    /// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
    /// use hypersh::watch::{Container, ContainerState};
    ///
    /// let created = Container::builder("c1").name("web").build();
    /// let running = created.clone().into_builder().state(ContainerState::Running).build();
    /// assert_eq!(running.name(), Some("web"));
    /// assert_eq!(running.state(), ContainerState::Running);
    /// ```
    pub fn into_builder(self) -> ContainerBuilder {
        ContainerBuilder::from(self)
    }

    /// The full container id (64 hex characters on a real server).
    #[inline]
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Every name, each with its leading `/` as Docker reports them (`/web`). See
    /// [`name`](Self::name) for the first one without it.
    #[inline]
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator + Clone {
        self.names.iter().map(SmolStr::as_str)
    }

    /// The first name without its leading `/`, if the container has a name.
    #[inline]
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.names.first().map(|n| n.strip_prefix('/').unwrap_or(n))
    }

    /// The image the container was created from, as the user named it (`nginx:1.25`);
    /// empty if unknown.
    #[inline]
    #[must_use]
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The image id (`sha256:...`); empty if unknown.
    #[inline]
    #[must_use]
    pub fn image_id(&self) -> &str {
        &self.image_id
    }

    /// The command line; empty if unknown.
    #[inline]
    #[must_use]
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Creation time, seconds since the Unix epoch (0 if unknown).
    #[inline]
    #[must_use]
    pub fn created(&self) -> i64 {
        self.created
    }

    /// The machine-readable state.
    #[inline]
    #[must_use]
    pub fn state(&self) -> ContainerState {
        self.state
    }

    /// The human-readable status (`Up 2 minutes`, `Exited (0) 3 seconds ago`). For a
    /// state changed by an event, it is Docker's text without the age (`Up`,
    /// `Exited (137)`): the age is not known from the event.
    #[inline]
    #[must_use]
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The labels, fixed when the container is created.
    #[inline]
    #[must_use]
    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    /// The value of one label, if the container has it.
    #[inline]
    #[must_use]
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }

    /// The container's ports (`Ports`): those it exposes and where the host publishes
    /// them, by container port, protocol, host address and host port (Docker's order
    /// changes from one list to the next). Empty for a stopped container on Docker, which
    /// lists ports only while the container runs.
    ///
    /// ```
    /// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
    /// use hypersh::watch::container::{Container, Port, PortType};
    ///
    /// let c = Container::builder("c1")
    ///     .port(Port::new(80, PortType::Tcp).published("0.0.0.0", 8080))
    ///     .build();
    /// let published: Vec<u16> = c.ports().iter().filter_map(Port::public_port).collect();
    /// assert_eq!(published, [8080]);
    /// ```
    #[inline]
    #[must_use]
    pub fn ports(&self) -> &[Port] {
        self.ports.as_slice()
    }

    /// The networks the container is attached to (`NetworkSettings.Networks`), in name
    /// order, with its addresses on each while it runs.
    ///
    /// ```
    /// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
    /// use hypersh::watch::Container;
    ///
    /// let c: Container = serde_json::from_str(r#"{"Id":"c1","NetworkSettings":{"Networks":{
    ///     "bridge":{"NetworkID":"17e46f547a6c","Gateway":"172.17.0.1",
    ///               "IPAddress":"172.17.0.2","MacAddress":"02:42:ac:11:00:02"}}}}"#)?;
    /// assert_eq!(c.networks()[0].name(), "bridge");
    /// assert_eq!(c.network("bridge").map(|n| n.ip_address()), Some("172.17.0.2"));
    /// # Ok::<(), serde_json::Error>(())
    /// ```
    #[inline]
    #[must_use]
    pub fn networks(&self) -> &[Network] {
        self.networks.as_slice()
    }

    /// The network named `name`, if the container is attached to it.
    #[must_use]
    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks().iter().find(|n| n.name() == name)
    }

    /// The container's mounts (`Mounts`), by destination (Docker's order changes from one
    /// list to the next).
    #[inline]
    #[must_use]
    pub fn mounts(&self) -> &[Mount] {
        self.mounts.as_slice()
    }

    /// Takes the addresses off every network (a stopped container's listing); nothing is
    /// copied when none has one.
    pub(crate) fn release_addresses(&mut self) {
        if self.networks().iter().any(Network::is_addressed) {
            self.networks =
                Shared::from_vec(self.networks().iter().map(Network::released).collect());
        }
    }

    /// Makes this container share `older`'s allocations for every field whose value is
    /// equal (id, names, labels, ports, networks, mounts, and the image, image id and
    /// command when too long to be inline).
    ///
    /// A newly listed version of a cached container then costs only what changed: a
    /// relist holds the new versions beside the cached ones until it is applied, and this
    /// keeps that second copy small. The store calls it through
    /// [`Keyed::share_unchanged`](hypersh_store::Keyed::share_unchanged).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) fn share_unchanged(&mut self, older: &Container) {
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
        self.ports.share(&older.ports);
        self.networks.share(&older.networks);
        self.mounts.share(&older.mounts);
    }
}

#[cfg(feature = "store")]
impl hypersh_store::Keyed for Container {
    #[inline]
    fn key(&self) -> &str {
        &self.id
    }

    #[inline]
    fn shared_key(&self) -> Arc<str> {
        Arc::clone(&self.id)
    }

    fn share_unchanged(&mut self, older: &Self) {
        Container::share_unchanged(self, older);
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
    /// Stopped, and not yet cleaned up by the engine: Podman's state between a container's
    /// exit (`die`) and its `cleanup` (Docker has no such state: its list says `exited`).
    Stopped,
    /// Being stopped: Podman's state between a stop request and the container's exit.
    Stopping,
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
            Self::Stopped => "stopped",
            Self::Stopping => "stopping",
            Self::Dead => "dead",
            Self::Removing => "removing",
            Self::Unknown => "unknown",
        }
    }

    /// Whether the container's processes exist: running or paused, as Docker's
    /// `State.Running` (true for a paused container too). The engine holds the
    /// container's network addresses while it runs, and only then.
    #[must_use]
    pub fn is_running(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }

    /// A short status text for this state, like Docker's without the age
    /// (`Up`, `Up (Paused)`, `Exited (137)`, `Created`). Used when an event changes the
    /// state of a cached container: the age in the server's text is not known here.
    pub(crate) fn summary(self, exit_code: i64) -> SmolStr {
        match self {
            Self::Created => SmolStr::new_static("Created"),
            Self::Restarting => SmolStr::new_static("Restarting"),
            Self::Running => SmolStr::new_static("Up"),
            Self::Paused => SmolStr::new_static("Up (Paused)"),
            // Podman's text for a stopped container is the one for an exited one.
            Self::Exited | Self::Stopped => exited(exit_code),
            Self::Stopping => SmolStr::new_static("Stopping"),
            Self::Dead => SmolStr::new_static("Dead"),
            Self::Removing => SmolStr::new_static("Removal In Progress"),
            Self::Unknown => SmolStr::default(),
        }
    }

    /// The Kubernetes pod phase the early API router reported for this state
    /// (spec section 3a): `Pending`, `Running`, `Succeeded` or `Failed`.
    ///
    /// `exit_code` decides between `Succeeded` (0) and `Failed` for a stopped container.
    #[must_use]
    pub fn phase(self, exit_code: i64) -> PodPhase {
        match self {
            Self::Created | Self::Restarting | Self::Unknown => PodPhase::Pending,
            Self::Running | Self::Paused | Self::Stopping => PodPhase::Running,
            Self::Exited | Self::Stopped | Self::Dead | Self::Removing if exit_code == 0 => {
                PodPhase::Succeeded
            }
            Self::Exited | Self::Stopped | Self::Dead | Self::Removing => PodPhase::Failed,
        }
    }
}

/// `Exited (CODE)`.
///
/// PERFORMANCE: the codes most containers exit with are static texts: the reflector
/// writes this for every `die`, and formatting costs more than the rest of the event.
fn exited(exit_code: i64) -> SmolStr {
    match exit_code {
        0 => SmolStr::new_static("Exited (0)"),
        1 => SmolStr::new_static("Exited (1)"),
        2 => SmolStr::new_static("Exited (2)"),
        125 => SmolStr::new_static("Exited (125)"),
        126 => SmolStr::new_static("Exited (126)"),
        127 => SmolStr::new_static("Exited (127)"),
        130 => SmolStr::new_static("Exited (130)"),
        137 => SmolStr::new_static("Exited (137)"),
        143 => SmolStr::new_static("Exited (143)"),
        _ => smol_str::format_smolstr!("Exited ({exit_code})"),
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The phase carried in the `Status` field of Kubernetes-style events (spec section 3a):
/// a Kubernetes pod phase (`PodPhase` in `k8s.io/api/core/v1`), of which the API router
/// uses the four that describe a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PodPhase {
    /// Created or restarting, not running yet.
    Pending,
    /// Running (or paused).
    Running,
    /// Stopped with exit code 0.
    Succeeded,
    /// Stopped with a non-zero exit code.
    Failed,
}

impl PodPhase {
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
    /// Index name conventionally used with [`by_network`].
    pub const NETWORK: &str = "network";

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

    /// The name of every network the container is attached to (`bridge`, a user-defined
    /// network): the containers a proxy on one network can reach.
    #[must_use]
    pub fn by_network(c: &Container) -> Vec<String> {
        c.networks().iter().map(|n| n.name().to_owned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_exit_texts_are_the_formatted_ones() {
        for code in (-300..=300).chain([i64::MIN, i64::MAX, 1 << 40]) {
            assert_eq!(exited(code), format!("Exited ({code})"), "{code}");
        }
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
        assert_eq!(c.label("sh_hyper_instancetype"), Some("xxs"));
        assert_eq!(c.command(), "echo 222222");
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
    fn a_dump_of_containers_reads_back_with_the_list_decoder() {
        let listed: Vec<Container> = serde_json::from_str(&format!(
            r#"[{LIST_ITEM},{{"Id":"b","Labels":null}},{{"Id":"c","Names":["/c"]}}]"#
        ))
        .unwrap();
        let built = Container::builder("d")
            .name("web")
            .image("nginx")
            .state(ContainerState::Exited)
            .status("Exited (0) 3 seconds ago")
            .created(-1)
            .label("app", "web")
            .label("a.key.longer.than.twenty-three.bytes", "v")
            .build();
        let all: Vec<Container> = listed.into_iter().chain([built]).collect();
        let dump = serde_json::to_vec(&all).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&dump).unwrap();
        assert_eq!(
            value[1]["Labels"],
            serde_json::json!({}),
            "no labels: an object"
        );

        let mut read = Vec::new();
        let mut splitter = crate::list::ArraySplitter::new(usize::MAX);
        for chunk in dump.chunks(7) {
            splitter
                .feed(chunk, |element| {
                    read.push(serde_json::from_slice::<Container>(element)?);
                    Ok::<_, Box<dyn std::error::Error>>(())
                })
                .unwrap();
        }
        splitter.finish().unwrap();
        assert_eq!(read, all);
    }

    #[test]
    fn tolerates_nulls_floats_and_unknown_states() {
        let c: Container = serde_json::from_str(
            r#"{"Id":"a","Names":null,"Labels":null,"Created":1.47601746e+09,"State":"zombie"}"#,
        )
        .unwrap();
        assert_eq!(c.names().len(), 0);
        assert!(c.labels().is_empty());
        assert_eq!(c.created(), 1_476_017_460);
        assert_eq!(c.state(), ContainerState::Unknown);
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

    /// A running container with a published port, an address and a volume, as Docker
    /// lists it (the records' other fields dropped, `Mounts` in a Go map's order).
    fn attached(ip: &str, status: &str, mounts_reversed: bool) -> Container {
        let mut mounts = [
            r#"{"Type":"volume","Name":"data","Source":"/var/lib/docker/volumes/data/_data","Destination":"/data","Driver":"local","Mode":"z","RW":true,"Propagation":""}"#,
            r#"{"Type":"bind","Source":"/srv/www","Destination":"/www","Mode":"ro","RW":false,"Propagation":"rprivate"}"#,
        ];
        if mounts_reversed {
            mounts.reverse();
        }
        serde_json::from_str(&format!(
            r#"{{"Id":"7275e762","Names":["/web"],"State":"running","Status":"{status}",
            "Ports":[{{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}}],
            "NetworkSettings":{{"Networks":{{"bridge":{{"NetworkID":"{:064x}","Gateway":"172.17.0.1",
            "IPAddress":"{ip}","MacAddress":"02:42:ac:11:00:02"}}}}}},
            "Mounts":[{}]}}"#,
            0x17e4,
            mounts.join(",")
        ))
        .unwrap()
    }

    #[test]
    fn share_unchanged_shares_equal_records_whatever_the_order_docker_wrote() {
        let old = attached("172.17.0.2", "Up 2 minutes", false);
        let mut new = attached("172.17.0.2", "Up 3 minutes", true);
        assert_eq!(new.mounts(), old.mounts(), "kept in one order");
        assert!(!new.mounts.ptr_eq(&old.mounts));
        new.share_unchanged(&old);
        assert!(new.ports.ptr_eq(&old.ports));
        assert!(new.networks.ptr_eq(&old.networks));
        assert!(new.mounts.ptr_eq(&old.mounts));
        // A new address is not shared; the rest still is.
        let mut moved = attached("172.17.0.9", "Up 1 second", false);
        moved.share_unchanged(&old);
        assert!(!moved.networks.ptr_eq(&old.networks));
        assert_eq!(moved.networks()[0].ip_address(), "172.17.0.9");
        assert!(moved.ports.ptr_eq(&old.ports));
        assert!(moved.mounts.ptr_eq(&old.mounts));
    }

    #[test]
    fn records_round_trip_in_list_format_and_events_keep_them() {
        let c = attached("172.17.0.2", "Up 2 minutes", false);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(
            json["Ports"],
            serde_json::json!([{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}])
        );
        assert_eq!(
            json["NetworkSettings"]["Networks"]["bridge"]["IPAddress"],
            "172.17.0.2"
        );
        assert_eq!(json["Mounts"][1]["Destination"], "/www");
        assert_eq!(json["Mounts"][1]["RW"], false);
        assert_eq!(serde_json::from_value::<Container>(json).unwrap(), c);
        // Nothing kept: written as the list writes it.
        let bare = serde_json::to_value(Container::builder("b").build()).unwrap();
        assert_eq!(bare["Ports"], serde_json::json!([]));
        assert_eq!(bare["NetworkSettings"], serde_json::json!({"Networks": {}}));
        assert_eq!(bare["Mounts"], serde_json::json!([]));

        // An event speaks of state and name only: the records are kept, shared.
        let pause = crate::WatchEvent::decode(
            r#"{"status":"pause","id":"7275e762","Type":"container","Action":"pause"}"#,
        )
        .unwrap();
        let paused = pause
            .event()
            .changes(&c)
            .expect("a pause changes the state");
        assert_eq!(paused.state(), ContainerState::Paused);
        assert!(paused.ports.ptr_eq(&c.ports));
        assert!(paused.networks.ptr_eq(&c.networks));
        assert!(paused.mounts.ptr_eq(&c.mounts));

        // A stop takes the addresses off (the network's name and id stay), as the engines
        // list a stopped container; ports (which only Docker drops) and mounts stay.
        let die = crate::WatchEvent::decode(
            r#"{"status":"die","id":"7275e762","Type":"container","Action":"die","Actor":{"ID":"7275e762","Attributes":{"exitCode":"0"}}}"#,
        )
        .unwrap();
        let stopped = die.event().changes(&paused).expect("a die stops it");
        assert_eq!(stopped.state(), ContainerState::Exited);
        let bridge = &stopped.networks()[0];
        assert_eq!((bridge.name(), bridge.network_id().len()), ("bridge", 64));
        assert_eq!(
            (bridge.ip_address(), bridge.gateway(), bridge.mac_address()),
            ("", "", "")
        );
        assert!(stopped.ports.ptr_eq(&c.ports));
        assert!(stopped.mounts.ptr_eq(&c.mounts));
        // Nothing to take off: the networks are not copied.
        let again = die
            .event()
            .changes(
                &stopped
                    .clone()
                    .into_builder()
                    .state(ContainerState::Running)
                    .build(),
            )
            .unwrap();
        assert!(again.networks.ptr_eq(&stopped.networks));
    }

    #[test]
    fn phases_map_both_ways() {
        assert_eq!(ContainerState::Running.phase(0), PodPhase::Running);
        assert_eq!(ContainerState::Paused.phase(0), PodPhase::Running);
        assert_eq!(ContainerState::Exited.phase(0), PodPhase::Succeeded);
        assert_eq!(ContainerState::Exited.phase(137), PodPhase::Failed);
        assert_eq!(ContainerState::Created.phase(0), PodPhase::Pending);
        assert_eq!(PodPhase::parse("running"), Some(PodPhase::Running));
        assert_eq!(PodPhase::parse("Bogus"), None);
        assert_eq!(PodPhase::Failed.state(), ContainerState::Exited);
    }

    #[test]
    fn podman_states_read_and_write_as_its_list_spells_them() {
        for (text, state, phase) in [
            ("stopped", ContainerState::Stopped, PodPhase::Failed),
            ("stopping", ContainerState::Stopping, PodPhase::Running),
        ] {
            let c: Container =
                serde_json::from_str(&format!(r#"{{"Id":"a","State":"{text}"}}"#)).unwrap();
            assert_eq!(c.state(), state);
            assert_eq!(state.as_str(), text);
            assert_eq!(state.phase(137), phase);
            let json = serde_json::to_value(&c).unwrap();
            assert_eq!(json["State"], text);
        }
        assert_eq!(ContainerState::Stopped.summary(3), "Exited (3)");
        assert_eq!(ContainerState::Stopping.summary(0), "Stopping");
    }

    #[test]
    fn index_functions() {
        let c: Container = serde_json::from_str(LIST_ITEM).unwrap();
        assert_eq!(index::by_name(&c), vec!["coolName"]);
        assert_eq!(index::by_image(&c), vec!["ubuntu:latest"]);
        assert_eq!(index::by_label(&c), vec!["sh_hyper_instancetype=xxs"]);
        assert!(index::by_image(&Container::builder("x").build()).is_empty());
        assert!(index::by_network(&c).is_empty());
        let two = Container::builder("y")
            .network(Network::new("front"))
            .network(Network::new("back"))
            .build();
        assert_eq!(index::by_network(&two), vec!["back", "front"]);
    }
}
