//! How the event decoder reads single values: strings borrowed from the frame when they
//! hold no escapes, `null` read as an empty string, attribute values as text, and the
//! seeds that read a field of the event with one of these.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use smol_str::{SmolStr, format_smolstr};

use crate::container::{Labels, PodPhase, lenient_i64};

/// A string (borrowed when possible), or `null` as the empty string.
pub(super) struct CowOrNull;

impl<'de> de::DeserializeSeed<'de> for CowOrNull {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for CowOrNull {
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

/// A Kubernetes phase (`Status`), parsed where it is read; `null`, an empty string and
/// an unknown phase are `None`.
pub(super) struct PhaseSeed;

impl<'de> de::DeserializeSeed<'de> for PhaseSeed {
    type Value = Option<PodPhase>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Ok(PodPhase::parse(&CowOrNull.deserialize(d)?))
    }
}

/// [`lenient_i64`] as a seed.
pub(super) struct LenientSeed;

impl<'de> de::DeserializeSeed<'de> for LenientSeed {
    type Value = i64;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        lenient_i64(d)
    }
}

/// A string borrowed from the frame when it has no escapes.
pub(super) struct CowStr<'a>(pub(super) Cow<'a, str>);

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

/// An attribute value as text: strings as they are, numbers and booleans as JSON spells
/// them; `None` for `null`, objects and arrays.
pub(super) struct Scalar<'a>(pub(super) Option<Cow<'a, str>>);

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

/// A Kubernetes-style `Labels` attribute: `Some` for an object (values as [`LabelText`])
/// or `null` (no labels); `None` for any other value, which is not labels.
pub(super) struct LabelsValue(pub(super) Option<Labels>);

impl<'de> Deserialize<'de> for LabelsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Option<Labels>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a labels object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut labels = Labels::new();
                let mut kept = 0;
                while let Some((CowStr(key), LabelText(value))) = map.next_entry()? {
                    // A repeated key: the last value wins, as in a JSON map.
                    labels.insert_within(SmolStr::new(key), value, &mut kept)?;
                }
                Ok(Some(labels))
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Some(Labels::new()))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(None)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Checked>()?.is_some() {}
                Ok(None)
            }
        }

        d.deserialize_any(LabelsVisitor).map(LabelsValue)
    }
}

/// A label's value: a string as it is, any other value as its JSON text (`3`, `true`,
/// `null`, `{"a":1}`), as `serde_json::Value` prints it.
struct LabelText(SmolStr);

impl<'de> Deserialize<'de> for LabelText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LabelTextVisitor;

        impl<'de> Visitor<'de> for LabelTextVisitor {
            type Value = SmolStr;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a label value")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<SmolStr, E> {
                Ok(SmolStr::new(v))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<SmolStr, E> {
                Ok(SmolStr::new_static(if v { "true" } else { "false" }))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SmolStr, E> {
                Ok(format_smolstr!("{v}"))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SmolStr, E> {
                Ok(format_smolstr!("{v}"))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<SmolStr, E> {
                Ok(serde_json::Value::from(v).to_string().into())
            }

            fn visit_unit<E: de::Error>(self) -> Result<SmolStr, E> {
                Ok(SmolStr::new_static("null"))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SmolStr, A::Error> {
                let value =
                    serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(value.to_string().into())
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<SmolStr, A::Error> {
                let value =
                    serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(value.to_string().into())
            }
        }

        d.deserialize_any(LabelTextVisitor).map(LabelText)
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
