//! The decoder's fast path: a scanner for the frames servers actually send, which finds
//! an event's fields and fills the same [`WireEvent`] the serde visitors of the parent
//! module fill, through the same field tables ([`WireEvent::field`],
//! [`WireActor::field`], [`Picked::attribute`]). What a field means stays there and in
//! `from_wire`; this module only finds where each value lies.
//!
//! PERFORMANCE: it reads the frames without escapes or control characters, which is
//! every frame Docker, Podman and the API router write in practice. In those, every `"`
//! delimits a string: the scanner finds them 64 bytes at a time with vector compares
//! ([`block`], the speed module), so a string's end is the next set bit of a mask and its
//! text a slice of the frame. Whatever else a frame holds (an escape, a control
//! character, a number the decoder would have to format, a field given twice, deep
//! nesting, anything not JSON), the scanner refuses, and the serde decoder reads the
//! frame from the start: it is the reference and decides every error. The scanner never
//! fails a frame itself.
//!
//! The plain version of the whole decoder (serde derive into owned types) is the oracle
//! of `crates/watch/tests/differential.rs` and the fuzz target `event_oracle`; the tests
//! below also check the scanner against the serde visitors, field by field.

use std::borrow::Cow;

use block::{BLOCK, quote_masks};

use super::{ActorField, Attribute, Field, Found, Picked, Seen, WireActor, WireEvent};
use crate::container::{Labels, PodPhase};
use smol_str::SmolStr;

mod block;

/// How deep a skipped value may nest before the scanner leaves it to serde.
const MAX_DEPTH: u8 = 16;

/// Reads the frame's fields into `wire` (a default one) and returns true, when the
/// frame is one the scanner reads; false to leave the frame to the serde decoder (then
/// `wire` holds a part of it, to be thrown away).
pub(in crate::event) fn scan<'a>(text: &'a str, wire: &mut WireEvent<'a>) -> bool {
    read(text, wire).is_some()
}

/// [`scan`], with `?`.
fn read<'a>(text: &'a str, wire: &mut WireEvent<'a>) -> Option<()> {
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        at: 0,
        quotes: Quotes {
            blocks: [0; MAX_BLOCKS],
            block: 0,
            mask: 0,
        },
    };
    if !s.quotes.fill(text.as_bytes()) {
        return None;
    }
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
            Field::Time(time) => *time = s.time()?,
            Field::Actor(actor) => s.actor(actor)?,
        }
        Some(())
    })?;
    // Nothing but spaces after the object.
    (s.token().is_none() && s.at == s.bytes.len()).then_some(())
}

/// The `"` of a frame, in order: each string takes the next two (the scanner reads no
/// escapes, so every `"` opens or closes one).
///
/// PERFORMANCE: the masks of every block are taken at the start, in one loop, so that
/// taking a quote is a few instructions.
struct Quotes {
    /// The quotes of each block; blocks past the frame have none.
    blocks: [u64; MAX_BLOCKS],
    /// The block at hand.
    block: usize,
    /// The quotes of the block at hand not taken yet.
    mask: u64,
}

/// The longest frame the scanner reads, in blocks (4 KiB); a longer one is left to serde.
const MAX_BLOCKS: usize = 64;

impl Quotes {
    /// The quotes of `bytes`, filled in place (the masks are 512 bytes: moving them would
    /// copy them); false when the frame is longer than the scanner reads, or holds a `\`
    /// or a control character.
    #[inline(always)]
    fn fill(&mut self, bytes: &[u8]) -> bool {
        let filled = quote_masks(bytes, &mut self.blocks);
        self.mask = self.blocks[0];
        filled
    }

    /// The place of the next `"`; `None` when there is none.
    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.block += 1;
            self.mask = *self.blocks.get(self.block)?;
        }
        let at = self.block * BLOCK + self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(at)
    }
}

/// The value of eight ASCII digits (the first in the lowest byte of `word`), or `None`
/// when a byte is not a digit.
///
/// PERFORMANCE: the digits are checked and combined in pairs, fours and eights with a
/// few multiplications instead of one at a time.
#[inline(always)]
fn eight_digits(word: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Each byte is 0x30..=0x39: its high half is 3, and adding 6 keeps it below 0x40.
    let is_digits = (word & (0xf0 * ONES)) == 0x30 * ONES
        && (word.wrapping_add(0x06 * ONES) & (0xf0 * ONES)) == 0x30 * ONES;
    if !is_digits {
        return None;
    }
    let v = word - 0x30 * ONES;
    let v = (v * 10 + (v >> 8)) & 0x00ff_00ff_00ff_00ff;
    let v = (v * 100 + (v >> 16)) & 0x0000_ffff_0000_ffff;
    Some((v * 10_000 + (v >> 32)) & 0xffff_ffff)
}

/// A place in a frame, and its quotes from there on.
struct Scanner<'a> {
    text: &'a str,
    /// `text`'s bytes.
    bytes: &'a [u8],
    at: usize,
    quotes: Quotes,
}

impl<'a> Scanner<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The next byte that is not a space, not taken; spaces before it are skipped (the
    /// scanner reads no other whitespace).
    #[inline(always)]
    fn token(&mut self) -> Option<u8> {
        match self.peek()? {
            b' ' => self.after_spaces(),
            byte => Some(byte),
        }
    }

    #[inline(never)]
    fn after_spaces(&mut self) -> Option<u8> {
        while self.peek()? == b' ' {
            self.at += 1;
        }
        self.peek()
    }

    /// Takes `byte`, after any spaces.
    #[inline(always)]
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.token()? == byte).then(|| self.at += 1)
    }

    /// `word`, if it comes next.
    #[inline(always)]
    fn word(&mut self, word: &[u8]) -> bool {
        let found = self
            .bytes
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(word));
        if found {
            self.at += word.len();
        }
        found
    }

    /// `null`, if it comes next.
    #[inline(always)]
    fn null(&mut self) -> bool {
        self.word(b"null")
    }

    /// A string, which comes next: its text, a slice of the frame.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        // The scanner takes no `"` but through here, so the next one is this string's.
        let open = self.quotes.next()?;
        if open != self.at {
            return None;
        }
        let close = self.quotes.next()?;
        self.at = close + 1;
        self.text.get(open + 1..close)
    }

    /// The members of an object whose `{` was read, through its `}`: `member` reads each
    /// value, given its key.
    #[inline(always)]
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if self.token()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            self.token()?;
            member(self, key)?;
            match self.token()? {
                b',' => {
                    self.at += 1;
                    self.token()?;
                }
                b'}' => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A string, or `null` as the empty string.
    #[inline(always)]
    fn text_or_null(&mut self) -> Option<Cow<'a, str>> {
        match self.peek()? {
            b'"' => self.string().map(Cow::Borrowed),
            _ => self.null().then_some(Cow::Borrowed("")),
        }
    }

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

    /// Skips a string, which comes next.
    #[inline(always)]
    fn skip_string(&mut self) -> Option<()> {
        let open = self.quotes.next()?;
        if open != self.at {
            return None;
        }
        self.at = self.quotes.next()? + 1;
        Some(())
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

    /// A time given as an integer: saturated to `i64` as serde reads it (a positive one
    /// above `i64::MAX` is `i64::MAX`); `null` is 0. Fractions, exponents, integers of
    /// 20 digits or more and strings are left to serde.
    fn time(&mut self) -> Option<i64> {
        if self.peek()? == b'n' {
            return self.null().then_some(0);
        }
        let bytes = self.bytes;
        let negative = bytes.get(self.at) == Some(&b'-');
        let start = self.at + usize::from(negative);
        let mut at = start;
        let mut value: u64 = 0;
        // Eight digits at a time while they last, then one at a time; 19 digits fit in a
        // `u64`, and more are left to serde.
        while at - start <= 11 {
            let Some(eight) = bytes.get(at..).and_then(|rest| rest.first_chunk::<8>()) else {
                break;
            };
            let Some(digits) = eight_digits(u64::from_le_bytes(*eight)) else {
                break;
            };
            value = value * 100_000_000 + digits;
            at += 8;
        }
        while let Some(&d @ b'0'..=b'9') = bytes.get(at) {
            if at - start == 19 {
                return None;
            }
            value = value * 10 + u64::from(d - b'0');
            at += 1;
        }
        let digits = at - start;
        // JSON: at least one digit, no leading zero; then no fraction or exponent.
        if digits == 0 || (digits > 1 && bytes[start] == b'0') {
            return None;
        }
        if matches!(bytes.get(at), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.at = at;
        if negative {
            // 19 digits may not fit below zero: serde reads those as a float.
            (digits <= 18).then(|| -(value as i64))
        } else {
            Some(i64::try_from(value).unwrap_or(i64::MAX))
        }
    }

    /// Skips any value, checking only that it is JSON (as serde's `IgnoredAny` does:
    /// numbers by their grammar, not their range). Nesting deeper than `depth` is left to
    /// serde.
    fn skip(&mut self, depth: u8) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => {
                let depth = depth.checked_sub(1)?;
                self.at += 1;
                self.members(|s, _| s.skip(depth))
            }
            b'[' => {
                let depth = depth.checked_sub(1)?;
                self.at += 1;
                if self.token()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip(depth)?;
                    match self.token()? {
                        b',' => {
                            self.at += 1;
                            self.token()?;
                        }
                        b']' => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.word(b"true").then_some(()),
            b'f' => self.word(b"false").then_some(()),
            b'n' => self.null().then_some(()),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// A number, by JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    /// One digit or more.
    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
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
    fn eight_digits_are_read_as_one_number() {
        for text in ["00000000", "12345678", "99999999", "17964625", "00000001"] {
            let word = u64::from_le_bytes(text.as_bytes().try_into().unwrap());
            assert_eq!(eight_digits(word), text.parse().ok(), "{text}");
        }
        for text in [
            *b"1234567/",
            *b"1234567:",
            *b"a2345678",
            *b"1234 678",
            *b"-1234567",
            *b"\xff2345678",
            *b"\x80234567\x80",
        ] {
            assert_eq!(eight_digits(u64::from_le_bytes(text)), None, "{text:?}");
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
