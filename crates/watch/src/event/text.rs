//! Where an event keeps its strings: in the frame it was decoded from, as ranges, so
//! decoding copies none of them. Only a string the frame spells with escapes (whose
//! decoded text appears nowhere in the frame) gets a copy of its own.
//!
//! PERFORMANCE: this is the decoder's zero-copy trick. [`Strings`] holds the frame and
//! the ranges together and is made in one step ([`Strings::decode`]), which checks every
//! range against the very frame it keeps; nothing changes either afterwards. So a range
//! always lies in its frame, on character boundaries, and reading a string cannot fail.
//! The plain version (owned `String`s, serde derive) is the test oracle in
//! `crates/watch/tests/oracle/`.

use std::borrow::Cow;

use super::utf8::Utf8Frame;

/// The strings of an event, as decoded from its frame: borrowed from it where the frame
/// spells them without escapes.
pub(super) struct Parts<'f> {
    pub(super) id: Cow<'f, str>,
    pub(super) action: Cow<'f, str>,
    pub(super) image: Option<Cow<'f, str>>,
    pub(super) name: Option<Cow<'f, str>>,
}

/// An event's frame and its strings (id, action, image, name).
#[derive(Clone, PartialEq)]
pub(super) struct Strings {
    frame: Utf8Frame,
    id: Text,
    action: Text,
    image: Option<Text>,
    name: Option<Text>,
}

impl Strings {
    /// Takes `frame`, has `parse` decode its text into some value and the [`Parts`]
    /// (borrowed from that text), and keeps the frame with the parts' places in it.
    /// On failure, `parse`'s error comes back with the frame.
    pub(super) fn decode<T, E>(
        frame: Utf8Frame,
        parse: impl FnOnce(&str) -> Result<(T, Parts<'_>), E>,
    ) -> Result<(T, Self), (E, Utf8Frame)> {
        let (value, id, action, image, name) = {
            let text = frame.as_str();
            match parse(text) {
                Ok((value, parts)) => {
                    let place = |s| Text::new(s, text);
                    (
                        value,
                        place(parts.id),
                        place(parts.action),
                        parts.image.map(place),
                        parts.name.map(place),
                    )
                }
                Err(e) => return Err((e, frame)),
            }
        };
        let strings = Self {
            frame,
            id,
            action,
            image,
            name,
        };
        Ok((value, strings))
    }

    /// The frame, as received.
    pub(super) fn frame(&self) -> &str {
        self.frame.as_str()
    }

    /// The frame's bytes.
    pub(super) fn frame_bytes(&self) -> &[u8] {
        self.frame.as_bytes()
    }

    pub(super) fn id(&self) -> &str {
        self.id.get(self.frame())
    }

    pub(super) fn action(&self) -> &str {
        self.action.get(self.frame())
    }

    pub(super) fn image(&self) -> Option<&str> {
        self.image.as_ref().map(|t| t.get(self.frame()))
    }

    pub(super) fn name(&self) -> Option<&str> {
        self.name.as_ref().map(|t| t.get(self.frame()))
    }
}

/// One string of an event: a range of the frame it was made against, or its own copy.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Text {
    /// Bytes `start..end` of the frame: a range of its text, on character boundaries.
    Frame { start: usize, end: usize },
    /// The decoded text, when it is not a part of the frame.
    Owned(Box<str>),
}

impl Text {
    /// Keeps `value`, decoded from `frame`: by its range when it is a part of `frame`.
    fn new(value: Cow<'_, str>, frame: &str) -> Self {
        match value {
            Cow::Borrowed(s) => range_in(s, frame).map_or_else(
                || Self::Owned(s.into()),
                |(start, end)| Self::Frame { start, end },
            ),
            Cow::Owned(s) => Self::Owned(s.into_boxed_str()),
        }
    }

    /// The string, given the frame it was made against.
    fn get<'a>(&'a self, frame: &'a str) -> &'a str {
        match self {
            // In range and on character boundaries: checked by `range_in` against this
            // frame (`Strings` keeps the two together), so the slice cannot fail.
            Self::Frame { start, end } => &frame[*start..*end],
            Self::Owned(s) => s,
        }
    }
}

/// Where `s` lies in `frame`, if it is a part of it. A part of a `&str` starts and ends
/// on character boundaries; both are checked anyway, so the range is valid by itself.
fn range_in(s: &str, frame: &str) -> Option<(usize, usize)> {
    let start = (s.as_ptr() as usize).checked_sub(frame.as_ptr() as usize)?;
    let end = start.checked_add(s.len())?;
    (end <= frame.len() && frame.is_char_boundary(start) && frame.is_char_boundary(end))
        .then_some((start, end))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn frame(text: &'static str) -> Utf8Frame {
        Utf8Frame::try_from(Bytes::from_static(text.as_bytes())).unwrap()
    }

    fn parts(id: Cow<'_, str>) -> Parts<'_> {
        Parts {
            id,
            action: Cow::Borrowed("start"),
            image: None,
            name: None,
        }
    }

    #[test]
    fn a_borrowed_string_is_kept_as_its_range() {
        let f = r#"{"id":"abc"}"#;
        let text = Text::new(Cow::Borrowed(&f[7..10]), f);
        assert_eq!(text, Text::Frame { start: 7, end: 10 });
        assert_eq!(text.get(f), "abc");
        let ((), strings) = Strings::decode(frame(f), |t| {
            Ok::<_, ()>(((), parts(Cow::Borrowed(&t[7..10]))))
        })
        .unwrap();
        assert_eq!(strings.id(), "abc");
        assert_eq!(
            strings.action(),
            "start",
            "a string from elsewhere is copied"
        );
        assert_eq!(strings.frame(), f);
    }

    #[test]
    fn an_unescaped_or_foreign_string_is_copied() {
        let f = r#"{"id":"a\"b"}"#;
        let unescaped = Text::new(Cow::Owned("a\"b".to_owned()), f);
        assert_eq!(unescaped.get(f), "a\"b");
        let elsewhere = String::from("xyz");
        let foreign = Text::new(Cow::Borrowed(&elsewhere), f);
        assert_eq!(foreign, Text::Owned("xyz".into()));
        assert_eq!(foreign.get(f), "xyz");
    }

    #[test]
    fn a_failed_parse_gives_the_frame_back() {
        let Err((e, back)) = Strings::decode(frame("x"), |_| Err::<((), Parts<'_>), _>("no"))
        else {
            panic!("the parse failed")
        };
        assert_eq!((e, back.as_str()), ("no", "x"));
    }
}
