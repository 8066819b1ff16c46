//! The bundle file: a plaintext header, then the data encrypted under a key
//! stretched from the user's passphrase (ADR 0018).
//!
//! ```text
//! "TOWNESX\x01"  magic (8 bytes)
//! u32 BE         header length
//! header         JSON: format and schema versions, kind, counts, sha256 of
//!                the plaintext, the KDF's salt and costs, the stream nonce
//! 32 bytes       key check: HMAC-SHA256(key, KEY_CHECK)
//! chunks         ChaCha20-Poly1305 STREAM (BE32): CHUNK bytes of plaintext
//!                each, the last one flagged; every chunk's AAD is the header
//! ```
//!
//! The key check tells a wrong passphrase from a damaged file without trying
//! to decrypt. Each chunk's tag covers the header, its position and whether it
//! is the last, so a changed byte anywhere, a chunk dropped, reordered or cut
//! off at the end is refused as damage. The plaintext's sha256, checked after
//! decryption, is the integrity check a reader can also run without us.

use super::ExportError;
use crate::store::export::ExportRows;
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::stream::{DecryptorBE32, EncryptorBE32};
use chacha20poly1305::aead::{KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

const MAGIC: &[u8; 8] = b"TOWNESX\x01";
/// The layout version; a reader refuses a newer one.
pub const FORMAT_VERSION: u32 = 1;
const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const KEY_CHECK: &[u8] = b"townes export bundle key check";
/// The most header a reader accepts (it holds counts and a few strings).
const MAX_HEADER: usize = 64 * 1024;
/// The shortest passphrase accepted.
pub const MIN_PASSPHRASE: usize = 12;

/// Argon2id costs written with every bundle: about OWASP's second
/// recommendation (m = 64 MiB would double export time on a busy host).
const KDF_MEMORY_KIB: u32 = 19 * 1024;
const KDF_ITERATIONS: u32 = 2;
/// A reader refuses costs above these, so a crafted header cannot make an
/// import allocate or spin without bound.
const KDF_MAX_MEMORY_KIB: u32 = 1024 * 1024;
const KDF_MAX_ITERATIONS: u32 = 16;

/// The secret a bundle is encrypted under: what the user chose, held in
/// memory only, never logged (its `Debug` hides it).
#[derive(Clone)]
pub struct ExportKey(String);

impl ExportKey {
    /// A passphrase of at least [`MIN_PASSPHRASE`] characters.
    pub fn passphrase(text: impl Into<String>) -> Result<ExportKey, ExportError> {
        let text = text.into();
        if text.chars().count() < MIN_PASSPHRASE {
            return Err(ExportError::WeakPassphrase);
        }
        Ok(ExportKey(text))
    }
}

impl std::fmt::Debug for ExportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExportKey(…)")
    }
}

/// A tenant's whole data, or one guild's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BundleKind {
    Tenant,
    Guild,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Kdf {
    /// Always `argon2id`.
    pub algorithm: String,
    pub salt: String,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// What a bundle says about itself, readable without the key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// The exporting installation's newest migration.
    pub schema: i64,
    pub kind: BundleKind,
    pub tenant_id: String,
    /// For a guild bundle; a string, like every snowflake in JSON.
    pub guild_id: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Rows per table, and `components`.
    pub counts: BTreeMap<String, u64>,
    pub plaintext_bytes: u64,
    /// Hex sha256 of the plaintext (the JSON of [`BundleData`]).
    pub plaintext_sha256: String,
    pub kdf: Kdf,
    /// Hex, the STREAM construction's 7-byte nonce prefix.
    pub nonce: String,
}

/// A component's bytes, named by their sha256.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentBlob {
    pub sha256: String,
    #[serde(with = "crate::store::export::b64")]
    pub wasm: Vec<u8>,
}

/// The plaintext of a bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BundleData {
    pub rows: ExportRows,
    /// One per distinct sha256 among the bundle's feature versions.
    pub components: Vec<ComponentBlob>,
}

fn derive(key: &ExportKey, kdf: &Kdf) -> Result<[u8; 32], ExportError> {
    let damaged = |why: String| ExportError::Damaged(format!("key derivation settings: {why}"));
    if kdf.algorithm != "argon2id"
        || kdf.memory_kib > KDF_MAX_MEMORY_KIB
        || kdf.iterations > KDF_MAX_ITERATIONS
        || kdf.parallelism != 1
    {
        return Err(damaged(format!(
            "{} m={} t={} p={} is not what this version writes",
            kdf.algorithm, kdf.memory_kib, kdf.iterations, kdf.parallelism
        )));
    }
    let salt = hex::decode(&kdf.salt).map_err(|e| damaged(e.to_string()))?;
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| damaged(e.to_string()))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(key.0.as_bytes(), &salt, &mut out)
        .map_err(|e| damaged(e.to_string()))?;
    Ok(out)
}

fn key_check(key: &[u8; 32]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(KEY_CHECK);
    mac.finalize().into_bytes().into()
}

/// Encrypts `data` into a bundle. Blocking (key stretching, encryption): run
/// it off the async workers.
pub fn seal(
    data: &BundleData,
    kind: BundleKind,
    tenant_id: &str,
    guild_id: Option<u64>,
    key: &ExportKey,
) -> Result<Vec<u8>, ExportError> {
    let plaintext = serde_json::to_vec(data).map_err(anyhow::Error::from)?;
    let mut counts = data.rows.counts();
    counts.insert("components".into(), data.components.len() as u64);
    let salt: [u8; 16] = rand::random();
    let nonce: [u8; 7] = rand::random();
    let header = Header {
        format: FORMAT_VERSION,
        schema: crate::store::schema_version(),
        kind,
        tenant_id: tenant_id.to_string(),
        guild_id: guild_id.map(|g| g.to_string()),
        created_at: chrono::Utc::now(),
        counts,
        plaintext_bytes: plaintext.len() as u64,
        plaintext_sha256: hex::encode(Sha256::digest(&plaintext)),
        kdf: Kdf {
            algorithm: "argon2id".into(),
            salt: hex::encode(salt),
            memory_kib: KDF_MEMORY_KIB,
            iterations: KDF_ITERATIONS,
            parallelism: 1,
        },
        nonce: hex::encode(nonce),
    };
    let header_json = serde_json::to_vec(&header).map_err(anyhow::Error::from)?;
    let key_bytes = derive(key, &header.kdf)?;
    let aead = ChaCha20Poly1305::new(&Key::from(key_bytes));
    let mut stream = EncryptorBE32::from_aead(aead, (&nonce).into());
    let mut out = Vec::with_capacity(plaintext.len() + plaintext.len() / CHUNK * TAG + 1024);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header_json.len() as u32).to_be_bytes());
    out.extend_from_slice(&header_json);
    out.extend_from_slice(&key_check(&key_bytes));
    let failed = |_| anyhow::anyhow!("encryption failed");
    // The plaintext is JSON, never empty: there is always a last chunk.
    let mut chunks = plaintext.chunks(CHUNK).peekable();
    while let Some(chunk) = chunks.next() {
        let payload = Payload {
            msg: chunk,
            aad: &header_json,
        };
        if chunks.peek().is_some() {
            out.extend_from_slice(&stream.encrypt_next(payload).map_err(failed)?);
        } else {
            out.extend_from_slice(&stream.encrypt_last(payload).map_err(failed)?);
            break;
        }
    }
    Ok(out)
}

/// The header of a bundle, and where its key check starts. Refuses what is
/// not a bundle, a damaged header, and a bundle from a newer version.
pub fn read_header(bundle: &[u8]) -> Result<(Header, usize), ExportError> {
    if bundle.len() < MAGIC.len() + 4 || &bundle[..MAGIC.len()] != MAGIC {
        return Err(ExportError::NotABundle);
    }
    let len = u32::from_be_bytes(bundle[8..12].try_into().expect("four bytes")) as usize;
    if len > MAX_HEADER || bundle.len() < 12 + len {
        return Err(ExportError::Damaged("the header is cut short".into()));
    }
    let header: Header = serde_json::from_slice(&bundle[12..12 + len])
        .map_err(|e| ExportError::Damaged(format!("the header cannot be read: {e}")))?;
    let ours = crate::store::schema_version();
    if header.format > FORMAT_VERSION || header.schema > ours {
        return Err(ExportError::Newer {
            format: header.format,
            schema: header.schema,
            our_schema: ours,
        });
    }
    Ok((header, 12 + len))
}

/// Decrypts and checks a bundle. Blocking, like [`seal`].
pub fn open(bundle: &[u8], key: &ExportKey) -> Result<(Header, BundleData), ExportError> {
    let (header, body) = read_header(bundle)?;
    let header_json = &bundle[12..body];
    let Some(check) = bundle.get(body..body + 32) else {
        return Err(ExportError::Damaged("the bundle is cut short".into()));
    };
    let key_bytes = derive(key, &header.kdf)?;
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &key_check(&key_bytes)[..],
        check,
    )) {
        return Err(ExportError::WrongKey);
    }
    let nonce: [u8; 7] = hex::decode(&header.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| ExportError::Damaged("the header's nonce cannot be read".into()))?;
    let aead = ChaCha20Poly1305::new(&Key::from(key_bytes));
    let mut stream = DecryptorBE32::from_aead(aead, (&nonce).into());
    let ciphertext = &bundle[body + 32..];
    if ciphertext.len() < TAG {
        return Err(ExportError::Damaged("the bundle is cut short".into()));
    }
    let mut plaintext =
        Vec::with_capacity(header.plaintext_bytes.min(bundle.len() as u64) as usize);
    let mut chunks = ciphertext.chunks(CHUNK + TAG).enumerate().peekable();
    while let Some((n, chunk)) = chunks.next() {
        let payload = Payload {
            msg: chunk,
            aad: header_json,
        };
        let damaged = |_| {
            ExportError::Damaged(format!(
                "chunk {n} does not authenticate (changed, cut short, or out of place)"
            ))
        };
        if chunks.peek().is_none() {
            plaintext.extend_from_slice(&stream.decrypt_last(payload).map_err(damaged)?);
            break;
        }
        plaintext.extend_from_slice(&stream.decrypt_next(payload).map_err(damaged)?);
    }
    if hex::encode(Sha256::digest(&plaintext)) != header.plaintext_sha256 {
        return Err(ExportError::Damaged(
            "the data does not match the header's sha256".into(),
        ));
    }
    let data: BundleData = serde_json::from_slice(&plaintext)
        .map_err(|e| ExportError::Damaged(format!("the data cannot be read: {e}")))?;
    Ok((header, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(filler: usize) -> BundleData {
        let mut rows = ExportRows::default();
        rows.feature_kv.push(crate::store::export::KvRow {
            guild_id: 1,
            feature_id: "notes".into(),
            key: "k".into(),
            value: "v".repeat(filler),
        });
        BundleData {
            rows,
            components: vec![ComponentBlob {
                sha256: "00".into(),
                wasm: vec![0, 1, 2, 255],
            }],
        }
    }

    fn key(text: &str) -> ExportKey {
        ExportKey::passphrase(text).unwrap()
    }

    #[test]
    fn a_bundle_opens_with_its_passphrase_only() {
        // Three chunks and a bit: the STREAM's middle and last chunks are used.
        let data = data(3 * CHUNK + 10);
        let sealed = seal(
            &data,
            BundleKind::Tenant,
            "t",
            None,
            &key("correct horse battery"),
        )
        .unwrap();
        let (header, opened) = open(&sealed, &key("correct horse battery")).unwrap();
        assert_eq!(opened, data);
        assert_eq!(header.counts["feature_kv"], 1);
        assert!(matches!(
            open(&sealed, &key("wrong horse battery")),
            Err(ExportError::WrongKey)
        ));
    }

    #[test]
    fn cut_changed_and_foreign_bundles_are_refused() {
        let k = key("correct horse battery");
        let sealed = seal(&data(2 * CHUNK), BundleKind::Guild, "t", Some(7), &k).unwrap();
        // Cut at a chunk boundary: every remaining chunk authenticates, but
        // the last one is not flagged as last.
        let (_, body) = read_header(&sealed).unwrap();
        let boundary = body + 32 + 2 * (CHUNK + TAG);
        for cut in [sealed.len() - 1, boundary, 40] {
            assert!(
                matches!(open(&sealed[..cut], &k), Err(ExportError::Damaged(_))),
                "cut at {cut}"
            );
        }
        let mut tampered = sealed.clone();
        let at = tampered.len() - 100;
        tampered[at] ^= 1;
        assert!(matches!(open(&tampered, &k), Err(ExportError::Damaged(_))));
        assert!(matches!(
            open(b"PK\x03\x04 not ours", &k),
            Err(ExportError::NotABundle)
        ));
    }

    #[test]
    fn short_passphrases_are_refused() {
        assert!(matches!(
            ExportKey::passphrase("short"),
            Err(ExportError::WeakPassphrase)
        ));
        assert_eq!(
            format!("{:?}", key("a long secret passphrase")),
            "ExportKey(…)"
        );
    }
}
