//! [`Network`]: one network of a container's `NetworkSettings.Networks` in the list.

use std::fmt;
use std::net::IpAddr;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use smol_str::SmolStr;

use super::de::{Recent, null_as_default, recent_text};
use super::shared::{Budget, Record, Shared, text_heap};

/// A network the container is attached to, as the list's `NetworkSettings.Networks`
/// describes it: its name (the key), `NetworkID`, and the container's addresses on it.
///
/// The engine gives a container its addresses when it starts and takes them back when it
/// stops: a created or stopped container lists its networks with empty addresses (Docker
/// keeps `NetworkID` once the container has run; Podman's is the network's name). The
/// `none` and `host` networks never carry an address.
///
/// ```
/// # mod hypersh { pub mod watch { pub use hypersh_watch::*; } }
/// use hypersh::watch::container::Network;
///
/// let bridge = Network::new("bridge")
///     .with_network_id("17e46f547a6c")
///     .with_ip_address("172.17.0.2")
///     .with_gateway("172.17.0.1")
///     .with_mac_address("02:42:ac:11:00:02");
/// assert_eq!(bridge.name(), "bridge");
/// assert_eq!(bridge.ip_address(), "172.17.0.2");
/// assert_eq!(bridge.ip(), Some("172.17.0.2".parse().unwrap()));
/// assert_eq!(Network::new("none").ip(), None);
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Network {
    pub(super) name: SmolStr,
    pub(super) network_id: SmolStr,
    pub(super) ip_address: SmolStr,
    pub(super) gateway: SmolStr,
    pub(super) mac_address: SmolStr,
    pub(super) global_ipv6_address: SmolStr,
}

impl Network {
    /// A network named `name`, with no id and no addresses.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: SmolStr::new(name),
            network_id: SmolStr::default(),
            ip_address: SmolStr::default(),
            gateway: SmolStr::default(),
            mac_address: SmolStr::default(),
            global_ipv6_address: SmolStr::default(),
        }
    }

    /// This network with the id `network_id`.
    #[must_use]
    pub fn with_network_id(mut self, network_id: &str) -> Self {
        self.network_id = SmolStr::new(network_id);
        self
    }

    /// This network with the container's IPv4 address `ip_address`.
    #[must_use]
    pub fn with_ip_address(mut self, ip_address: &str) -> Self {
        self.ip_address = SmolStr::new(ip_address);
        self
    }

    /// This network with the gateway `gateway`.
    #[must_use]
    pub fn with_gateway(mut self, gateway: &str) -> Self {
        self.gateway = SmolStr::new(gateway);
        self
    }

    /// This network with the container's MAC address `mac_address`.
    #[must_use]
    pub fn with_mac_address(mut self, mac_address: &str) -> Self {
        self.mac_address = SmolStr::new(mac_address);
        self
    }

    /// This network with the container's global IPv6 address `address`.
    #[must_use]
    pub fn with_global_ipv6_address(mut self, address: &str) -> Self {
        self.global_ipv6_address = SmolStr::new(address);
        self
    }

    /// The network's name (`bridge`, `none`, a user-defined network).
    #[inline]
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The network's id (`NetworkID`: 64 hex characters on Docker, the name on Podman);
    /// empty if not given.
    #[inline]
    #[must_use]
    pub fn network_id(&self) -> &str {
        &self.network_id
    }

    /// The container's IPv4 address on this network (`IPAddress`), as the engine wrote
    /// it; empty when it has none (not running, or `none`/`host`).
    #[inline]
    #[must_use]
    pub fn ip_address(&self) -> &str {
        &self.ip_address
    }

    /// The network's gateway for the container (`Gateway`); empty when none.
    #[inline]
    #[must_use]
    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// The container's MAC address on this network (`MacAddress`); empty when none.
    #[inline]
    #[must_use]
    pub fn mac_address(&self) -> &str {
        &self.mac_address
    }

    /// The container's global IPv6 address on this network (`GlobalIPv6Address`); empty
    /// when none (the network has no IPv6).
    #[inline]
    #[must_use]
    pub fn global_ipv6_address(&self) -> &str {
        &self.global_ipv6_address
    }

    /// Whether the container has an address on this network (IPv4 or IPv6), a gateway or
    /// a MAC address: what the engine gives it while it runs.
    pub(crate) fn is_addressed(&self) -> bool {
        [
            &self.ip_address,
            &self.gateway,
            &self.mac_address,
            &self.global_ipv6_address,
        ]
        .iter()
        .any(|t| !t.is_empty())
    }

    /// This network as a stopped container lists it: its name and id, no address,
    /// gateway or MAC address (Docker's `cleanOperationalData`; Podman lists the same).
    pub(crate) fn released(&self) -> Self {
        Self {
            name: self.name.clone(),
            network_id: self.network_id.clone(),
            ..Self::new("")
        }
    }

    /// The address to reach the container at on this network: its IPv4 address, else its
    /// global IPv6 address, parsed; `None` when it has neither (or the engine wrote
    /// something that is not an address).
    #[must_use]
    pub fn ip(&self) -> Option<IpAddr> {
        [&self.ip_address, &self.global_ipv6_address]
            .into_iter()
            .find_map(|a| a.parse().ok())
    }
}

impl fmt::Debug for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Network")
            .field("name", &self.name)
            .field("network_id", &self.network_id)
            .field("ip_address", &self.ip_address)
            .field("gateway", &self.gateway)
            .field("mac_address", &self.mac_address)
            .field("global_ipv6_address", &self.global_ipv6_address)
            .finish()
    }
}

impl Record for Network {
    fn scratch() -> &'static std::thread::LocalKey<std::cell::RefCell<Vec<Self>>> {
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<Network>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        &SCRATCH
    }

    const LIST: &'static str = "NetworkSettings.Networks";

    /// By name, the last of two with the same name kept (as a map would). Engines write
    /// the map in name order already (Go sorts map keys).
    fn normalize(networks: &mut Vec<Self>) {
        networks.reverse();
        // Stable: of two same names, the later one (first after the reverse) stays first.
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        networks.dedup_by(|next, kept| next.name == kept.name);
    }

    fn heap_bytes(&self) -> usize {
        [
            &self.name,
            &self.network_id,
            &self.ip_address,
            &self.gateway,
            &self.mac_address,
            &self.global_ipv6_address,
        ]
        .into_iter()
        .map(text_heap)
        .sum()
    }
}

thread_local! {
    /// The network ids this thread decoded last: a list's containers on one network share
    /// one copy of its id (64 characters on Docker).
    static NETWORK_IDS: Recent = const { Recent::new() };
}

fn network_id<'de, D: Deserializer<'de>>(d: D) -> Result<SmolStr, D::Error> {
    recent_text(d, &NETWORK_IDS)
}

/// A `NetworkID` as [`network_id`] keeps it (sharing this thread's recent ones), for the
/// list element scanner.
pub(super) fn network_id_text(text: &str) -> SmolStr {
    NETWORK_IDS.with(|recent| recent.text(text))
}

/// One network's fields as the list writes them (the name is the key).
#[derive(Serialize, Deserialize)]
struct Endpoint {
    #[serde(rename = "NetworkID", default, deserialize_with = "network_id")]
    network_id: SmolStr,
    #[serde(rename = "Gateway", default, deserialize_with = "null_as_default")]
    gateway: SmolStr,
    #[serde(rename = "IPAddress", default, deserialize_with = "null_as_default")]
    ip_address: SmolStr,
    #[serde(
        rename = "GlobalIPv6Address",
        default,
        deserialize_with = "null_as_default"
    )]
    global_ipv6_address: SmolStr,
    #[serde(rename = "MacAddress", default, deserialize_with = "null_as_default")]
    mac_address: SmolStr,
}

/// Writes `NetworkSettings` as the list does: `{"Networks": {NAME: {...}}}`.
pub(crate) fn serialize_settings<S: Serializer>(
    networks: &Shared<Network>,
    s: S,
) -> Result<S::Ok, S::Error> {
    struct Networks<'a>(&'a [Network]);

    impl Serialize for Networks<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for n in self.0 {
                let endpoint = Endpoint {
                    network_id: n.network_id.clone(),
                    gateway: n.gateway.clone(),
                    ip_address: n.ip_address.clone(),
                    global_ipv6_address: n.global_ipv6_address.clone(),
                    mac_address: n.mac_address.clone(),
                };
                map.serialize_entry(n.name.as_str(), &endpoint)?;
            }
            map.end()
        }
    }

    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("Networks", &Networks(networks.as_slice()))?;
    map.end()
}

/// Reads `NetworkSettings`: its `Networks` map (other keys ignored; `null` at either
/// level is no network), in name order, the last of two same names kept.
pub(crate) fn deserialize_settings<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Shared<Network>, D::Error> {
    #[derive(Deserialize)]
    struct Settings {
        #[serde(rename = "Networks", default)]
        networks: Option<Networks>,
    }

    Ok(Option::<Settings>::deserialize(d)?
        .and_then(|s| s.networks)
        .map(|n| n.0)
        .unwrap_or_default())
}

/// The `Networks` map, decoded into a [`Shared`] list.
struct Networks(Shared<Network>);

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;

        impl<'de> Visitor<'de> for Visit {
            type Value = Networks;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of network names to endpoints")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Networks, A::Error> {
                Shared::decode(|networks| {
                    let mut kept = Budget::new(Network::LIST);
                    while let Some((name, endpoint)) = map.next_entry::<SmolStr, Endpoint>()? {
                        let network = Network {
                            name,
                            network_id: endpoint.network_id,
                            ip_address: endpoint.ip_address,
                            gateway: endpoint.gateway,
                            mac_address: endpoint.mac_address,
                            global_ipv6_address: endpoint.global_ipv6_address,
                        };
                        kept.charge::<_, A::Error>(&network)?;
                        networks.push(network);
                    }
                    Ok(())
                })
                .map(Networks)
            }
        }

        d.deserialize_map(Visit)
    }
}
