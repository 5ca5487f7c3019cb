//! Where a verifier finds the secret key of an access key.

use std::collections::HashMap;
use std::hash::BuildHasher;

use crate::credentials::SecretKey;

/// What a verifier needs to look up secrets.
pub trait KeyStore {
    /// The secret key of `access_key`, or `None` when the key is unknown.
    fn secret_for(&self, access_key: &str) -> Option<SecretKey>;
}

impl<S: BuildHasher> KeyStore for HashMap<String, SecretKey, S> {
    fn secret_for(&self, access_key: &str) -> Option<SecretKey> {
        self.get(access_key).cloned()
    }
}

impl<F> KeyStore for F
where
    F: Fn(&str) -> Option<SecretKey>,
{
    fn secret_for(&self, access_key: &str) -> Option<SecretKey> {
        self(access_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_stores_look_up_secrets() {
        let mut map = HashMap::new();
        map.insert("ak".to_owned(), SecretKey::new("sk"));
        assert_eq!(
            map.secret_for("ak").map(|k| k.expose().to_owned()),
            Some("sk".into())
        );
        assert!(map.secret_for("other").is_none());
        let closure = |ak: &str| (ak == "ak").then(|| SecretKey::new("sk2"));
        assert_eq!(
            closure.secret_for("ak").map(|k| k.expose().to_owned()),
            Some("sk2".into())
        );
        assert!(closure.secret_for("nope").is_none());
    }
}
