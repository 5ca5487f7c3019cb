//! Parsing the `Authorization` header.

use http::HeaderName;

use super::{ALGORITHM, VerifyError};

/// The parsed `Authorization` header (pub so the router and a fuzz target can use it).
///
/// Form: `HYPER-HMAC-SHA256 Credential=<ak>/<yyyymmdd>/<region>/<service>/<request>,
/// SignedHeaders=<h1>;<h2>..., Signature=<64 hex>`. The three components may come in any
/// order, each exactly once; spaces around them are ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The access key.
    pub access_key: &'a str,
    /// The scope date, `yyyymmdd`.
    pub date: &'a str,
    /// The scope region.
    pub region: &'a str,
    /// The scope service (`hyper`; checked by [`verify`](super::verify), not by [`Authorization::parse`]).
    pub service: &'a str,
    /// The scope request type (`hyper_request`; checked by [`verify`](super::verify)).
    pub request: &'a str,
    /// The signed header names, lower case, in the order given.
    pub signed_headers: Vec<&'a str>,
    /// The hex signature (64 hex digits).
    pub signature: &'a str,
}

impl<'a> Authorization<'a> {
    /// Parses an `Authorization` header value. Every failure is
    /// [`VerifyError::MalformedAuthorization`].
    pub fn parse(value: &'a str) -> Result<Self, VerifyError> {
        const MALFORMED: VerifyError = VerifyError::MalformedAuthorization;
        let rest = value.trim().strip_prefix(ALGORITHM).ok_or(MALFORMED)?;
        if !rest.starts_with(' ') {
            return Err(MALFORMED);
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for component in rest.split(',') {
            let (name, field) = component.trim().split_once('=').ok_or(MALFORMED)?;
            let slot = match name {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                _ => return Err(MALFORMED),
            };
            if slot.replace(field).is_some() {
                return Err(MALFORMED);
            }
        }
        let (credential, signed, signature) = match (credential, signed, signature) {
            (Some(c), Some(h), Some(s)) => (c, h, s),
            _ => return Err(MALFORMED),
        };

        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key, date, region, service, request] = scope[..] else {
            return Err(MALFORMED);
        };
        if scope.iter().any(|part| part.is_empty())
            || date.len() != 8
            || !date.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(MALFORMED);
        }

        let signed_headers: Vec<&str> = signed.split(';').collect();
        for (i, name) in signed_headers.iter().enumerate() {
            let valid = HeaderName::from_bytes(name.as_bytes())
                .is_ok_and(|parsed| parsed.as_str() == *name);
            if !valid || signed_headers[..i].contains(name) {
                return Err(MALFORMED);
            }
        }

        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(MALFORMED);
        }

        Ok(Self {
            access_key,
            date,
            region,
            service,
            request,
            signed_headers,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_authorization() {
        let value = "HYPER-HMAC-SHA256 Credential=ak/20170729/us-west-1/hyper/hyper_request, \
                     SignedHeaders=content-type;host;x-hyper-date, Signature=3a923718db713abc7b8\
                     51712a434343eb7887298ab5f48113a7b291f261c037a";
        let auth = Authorization::parse(value).unwrap();
        assert_eq!(auth.access_key, "ak");
        assert_eq!(auth.date, "20170729");
        assert_eq!(auth.region, "us-west-1");
        assert_eq!(auth.service, "hyper");
        assert_eq!(auth.request, "hyper_request");
        assert_eq!(
            auth.signed_headers,
            ["content-type", "host", "x-hyper-date"]
        );
        assert_eq!(&auth.signature[..8], "3a923718");
    }

    #[test]
    fn parse_authorization_rejects_nasty_values() {
        let sig = "0".repeat(64);
        let good = format!(
            "HYPER-HMAC-SHA256 Credential=ak/20170729/r/hyper/hyper_request, SignedHeaders=host;x-hyper-date, Signature={sig}"
        );
        assert!(Authorization::parse(&good).is_ok());
        let nasty = [
            String::new(),
            " ".into(),
            "HYPER-HMAC-SHA256".into(),
            "HYPER-HMAC-SHA256 ".into(),
            "hyper-hmac-sha256 Credential=ak/20170729/r/hyper/hyper_request".into(),
            good.replace("HYPER-HMAC-SHA256 ", "HYPER-HMAC-SHA256"),
            good.replace("HYPER-HMAC-SHA256", "AWS4-HMAC-SHA256"),
            good.replace("Credential=", ""),
            good.replace("Credential=ak/", "Credential=/"),
            good.replace("/r/", "//"),
            good.replace("/r/", "/r/x/"),
            good.replace("20170729", "2017072"),
            good.replace("20170729", "2017o729"),
            good.replace(", Signature", ",, Signature"),
            format!("{good},"),
            format!("{good}, Signature={sig}"),
            format!("{good}, Extra=1"),
            good.replace("host;", "host;;"),
            good.replace("host;", "Host;"),
            good.replace("host;", "host;host;"),
            good.replace("host;", "ho st;"),
            good.replace(&sig, &sig[1..]),
            good.replace(&sig, &"g".repeat(64)),
            good.replace(&sig, &"é".repeat(32)),
        ];
        for value in &nasty {
            assert_eq!(
                Authorization::parse(value),
                Err(VerifyError::MalformedAuthorization),
                "{value:?}"
            );
        }
    }
}
