//! Refresh tokens at rest: ChaCha20-Poly1305 with a random nonce per token, and the owner
//! (company and user) as associated data, so a stored token only decrypts for its own row.
//! The key is SHA-256 of `--encryption-key`, or 32 random bytes generated once into a file
//! beside the database with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, DatabaseUrl, Secret};

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts stored OAuth tokens.
pub struct TokenCipher {
    cipher: ChaCha20Poly1305,
}

/// A stored token that does not decrypt (another key, another row, or tampered).
#[derive(Debug, thiserror::Error)]
#[error("the stored token cannot be decrypted")]
pub struct Undecryptable;

impl TokenCipher {
    pub fn from_key(key: [u8; 32]) -> Self {
        Self { cipher: ChaCha20Poly1305::new(&Key::from(key)) }
    }

    /// The key of `--encryption-key`, else the key file beside a SQLite database (made on first
    /// use). PostgreSQL has no "beside": every node of a cluster must be given the same key.
    pub fn from_settings(
        secret: Option<&Secret>,
        database: &DatabaseUrl,
    ) -> Result<Self, ConfigError> {
        let key = match (secret, database) {
            (Some(secret), _) => Sha256::digest(secret.expose().as_bytes()).into(),
            (None, DatabaseUrl::Sqlite { path }) => key_file(&key_path(path))?,
            (None, DatabaseUrl::Postgres { .. }) => {
                let why = "is required with a postgres:// database (every node needs the same key)";
                return Err(ConfigError::new("--encryption-key", why));
            }
        };
        Ok(Self::from_key(key))
    }

    /// `base64(nonce || ciphertext)`, bound to `owner`.
    pub fn encrypt(&self, plaintext: &str, owner: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).unwrap_or_else(|e| panic!("no OS random source: {e}"));
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload { msg: plaintext.as_bytes(), aad: owner.as_bytes() },
            )
            .unwrap_or_else(|e| panic!("ChaCha20-Poly1305 never fails to encrypt: {e}"));
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    pub fn decrypt(&self, stored: &str, owner: &str) -> Result<String, Undecryptable> {
        let bytes = STANDARD.decode(stored).map_err(|_| Undecryptable)?;
        if bytes.len() <= NONCE_LEN {
            return Err(Undecryptable);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| Undecryptable)?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: sealed, aad: owner.as_bytes() })
            .map_err(|_| Undecryptable)?;
        String::from_utf8(plain).map_err(|_| Undecryptable)
    }
}

/// `hub.db` → `hub.db.key`.
fn key_path(database: &std::path::Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Reads the key file, or creates it (0600) with a fresh random key.
fn key_file(path: &Path) -> Result<[u8; 32], ConfigError> {
    let fail = |what: &str, e: std::io::Error| {
        ConfigError::new("--encryption-key", format!("{what} {}: {e}", path.display()))
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = STANDARD.decode(text.trim()).unwrap_or_default();
            bytes.try_into().map_err(|_| {
                ConfigError::new(
                    "--encryption-key",
                    format!("{} does not hold a 32-byte base64 key", path.display()),
                )
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            getrandom::fill(&mut key)
                .map_err(|e| ConfigError::new("--encryption-key", e.to_string()))?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(|e| fail("cannot create", e))?;
            file.write_all(STANDARD.encode(key).as_bytes()).map_err(|e| fail("cannot write", e))?;
            log::info!("generated the token encryption key {}", path.display());
            Ok(key)
        }
        Err(e) => Err(fail("cannot read", e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_only_for_their_owner_and_key() {
        let cipher = TokenCipher::from_key([7; 32]);
        let sealed = cipher.encrypt("1//refresh-token", "acme/ann");
        assert!(!sealed.contains("refresh"));
        assert_eq!(cipher.decrypt(&sealed, "acme/ann").unwrap(), "1//refresh-token");
        assert!(cipher.decrypt(&sealed, "acme/bob").is_err(), "bound to its row");
        assert!(TokenCipher::from_key([8; 32]).decrypt(&sealed, "acme/ann").is_err());
        assert_ne!(
            cipher.encrypt("same", "o"),
            cipher.encrypt("same", "o"),
            "fresh nonce each time"
        );
    }

    #[test]
    fn the_generated_key_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let url: DatabaseUrl = format!("sqlite://{}/hub.db", dir.path().display()).parse().unwrap();
        let first = TokenCipher::from_settings(None, &url).unwrap().encrypt("x", "o");
        let again = TokenCipher::from_settings(None, &url).unwrap();
        assert_eq!(again.decrypt(&first, "o").unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(&dir.path().join("hub.db")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
