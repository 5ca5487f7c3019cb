//! [`ContainerBuilder`]: a [`Container`] made by hand, for tests and fake sources.

use std::sync::Arc;

use smol_str::SmolStr;

use super::{Container, ContainerState, Labels, Mount, Network, Port, Shared};

/// Builds a [`Container`] field by field: from [`Container::builder`] (a new container with
/// an id) or [`Container::into_builder`] (a changed copy). Fields not set keep their
/// default: no names, no labels, no ports, networks or mounts, empty texts, `created` 0,
/// state [`Unknown`](ContainerState::Unknown).
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::{Container, ContainerState};
///
/// let c = Container::builder("7275e762")
///     .name("web")
///     .image("nginx:1.25")
///     .image_id("sha256:d745")
///     .command("nginx -g 'daemon off;'")
///     .created(1_367_854_155)
///     .state(ContainerState::Exited)
///     .status("Exited (0) 3 seconds ago")
///     .label("app", "web")
///     .build();
/// assert_eq!(c.id(), "7275e762");
/// assert_eq!(c.status(), "Exited (0) 3 seconds ago");
/// assert_eq!(c.labels().len(), 1);
/// ```
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ContainerBuilder(Container);

impl ContainerBuilder {
    pub(super) fn new(id: &str) -> Self {
        Self(Container {
            id: Arc::from(id),
            ..Container::default()
        })
    }

    /// Adds a name (`docker run --name web`). Docker reports names with a leading `/`,
    /// which is added when `name` has none.
    pub fn name(mut self, name: &str) -> Self {
        let name = slashed(name);
        self.0.names = self.0.names.iter().cloned().chain([name]).collect();
        self
    }

    /// Replaces every name with `names` (a leading `/` is added to each that has none), as
    /// `docker rename` does with the one name of a container.
    pub fn names<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.0.names = names.into_iter().map(|n| slashed(n.as_ref())).collect();
        self
    }

    /// The image, as the user named it (`nginx:1.25`).
    pub fn image(mut self, image: &str) -> Self {
        self.0.image = SmolStr::new(image);
        self
    }

    /// The image id (`sha256:...`).
    pub fn image_id(mut self, image_id: &str) -> Self {
        self.0.image_id = SmolStr::new(image_id);
        self
    }

    /// The command line.
    pub fn command(mut self, command: &str) -> Self {
        self.0.command = SmolStr::new(command);
        self
    }

    /// Creation time, seconds since the Unix epoch.
    pub fn created(mut self, created: i64) -> Self {
        self.0.created = created;
        self
    }

    /// The machine-readable state.
    pub fn state(mut self, state: ContainerState) -> Self {
        self.0.state = state;
        self
    }

    /// The human-readable status (`Up 2 minutes`).
    pub fn status(mut self, status: &str) -> Self {
        self.0.status = SmolStr::new(status);
        self
    }

    /// Sets one label (`docker run --label app=web`), replacing an earlier value.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        Arc::make_mut(&mut self.0.labels).insert(SmolStr::new(key), SmolStr::new(value));
        self
    }

    /// Replaces every label with `labels`.
    pub fn labels(mut self, labels: Labels) -> Self {
        self.0.labels = Arc::new(labels);
        self
    }

    /// Adds a port (`docker run -p 8080:80`, or a port the image exposes).
    pub fn port(mut self, port: Port) -> Self {
        self.0.ports = self.0.ports.with(port);
        self
    }

    /// Replaces every port with `ports` (kept in the order of [`Container::ports`]).
    pub fn ports(mut self, ports: impl IntoIterator<Item = Port>) -> Self {
        self.0.ports = Shared::from_vec(ports.into_iter().collect());
        self
    }

    /// Attaches the container to a network, replacing an earlier one of the same name
    /// (networks are kept in name order).
    pub fn network(mut self, network: Network) -> Self {
        let mut networks = self.0.networks.as_slice().to_vec();
        networks.push(network);
        self.0.networks = Shared::from_vec(networks);
        self
    }

    /// Replaces every network with `networks` (in name order; of two with the same name
    /// the last counts).
    pub fn networks(mut self, networks: impl IntoIterator<Item = Network>) -> Self {
        self.0.networks = Shared::from_vec(networks.into_iter().collect());
        self
    }

    /// Adds a mount (`-v`, `--mount`).
    pub fn mount(mut self, mount: Mount) -> Self {
        self.0.mounts = self.0.mounts.with(mount);
        self
    }

    /// Replaces every mount with `mounts` (kept in the order of [`Container::mounts`]).
    pub fn mounts(mut self, mounts: impl IntoIterator<Item = Mount>) -> Self {
        self.0.mounts = Shared::from_vec(mounts.into_iter().collect());
        self
    }

    /// The container.
    #[must_use]
    pub fn build(self) -> Container {
        self.0
    }
}

impl From<Container> for ContainerBuilder {
    fn from(c: Container) -> Self {
        Self(c)
    }
}

fn slashed(name: &str) -> SmolStr {
    if name.starts_with('/') {
        SmolStr::new(name)
    } else {
        smol_str::format_smolstr!("/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_what_the_list_decoder_reads() {
        let built = Container::builder("7275e762")
            .name("coolName")
            .image("ubuntu:latest")
            .image_id("sha256:d745")
            .command("echo 222222")
            .created(1_367_854_155)
            .label("sh_hyper_instancetype", "xxs")
            .state(ContainerState::Running)
            .status("Up 2 minutes")
            .build();
        let decoded: Container = serde_json::from_str(
            r#"{"Id":"7275e762","Names":["/coolName"],"Image":"ubuntu:latest",
            "ImageID":"sha256:d745","Command":"echo 222222","Created":1367854155,
            "Labels":{"sh_hyper_instancetype":"xxs"},"State":"running","Status":"Up 2 minutes"}"#,
        )
        .unwrap();
        assert_eq!(built, decoded);
    }

    #[test]
    fn names_keep_or_get_their_slash_and_a_copy_shares_what_it_keeps() {
        let c = Container::builder("a")
            .name("/x")
            .name("y")
            .label("k", "v")
            .build();
        assert_eq!(c.names().collect::<Vec<_>>(), ["/x", "/y"]);
        let renamed = c.clone().into_builder().names(["z"]).build();
        assert_eq!(renamed.names().collect::<Vec<_>>(), ["/z"]);
        assert!(Arc::ptr_eq(&renamed.labels, &c.labels));
        assert!(Arc::ptr_eq(&renamed.id, &c.id));
    }
}
