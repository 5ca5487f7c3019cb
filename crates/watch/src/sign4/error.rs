//! The errors of [`sign`](super::sign) and [`verify`](super::verify).

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The URI has no host (it must be absolute: `scheme://host[:port]/path`).
    #[error("the request URI has no host")]
    MissingHost,
    /// The time is before 1970 or after year 9999, which `X-Hyper-Date` cannot express.
    #[error("the signing time cannot be written as an X-Hyper-Date")]
    InvalidTime,
    /// The access key is empty or holds a character that breaks the `Authorization` header
    /// (only visible ASCII other than `/` and `,` is allowed).
    #[error("the access key is empty or contains characters not allowed in a credential")]
    InvalidAccessKey,
    /// The region is empty or holds a character not allowed in a credential scope.
    #[error("region {0:?} is not usable in a credential scope")]
    InvalidRegion(String),
    /// A header the signer builds would not be a valid header value.
    #[error("the {0} header value would be invalid")]
    InvalidHeaderValue(&'static str),
    /// The HMAC implementation rejected a key (cannot happen with HMAC-SHA256).
    #[error("HMAC-SHA256 rejected the signing key")]
    InvalidKey,
    /// The operating system's random source failed, so no request nonce could be made
    /// (see [`nonce`](super::nonce)).
    #[error("no random bytes for the request nonce: {0}")]
    NoRandomness(String),
}

/// Why a request failed verification. Messages never contain the secret key.
///
/// The variants are for logs; answer clients with a generic message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization` header.
    #[error("missing Authorization header")]
    MissingAuthorization,
    /// The `Authorization` header is not `HYPER-HMAC-SHA256 Credential=..., SignedHeaders=...,
    /// Signature=...`, is not UTF-8, or appears more than once.
    #[error("malformed Authorization header")]
    MalformedAuthorization,
    /// The access key is not in the key store.
    #[error("unknown access key")]
    UnknownAccessKey,
    /// The signature does not match the request.
    #[error("signature mismatch")]
    SignatureMismatch,
    /// `X-Hyper-Date` is more than [`MAX_CLOCK_SKEW`](super::MAX_CLOCK_SKEW) away from the verifier's clock.
    #[error("request date is outside the allowed clock skew")]
    DateOutOfWindow,
    /// No `X-Hyper-Date` header.
    #[error("missing X-Hyper-Date header")]
    MissingDate,
    /// `X-Hyper-Date` is not `yyyymmddTHHMMSSZ`.
    #[error("X-Hyper-Date is not in the yyyymmddTHHMMSSZ format")]
    InvalidDate,
    /// `X-Hyper-Content-Sha256` differs from the SHA-256 of the body.
    #[error("X-Hyper-Content-Sha256 does not match the body")]
    BodyHashMismatch,
    /// A header that must be signed is not in SignedHeaders (`host`, `x-hyper-date`, and any
    /// `x-hyper-*` header the request carries), or a signed header is absent from the request.
    #[error("header {0} is required in SignedHeaders and in the request")]
    MissingSignedHeader(String),
    /// The scope date differs from the day of `X-Hyper-Date`, or the scope service/request
    /// is not `hyper/hyper_request`.
    #[error("credential scope does not match the request")]
    ScopeMismatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_reason() {
        assert_eq!(
            VerifyError::MissingSignedHeader("host".into()).to_string(),
            "header host is required in SignedHeaders and in the request"
        );
        assert_eq!(
            VerifyError::DateOutOfWindow.to_string(),
            "request date is outside the allowed clock skew"
        );
        assert_eq!(
            SignError::InvalidRegion("a b".into()).to_string(),
            "region \"a b\" is not usable in a credential scope"
        );
    }
}
