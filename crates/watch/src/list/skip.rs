//! The splitter's fast path: skipping the inside of an element 64 bytes at a time.
//!
//! PERFORMANCE: inside an element, only its brackets outside strings matter to the
//! splitter (they tell where the element ends), and most of its bytes are in strings.
//! For a block of 64 bytes with no `\`, the quotes' places give which bytes are in a
//! string (a running XOR of the quote mask: every `"` opens or closes one), and the
//! brackets outside them change the depth; the block is skipped whole unless the element
//! ends in it. A block with a `\` (an escape, whose quote would not count) is left to the
//! byte-by-byte state machine of [`ArraySplitter::feed`](super::ArraySplitter::feed),
//! which is the reference: the tests split every body both ways.
//!
//! The masks come from the crate's speed module (`crate::scan::block`: AVX2 or SSE2 on
//! x86-64, a byte loop elsewhere).

pub(super) use crate::scan::BLOCK;
use crate::scan::bracket_masks;

/// Bit `i` set when an odd number of bits `0..=i` of `x` are set: with `x` the quotes of
/// a block, the bytes from an opening quote up to (not including) its closing one.
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// Where the state machine stands, inside an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Inside {
    /// Open brackets and braces (at least 1).
    pub(super) depth: usize,
    /// In a string (just after its opening quote, or within it; never just after a `\`).
    pub(super) in_string: bool,
}

/// What [`skip_block`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Skip {
    /// Skipped the whole block: the state after it.
    Whole(Inside),
    /// The element's last bracket is at this offset: the bytes before it are skipped, the
    /// state machine takes the bracket (outside any string, at depth 1).
    Until(usize),
    /// The block holds a `\`: nothing skipped, the state machine reads it.
    Escape,
}

/// Skips `block`, the next 64 bytes inside an element, from state `at`.
#[inline]
pub(super) fn skip_block(block: &[u8; BLOCK], at: Inside) -> Skip {
    let m = bracket_masks(block);
    if m.escapes != 0 {
        return Skip::Escape;
    }
    let strings = prefix_xor(m.quotes) ^ if at.in_string { u64::MAX } else { 0 };
    let outside = !strings & !m.quotes;
    let open = m.open & outside;
    let close = m.close & outside;
    let mut depth = at.depth;
    let mut brackets = open | close;
    while brackets != 0 {
        let i = brackets.trailing_zeros() as usize;
        if open & (1 << i) != 0 {
            depth += 1;
        } else if depth == 1 {
            return Skip::Until(i);
        } else {
            depth -= 1;
        }
        brackets &= brackets - 1;
    }
    let in_string = strings >> (BLOCK - 1) & 1 == 1;
    Skip::Whole(Inside { depth, in_string })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same walk, one byte at a time.
    fn skip_plain(block: &[u8; BLOCK], at: Inside) -> Skip {
        if block.contains(&b'\\') {
            return Skip::Escape;
        }
        let Inside {
            mut depth,
            mut in_string,
        } = at;
        for (i, &b) in block.iter().enumerate() {
            match b {
                b'"' => in_string = !in_string,
                b'{' | b'[' if !in_string => depth += 1,
                b'}' | b']' if !in_string => {
                    if depth == 1 {
                        return Skip::Until(i);
                    }
                    depth -= 1;
                }
                _ => {}
            }
        }
        Skip::Whole(Inside { depth, in_string })
    }

    proptest::proptest! {
        #[test]
        fn the_block_skip_is_the_byte_walk(
            bytes in proptest::collection::vec(
                proptest::sample::select(&b"\"{}[]:, ab\\\\"[..]), BLOCK),
            depth in 1usize..4,
            in_string: bool,
        ) {
            let block: [u8; BLOCK] = bytes.try_into().unwrap();
            let at = Inside { depth, in_string };
            proptest::prop_assert_eq!(skip_block(&block, at), skip_plain(&block, at));
        }
    }

    #[test]
    fn a_string_across_blocks_and_the_elements_end() {
        let mut block = [b'a'; BLOCK];
        block[10] = b'"';
        block[20] = b'}';
        // Opened in an earlier block: the first quote closes it, then a brace is read.
        let at = Inside {
            depth: 1,
            in_string: true,
        };
        assert_eq!(skip_block(&block, at), Skip::Until(20));
        // Not in a string: the brace is inside the string the quote opens.
        let at = Inside {
            depth: 1,
            in_string: false,
        };
        assert_eq!(
            skip_block(&block, at),
            Skip::Whole(Inside {
                depth: 1,
                in_string: true
            })
        );
        block[30] = b'\\';
        assert_eq!(skip_block(&block, at), Skip::Escape);
    }
}
