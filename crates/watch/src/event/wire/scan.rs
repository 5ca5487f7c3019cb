//! The decoder's fast path: a scanner for the frames servers actually send, which finds
//! an event's fields and fills the same [`WireEvent`] the serde visitors of the parent
//! module fill, through the same field tables ([`WireEvent::field`],
//! [`WireActor::field`], [`Picked::attribute`]). What a field means stays there and in
//! `from_wire`; this module only finds where each value lies.
//!
//! PERFORMANCE: it reads the frames without escapes or control characters, which is
//! every frame Docker, Podman and the API router write in practice, with the crate's
//! [`Scanner`] (whose quote index is the speed module, `crate::scan::block`): a string
//! is a slice of the frame. Whatever else a frame holds (an escape, a control
//! character, a number the decoder would have to format, a field given twice, deep
//! nesting, anything not JSON), the scanner refuses, and the serde decoder reads the
//! frame from the start: it is the reference and decides every error. The scanner never
//! fails a frame itself.
//!
//! The plain version of the whole decoder (serde derive into owned types) is the oracle
//! of `crates/watch/tests/differential.rs` and the fuzz target `event_oracle`; the tests
//! below also check the scanner against the serde visitors, field by field.

use std::borrow::Cow;

use super::{ActorField, Attribute, Field, Found, Picked, Seen, WireActor, WireEvent};
use crate::container::{Labels, PodPhase};
use crate::scan::{MAX_DEPTH, Scanner};
use smol_str::SmolStr;

/// Reads the frame's fields into `wire` (a default one) and returns true, when the
/// frame is one the scanner reads; false to leave the frame to the serde decoder (then
/// `wire` holds a part of it, to be thrown away).
pub(in crate::event) fn scan<'a>(text: &'a str, wire: &mut WireEvent<'a>) -> bool {
    Scanner::read(text, |s| read(s, wire)).is_some()
}

/// [`scan`] on the frame's scanner, with `?`.
fn read<'a>(s: &mut Scanner<'a>, wire: &mut WireEvent<'a>) -> Option<()> {
    let mut seen = Seen::default();
    if s.token()? != b'{' {
        return None;
    }
    s.at += 1;
    s.members(|s, key| {
        let Some(Found { bit, value, .. }) = wire.field(key) else {
            return s.skip(MAX_DEPTH);
        };
        seen.first(bit).then_some(())?;
        match value {
            Field::Text(text) => *text = s.text_or_null()?,
            Field::Phase(phase) => *phase = PodPhase::parse(&s.text_or_null()?),
            Field::Time(time) => *time = s.integer()?,
            Field::Actor(actor) => s.actor(actor)?,
        }
        Some(())
    })?;
    // Nothing but spaces after the object.
    s.at_end().then_some(())
}

impl<'a> Scanner<'a> {
    /// The actor: an object, or `null` for none. A field given twice is left to serde.
    fn actor(&mut self, actor: &mut WireActor<'a>) -> Option<()> {
        if self.null() {
            return Some(());
        }
        self.expect(b'{')?;
        let mut seen = Seen::default();
        self.members(|s, key| {
            let Some(Found { bit, value, .. }) = actor.field(key) else {
                return s.skip(MAX_DEPTH);
            };
            seen.first(bit).then_some(())?;
            match value {
                ActorField::Id(id) => *id = s.text_or_null()?,
                ActorField::Attributes(picked) => s.attributes(picked)?,
            }
            Some(())
        })
    }

    /// The actor's attributes: an object, or `null` for none.
    fn attributes(&mut self, picked: &mut Picked<'a>) -> Option<()> {
        if self.null() {
            return Some(());
        }
        self.expect(b'{')?;
        self.members(|s, key| {
            match picked.attribute(key) {
                Attribute::Kept(slot, docker) => slot.set(s.scalar()?, docker),
                Attribute::Labels(labels) => *labels = Some(s.labels()?),
                Attribute::Other => s.skip_scalar()?,
            }
            Some(())
        })
    }

    /// An attribute's value as text: a string, or a boolean as JSON spells it; `null` is
    /// no value (`None` inside). Numbers (whose text serde would reformat), objects and
    /// arrays are left to serde.
    #[inline(always)]
    fn scalar(&mut self) -> Option<Option<Cow<'a, str>>> {
        match self.peek()? {
            b'"' => self.string().map(|s| Some(Cow::Borrowed(s))),
            b'n' => self.null().then_some(None),
            b't' => self.word(b"true").then_some(Some(Cow::Borrowed("true"))),
            b'f' => self.word(b"false").then_some(Some(Cow::Borrowed("false"))),
            _ => None,
        }
    }

    /// Skips what [`Scanner::scalar`] reads.
    #[inline(always)]
    fn skip_scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            _ => self.scalar().map(drop),
        }
    }

    /// A Kubernetes `Labels` attribute: an object of strings, or `null` for none.
    fn labels(&mut self) -> Option<Labels> {
        let mut labels = Labels::new();
        if self.null() {
            return Some(labels);
        }
        self.expect(b'{')?;
        self.members(|s, key| {
            let value = s.string()?;
            // A repeated key: the last value wins, as in a JSON map.
            labels.insert(SmolStr::new(key), SmolStr::new(value));
            Some(())
        })?;
        Some(labels)
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;
    use serde::de::DeserializeSeed;

    use super::*;
    use crate::event::wire::EventSeed;
    use crate::event::{docker::DockerFrame, kubernetes::KubernetesFrame};
    use crate::scan::{BLOCK, MAX_BLOCKS};

    /// The scanner's reading of a whole frame.
    fn scan(frame: &str) -> Option<WireEvent<'_>> {
        let mut wire = WireEvent::default();
        super::scan(frame, &mut wire).then_some(wire)
    }

    /// The serde visitors' reading of a whole frame.
    fn by_serde(frame: &str) -> Option<WireEvent<'_>> {
        let mut de = serde_json::Deserializer::from_str(frame);
        let wire = EventSeed { build: |wire| wire }.deserialize(&mut de).ok()?;
        de.end().ok().map(|()| wire)
    }

    /// Frames as Docker 20.10, Podman 4 and the API router write them.
    fn frames_servers_send() -> Vec<String> {
        let id = "c4140a06f79139a667976a4a7a218dc44383098bd6741b912a6c19a003ded487";
        let mut frames = vec![
            format!(
                r#"{{"status":"exec_die","id":"{id}","from":"localbb:1","Type":"container","Action":"exec_die","Actor":{{"ID":"{id}","Attributes":{{"app":"web","empty":"","execID":"8ba4","exitCode":"0","image":"localbb:1","name":"h1"}}}},"scope":"local","time":1796462789,"timeNano":1796462789208240112}}"#
            ),
            format!(
                r#"{{"Type":"network","Action":"connect","Actor":{{"ID":"dd2b","Attributes":{{"container":"{id}","name":"none","type":"null"}}}},"scope":"local","time":1796462788,"timeNano":1796462788037865205}}"#
            ),
            // The API router's Docker shape.
            r#"{"status":"start","id":"817a6894c67e51446e2b4f5af01f23f6dd35b8c0ca64a6129f749b43b742e777","from":"alpine:3.19","Type":"container","Action":"start","Actor":{"ID":"817a6894c67e51446e2b4f5af01f23f6dd35b8c0ca64a6129f749b43b742e777","Attributes":{"app":"worker","image":"alpine:3.19","name":"gifted_ritchie","team":"search","tier":"backend"}},"time":1796644555,"timeNano":1796644555973636660}"#.to_owned(),
            // Podman 4: `health_status` with its state at the top level; and an event
            // keyed on `Type`, `Action` and `Actor.ID` alone.
            r#"{"status":"health_status","id":"40f5…","from":"localhost/bb:latest","Type":"container","Action":"health_status","Actor":{"ID":"40f5…","Attributes":{"app":"web","containerExitCode":"0","image":"localhost/bb:latest","name":"web2","podId":""}},"scope":"local","time":1796632900,"timeNano":1796632900846815107,"HealthStatus":"starting"}"#.to_owned(),
            r#"{"Type":"container","Action":"remove","Actor":{"ID":"40f5","Attributes":{"image":"bb","name":"web2"}},"scope":"local","time":1796632903,"timeNano":1796632903534600265}"#.to_owned(),
            // Spaces, `null`s, booleans, nested values skipped, negative and huge times.
            r#" { "Action" : "start" , "id" : null, "Actor" : { "Attributes" : { "name" : true, "x" : null, "Labels" : null } , "more" : [ 1.5e3 , { "a" : [ ] } , -0 ] } , "time" : -12 , "timeNano" : 9223372036854775808 } "#.to_owned(),
            r#"{"Action":"ADDED","Status":"running","Actor":null,"extra":{},"x":[]}"#.to_owned(),
            r#"{"Action":"start","Actor":{"ID":"a","Attributes":null}}"#.to_owned(),
        ];
        let labels = [("app", "web"), ("tier", "front")].into_iter().collect();
        frames.push(
            KubernetesFrame {
                action: "MODIFIED",
                phase: PodPhase::Failed,
                id,
                image: "busybox",
                name: "caf\u{e9}",
                exit_code: Some(137),
                labels: &labels,
                time_nano: 1_476_017_460_533_640_000,
            }
            .encode(),
        );
        frames.push(
            DockerFrame {
                action: "die",
                id,
                image: "busybox",
                name: "test4",
                exit_code: Some(-1),
                attributes: [("app", Cow::Borrowed("web"))].into(),
                time_nano: -5,
            }
            .encode(),
        );
        frames
    }

    #[test]
    fn frames_servers_send_take_the_fast_path_and_read_as_serde_reads_them() {
        for frame in frames_servers_send() {
            let fast = scan(&frame);
            assert!(fast.is_some(), "the fast path refused {frame}");
            assert_eq!(fast, by_serde(&frame), "{frame}");
        }
    }

    /// Every line a private Docker 20.10 and Podman 4.3.1 sent (`tests/data/`: container,
    /// network and image events of each engine's whole CLI run) is one the fast path
    /// reads, as serde reads it.
    #[test]
    fn captured_engine_lines_take_the_fast_path_and_read_as_serde_reads_them() {
        let captured = include_str!("../../../tests/data/docker-20.10-events.jsonl")
            .lines()
            .chain(include_str!("../../../tests/data/podman-4.3.1-events.jsonl").lines());
        let mut lines = 0;
        for line in captured {
            let fast = scan(line);
            assert!(fast.is_some(), "the fast path refused {line}");
            assert_eq!(fast, by_serde(line), "{line}");
            lines += 1;
        }
        assert_eq!(lines, 78 + 92);
    }

    #[test]
    fn frames_of_any_length_up_to_the_limit_are_read_and_longer_ones_left_to_serde() {
        for len in (0..200).chain(4000..4200) {
            let frame = format!(r#"{{"Action":"start","x":"{}","id":"a"}}"#, "y".repeat(len));
            let fast = scan(&frame);
            assert_eq!(fast.is_some(), frame.len() <= MAX_BLOCKS * BLOCK, "{len}");
            if fast.is_some() {
                assert_eq!(fast, by_serde(&frame), "{len}");
            }
        }
        // A quote or a backslash in the last, short block is seen.
        for len in 60..140 {
            let frame = format!(
                r#"{{"Action":"start","x":"{}\n","id":"a"}}"#,
                "y".repeat(len)
            );
            assert!(scan(&frame).is_none(), "{len}");
        }
    }

    #[test]
    fn times_of_every_length_read_as_serde_reads_them() {
        let mut digits = String::new();
        for n in 1..=22 {
            digits.push(char::from(b'0' + (n % 10) as u8));
            for sign in ["", "-"] {
                let frame = format!(r#"{{"Action":"start","time":{sign}{digits},"timeNano":0}}"#);
                let fast = scan(&frame);
                assert_eq!(
                    fast.is_some(),
                    n <= 18 || (sign.is_empty() && n == 19),
                    "{frame}"
                );
                if fast.is_some() {
                    assert_eq!(fast, by_serde(&frame), "{frame}");
                }
            }
        }
    }

    #[test]
    fn strings_are_slices_of_the_frame() {
        let frame = r#"{"Action":"start","id":"abc","Actor":{"Attributes":{"name":"web"}}}"#;
        let mut wire = scan(frame).unwrap();
        assert!(matches!(wire.id, Cow::Borrowed(s) if std::ptr::eq(s, &frame[24..27])));
        let name = wire.actor.attributes.take_name();
        assert!(matches!(name, Some(Cow::Borrowed("web"))));
    }

    #[test]
    fn what_the_fast_path_does_not_read_is_left_to_serde() {
        for frame in [
            // Escapes and control characters, anywhere.
            r#"{"Action":"st\u0061rt","id":"a"}"#,
            r#"{"Action":"start","id":"a","x":"\n"}"#,
            "{\"Action\":\"start\",\n\"id\":\"a\"}",
            "{\"Action\":\"start\",\"id\":\"a\t\"}",
            // Numbers where serde would reformat them or check their range.
            r#"{"Action":"start","Actor":{"Attributes":{"exitCode":137}}}"#,
            r#"{"Action":"start","Actor":{"Attributes":{"x":1e400}}}"#,
            r#"{"Action":"ADDED","Actor":{"Attributes":{"Labels":{"n":3}}}}"#,
            r#"{"Action":"ADDED","Actor":{"Attributes":{"Labels":[]}}}"#,
            r#"{"Action":"start","Actor":{"Attributes":{"o":{}}}}"#,
            // Times serde converts: floats, strings, 20 digits, 19 below zero.
            r#"{"Action":"start","time":1.5}"#,
            r#"{"Action":"start","time":"12"}"#,
            r#"{"Action":"start","time":1e3}"#,
            r#"{"Action":"start","timeNano":18446744073709551616}"#,
            r#"{"Action":"start","timeNano":-1000000000000000000}"#,
            // Duplicates, under either spelling.
            r#"{"Action":"a","Action":"b"}"#,
            r#"{"id":"a","Id":"b"}"#,
            r#"{"Actor":{"ID":"a","Id":"b"}}"#,
            // Not JSON, or not an object, or more than one value.
            "",
            "[1]",
            r#"{"Action":"start""#,
            r#"{"Action":"start",}"#,
            r#"{"Action":"start"} x"#,
            r#"{"Action":"start"}{}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":-}"#,
            r#"{"x":tru}"#,
            r#"{"time":01}"#,
            r#"{"Action":[1]}"#,
            r#"{"Actor":"a"}"#,
            // Deeper than the fast path goes.
            r#"{"x":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}"#,
        ] {
            assert!(scan(frame).is_none(), "{frame}");
        }
    }

    /// A frame servers send, damaged: cut, or a byte put in or changed.
    fn damaged() -> impl Strategy<Value = Vec<u8>> {
        let frames = frames_servers_send();
        (
            prop::sample::select(frames),
            0..3u8,
            any::<prop::sample::Index>(),
            prop::sample::select(b"\"{}[],: 0-1.eEtfnul\\ax\xc3\xa9".to_vec()),
        )
            .prop_map(|(frame, how, at, byte)| {
                let mut bytes = frame.into_bytes();
                let i = at.index(bytes.len());
                match how {
                    0 => bytes.truncate(i),
                    1 => bytes.insert(i, byte),
                    _ => bytes[i] = byte,
                }
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Whatever the fast path reads, serde reads the same: the fast path never takes
        /// a frame serde refuses, nor reads one differently.
        #[test]
        fn the_fast_path_reads_only_what_serde_reads_the_same(bytes in damaged()) {
            if let Ok(frame) = std::str::from_utf8(&bytes)
                && let Some(fast) = scan(frame)
            {
                prop_assert_eq!(Some(fast), by_serde(frame), "{}", frame);
            }
        }
    }
}
