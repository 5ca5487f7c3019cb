//! The plain event decoder: serde derive into owned types (`String`s, `BTreeMap`s), with
//! the rules of spec section 3 written out one by one. It is the oracle the fast decoder
//! (`WatchEvent::decode`: hand-written visitors, strings kept as places in the frame) is
//! checked against, by `tests/differential.rs` and the fuzz target `event_oracle`.
//!
//! [`decode`] gives what a frame means ([`Decoded`]) or why it is refused ([`Refused`]);
//! [`view`] and [`refusal`] put the fast decoder's answer in the same form.
// Each test (and the fuzz target) uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use hypersh_watch::container::PodPhase;
use hypersh_watch::event::{DecodeError, Shape, WatchEvent};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// What an event frame says, in owned types.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    pub id: String,
    pub action: String,
    pub image: Option<String>,
    pub name: Option<String>,
    pub shape: Shape,
    pub phase: Option<PodPhase>,
    pub labels: Option<BTreeMap<String, String>>,
    pub exit_code: Option<i64>,
    pub time_nano: i64,
}

/// Why a frame is refused: [`DecodeError`]'s variants, without their sources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    NotUtf8,
    Json,
    NotObject,
    MissingId,
    NotContainer(String),
    MissingAction,
    /// A refusal the oracle does not know yet (`DecodeError` is `#[non_exhaustive]`):
    /// never equal to the oracle's own, so a new kind fails the comparison until the
    /// oracle learns it.
    Unknown(String),
}

/// The fast decoder's refusal, as a [`Refused`].
pub fn refusal(e: &DecodeError) -> Refused {
    match e {
        DecodeError::NotUtf8 => Refused::NotUtf8,
        DecodeError::Json(_) => Refused::Json,
        DecodeError::NotObject => Refused::NotObject,
        DecodeError::MissingId => Refused::MissingId,
        DecodeError::NotContainer(kind) => Refused::NotContainer(kind.clone()),
        DecodeError::MissingAction => Refused::MissingAction,
        other => Refused::Unknown(other.to_string()),
    }
}

/// The fast decoder's event, as a [`Decoded`].
pub fn view(event: &WatchEvent) -> Decoded {
    let e = event.event();
    Decoded {
        kind: event.kind_str(),
        id: e.id().to_owned(),
        action: e.action().to_owned(),
        image: e.image().map(str::to_owned),
        name: e.name().map(str::to_owned),
        shape: e.shape(),
        phase: e.phase(),
        labels: e.labels().map(|labels| {
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        exit_code: e.exit_code(),
        time_nano: e.time_nano(),
    }
}

/// Both decoders on one frame: the fast one's answer, then the oracle's.
pub fn both(frame: &[u8]) -> (Result<Decoded, Refused>, Result<Decoded, Refused>) {
    let fast = match WatchEvent::decode(frame.to_vec()) {
        Ok(event) => {
            assert_eq!(event.event().raw(), frame, "the frame is kept as received");
            Ok(view(&event))
        }
        Err(e) => Err(refusal(&e)),
    };
    (fast, decode(frame))
}

/// Decodes an event frame, plainly.
pub fn decode(frame: &[u8]) -> Result<Decoded, Refused> {
    let text = std::str::from_utf8(frame).map_err(|_| Refused::NotUtf8)?;
    if text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('[')
    {
        return Err(Refused::NotObject);
    }
    let Object(wire) = serde_json::from_str::<Object<Wire>>(text).map_err(|_| Refused::Json)?;

    let kind = wire.kind.unwrap_or_default();
    if !kind.is_empty() && kind != "container" {
        return Err(Refused::NotContainer(kind));
    }
    let actor = wire.actor.map(|Object(a)| a).unwrap_or_default();
    let id = non_empty(wire.id)
        .or_else(|| non_empty(actor.id))
        .ok_or(Refused::MissingId)?;
    let action = non_empty(wire.action)
        .or_else(|| non_empty(wire.status))
        .ok_or(Refused::MissingAction)?;
    let shape = match action.as_str() {
        "ADDED" | "MODIFIED" | "DELETED" => Shape::Kubernetes,
        _ => Shape::Docker,
    };
    let kind = match (shape, action.as_str()) {
        (Shape::Kubernetes, "ADDED") | (Shape::Docker, "create") => "ADDED",
        (Shape::Kubernetes, "DELETED") | (Shape::Docker, "destroy" | "remove") => "DELETED",
        _ => "MODIFIED",
    };

    let attributes = actor.attributes.unwrap_or_default();
    // Each attribute under its Docker spelling, else its Kubernetes one; a value that is
    // not a string, number or boolean is no value; an empty one is none.
    let attribute = |docker: &str, kubernetes: &str| {
        attributes
            .get(docker)
            .and_then(scalar)
            .or_else(|| attributes.get(kubernetes).and_then(scalar))
            .filter(|s| !s.is_empty())
    };
    let image = non_empty(wire.from).or_else(|| attribute("image", "Image"));
    let name = attribute("name", "Name");
    let exit_code = attribute("exitCode", "ExitCode").and_then(|s| s.trim().parse().ok());
    let (phase, labels) = match shape {
        Shape::Kubernetes => {
            let labels = match attributes.get("Labels") {
                Some(Value::Object(map)) => map
                    .iter()
                    .map(|(k, v)| (k.clone(), label_text(v)))
                    .collect(),
                _ => BTreeMap::new(),
            };
            (
                wire.phase.as_deref().and_then(PodPhase::parse),
                Some(labels),
            )
        }
        Shape::Docker => (None, None),
    };
    let time_nano = if wire.time_nano != 0 {
        wire.time_nano
    } else {
        wire.time.saturating_mul(1_000_000_000)
    };
    Ok(Decoded {
        kind,
        id,
        action,
        image,
        name,
        shape,
        phase,
        labels,
        exit_code,
        time_nano,
    })
}

/// Both shapes' fields: names are case-sensitive (`status` is Docker's, `Status` the
/// Kubernetes phase); a field under both of its spellings is a duplicate.
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "Action")]
    action: Option<String>,
    status: Option<String>,
    #[serde(rename = "Status")]
    phase: Option<String>,
    #[serde(alias = "Id")]
    id: Option<String>,
    #[serde(alias = "From")]
    from: Option<String>,
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Actor")]
    actor: Option<Object<Actor>>,
    #[serde(alias = "Time", default, deserialize_with = "lenient_time")]
    time: i64,
    #[serde(
        rename = "timeNano",
        alias = "TimeNano",
        default,
        deserialize_with = "lenient_time"
    )]
    time_nano: i64,
}

#[derive(Default, Deserialize)]
struct Actor {
    #[serde(rename = "ID", alias = "Id")]
    id: Option<String>,
    #[serde(rename = "Attributes")]
    attributes: Option<BTreeMap<String, Value>>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// An attribute's text: strings as they are, numbers and booleans as JSON spells them.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A label's text: a string as it is, anything else as its JSON.
fn label_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A time: a number (saturating), a number in a string, or `null` (0).
fn lenient_time<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let bad = || de::Error::custom("a time is a number, a number in a string, or null");
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => Ok(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i,
            (None, Some(_), _) => i64::MAX,
            (None, None, f) => f.map_or(0, |f| f as i64),
        }),
        Some(Value::String(s)) => {
            let s = s.trim();
            match (s.parse::<i64>(), s.parse::<f64>()) {
                (Ok(i), _) => Ok(i),
                (Err(_), Ok(f)) if f.is_finite() => Ok(f as i64),
                _ => Err(bad()),
            }
        }
        Some(_) => Err(bad()),
    }
}

/// A JSON object read into `T`: a derived struct would also take an array, its fields
/// in order, which no event frame is.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(ObjectVisitor(PhantomData)).map(Object)
    }
}
