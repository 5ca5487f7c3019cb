//! Where an event keeps its strings: in the frame it was decoded from, as a range, so
//! decoding copies none of them. Only a string the frame spells with escapes (whose
//! decoded text appears nowhere in the frame) gets a copy of its own.

use std::borrow::Cow;

/// One string of an event, read back with [`Text::get`] from the event's frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Text {
    /// Bytes `start..end` of the frame.
    Frame { start: u32, end: u32 },
    /// The decoded text, when it differs from its spelling in the frame.
    Owned(Box<str>),
}

impl Text {
    /// Keeps `value`, decoded from `frame`: by its range when it borrows from `frame`.
    pub(super) fn new(value: Cow<'_, str>, frame: &str) -> Self {
        match value {
            Cow::Borrowed(s) => range_in(s, frame).map_or_else(
                || Self::Owned(s.into()),
                |(start, end)| Self::Frame { start, end },
            ),
            Cow::Owned(s) => Self::Owned(s.into_boxed_str()),
        }
    }

    /// The string, given the frame it was decoded from.
    pub(super) fn get<'a>(&'a self, frame: &'a str) -> &'a str {
        match self {
            Self::Frame { start, end } => frame
                .get(*start as usize..*end as usize)
                .unwrap_or_default(),
            Self::Owned(s) => s,
        }
    }
}

/// Where `s` lies in `frame`, if it is a part of it.
fn range_in(s: &str, frame: &str) -> Option<(u32, u32)> {
    let start = (s.as_ptr() as usize).checked_sub(frame.as_ptr() as usize)?;
    let end = start.checked_add(s.len())?;
    if end > frame.len() {
        return None;
    }
    Some((u32::try_from(start).ok()?, u32::try_from(end).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_string_is_kept_as_its_range() {
        let frame = r#"{"id":"abc"}"#;
        let text = Text::new(Cow::Borrowed(&frame[7..10]), frame);
        assert_eq!(text, Text::Frame { start: 7, end: 10 });
        assert_eq!(text.get(frame), "abc");
    }

    #[test]
    fn an_unescaped_or_foreign_string_is_copied() {
        let frame = r#"{"id":"a\"b"}"#;
        let unescaped = Text::new(Cow::Owned("a\"b".to_owned()), frame);
        assert_eq!(unescaped.get(frame), "a\"b");
        let elsewhere = String::from("xyz");
        let foreign = Text::new(Cow::Borrowed(&elsewhere), frame);
        assert_eq!(foreign, Text::Owned("xyz".into()));
        assert_eq!(foreign.get(frame), "xyz");
    }
}
