//! Stream keys: the secret a streamer pastes into OBS.
//!
//! A key is 160 random bits, shown to its owner once. The database keeps only its SHA-256: the key
//! already carries full entropy, so a fast hash is enough and keeps the publish lookup to one indexed
//! equality query. A key must never be logged; nothing in this module formats one.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A newly minted key: `plain` goes to the owner once, `hash` goes to the database.
pub struct NewStreamKey {
    pub plain: String,
    pub hash: String,
}

/// Mints a new key (`live_` followed by 40 hex digits).
pub fn generate() -> NewStreamKey {
    let plain = format!("live_{}", random_hex(20));
    let hash = hash(&plain);
    NewStreamKey { plain, hash }
}

/// `bytes` bytes from the OS random source, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The stored form of a presented key.
pub fn hash(presented: &str) -> String {
    hex::encode(Sha256::digest(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_hash_to_their_stored_form() {
        let a = generate();
        let b = generate();
        assert_ne!(a.plain, b.plain);
        for key in [&a.plain, &b.plain] {
            let hex = key.strip_prefix("live_").unwrap_or_else(|| panic!("{key} starts with live_"));
            assert!(hex.len() == 40 && hex.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "40 lowercase hex: {key}");
        }
        assert_eq!(hash(&a.plain), a.hash);
        assert_ne!(a.hash, b.hash);
    }
}
