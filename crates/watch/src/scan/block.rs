//! The scanner's speed module: where the `"` of a frame are, one 64-bit mask per 64-byte
//! block, and whether the frame holds anything the fast path does not read (a `\` or a
//! byte below 0x20). With the places of the quotes known, a string's end is the next set
//! bit of a mask. For the list splitter, the same for a block's quotes, backslashes and
//! brackets ([`bracket_masks`]).
//!
//! PERFORMANCE: on x86-64 a block is two 32-byte AVX2 compares and `vpmovmskb`s when the
//! processor has AVX2 (checked at run time: once a frame, once a block for the splitter),
//! else four 16-byte SSE2 ones (part of every x86-64); elsewhere, and as the reference the
//! tests check both against, a byte-by-byte loop ([`masks_portable`], [`bracket_masks_portable`]).
//!
//! The `unsafe` here is only in calling the vector functions: each needs its CPU
//! feature, which is either in the x86-64 baseline (SSE2: every x86_64 target enables
//! it) or checked just before (`is_x86_feature_detected!("avx2")`), and each reads only
//! the 64-byte array it is given. `crates/watch/src/lib.rs` denies `unsafe_code`
//! everywhere but here and `event::utf8`.

/// The bytes of one block.
pub(crate) const BLOCK: usize = 64;

/// The masks of one block: bit `i` stands for byte `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Masks {
    /// The bytes that are `"`.
    pub(super) quotes: u64,
    /// The bytes that are `\` or below 0x20: an escape, a control character, or
    /// whitespace other than a space.
    pub(super) unread: u64,
}

/// Fills `out` with the quotes of `bytes`, block by block (blocks past the end of
/// `bytes` are left as they are). False when `bytes` hold a `\` or a control character,
/// or have more blocks than `out`.
#[inline]
pub(super) fn quote_masks(bytes: &[u8], out: &mut [u64]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: AVX2 was detected just above.
            return unsafe { quote_masks_avx2(bytes, out) };
        }
        #[allow(unsafe_code)]
        // SAFETY: SSE2 is in the x86-64 baseline: every x86_64 target enables it.
        unsafe {
            quote_masks_sse2(bytes, out)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        fill(bytes, out, masks_portable)
    }
}

/// [`quote_masks`] with `masks` for each block. The last, short block is read as the
/// frame's last 64 bytes, of which those before the block are shifted out (a frame
/// shorter than a block is padded with spaces, which are neither).
#[inline(always)]
fn fill(bytes: &[u8], out: &mut [u64], masks: impl Fn(&[u8; BLOCK]) -> Masks) -> bool {
    let mut unread = 0;
    let mut whole = bytes.chunks_exact(BLOCK);
    let mut filled = 0;
    for (slot, block) in out.iter_mut().zip(&mut whole) {
        let Some(block) = block.first_chunk() else {
            return false;
        };
        let found = masks(block);
        *slot = found.quotes;
        unread |= found.unread;
        filled += 1;
    }
    let rest = whole.remainder();
    if filled * BLOCK + rest.len() != bytes.len() {
        // More blocks than `out` holds.
        return false;
    }
    if !rest.is_empty() {
        let found = match bytes.last_chunk::<BLOCK>() {
            Some(last) => {
                let found = masks(last);
                let before = BLOCK - rest.len();
                Masks {
                    quotes: found.quotes >> before,
                    unread: found.unread >> before,
                }
            }
            None => {
                let mut padded = [b' '; BLOCK];
                padded[..rest.len()].copy_from_slice(rest);
                masks(&padded)
            }
        };
        let Some(slot) = out.get_mut(filled) else {
            return false;
        };
        *slot = found.quotes;
        unread |= found.unread;
    }
    unread == 0
}

/// [`quote_masks`] with AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn quote_masks_avx2(bytes: &[u8], out: &mut [u64]) -> bool {
    // The closure has the features of the function it is in.
    fill(bytes, out, |block| masks_avx2(block))
}

/// [`quote_masks`] with SSE2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn quote_masks_sse2(bytes: &[u8], out: &mut [u64]) -> bool {
    fill(bytes, out, |block| masks_sse2(block))
}

/// 32 bytes as a vector (the compiler makes it one unaligned load).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn load32(bytes: &[u8]) -> std::arch::x86_64::__m256i {
    let quarter = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        i64::from_le_bytes(word)
    };
    std::arch::x86_64::_mm256_set_epi64x(quarter(24), quarter(16), quarter(8), quarter(0))
}

/// The bits of a 32-byte compare: `vpmovmskb` sets the 32 bits of an `i32`, and `as u32`
/// keeps exactly those.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2")]
fn bits32(is: std::arch::x86_64::__m256i) -> u64 {
    u64::from(std::arch::x86_64::_mm256_movemask_epi8(is) as u32)
}

/// 16 bytes as a vector (the compiler makes it one unaligned load).
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2")]
fn load16(bytes: &[u8]) -> std::arch::x86_64::__m128i {
    let half = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        i64::from_le_bytes(word)
    };
    std::arch::x86_64::_mm_set_epi64x(half(8), half(0))
}

/// The bits of a 16-byte compare: `pmovmskb` sets the low 16 bits of an `i32`, and
/// `as u16` keeps exactly those.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "sse2")]
fn bits16(is: std::arch::x86_64::__m128i) -> u64 {
    u64::from(std::arch::x86_64::_mm_movemask_epi8(is) as u16)
}

/// The masks of a block, with AVX2: 32 bytes per compare.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn masks_avx2(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{
        _mm256_cmpeq_epi8, _mm256_min_epu8, _mm256_or_si256, _mm256_set1_epi8,
    };

    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let below_space = _mm256_set1_epi8(0x1f);
    let mut masks = Masks {
        quotes: 0,
        unread: 0,
    };
    for (i, half) in block.chunks_exact(32).enumerate() {
        let v = load32(half);
        let is_quote = _mm256_cmpeq_epi8(v, quote);
        // Unsigned: `b <= 0x1f` exactly when `min(b, 0x1f) == b`.
        let is_control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, below_space), v);
        let is_unread = _mm256_or_si256(is_control, _mm256_cmpeq_epi8(v, backslash));
        masks.quotes |= bits32(is_quote) << (32 * i);
        masks.unread |= bits32(is_unread) << (32 * i);
    }
    masks
}

/// The masks of a block, with SSE2: 16 bytes per compare.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn masks_sse2(block: &[u8; BLOCK]) -> Masks {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_min_epu8, _mm_or_si128, _mm_set1_epi8};

    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let below_space = _mm_set1_epi8(0x1f);
    let mut masks = Masks {
        quotes: 0,
        unread: 0,
    };
    for (i, chunk) in block.chunks_exact(16).enumerate() {
        let v = load16(chunk);
        let is_quote = _mm_cmpeq_epi8(v, quote);
        let is_control = _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v);
        let is_unread = _mm_or_si128(is_control, _mm_cmpeq_epi8(v, backslash));
        masks.quotes |= bits16(is_quote) << (16 * i);
        masks.unread |= bits16(is_unread) << (16 * i);
    }
    masks
}

/// The masks of a block, one byte at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn masks_portable(block: &[u8; BLOCK]) -> Masks {
    let mut masks = Masks {
        quotes: 0,
        unread: 0,
    };
    for (i, &b) in block.iter().enumerate() {
        masks.quotes |= u64::from(b == b'"') << i;
        masks.unread |= u64::from(b < 0x20 || b == b'\\') << i;
    }
    masks
}

/// What the list splitter needs of one block: bit `i` stands for byte `i`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BracketMasks {
    /// The bytes that are `"`.
    pub(crate) quotes: u64,
    /// The bytes that are `\`.
    pub(crate) escapes: u64,
    /// The bytes that are `{` or `[`.
    pub(crate) open: u64,
    /// The bytes that are `}` or `]`.
    pub(crate) close: u64,
}

/// The quotes, backslashes and brackets of `block`. `{` and `[` differ only in bit 5,
/// as `}` and `]` do: with that bit set, one compare finds both.
#[inline]
pub(crate) fn bracket_masks(block: &[u8; BLOCK]) -> BracketMasks {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: AVX2 was detected just above.
            return unsafe { bracket_masks_avx2(block) };
        }
        #[allow(unsafe_code)]
        // SAFETY: SSE2 is in the x86-64 baseline: every x86_64 target enables it.
        unsafe {
            bracket_masks_sse2(block)
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        bracket_masks_portable(block)
    }
}

/// [`bracket_masks`] with AVX2: 32 bytes per compare.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn bracket_masks_avx2(block: &[u8; BLOCK]) -> BracketMasks {
    use std::arch::x86_64::{_mm256_cmpeq_epi8, _mm256_or_si256, _mm256_set1_epi8};

    let quote = _mm256_set1_epi8(b'"' as i8);
    let backslash = _mm256_set1_epi8(b'\\' as i8);
    let bit5 = _mm256_set1_epi8(0x20);
    let open = _mm256_set1_epi8(b'{' as i8);
    let close = _mm256_set1_epi8(b'}' as i8);
    let mut m = BracketMasks {
        quotes: 0,
        escapes: 0,
        open: 0,
        close: 0,
    };
    for (i, half) in block.chunks_exact(32).enumerate() {
        let v = load32(half);
        let folded = _mm256_or_si256(v, bit5);
        m.quotes |= bits32(_mm256_cmpeq_epi8(v, quote)) << (32 * i);
        m.escapes |= bits32(_mm256_cmpeq_epi8(v, backslash)) << (32 * i);
        m.open |= bits32(_mm256_cmpeq_epi8(folded, open)) << (32 * i);
        m.close |= bits32(_mm256_cmpeq_epi8(folded, close)) << (32 * i);
    }
    m
}

/// [`bracket_masks`] with SSE2: 16 bytes per compare.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse2")]
fn bracket_masks_sse2(block: &[u8; BLOCK]) -> BracketMasks {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_or_si128, _mm_set1_epi8};

    let quote = _mm_set1_epi8(b'"' as i8);
    let backslash = _mm_set1_epi8(b'\\' as i8);
    let bit5 = _mm_set1_epi8(0x20);
    let open = _mm_set1_epi8(b'{' as i8);
    let close = _mm_set1_epi8(b'}' as i8);
    let mut m = BracketMasks {
        quotes: 0,
        escapes: 0,
        open: 0,
        close: 0,
    };
    for (i, chunk) in block.chunks_exact(16).enumerate() {
        let v = load16(chunk);
        let folded = _mm_or_si128(v, bit5);
        m.quotes |= bits16(_mm_cmpeq_epi8(v, quote)) << (16 * i);
        m.escapes |= bits16(_mm_cmpeq_epi8(v, backslash)) << (16 * i);
        m.open |= bits16(_mm_cmpeq_epi8(folded, open)) << (16 * i);
        m.close |= bits16(_mm_cmpeq_epi8(folded, close)) << (16 * i);
    }
    m
}

/// [`bracket_masks`], one byte at a time.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn bracket_masks_portable(block: &[u8; BLOCK]) -> BracketMasks {
    let mut m = BracketMasks {
        quotes: 0,
        escapes: 0,
        open: 0,
        close: 0,
    };
    for (i, &b) in block.iter().enumerate() {
        m.quotes |= u64::from(b == b'"') << i;
        m.escapes |= u64::from(b == b'\\') << i;
        m.open |= u64::from(b == b'{' || b == b'[') << i;
        m.close |= u64::from(b == b'}' || b == b']') << i;
    }
    m
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Ways of computing a block's masks of type `M`, by name.
    type Implementations<M> = Vec<(&'static str, fn(&[u8; BLOCK]) -> M)>;

    /// Every way this machine computes a block's masks of type `$masks`, by name: the
    /// portable loop, and the vector functions `$sse2` and `$avx2` the CPU can run.
    macro_rules! every {
        ($masks:ty, $portable:expr, $sse2:ident, $avx2:ident) => {{
            #[allow(unused_mut)]
            let mut all: Implementations<$masks> = vec![("portable", $portable)];
            #[cfg(target_arch = "x86_64")]
            {
                // SAFETY: SSE2 is in the x86-64 baseline.
                #[allow(unsafe_code)]
                all.push(("sse2", |block| unsafe { $sse2(block) }));
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: only listed when AVX2 was detected.
                    #[allow(unsafe_code)]
                    all.push(("avx2", |block| unsafe { $avx2(block) }));
                }
            }
            all
        }};
    }

    /// Every way this machine computes the masks of a block, by name.
    fn every_masks() -> Implementations<Masks> {
        every!(Masks, masks_portable, masks_sse2, masks_avx2)
    }

    #[test]
    fn every_byte_value_in_every_place_is_classified_by_every_implementation() {
        for (name, masks) in every_masks() {
            for place in 0..BLOCK {
                for byte in 0..=u8::MAX {
                    let mut block = [b'a'; BLOCK];
                    block[place] = byte;
                    let bit = 1 << place;
                    let want = Masks {
                        quotes: if byte == b'"' { bit } else { 0 },
                        unread: if byte < 0x20 || byte == b'\\' { bit } else { 0 },
                    };
                    assert_eq!(masks(&block), want, "{name}: byte {byte:#04x} at {place}");
                }
            }
        }
    }

    /// Every way this machine computes the bracket masks of a block, by name, and the
    /// one [`bracket_masks`] picks.
    fn every_bracket_masks() -> Implementations<BracketMasks> {
        let mut all = every!(
            BracketMasks,
            bracket_masks_portable,
            bracket_masks_sse2,
            bracket_masks_avx2
        );
        all.push(("dispatched", bracket_masks));
        all
    }

    #[test]
    fn every_byte_value_in_every_place_is_a_bracket_or_not_in_every_implementation() {
        for (name, masks) in every_bracket_masks() {
            for place in 0..BLOCK {
                for byte in 0..=u8::MAX {
                    let mut block = [b'a'; BLOCK];
                    block[place] = byte;
                    let bit = |yes: bool| if yes { 1 << place } else { 0 };
                    let want = BracketMasks {
                        quotes: bit(byte == b'"'),
                        escapes: bit(byte == b'\\'),
                        open: bit(byte == b'{' || byte == b'['),
                        close: bit(byte == b'}' || byte == b']'),
                    };
                    assert_eq!(masks(&block), want, "{name}: byte {byte:#04x} at {place}");
                }
            }
        }
    }

    /// The masks of `bytes` byte by byte, as `quote_masks` should give them.
    fn plain_quote_masks(bytes: &[u8]) -> Option<Vec<u64>> {
        if bytes.iter().any(|&b| b < 0x20 || b == b'\\') {
            return None;
        }
        let mut out = vec![0; bytes.len().div_ceil(BLOCK)];
        for (i, &b) in bytes.iter().enumerate() {
            out[i / BLOCK] |= u64::from(b == b'"') << (i % BLOCK);
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn the_vector_masks_are_the_portable_ones(
            bytes in prop::collection::vec(
                prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\'), Just(b' '), Just(0x1f)],
                BLOCK,
            ),
        ) {
            let mut block = [0; BLOCK];
            block.copy_from_slice(&bytes);
            for (name, masks) in every_masks() {
                prop_assert_eq!(masks(&block), masks_portable(&block), "{}", name);
            }
        }

        #[test]
        fn the_vector_bracket_masks_are_the_portable_ones(
            bytes in prop::collection::vec(
                prop_oneof![any::<u8>(), Just(b'"'), Just(b'\\'), Just(b'{'), Just(b']'), Just(0x7b | 0x80)],
                BLOCK,
            ),
        ) {
            let mut block = [0; BLOCK];
            block.copy_from_slice(&bytes);
            for (name, masks) in every_bracket_masks() {
                prop_assert_eq!(masks(&block), bracket_masks_portable(&block), "{}", name);
            }
        }

        #[test]
        fn quote_masks_of_any_length_are_the_plain_ones(
            bytes in prop::collection::vec(
                prop_oneof![8 => b'a'..=b'z', 2 => Just(b'"'), 1 => Just(b'\\')],
                0..300,
            ),
            room in 0usize..7,
        ) {
            let mut out = vec![u64::MAX; room];
            let plain = plain_quote_masks(&bytes);
            let fits = bytes.len().div_ceil(BLOCK) <= room;
            let ok = quote_masks(&bytes, &mut out);
            prop_assert_eq!(ok, fits && plain.is_some());
            if ok {
                let plain = plain.unwrap_or_default();
                prop_assert_eq!(&out[..plain.len()], &plain[..]);
            }
        }
    }
}
