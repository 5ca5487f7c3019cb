//! Hyper.sh API credentials: an access key and its secret key.
//!
//! The secret is wrapped in [`SecretKey`], whose `Debug` and `Display` print `***`, so a
//! credential can be logged or put in an error without leaking the secret. The only way to
//! read the secret is [`SecretKey::expose`].

use std::fmt;

/// A secret key. `Debug` and `Display` print `***`; read it with [`SecretKey::expose`].
///
/// The memory is not zeroed on drop.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret key.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// Returns the secret itself. This is the only way to read it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for SecretKey {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl From<&str> for SecretKey {
    fn from(secret: &str) -> Self {
        Self(secret.to_owned())
    }
}

/// An access key and its secret key, as issued by Hyper.sh.
///
/// `Debug` shows the access key and hides the secret.
#[derive(Clone, Debug)]
pub struct Credentials {
    access_key: String,
    secret_key: SecretKey,
}

impl Credentials {
    /// Builds credentials from an access key and a secret key.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<SecretKey>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        }
    }

    /// The access key (public; it is sent in the `Authorization` header).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }

    /// The secret key.
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "Ema5XXXXXXXXXXXXXXXXXXXXXXXXXXXZgNe";

    #[test]
    fn secret_key_is_masked_in_debug_and_display() {
        let key = SecretKey::new(SECRET);
        assert_eq!(format!("{key:?}"), "***");
        assert_eq!(format!("{key}"), "***");
        assert_eq!(format!("{key:#?}"), "***");
    }

    #[test]
    fn secret_key_expose_returns_the_secret() {
        assert_eq!(SecretKey::new(SECRET).expose(), SECRET);
        assert_eq!(SecretKey::from(SECRET).expose(), SECRET);
        assert_eq!(SecretKey::from(SECRET.to_owned()).expose(), SECRET);
        assert_eq!(SecretKey::new(SECRET).clone().expose(), SECRET);
    }

    #[test]
    fn credentials_accessors() {
        let creds = Credentials::new("KXARXXXXXXXXXXXXX5WR8", SECRET);
        assert_eq!(creds.access_key(), "KXARXXXXXXXXXXXXX5WR8");
        assert_eq!(creds.secret_key().expose(), SECRET);

        let from_owned = Credentials::new(String::from("ak"), String::from("sk"));
        assert_eq!(from_owned.access_key(), "ak");
        assert_eq!(from_owned.secret_key().expose(), "sk");

        let from_key = Credentials::new("ak", SecretKey::new("sk"));
        assert_eq!(from_key.secret_key().expose(), "sk");
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let creds = Credentials::new("my-access-key", SECRET);
        for rendered in [format!("{creds:?}"), format!("{creds:#?}")] {
            assert!(!rendered.contains(SECRET), "secret leaked: {rendered}");
            assert!(rendered.contains("my-access-key"), "{rendered}");
            assert!(rendered.contains("***"), "{rendered}");
        }
    }
}
