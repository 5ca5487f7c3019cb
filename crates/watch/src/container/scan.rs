//! The list element decoder's fast path: one element of `GET /containers/json` (Docker's,
//! Podman's or the API router's shape) read into the same [`Container`] the serde
//! derive of the parent module makes, with the crate's [`Scanner`].
//!
//! PERFORMANCE: it reads the elements without escapes or control characters, which is
//! nearly every element the engines and the router write, and up to 4 KiB long (a
//! router's element is about 720 bytes, a Docker one with a network about 1 KiB): every
//! string is a slice of the element, found through the quote index, and no serde
//! machinery runs. Whatever else an element holds (an escape, a control character, a
//! number serde would convert, a field given twice, a value of another type, a bound
//! passed, anything not JSON), the scanner refuses, and serde reads the element from the
//! start: it is the reference and decides every error. So every rule below is serde's,
//! read off the derive and the `deserialize_with` functions: `null` is the default where
//! they allow it and refused where they do not, unknown fields are skipped as
//! `IgnoredAny` skips them, labels and records are charged against the same bounds
//! ([`MAX_LABELS_BYTES`](super::MAX_LABELS_BYTES), [`MAX_KEPT_BYTES`](super::MAX_KEPT_BYTES))
//! and kept in the same order, and network ids share the same thread's recent ones.
//!
//! The tests below check it against serde on the captured lists of both engines and on
//! generated elements (`PROPTEST_CASES` sets how many); the fuzz target `list_oracle`
//! makes the same check on arbitrary bytes.

use std::sync::Arc;

use serde::de::{DeserializeOwned, IntoDeserializer};
use smol_str::SmolStr;

use super::de::{command_text, image_id_text};
use super::network::network_id_text;
use super::shared::{Budget, Record, Shared};
use super::{Container, Labels, Mount, Network, Port};
use crate::scan::{MAX_DEPTH, Scanner};

/// The container `text` holds, as serde would read it; `None` to leave `text` to serde.
pub(super) fn scan(text: &str) -> Option<Container> {
    Scanner::read(text, read)
}

/// [`scan`] on the element's scanner.
fn read(s: &mut Scanner<'_>) -> Option<Container> {
    s.expect(b'{')?;
    let mut seen = Seen::default();
    let mut id: Option<Arc<str>> = None;
    let mut c = Container::default();
    s.members(|s, key| {
        match key {
            "Id" => {
                seen.first(0)?;
                id = Some(Arc::from(s.string()?));
            }
            "Names" => {
                seen.first(1)?;
                c.names = s.names()?;
            }
            "Image" => {
                seen.first(2)?;
                c.image = s.text()?;
            }
            "ImageID" => {
                seen.first(3)?;
                c.image_id = image_id_text(&s.text_or_null()?);
            }
            "Command" => {
                seen.first(4)?;
                c.command = command_text(&s.text_or_null()?);
            }
            "Created" => {
                seen.first(5)?;
                c.created = s.integer()?;
            }
            "Ports" => {
                seen.first(6)?;
                c.ports = s.records(Scanner::port)?;
            }
            "Labels" => {
                seen.first(7)?;
                c.labels = Arc::new(s.labels_within()?);
            }
            "State" => {
                seen.first(8)?;
                // Not `null`: serde's enum refuses it.
                c.state = variant(s.string()?)?;
            }
            "Status" => {
                seen.first(9)?;
                c.status = s.text()?;
            }
            "NetworkSettings" => {
                seen.first(10)?;
                c.networks = s.network_settings()?;
            }
            "Mounts" => {
                seen.first(11)?;
                c.mounts = s.records(Scanner::mount)?;
            }
            _ => s.skip(MAX_DEPTH)?,
        }
        Some(())
    })?;
    if !s.at_end() {
        return None;
    }
    c.id = id?;
    Some(c)
}

/// The fields of one object read so far, one bit each: a field given twice is an error
/// for serde's derive, so the scanner refuses it.
#[derive(Default)]
struct Seen(u16);

impl Seen {
    /// `Some` the first time field `bit` is seen, `None` after.
    #[inline(always)]
    fn first(&mut self, bit: u8) -> Option<()> {
        let mask = 1 << bit;
        let first = self.0 & mask == 0;
        self.0 |= mask;
        first.then_some(())
    }
}

/// A unit variant of one of the model's enums by its wire name, through the enum's own
/// serde derive (so `#[serde(other)]` and the renames are the derive's, not a copy).
#[inline]
fn variant<T: DeserializeOwned>(name: &str) -> Option<T> {
    let de: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        name.into_deserializer();
    T::deserialize(de).ok()
}

impl<'a> Scanner<'a> {
    /// A text field: a string, or `null` as the empty text (`null_as_default`).
    #[inline(always)]
    fn text(&mut self) -> Option<SmolStr> {
        self.text_or_null().map(|t| SmolStr::new(&*t))
    }

    /// `Names`: an array of strings, or `null` for none.
    fn names(&mut self) -> Option<Arc<[SmolStr]>> {
        if self.null() {
            return Some(Arc::default());
        }
        self.expect(b'[')?;
        let mut names = Vec::new();
        self.elements(|s| {
            names.push(SmolStr::new(s.string()?));
            Some(())
        })?;
        Some(Arc::from(names))
    }

    /// `Labels`: an object of strings, or `null` for none, within
    /// [`MAX_LABELS_BYTES`](super::MAX_LABELS_BYTES) (the array of pairs serde also reads
    /// is left to it).
    fn labels_within(&mut self) -> Option<Labels> {
        let mut labels = Labels::new();
        if self.null() {
            return Some(labels);
        }
        self.expect(b'{')?;
        let mut kept = 0;
        self.members(|s, key| {
            let value = s.string()?;
            // A repeated key: the last value wins, and both count, as serde's visitor.
            labels
                .insert_kept(SmolStr::new(key), SmolStr::new(value), &mut kept)
                .then_some(())
        })?;
        Some(labels)
    }

    /// `Ports` or `Mounts`: an array of records `record` reads, or `null` for none,
    /// within [`MAX_KEPT_BYTES`](super::MAX_KEPT_BYTES), in the list's order.
    fn records<T: Record>(&mut self, record: fn(&mut Self) -> Option<T>) -> Option<Shared<T>> {
        if self.null() {
            return Some(Shared::default());
        }
        self.expect(b'[')?;
        Shared::decode(|records| {
            let mut kept = Budget::new(T::LIST);
            self.elements(|s| {
                let one = record(s)?;
                kept.fits(&one).then_some(())?;
                records.push(one);
                Some(())
            })
            .ok_or(())
        })
        .ok()
    }

    /// A port number: an integer in 0..=65535, or `null` for 0 (`lenient_u16`).
    #[inline(always)]
    fn port_number(&mut self) -> Option<u16> {
        u16::try_from(self.integer()?).ok()
    }

    /// One element of `Ports`.
    fn port(&mut self) -> Option<Port> {
        self.expect(b'{')?;
        let mut seen = Seen::default();
        let mut port = Port::new(0, super::PortType::default());
        self.members(|s, key| {
            match key {
                "IP" => {
                    seen.first(0)?;
                    port.ip = s.text()?;
                }
                "PrivatePort" => {
                    seen.first(1)?;
                    port.private_port = s.port_number()?;
                }
                "PublicPort" => {
                    seen.first(2)?;
                    port.public_port = s.port_number()?;
                }
                "Type" => {
                    seen.first(3)?;
                    port.port_type = s.kind()?;
                }
                _ => s.skip(MAX_DEPTH)?,
            }
            Some(())
        })?;
        Some(port)
    }

    /// A `Type`: a string naming a variant, or `null` for the default.
    #[inline(always)]
    fn kind<T: Default + DeserializeOwned>(&mut self) -> Option<T> {
        if self.null() {
            return Some(T::default());
        }
        variant(self.string()?)
    }

    /// One element of `Mounts`.
    fn mount(&mut self) -> Option<Mount> {
        self.expect(b'{')?;
        let mut seen = Seen::default();
        let mut mount = Mount::new(super::MountType::default(), "", "").with_rw(false);
        self.members(|s, key| {
            match key {
                "Type" => {
                    seen.first(0)?;
                    mount.mount_type = s.kind()?;
                }
                "Source" => {
                    seen.first(1)?;
                    mount.source = s.text()?;
                }
                "Destination" => {
                    seen.first(2)?;
                    mount.destination = s.text()?;
                }
                "RW" => {
                    seen.first(3)?;
                    mount.rw = match s.peek()? {
                        b't' => s.word(b"true").then_some(true)?,
                        b'f' => s.word(b"false").then_some(false)?,
                        _ => s.null().then_some(false)?,
                    };
                }
                _ => s.skip(MAX_DEPTH)?,
            }
            Some(())
        })?;
        Some(mount)
    }

    /// `NetworkSettings`: an object whose `Networks` is read, or `null` for none.
    fn network_settings(&mut self) -> Option<Shared<Network>> {
        if self.null() {
            return Some(Shared::default());
        }
        self.expect(b'{')?;
        let mut seen = Seen::default();
        let mut networks = Shared::default();
        self.members(|s, key| {
            if key == "Networks" {
                seen.first(0)?;
                networks = s.networks()?;
                Some(())
            } else {
                s.skip(MAX_DEPTH)
            }
        })?;
        Some(networks)
    }

    /// `NetworkSettings.Networks`: an object of endpoints by network name, or `null` for
    /// none, within [`MAX_KEPT_BYTES`](super::MAX_KEPT_BYTES), in name order.
    fn networks(&mut self) -> Option<Shared<Network>> {
        if self.null() {
            return Some(Shared::default());
        }
        self.expect(b'{')?;
        Shared::decode(|networks| {
            let mut kept = Budget::new(Network::LIST);
            self.members(|s, name| {
                let network = s.endpoint(name)?;
                kept.fits(&network).then_some(())?;
                networks.push(network);
                Some(())
            })
            .ok_or(())
        })
        .ok()
    }

    /// One network's endpoint, an object (not `null`: serde's derive refuses it).
    fn endpoint(&mut self, name: &str) -> Option<Network> {
        self.expect(b'{')?;
        let mut seen = Seen::default();
        let mut network = Network::new(name);
        self.members(|s, key| {
            match key {
                "NetworkID" => {
                    seen.first(0)?;
                    network.network_id = if s.null() {
                        SmolStr::default()
                    } else {
                        network_id_text(s.string()?)
                    };
                }
                "Gateway" => {
                    seen.first(1)?;
                    network.gateway = s.text()?;
                }
                "IPAddress" => {
                    seen.first(2)?;
                    network.ip_address = s.text()?;
                }
                "GlobalIPv6Address" => {
                    seen.first(3)?;
                    network.global_ipv6_address = s.text()?;
                }
                "MacAddress" => {
                    seen.first(4)?;
                    network.mac_address = s.text()?;
                }
                _ => s.skip(MAX_DEPTH)?,
            }
            Some(())
        })?;
        Some(network)
    }
}

#[cfg(test)]
mod tests;
