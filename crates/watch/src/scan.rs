//! The fast path's scanner, shared by the event decoder (`event::wire::scan`) and the
//! list element decoder (`container::scan`): a place in a text with the places of its
//! quotes, and the JSON it reads the same way for both (strings, `null`, objects' members,
//! integers, values skipped). Each decoder adds what its fields mean.
//!
//! PERFORMANCE: it reads only texts without escapes or control characters, which is
//! every frame and list element Docker, Podman and the API router write in practice. In
//! those, every `"` delimits a string: [`block`] (the speed module, the crate's only
//! vector code) finds them 64 bytes at a time, so a string's end is the next set bit of a
//! mask and its text a slice of the input. A scanner never fails an input itself: every
//! method answers `None` for what it does not read, and its caller leaves the whole input
//! to serde, which is the reference and decides every error.

use std::borrow::Cow;

use block::quote_masks;
pub(crate) use block::{BLOCK, bracket_masks};

mod block;

/// How deep a skipped value may nest before the scanner leaves it to serde.
pub(crate) const MAX_DEPTH: u8 = 16;

/// The `"` of a frame, in order: each string takes the next two (the scanner reads no
/// escapes, so every `"` opens or closes one).
///
/// PERFORMANCE: the masks of every block are taken at the start, in one loop, so that
/// taking a quote is a few instructions.
pub(crate) struct Quotes {
    /// The quotes of each block; blocks past the frame have none.
    blocks: [u64; MAX_BLOCKS],
    /// The block at hand.
    block: usize,
    /// The quotes of the block at hand not taken yet.
    mask: u64,
}

/// The longest frame the scanner reads, in blocks (4 KiB); a longer one is left to serde.
pub(crate) const MAX_BLOCKS: usize = 64;

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
pub(crate) fn eight_digits(word: u64) -> Option<u64> {
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
pub(crate) struct Scanner<'a> {
    pub(crate) text: &'a str,
    /// `text`'s bytes.
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
    pub(crate) quotes: Quotes,
}

impl<'a> Scanner<'a> {
    /// Runs `read` on a scanner at the start of `text`, with the places of its quotes;
    /// `None` when `text` is longer than the scanner reads ([`MAX_BLOCKS`]) or holds a
    /// `\\` or a control character, or when `read` refuses it.
    ///
    /// PERFORMANCE: the scanner is built where it is used and only lent: its masks are
    /// 512 bytes, which a constructor returning `Option<Self>` would copy out.
    #[inline(always)]
    pub(crate) fn read<R>(text: &'a str, read: impl FnOnce(&mut Self) -> Option<R>) -> Option<R> {
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
        read(&mut s)
    }

    /// Whether nothing but spaces is left.
    #[inline(always)]
    pub(crate) fn at_end(&mut self) -> bool {
        self.token().is_none() && self.at == self.bytes.len()
    }
    #[inline(always)]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The next byte that is not a space, not taken; spaces before it are skipped (the
    /// scanner reads no other whitespace).
    #[inline(always)]
    pub(crate) fn token(&mut self) -> Option<u8> {
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
    pub(crate) fn expect(&mut self, byte: u8) -> Option<()> {
        (self.token()? == byte).then(|| self.at += 1)
    }

    /// `word`, if it comes next.
    #[inline(always)]
    pub(crate) fn word(&mut self, word: &[u8]) -> bool {
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
    pub(crate) fn null(&mut self) -> bool {
        self.word(b"null")
    }

    /// A string, which comes next: its text, a slice of the frame.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> Option<&'a str> {
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
    pub(crate) fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
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

    /// The elements of an array whose `[` was read, through its `]`: `element` reads each
    /// one, from its first byte.
    #[inline(always)]
    pub(crate) fn elements(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        if self.token()? == b']' {
            self.at += 1;
            return Some(());
        }
        loop {
            element(self)?;
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

    /// A string, or `null` as the empty string.
    #[inline(always)]
    pub(crate) fn text_or_null(&mut self) -> Option<Cow<'a, str>> {
        match self.peek()? {
            b'"' => self.string().map(Cow::Borrowed),
            _ => self.null().then_some(Cow::Borrowed("")),
        }
    }

    /// Skips a string, which comes next.
    #[inline(always)]
    pub(crate) fn skip_string(&mut self) -> Option<()> {
        let open = self.quotes.next()?;
        if open != self.at {
            return None;
        }
        self.at = self.quotes.next()? + 1;
        Some(())
    }

    /// An integer, read as the crate's lenient integer fields read it (a time, a
    /// creation date, a port): saturated to `i64` as serde reads it (a positive one above
    /// `i64::MAX` is `i64::MAX`); `null` is 0. Fractions, exponents, integers of
    /// 20 digits or more and strings are left to serde.
    pub(crate) fn integer(&mut self) -> Option<i64> {
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
    pub(crate) fn skip(&mut self, depth: u8) -> Option<()> {
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
                self.elements(|s| s.skip(depth))
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
    use super::*;

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
}
