//! Password hashing with Argon2id (the crate's recommended defaults). Verifying an unknown
//! email runs against a dummy hash made at start, so both failures cost the same time.

use argon2::password_hash::{PasswordHash, PasswordVerifier, SaltString};
use argon2::{Argon2, PasswordHasher as _};

/// Hashes and checks passwords; holds the dummy hash used for unknown accounts.
pub struct PasswordHasher {
    dummy_hash: String,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordHashError(String);

impl PasswordHasher {
    pub fn new() -> Result<Self, PasswordHashError> {
        let mut filler = [0u8; 24];
        getrandom::fill(&mut filler).map_err(|e| PasswordHashError(e.to_string()))?;
        let dummy_hash = hash_password(&base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            filler,
        ))?;
        Ok(Self { dummy_hash })
    }

    pub fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        hash_password(password)
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no account,
    /// so the answer takes the same time either way. A malformed stored hash never matches.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let hash = stored.unwrap_or(&self.dummy_hash);
        let matches = PasswordHash::new(hash)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false);
        matches && stored.is_some()
    }
}

fn hash_password(password: &str) -> Result<String, PasswordHashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordHashError(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordHashError(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordHashError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_password() {
        let hasher = PasswordHasher::new().unwrap();
        let stored = hasher.hash("correct horse").unwrap();
        assert!(hasher.verify("correct horse", Some(&stored)));
        assert!(!hasher.verify("wrong horse", Some(&stored)));
        assert!(!hasher.verify("correct horse", None));
        assert!(!hasher.verify("correct horse", Some("not-a-hash")));
    }
}
