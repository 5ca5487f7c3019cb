//! The wire form of an event frame, decoded without copying: strings borrow from the frame
//! (unless they hold escapes), and of the actor's attributes only those an [`Event`] keeps
//! (name, image, exit code and, in the Kubernetes shape, the labels) are taken; the rest
//! are skipped and can be read again from the frame with [`attributes_of`].
//!
//! [`Event`]: super::Event

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::container::{Labels, Phase, lenient_i64, null_as_default};

/// The union of both wire shapes. Serde field names are case-sensitive, so `status`
/// (Docker) and `Status` (Kubernetes) are distinct.
#[derive(Deserialize)]
pub(super) struct WireEvent<'a> {
    #[serde(rename = "Action", default, borrow, deserialize_with = "cow_or_null")]
    pub(super) action: Cow<'a, str>,
    #[serde(rename = "status", default, borrow, deserialize_with = "cow_or_null")]
    pub(super) docker_status: Cow<'a, str>,
    /// `Status`, parsed (a phase the library does not know, or none, is `None`).
    #[serde(rename = "Status", default, deserialize_with = "phase")]
    pub(super) phase: Option<Phase>,
    #[serde(
        rename = "id",
        alias = "Id",
        default,
        borrow,
        deserialize_with = "cow_or_null"
    )]
    pub(super) id: Cow<'a, str>,
    #[serde(
        rename = "from",
        alias = "From",
        default,
        borrow,
        deserialize_with = "cow_or_null"
    )]
    pub(super) from: Cow<'a, str>,
    #[serde(rename = "Type", default, borrow, deserialize_with = "cow_or_null")]
    pub(super) kind: Cow<'a, str>,
    #[serde(
        rename = "Actor",
        default,
        borrow,
        deserialize_with = "null_as_default"
    )]
    pub(super) actor: WireActor<'a>,
    #[serde(
        rename = "time",
        alias = "Time",
        default,
        deserialize_with = "lenient_i64"
    )]
    pub(super) time: i64,
    #[serde(
        rename = "timeNano",
        alias = "TimeNano",
        default,
        deserialize_with = "lenient_i64"
    )]
    pub(super) time_nano: i64,
}

#[derive(Default, Deserialize)]
pub(super) struct WireActor<'a> {
    #[serde(
        rename = "ID",
        alias = "Id",
        default,
        borrow,
        deserialize_with = "cow_or_null"
    )]
    pub(super) id: Cow<'a, str>,
    #[serde(
        rename = "Attributes",
        default,
        borrow,
        deserialize_with = "null_as_default"
    )]
    pub(super) attributes: Picked<'a>,
}

/// The attributes an event keeps. Each may come under its Docker (lower-case) and its
/// Kubernetes (capitalised) spelling: the Docker one wins, even when empty.
#[derive(Default)]
pub(super) struct Picked<'a> {
    name: Slot<'a>,
    image: Slot<'a>,
    exit_code: Slot<'a>,
    /// `Labels`: `Some` for an object (or `null`, meaning none).
    pub(super) labels: Option<Labels>,
}

/// One attribute's value, and whether it came under the Docker spelling.
#[derive(Default)]
struct Slot<'a> {
    value: Option<Cow<'a, str>>,
    docker: bool,
}

impl<'a> Slot<'a> {
    /// Keeps `value` unless the Docker spelling already gave one; a later duplicate of
    /// the same spelling wins, as in a map. No value (a non-scalar) counts as absent.
    fn set(&mut self, value: Option<Cow<'a, str>>, docker: bool) {
        if value.is_some() && (docker || !self.docker) {
            self.value = value;
            self.docker = docker;
        }
    }

    /// The value, `None` when missing or empty.
    fn get(&self) -> Option<&str> {
        self.value.as_deref().filter(|s| !s.is_empty())
    }

    /// Takes the value, `None` when missing or empty.
    fn take(&mut self) -> Option<Cow<'a, str>> {
        self.value.take().filter(|s| !s.is_empty())
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

impl<'de> Deserialize<'de> for Picked<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PickedVisitor;

        impl<'de> Visitor<'de> for PickedVisitor {
            type Value = Picked<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attributes object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut picked = Picked::default();
                while let Some(CowStr(key)) = map.next_key()? {
                    let (slot, docker) = match &*key {
                        "name" => (&mut picked.name, true),
                        "Name" => (&mut picked.name, false),
                        "image" => (&mut picked.image, true),
                        "Image" => (&mut picked.image, false),
                        "exitCode" => (&mut picked.exit_code, true),
                        "ExitCode" => (&mut picked.exit_code, false),
                        "Labels" => {
                            match map.next_value::<serde_json::Value>()? {
                                serde_json::Value::Object(labels) => {
                                    picked.labels = Some(
                                        labels
                                            .into_iter()
                                            .map(|(k, v)| match v {
                                                serde_json::Value::String(s) => {
                                                    (k.into(), s.into())
                                                }
                                                other => (k.into(), other.to_string().into()),
                                            })
                                            .collect(),
                                    );
                                }
                                serde_json::Value::Null => picked.labels = Some(Labels::default()),
                                _ => {}
                            }
                            continue;
                        }
                        _ => {
                            // Parsed, not kept: a number out of range is still an error.
                            map.next_value::<Scalar<'de>>()?;
                            continue;
                        }
                    };
                    // A non-scalar value is no value.
                    slot.set(map.next_value::<Scalar<'de>>()?.0, docker);
                }
                Ok(picked)
            }
        }

        d.deserialize_map(PickedVisitor)
    }
}

/// A string borrowed from the frame when it has no escapes.
struct CowStr<'a>(Cow<'a, str>);

struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowStrVisitor).map(CowStr)
    }
}

/// A Kubernetes phase (`Status`), parsed where it is read; `null`, an empty string and
/// an unknown phase are `None`.
fn phase<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Phase>, D::Error> {
    Ok(Phase::parse(&cow_or_null(d)?))
}

/// A string (borrowed when possible), or `null` as the empty string.
fn cow_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'de, str>, D::Error> {
    struct OrNull;

    impl<'de> Visitor<'de> for OrNull {
        type Value = Cow<'de, str>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(""))
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(""))
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(CowStrVisitor)
        }
    }

    d.deserialize_option(OrNull)
}

/// An attribute value as text: strings as they are, numbers and booleans as JSON spells
/// them; `None` for `null`, objects and arrays.
struct Scalar<'a>(Option<Cow<'a, str>>);

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Option<Cow<'de, str>>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attribute value")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Some(Cow::Borrowed(v)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v)))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v.to_string())))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v.to_string())))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Some(Cow::Owned(v.to_string())))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(serde_json::Number::from_f64(v).map(|n| Cow::Owned(n.to_string())))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<Checked, Checked>()?.is_some() {}
                Ok(None)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(None)
            }
        }

        d.deserialize_any(ScalarVisitor).map(Scalar)
    }
}

/// Any JSON value, checked as `serde_json::Value` would check it (numbers in range) but
/// not kept. (`IgnoredAny` skips numbers without converting them.)
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CheckedVisitor;

        impl<'de> Visitor<'de> for CheckedVisitor {
            type Value = Checked;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_unit<E: de::Error>(self) -> Result<Checked, E> {
                Ok(Checked)
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
                while map.next_entry::<Checked, Checked>()?.is_some() {}
                Ok(Checked)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
        }

        d.deserialize_any(CheckedVisitor)
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

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let frame = r#"{"Action":"start","id":"a\"b","from":"busybox",
            "Actor":{"ID":"x","Attributes":{"name":"web","image":"nginx","exitCode":0,"k":[1]}}}"#;
        let mut wire: WireEvent<'_> = serde_json::from_str(frame).unwrap();
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
        let mut wire: WireEvent<'_> = serde_json::from_str(frame).unwrap();
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
        let mut wire: WireEvent<'_> = serde_json::from_str(frame).unwrap();
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
