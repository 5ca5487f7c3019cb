//! What a container is attached to: its networks and addresses, its ports and its mounts,
//! as Docker Engine lists them in each state. Derived from the container's sequence
//! number, image and name alone (not from the seeded generator), so adding them changed
//! no seed's ids, names, labels or actions.
//!
//! Out of every 20 containers: 11 on the default `bridge`, 6 on a user-defined
//! `frontend` network, 1 on `frontend` and `backend`, 1 on `host` and 1 on `none`. An
//! image that exposes a port (nginx 80, redis 6379, postgres 5432, python 8000) has it
//! published on all host addresses for one container in three (listed twice, `0.0.0.0`
//! and `::`, as Docker does), else only exposed. postgres and redis have an anonymous
//! volume, every other nginx a read-only bind mount of its content, and one container in
//! four `/etc/localtime`.
//!
//! As on Docker: a running or paused container has its addresses and ports; a created
//! one lists its networks with neither id nor address and no ports; a stopped one keeps
//! each network's id, without address or ports. Mounts are listed in every state.

use std::sync::LazyLock;

use hypersh_watch::container::{
    Container, ContainerBuilder, ContainerState, Mount, MountType, Network, Port, PortType,
};
use sha2::{Digest, Sha256};

/// A network containers are attached to: its name, and its IPv4 /16 (the first two
/// octets; the gateway is `.0.1`), or none for `host` and `none`.
struct Net {
    name: &'static str,
    subnet: Option<[u8; 2]>,
}

const BRIDGE: Net = Net {
    name: "bridge",
    subnet: Some([172, 17]),
};
const FRONTEND: Net = Net {
    name: "frontend",
    subnet: Some([172, 18]),
};
const BACKEND: Net = Net {
    name: "backend",
    subnet: Some([172, 19]),
};
const HOST: Net = Net {
    name: "host",
    subnet: None,
};
const NONE: Net = Net {
    name: "none",
    subnet: None,
};

/// Every network's id (64 hex characters, from its name), computed once.
static NETWORK_IDS: LazyLock<[(&'static str, String); 5]> = LazyLock::new(|| {
    [BRIDGE, FRONTEND, BACKEND, HOST, NONE].map(|n| {
        let id = hex::encode(Sha256::digest(format!("network {}", n.name).as_bytes()));
        (n.name, id)
    })
});

fn network_id(name: &str) -> &'static str {
    NETWORK_IDS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, id)| id.as_str())
}

/// The networks of container `seq`: 11 in 20 on the bridge, spread so that a few
/// containers already meet every kind.
fn networks_of(seq: u64) -> &'static [Net] {
    match seq % 20 {
        1 | 5 | 9 | 13 | 15 | 17 => &[FRONTEND],
        3 => &[BACKEND, FRONTEND],
        7 => &[HOST],
        11 => &[NONE],
        _ => &[BRIDGE],
    }
}

/// The network mode Docker lists for `c` (`HostConfig.NetworkMode`): `default` on the
/// bridge, else the network it was created on (`frontend` for the two-network ones).
#[must_use]
pub fn network_mode(c: &Container) -> &str {
    match c.networks().last() {
        Some(n) if n.name() == BRIDGE.name => "default",
        Some(n) => n.name(),
        None => "none",
    }
}

/// The port `image` exposes, if any.
fn exposed_port(image: &str) -> Option<u16> {
    match image {
        "nginx:1.25" | "hyperhq/nginx" => Some(80),
        "redis:7" => Some(6379),
        "postgres:16" => Some(5432),
        "python:3.12-slim" => Some(8000),
        _ => None,
    }
}

/// Container `seq`'s address on a /16: hosts `.0.2` to `.255.253`, one per container
/// (the 65 532nd container after it shares it).
fn host_octets(seq: u64) -> [u8; 2] {
    let host = u16::try_from(seq % 65_532 + 2).unwrap_or(2);
    host.to_be_bytes()
}

/// Sets the ports and networks container `seq` of `image` lists in `state`.
pub(super) fn for_state(
    builder: ContainerBuilder,
    seq: u64,
    image: &str,
    state: ContainerState,
) -> ContainerBuilder {
    use ContainerState::{Created, Paused, Restarting, Running};

    let nets = networks_of(seq);
    let up = matches!(state, Running | Paused | Restarting);
    let networks = nets.iter().map(|net| {
        let n = Network::new(net.name);
        match (state, net.subnet) {
            (Created, _) => n,
            (_, Some([a, b])) if up => {
                let [c, d] = host_octets(seq);
                n.with_network_id(network_id(net.name))
                    .with_ip_address(&format!("{a}.{b}.{c}.{d}"))
                    .with_gateway(&format!("{a}.{b}.0.1"))
                    .with_mac_address(&format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"))
            }
            _ => n.with_network_id(network_id(net.name)),
        }
    });
    let addressed = nets.iter().any(|n| n.subnet.is_some());
    let ports = exposed_port(image)
        .filter(|_| up && addressed)
        .map(|port| {
            if seq.is_multiple_of(3) {
                let public = 30_000 + u16::try_from(seq % 20_000).unwrap_or(0);
                vec![
                    Port::new(port, PortType::Tcp).published("0.0.0.0", public),
                    Port::new(port, PortType::Tcp).published("::", public),
                ]
            } else {
                vec![Port::new(port, PortType::Tcp)]
            }
        })
        .unwrap_or_default();
    builder.networks(networks).ports(ports)
}

/// The mounts of container `seq` named `name` (with id `id`) of `image`.
pub(super) fn mounts(seq: u64, id: &str, name: &str, image: &str) -> Vec<Mount> {
    // An anonymous volume is named with 64 hex characters: here, the id backwards.
    let anonymous = |destination: &str| {
        let volume: String = id.chars().rev().collect();
        Mount::new(
            MountType::Volume,
            &format!("/var/lib/docker/volumes/{volume}/_data"),
            destination,
        )
    };
    let mut mounts = Vec::new();
    match image {
        "postgres:16" => mounts.push(anonymous("/var/lib/postgresql/data")),
        "redis:7" => mounts.push(anonymous("/data")),
        "nginx:1.25" | "hyperhq/nginx" if seq.is_multiple_of(2) => mounts.push(
            Mount::new(
                MountType::Bind,
                &format!("/srv/{name}/html"),
                "/usr/share/nginx/html",
            )
            .with_rw(false),
        ),
        _ => {}
    }
    if seq % 4 == 1 {
        mounts.push(Mount::new(MountType::Bind, "/etc/localtime", "/etc/localtime").with_rw(false));
    }
    mounts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(seq: u64, image: &str, state: ContainerState) -> Container {
        for_state(Container::builder("c").image(image), seq, image, state).build()
    }

    #[test]
    fn addresses_and_ports_only_while_up_as_on_docker() {
        // seq 12: bridge; divisible by 3: nginx's port published.
        let running = container(12, "nginx:1.25", ContainerState::Running);
        let bridge = &running.networks()[0];
        assert_eq!(bridge.name(), "bridge");
        assert_eq!(bridge.ip_address(), "172.17.0.14");
        assert_eq!(bridge.gateway(), "172.17.0.1");
        assert_eq!(bridge.mac_address(), "02:42:ac:11:00:0e");
        assert_eq!(bridge.network_id().len(), 64);
        let shown: Vec<String> = running.ports().iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["0.0.0.0:30012->80/tcp", "[::]:30012->80/tcp"]);
        assert_eq!(
            container(12, "nginx:1.25", ContainerState::Paused),
            running,
            "paused keeps them"
        );

        let created = container(12, "nginx:1.25", ContainerState::Created);
        assert_eq!(created.networks(), [Network::new("bridge")]);
        assert!(created.ports().is_empty());
        let exited = container(12, "nginx:1.25", ContainerState::Exited);
        assert_eq!(exited.networks()[0].network_id(), bridge.network_id());
        assert_eq!(exited.networks()[0].ip(), None);
        assert!(exited.ports().is_empty());
    }

    #[test]
    fn every_kind_of_attachment_occurs() {
        let running = |seq| container(seq, "redis:7", ContainerState::Running);
        assert_eq!(running(7).networks()[0].name(), "host");
        assert!(
            running(7).ports().is_empty(),
            "no ports on the host network"
        );
        assert_eq!(running(11).networks()[0].name(), "none");
        assert_eq!(running(11).networks()[0].ip(), None);
        let both = running(3);
        let two: Vec<&str> = both.networks().iter().map(Network::name).collect();
        assert_eq!(two, ["backend", "frontend"]);
        assert_eq!(both.networks()[0].ip_address(), "172.19.0.5");
        assert_eq!(running(1).networks()[0].ip_address(), "172.18.0.3");
        assert_eq!(running(10).ports(), [Port::new(6379, PortType::Tcp)]);
        assert_eq!(network_mode(&running(10)), "default");
        assert_eq!(network_mode(&running(7)), "host");
        assert_eq!(network_mode(&running(3)), "frontend");

        let id = "0123456789abcdef".repeat(4);
        let volume = mounts(2, &id, "db", "postgres:16");
        assert_eq!(volume.len(), 1);
        assert_eq!(volume[0].mount_type(), MountType::Volume);
        assert_eq!(volume[0].destination(), "/var/lib/postgresql/data");
        assert!(volume[0].source().contains(&"fedcba9876543210".repeat(4)));
        assert_eq!(
            mounts(5, &id, "web", "nginx:1.25").len(),
            1,
            "localtime only"
        );
        let nginx = mounts(4, &id, "web", "nginx:1.25");
        assert_eq!(nginx[0].source(), "/srv/web/html");
        assert!(!nginx[0].rw());
        assert!(mounts(3, &id, "x", "busybox").is_empty());
    }
}
