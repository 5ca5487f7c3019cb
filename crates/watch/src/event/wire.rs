//! The wire form of an event frame. Each shape's names, and its encoder, are in
//! [`docker`] and [`kubernetes`]; the names both share are here.
//!
//! PERFORMANCE: the decoder is hand-written (the visitors below) so that it copies
//! nothing: strings borrow from the frame (unless they hold escapes), and of the actor's
//! attributes only those an [`Event`] keeps (name, image, exit code and, in the Kubernetes
//! shape, the labels) are taken; the rest are checked, skipped, and can be read again
//! from the frame with [`attributes_of`]. Its plain version, serde derive into owned
//! types, is the oracle of `crates/watch/tests/differential.rs`.
//!
//! [`Event`]: super::Event

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::container::{Labels, PodPhase, null_as_default};

pub mod docker;
pub mod kubernetes;
mod scan;
mod value;

/// `Action`: a Docker action, or `ADDED`, `MODIFIED` or `DELETED`.
const ACTION: &str = "Action";
/// `Type`: what the event is about.
const TYPE: &str = "Type";
/// The `Type` of a container event.
const CONTAINER: &str = "container";
/// `Actor`: the container's id and attributes.
const ACTOR: &str = "Actor";
/// `Actor.Attributes`.
const ATTRIBUTES: &str = "Attributes";

/// An `Actor` object, as a shape spells it.
struct Actor<'a, A> {
    /// The name of the id field (`ID` or `Id`).
    id_key: &'static str,
    id: &'a str,
    attributes: A,
}

impl<A: Serialize> Serialize for Actor<'_, A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut actor = s.serialize_struct("Actor", 2)?;
        actor.serialize_field(self.id_key, self.id)?;
        actor.serialize_field(ATTRIBUTES, &self.attributes)?;
        actor.end()
    }
}

/// The JSON text of a frame. Frames are strings, integers and maps with string keys,
/// which always serialise.
fn to_json(frame: &impl Serialize) -> String {
    serde_json::to_string(frame).unwrap_or_default()
}

pub(super) use scan::scan;
use value::{CowOrNull, CowStr, LabelsValue, LenientSeed, PhaseSeed, Scalar};

/// The union of both wire shapes. Field names are case-sensitive, so `status` (Docker)
/// and `Status` (Kubernetes) are distinct. Filled in place by [`EventSeed`] and handed to
/// its `build`, not returned: the frame's parts are not moved up through the decoder's
/// layers.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct WireEvent<'a> {
    /// `Action`.
    pub(super) action: Cow<'a, str>,
    /// `status`.
    pub(super) docker_status: Cow<'a, str>,
    /// `Status`, parsed (a phase the library does not know, or none, is `None`).
    pub(super) phase: Option<PodPhase>,
    /// `id` or `Id`.
    pub(super) id: Cow<'a, str>,
    /// `from` or `From`.
    pub(super) from: Cow<'a, str>,
    /// `Type`.
    pub(super) kind: Cow<'a, str>,
    /// `Actor` (`null` is an actor without id or attributes).
    pub(super) actor: WireActor<'a>,
    /// `time` or `Time`.
    pub(super) time: i64,
    /// `timeNano` or `TimeNano`.
    pub(super) time_nano: i64,
}

/// The fields of an object read so far, to refuse one given twice (under either
/// spelling), as a derived `Deserialize` does.
#[derive(Default)]
struct Seen(u16);

impl Seen {
    /// Notes field number `bit`; false if it was seen already.
    fn first(&mut self, bit: u8) -> bool {
        let mask = 1 << bit;
        let first = self.0 & mask == 0;
        self.0 |= mask;
        first
    }

    /// Reads the value of field number `bit`, named `name`, with `seed`; an error if the
    /// field was seen already.
    fn read<'de, A: MapAccess<'de>, S: de::DeserializeSeed<'de>>(
        &mut self,
        map: &mut A,
        bit: u8,
        name: &'static str,
        seed: S,
    ) -> Result<S::Value, A::Error> {
        if !self.first(bit) {
            return Err(de::Error::duplicate_field(name));
        }
        map.next_value_seed(seed)
    }
}

/// A field of an object the decoder reads: its number (for the duplicate check), its
/// name (for the error) and where its value goes. Both readers of a frame, the serde
/// visitors here and the fast path ([`scan`]), find fields through the tables that make
/// these ([`WireEvent::field`], [`WireActor::field`]), so a field is named in one place.
pub(super) struct Found<T> {
    pub(super) bit: u8,
    pub(super) name: &'static str,
    pub(super) value: T,
}

/// Where the value of a top-level field goes, and what it is.
pub(super) enum Field<'w, 'a> {
    /// A string, or `null` as the empty string.
    Text(&'w mut Cow<'a, str>),
    /// `Status`: a phase (a string or `null`), parsed.
    Phase(&'w mut Option<PodPhase>),
    /// A time: a number, a number in a string, or `null` (0).
    Time(&'w mut i64),
    /// `Actor`: an object, or `null` for none.
    Actor(&'w mut WireActor<'a>),
}

impl<'a> WireEvent<'a> {
    /// The field `key` names (under either shape's spelling); `None` for a field the
    /// decoder skips.
    #[inline]
    pub(super) fn field(&mut self, key: &str) -> Option<Found<Field<'_, 'a>>> {
        let (bit, name, value) = match key {
            ACTION => (0, ACTION, Field::Text(&mut self.action)),
            docker::STATUS => (1, docker::STATUS, Field::Text(&mut self.docker_status)),
            kubernetes::PHASE => (2, kubernetes::PHASE, Field::Phase(&mut self.phase)),
            docker::ID | kubernetes::ID => (3, docker::ID, Field::Text(&mut self.id)),
            docker::FROM | kubernetes::FROM => (4, docker::FROM, Field::Text(&mut self.from)),
            TYPE => (5, TYPE, Field::Text(&mut self.kind)),
            ACTOR => (6, ACTOR, Field::Actor(&mut self.actor)),
            docker::TIME | kubernetes::TIME => (7, docker::TIME, Field::Time(&mut self.time)),
            docker::TIME_NANO | kubernetes::TIME_NANO => {
                (8, docker::TIME_NANO, Field::Time(&mut self.time_nano))
            }
            _ => return None,
        };
        Some(Found { bit, name, value })
    }
}

/// Decodes an event frame (the whole of `frame`) into what `build` makes of its wire
/// form: a JSON object whose fields are read into a [`WireEvent`]. Unknown fields are
/// skipped; a field given twice is an error.
pub(super) struct EventSeed<F> {
    pub(super) build: F,
}

impl<'de, F, T> de::DeserializeSeed<'de> for EventSeed<F>
where
    F: FnOnce(WireEvent<'de>) -> T,
{
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F, T> Visitor<'de> for EventSeed<F>
where
    F: FnOnce(WireEvent<'de>) -> T,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        let mut wire = WireEvent::default();
        let mut seen = Seen::default();
        while let Some(CowStr(key)) = map.next_key()? {
            let Some(Found { bit, name, value }) = wire.field(&key) else {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            match value {
                Field::Text(text) => *text = seen.read(&mut map, bit, name, CowOrNull)?,
                Field::Phase(phase) => *phase = seen.read(&mut map, bit, name, PhaseSeed)?,
                Field::Time(time) => *time = seen.read(&mut map, bit, name, LenientSeed)?,
                Field::Actor(actor) => seen.read(&mut map, bit, name, InPlace(actor))?,
            }
        }
        Ok((self.build)(wire))
    }
}

/// Reads an object into the value it borrows, in place; `null` leaves it as it is (the
/// default). For [`WireActor`] and [`Picked`], which would otherwise be returned, and
/// moved, through each layer of the decoder.
struct InPlace<'w, T>(&'w mut T);

impl<'de, T> de::DeserializeSeed<'de> for InPlace<'_, T>
where
    for<'w> InPlace<'w, T>: Visitor<'de, Value = ()>,
{
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_option(OrNull(self))
    }
}

/// `null`, or the object that [`InPlace`] reads.
struct OrNull<'w, T>(InPlace<'w, T>);

impl<'de, T> Visitor<'de> for OrNull<'_, T>
where
    for<'w> InPlace<'w, T>: Visitor<'de, Value = ()>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self.0)
    }
}

/// The actor: its id and the attributes an event keeps.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct WireActor<'a> {
    /// `ID` or `Id`.
    pub(super) id: Cow<'a, str>,
    /// `Attributes`.
    pub(super) attributes: Picked<'a>,
}

/// Where the value of an actor's field goes.
pub(super) enum ActorField<'w, 'a> {
    /// `ID` or `Id`: a string, or `null` as the empty string.
    Id(&'w mut Cow<'a, str>),
    /// `Attributes`: an object, or `null` for none.
    Attributes(&'w mut Picked<'a>),
}

impl<'a> WireActor<'a> {
    /// The field `key` names; `None` for a field the decoder skips.
    #[inline]
    pub(super) fn field(&mut self, key: &str) -> Option<Found<ActorField<'_, 'a>>> {
        let (bit, name, value) = match key {
            docker::ACTOR_ID | kubernetes::ACTOR_ID => {
                (0, docker::ACTOR_ID, ActorField::Id(&mut self.id))
            }
            ATTRIBUTES => (1, ATTRIBUTES, ActorField::Attributes(&mut self.attributes)),
            _ => return None,
        };
        Some(Found { bit, name, value })
    }
}

impl<'de> Visitor<'de> for InPlace<'_, WireActor<'de>> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an actor object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = Seen::default();
        while let Some(CowStr(key)) = map.next_key()? {
            let Some(Found { bit, name, value }) = self.0.field(&key) else {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            };
            match value {
                ActorField::Id(id) => *id = seen.read(&mut map, bit, name, CowOrNull)?,
                ActorField::Attributes(picked) => {
                    seen.read(&mut map, bit, name, InPlace(picked))?;
                }
            }
        }
        Ok(())
    }
}

/// The attributes an event keeps. Each may come under its Docker (lower-case) and its
/// Kubernetes (capitalised) spelling: the Docker one wins, even when empty.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct Picked<'a> {
    name: Slot<'a>,
    image: Slot<'a>,
    exit_code: Slot<'a>,
    /// `Labels`: `Some` for an object (or `null`, meaning none).
    pub(super) labels: Option<Labels>,
}

/// One attribute's value under each spelling; `None` when missing or not a scalar.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct Slot<'a> {
    docker: Option<Cow<'a, str>>,
    kubernetes: Option<Cow<'a, str>>,
}

impl<'a> Slot<'a> {
    /// Keeps `value` for its spelling: a later duplicate wins, as in a map, even when it
    /// is no value (a non-scalar).
    #[inline]
    pub(super) fn set(&mut self, value: Option<Cow<'a, str>>, docker: bool) {
        if docker {
            self.docker = value;
        } else {
            self.kubernetes = value;
        }
    }

    /// The value under the Docker spelling, else the Kubernetes one; `None` when both
    /// are missing, or the one that wins is empty.
    fn get(&self) -> Option<&str> {
        self.docker
            .as_deref()
            .or(self.kubernetes.as_deref())
            .filter(|s| !s.is_empty())
    }

    /// Takes the value [`Slot::get`] reads.
    fn take(&mut self) -> Option<Cow<'a, str>> {
        self.docker
            .take()
            .or_else(|| self.kubernetes.take())
            .filter(|s| !s.is_empty())
    }
}

impl<'a> Picked<'a> {
    pub(super) fn take_name(&mut self) -> Option<Cow<'a, str>> {
        self.name.take()
    }

    pub(super) fn take_image(&mut self) -> Option<Cow<'a, str>> {
        self.image.take()
    }

    pub(super) fn exit_code(&self) -> Option<i64> {
        self.exit_code.get().and_then(|s| s.trim().parse().ok())
    }
}

/// What an attribute is to the decoder, by its key.
pub(super) enum Attribute<'w, 'a> {
    /// `name`, `image` or `exitCode` under one spelling (Docker's when `docker`): kept as
    /// text when its value is a string, number or boolean; any other value is no value.
    Kept(&'w mut Slot<'a>, bool),
    /// `Labels`: an object of labels, or `null` for none; any other value is not labels.
    /// A later duplicate wins, as in a map, even when it is not labels.
    Labels(&'w mut Option<Labels>),
    /// Any other attribute: its value is checked (a number must be in range), not kept.
    Other,
}

impl<'a> Picked<'a> {
    /// What the attribute `key` is.
    #[inline]
    pub(super) fn attribute(&mut self, key: &str) -> Attribute<'_, 'a> {
        match key {
            docker::NAME => Attribute::Kept(&mut self.name, true),
            kubernetes::NAME => Attribute::Kept(&mut self.name, false),
            docker::IMAGE => Attribute::Kept(&mut self.image, true),
            kubernetes::IMAGE => Attribute::Kept(&mut self.image, false),
            docker::EXIT_CODE => Attribute::Kept(&mut self.exit_code, true),
            kubernetes::EXIT_CODE => Attribute::Kept(&mut self.exit_code, false),
            kubernetes::LABELS => Attribute::Labels(&mut self.labels),
            _ => Attribute::Other,
        }
    }
}

impl<'de> Visitor<'de> for InPlace<'_, Picked<'de>> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an attributes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(CowStr(key)) = map.next_key()? {
            match self.0.attribute(&key) {
                // A non-scalar value is no value (`None`).
                Attribute::Kept(slot, docker) => {
                    slot.set(map.next_value::<Scalar<'de>>()?.0, docker);
                }
                Attribute::Labels(labels) => *labels = map.next_value::<LabelsValue>()?.0,
                // Parsed, not kept: a number out of range is still an error.
                Attribute::Other => {
                    map.next_value::<Scalar<'de>>()?;
                }
            }
        }
        Ok(())
    }
}

/// Every actor attribute with a string, number or boolean value, read from the frame.
/// Frames that were decoded into an event are valid JSON; anything unexpected yields an
/// empty map.
pub(super) fn attributes_of(frame: &str) -> BTreeMap<String, String> {
    #[derive(Deserialize)]
    struct Frame {
        #[serde(rename = "Actor", default, deserialize_with = "null_as_default")]
        actor: Actor,
    }

    #[derive(Default, Deserialize)]
    struct Actor {
        #[serde(rename = "Attributes", default, deserialize_with = "null_as_default")]
        attributes: BTreeMap<String, serde_json::Value>,
    }

    let Ok(frame) = serde_json::from_str::<Frame>(frame) else {
        return BTreeMap::new();
    };
    frame
        .actor
        .attributes
        .into_iter()
        .filter_map(|(key, value)| match value {
            serde_json::Value::String(s) => Some((key, s)),
            serde_json::Value::Number(n) => Some((key, n.to_string())),
            serde_json::Value::Bool(b) => Some((key, b.to_string())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(frame: &str) -> WireEvent<'_> {
        let seed = EventSeed { build: |wire| wire };
        de::DeserializeSeed::deserialize(seed, &mut serde_json::Deserializer::from_str(frame))
            .unwrap()
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let frame = r#"{"Action":"start","id":"a\"b","from":"busybox",
            "Actor":{"ID":"x","Attributes":{"name":"web","image":"nginx","exitCode":0,"k":[1]}}}"#;
        let mut wire = read(frame);
        assert!(matches!(wire.action, Cow::Borrowed("start")));
        assert!(matches!(wire.from, Cow::Borrowed("busybox")));
        assert!(matches!(&wire.id, Cow::Owned(s) if s == "a\"b"));
        let picked = &mut wire.actor.attributes;
        assert_eq!(picked.take_name().as_deref(), Some("web"));
        assert_eq!(picked.take_image().as_deref(), Some("nginx"));
        assert_eq!(picked.exit_code(), Some(0));
        assert_eq!(picked.labels, None);
    }

    #[test]
    fn docker_spelling_wins_and_empty_is_none() {
        let frame = r#"{"Actor":{"Attributes":{"Name":"K","name":"d","image":"","Image":"i"}}}"#;
        let mut wire = read(frame);
        assert_eq!(wire.actor.attributes.take_name().as_deref(), Some("d"));
        assert_eq!(
            wire.actor.attributes.take_image(),
            None,
            "an empty Docker value hides the other spelling"
        );
    }

    #[test]
    fn docker_spelling_wins_in_any_order_and_a_non_scalar_is_absent() {
        let frame = r#"{"Actor":{"Attributes":{"name":"d","Name":"K","Image":"k8s","image":{},
            "ExitCode":"1","ExitCode":"2"}}}"#;
        let mut wire = read(frame);
        let picked = &mut wire.actor.attributes;
        assert_eq!(picked.take_name().as_deref(), Some("d"));
        assert_eq!(
            picked.take_image().as_deref(),
            Some("k8s"),
            "an object is no value"
        );
        assert_eq!(picked.exit_code(), Some(2), "a later duplicate wins");
    }

    #[test]
    fn a_later_duplicate_wins_even_when_it_is_no_value() {
        let frame = r#"{"Actor":{"Attributes":{"Name":"K","name":"d","name":[1],
            "Labels":{"a":"b"},"Labels":3}}}"#;
        let mut wire = read(frame);
        let picked = &mut wire.actor.attributes;
        assert_eq!(
            picked.take_name().as_deref(),
            Some("K"),
            "the Docker spelling has no value left: the Kubernetes one counts"
        );
        assert_eq!(picked.labels, None, "the last Labels is not labels");
    }

    #[test]
    fn a_null_actor_or_attributes_is_the_default_and_a_repeated_field_an_error() {
        let wire = read(r#"{"Actor":null,"id":"a"}"#);
        assert!(wire.actor.id.is_empty() && wire.actor.attributes.labels.is_none());
        let mut wire = read(r#"{"Actor":{"Attributes":null,"Id":"x","other":[1]}}"#);
        assert_eq!(wire.actor.id, "x");
        assert!(wire.actor.attributes.take_name().is_none());
        for frame in [
            r#"{"Actor":{"ID":"a","Id":"b"}}"#,
            r#"{"Actor":{"Attributes":{},"Attributes":{}}}"#,
            r#"{"Actor":{},"Actor":{}}"#,
            r#"{"Action":"a","Action":"b"}"#,
            r#"{"timeNano":1,"TimeNano":2}"#,
        ] {
            let result: Result<WireEvent<'_>, _> = de::DeserializeSeed::deserialize(
                EventSeed { build: |wire| wire },
                &mut serde_json::Deserializer::from_str(frame),
            );
            let error = result.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("duplicate field"), "{frame}: {error}");
        }
    }

    #[test]
    fn label_values_are_their_text_and_a_repeated_key_keeps_the_last() {
        let frame = r#"{"Actor":{"Attributes":{"Labels":{"a":"x","n":3,"f":2.5,"b":true,
            "z":null,"o":{"k":[1,2]},"l":[1,"a"],"a":"y","e":"caf\u00e9"}}}}"#;
        let labels = read(frame).actor.attributes.labels.unwrap();
        let got: Vec<(&str, &str)> = labels.iter().collect();
        assert_eq!(
            got,
            [
                ("a", "y"),
                ("b", "true"),
                ("e", "caf\u{e9}"),
                ("f", "2.5"),
                ("l", r#"[1,"a"]"#),
                ("n", "3"),
                ("o", r#"{"k":[1,2]}"#),
                ("z", "null"),
            ]
        );
        let none = read(r#"{"Actor":{"Attributes":{"Labels":null}}}"#);
        assert_eq!(none.actor.attributes.labels, Some(Labels::new()));
        let not_labels = read(r#"{"Actor":{"Attributes":{"Labels":[{"a":1}]}}}"#);
        assert_eq!(not_labels.actor.attributes.labels, None);
    }

    #[test]
    fn attributes_are_read_again_from_the_frame() {
        let frame = r#"{"Actor":{"Attributes":{"a":"1","n":2.5,"b":true,"o":{},"z":null}}}"#;
        let attrs = attributes_of(frame);
        assert_eq!(
            attrs,
            BTreeMap::from([
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "true".to_owned()),
                ("n".to_owned(), "2.5".to_owned()),
            ])
        );
        assert!(attributes_of("not json").is_empty());
    }
}
