//! Expiring playback tokens for private and unlisted videos.
//!
//! A token is `{expiry_unix_secs}.{base64url(HMAC-SHA256(key, video_id ":" generation ":" expiry))}`.
//! The API issues one to whoever may watch; the origin checks it on every playlist and segment
//! request, and the playlists carry it onto each URI they list. `generation` is the video's playback
//! generation, bumped whenever its visibility changes: every token issued before stops working at
//! once, on every node (the origin reads the generation with the video's row). The key is derived
//! from the server secret with its own label, so a playback token can never pass as anything else.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct PlaybackKey {
    key: Vec<u8>,
}

impl PlaybackKey {
    pub fn derive(server_secret: &[u8]) -> Self {
        let mut mac = HmacSha256::new_from_slice(server_secret).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"ferrocast playback token v2");
        Self { key: mac.finalize().into_bytes().to_vec() }
    }

    fn mac(&self, video_id: &str, generation: i64, expires: i64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(format!("{video_id}:{generation}:{expires}").as_bytes());
        mac
    }

    /// A token for generation `generation` of `video_id`, valid until `expires` (unix seconds).
    pub fn issue(&self, video_id: &str, generation: i64, expires: i64) -> String {
        let tag = self.mac(video_id, generation, expires).finalize().into_bytes();
        format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// A tag vouching that an origin node saw `viewer` (a client address) ask for a live stream it
    /// passes to the ingest node, which counts that viewer instead of the origin. Only nodes that
    /// share the server secret can make one.
    pub fn viewer_tag(&self, viewer: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(format!("viewer\0{viewer}").as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `tag` is [`PlaybackKey::viewer_tag`] of `viewer` (compared in constant time).
    pub fn verify_viewer_tag(&self, viewer: &str, tag: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        let mut mac = HmacSha256::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(format!("viewer\0{viewer}").as_bytes());
        mac.verify_slice(&tag).is_ok()
    }

    /// Whether `token` was issued for `video_id` at its current `generation` and is still valid at
    /// `now` (unix seconds). The comparison of the tag is constant-time.
    pub fn verify(&self, video_id: &str, generation: i64, token: &str, now: i64) -> bool {
        let Some((expires, tag)) = token.split_once('.') else { return false };
        let Ok(expires) = expires.parse::<i64>() else { return false };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else { return false };
        expires > now && self.mac(video_id, generation, expires).verify_slice(&tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_video_and_expiry() {
        let key = PlaybackKey::derive(b"server secret, at least 32 bytes long");
        let token = key.issue("video-a", 0, 2000);
        assert!(key.verify("video-a", 0, &token, 1999));
        assert!(!key.verify("video-a", 0, &token, 2000), "expired");
        assert!(!key.verify("video-b", 0, &token, 1000), "other video");
        assert!(!key.verify("video-a", 1, &token, 1000), "revoked by a visibility change");
        let extended = token.replacen("2000", "9999", 1);
        assert!(!key.verify("video-a", 0, &extended, 1000), "expiry cannot be edited");
        assert!(!PlaybackKey::derive(b"another secret").verify("video-a", 0, &token, 1000));
        for junk in ["", ".", "2000.", "abc.def", "2000.!!!"] {
            assert!(!key.verify("video-a", 0, junk, 1000), "{junk}");
        }
        let tag = key.viewer_tag("203.0.113.7");
        assert!(key.verify_viewer_tag("203.0.113.7", &tag));
        assert!(!key.verify_viewer_tag("203.0.113.8", &tag), "another address");
        assert!(!PlaybackKey::derive(b"another secret").verify_viewer_tag("203.0.113.7", &tag));
    }
}
