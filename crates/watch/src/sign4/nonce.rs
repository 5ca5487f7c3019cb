//! `X-Hyper-Nonce`: what makes two identical requests of one second sign differently.

use http::HeaderValue;

use super::SignError;

/// A fresh `X-Hyper-Nonce` value: 128 bits from the operating system's random source, as
/// 32 hex digits.
///
/// `X-Hyper-Date` has whole seconds, so the same request signed twice within one second
/// (a list and a re-list with the same query, two replicas of a controller sharing a key)
/// would carry one signature twice, and a server that refuses replayed signatures (the
/// reference router does) would refuse the second. A nonce header makes each signature
/// unique. It is still Sign4: [`sign`](super::sign) signs every `x-hyper-*` header present,
/// and a verifier recomputes over the headers `SignedHeaders` names.
///
/// # Errors
/// [`SignError::NoRandomness`] when the operating system gives no random bytes.
pub fn nonce() -> Result<HeaderValue, SignError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| SignError::NoRandomness(e.to_string()))?;
    HeaderValue::from_str(&hex::encode(bytes))
        .map_err(|_| SignError::InvalidHeaderValue(super::NONCE_HEADER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_32_hex_digits_and_differ() {
        let a = nonce().unwrap();
        let b = nonce().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.to_str().unwrap().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
