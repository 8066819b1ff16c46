//! Guilds' own API keys: sealed with XChaCha20-Poly1305 under a key derived
//! from the operator's secret (`TOWNES_AI_KEY_SECRET`), the guild id bound in
//! as associated data, so a sealed key copied to another guild's row does not
//! open. A key in the clear lives only in a [`TenantKey`], which neither
//! `Debug` nor `Display` shows.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// The shortest operator secret accepted.
pub const MIN_SECRET_CHARS: usize = 32;
const NONCE_BYTES: usize = 24;
/// What a key may be: printable ASCII without spaces (it goes into a header).
pub const MAX_KEY_CHARS: usize = 512;
pub const MIN_KEY_CHARS: usize = 8;

/// A guild's API key in the clear. Shown nowhere: `Debug` prints
/// `TenantKey(<redacted>)` and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct TenantKey(String);

impl TenantKey {
    /// Checks a key as the API received it.
    pub fn parse(key: &str) -> Result<TenantKey, String> {
        let key = key.trim();
        if key.len() < MIN_KEY_CHARS || key.len() > MAX_KEY_CHARS {
            return Err(format!(
                "the key must be {MIN_KEY_CHARS} to {MAX_KEY_CHARS} characters"
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the key may only hold printable ASCII characters without spaces".to_string(),
            );
        }
        Ok(TenantKey(key.to_string()))
    }

    /// The key, for the `Authorization` header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantKey(<redacted>)")
    }
}

/// Seals and opens guilds' keys.
pub struct KeySealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySealer(<redacted>)")
    }
}

fn aad(guild_id: u64) -> Vec<u8> {
    format!("townes ai key v1; guild {guild_id}").into_bytes()
}

impl KeySealer {
    /// A sealer from the operator's secret (at least [`MIN_SECRET_CHARS`]).
    pub fn from_secret(secret: &str) -> Result<KeySealer, String> {
        if secret.chars().count() < MIN_SECRET_CHARS {
            return Err(format!(
                "TOWNES_AI_KEY_SECRET must be at least {MIN_SECRET_CHARS} characters (`openssl rand -hex 32` makes one)"
            ));
        }
        let mut hash = Sha256::new();
        hash.update(b"townes ai key sealing v1\0");
        hash.update(secret.as_bytes());
        let key: Key = hash.finalize();
        Ok(KeySealer {
            cipher: XChaCha20Poly1305::new(&key),
        })
    }

    /// A fresh random nonce, then the ciphertext.
    pub fn seal(&self, guild_id: u64, key: &TenantKey) -> Vec<u8> {
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let aad = aad(guild_id);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: key.0.as_bytes(),
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any key this size");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// The key sealed for `guild_id`, or `None` when it does not open (another
    /// secret, another guild, damaged).
    pub fn open(&self, guild_id: u64, sealed: &[u8]) -> Option<TenantKey> {
        if sealed.len() <= NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        let aad = aad(guild_id);
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .ok()?;
        String::from_utf8(plain).ok().map(TenantKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_opens_only_for_its_guild_and_secret_and_never_shows() {
        let sealer = KeySealer::from_secret(&"s".repeat(40)).unwrap();
        let key = TenantKey::parse("sk-tenant-secret-123").unwrap();
        let sealed = sealer.seal(7, &key);
        assert!(!sealed.windows(key.0.len()).any(|w| w == key.0.as_bytes()));
        assert_eq!(sealer.open(7, &sealed), Some(key.clone()));
        assert_eq!(sealer.open(8, &sealed), None);
        let other = KeySealer::from_secret(&"t".repeat(40)).unwrap();
        assert_eq!(other.open(7, &sealed), None);
        assert_eq!(format!("{key:?}"), "TenantKey(<redacted>)");
        assert!(KeySealer::from_secret("short").is_err());
        assert!(TenantKey::parse("has space in it").is_err());
        assert!(TenantKey::parse("short").is_err());
    }
}
