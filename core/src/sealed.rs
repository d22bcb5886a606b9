//! Secrets the server must read back but never show: sealed with ChaCha20-Poly1305 under a key
//! derived from the server secret (`auth.jwt_secret`, shared by every node), so a copy of the
//! database alone reveals nothing. Used for restream target URLs, which hold other platforms'
//! stream keys. Changing the server secret makes what was sealed unreadable (the owner enters the
//! URL again); nothing here logs or formats a secret.

use hmac::{Hmac, Mac};
use rand::RngCore;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use sha2::Sha256;

/// Seals and opens one kind of secret; `purpose` separates the keys of different kinds.
pub struct SealingKey {
    key: LessSafeKey,
}

impl SealingKey {
    pub fn derive(server_secret: &[u8], purpose: &str) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(server_secret).expect("HMAC takes a key of any length");
        mac.update(b"ferrocast sealing key v1\0");
        mac.update(purpose.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes).expect("a 32-byte key fits ChaCha20-Poly1305");
        Self { key: LessSafeKey::new(key) }
    }

    /// `plaintext` sealed under a fresh random nonce, as hex (nonce, then ciphertext and tag).
    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut sealed = plaintext.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed)
            .expect("ChaCha20-Poly1305 seals any message shorter than 256 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        hex::encode(out)
    }

    /// What [`seal`](Self::seal) sealed, or `None` when it was sealed under another key or altered.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = hex::decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plaintext = self.key.open_in_place(nonce, Aad::empty(), &mut body).ok()?;
        String::from_utf8(plaintext.to_vec()).ok()
    }
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_purpose() {
        let key = SealingKey::derive(b"server secret", "restream urls");
        let url = "rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl";
        let sealed = key.seal(url);
        assert!(!sealed.contains("abcd") && sealed != key.seal(url), "hidden and never the same twice");
        assert_eq!(key.open(&sealed).as_deref(), Some(url));
        assert_eq!(SealingKey::derive(b"another secret", "restream urls").open(&sealed), None);
        assert_eq!(SealingKey::derive(b"server secret", "other purpose").open(&sealed), None);
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        assert_eq!(key.open(&String::from_utf8(altered).expect("hex")), None);
        assert_eq!(key.open("zz"), None);
        assert_eq!(key.open(""), None);
    }
}
