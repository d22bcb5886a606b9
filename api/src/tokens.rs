//! Session tokens. Access tokens are short-lived HS256 JWTs (`sub`, `sid`, `iat`, `exp`, `iss`, all
//! required; signature, `exp` and `iss` checked by jsonwebtoken, `iat` by us). `sid` names the login
//! session (the refresh-token family), so that logging out or a detected refresh-token reuse
//! revokes the access tokens of that session too, within seconds (see `sessions.rs`). Refresh
//! tokens are opaque random strings stored only as SHA-256 hashes (see
//! `ferrocast_core::db::refresh_tokens` for rotation and reuse detection).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Seconds of clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    /// The login session: the family id of its refresh tokens.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    ttl_secs: u64,
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: String, ttl_secs: u64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer.as_str()]);
        validation.set_required_spec_claims(&["sub", "iat", "exp", "iss"]);
        validation.leeway = LEEWAY_SECS;
        Self { encoding: EncodingKey::from_secret(secret), decoding: DecodingKey::from_secret(secret), validation, issuer, ttl_secs }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    pub fn issue(&self, user_id: &str, session_id: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user_id.to_string(),
            sid: session_id.to_string(),
            iat: now,
            exp: now + self.ttl_secs as i64,
            iss: self.issuer.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of a valid token. Any other algorithm (including `none`), a bad signature, a
    /// wrong issuer, a missing claim, an expired token or one issued in the future is `None`.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?.claims;
        // jsonwebtoken 9 only checks that `iat` is present (required_spec_claims); it never compares
        // it with the clock. A token "issued" in the future was not issued by us.
        if claims.iat > chrono::Utc::now().timestamp() + LEEWAY_SECS as i64 {
            return None;
        }
        Some(claims)
    }
}

/// A new opaque refresh token and the hash the database keeps.
pub fn new_refresh_token() -> (String, String) {
    let token = format!("rt_{}", ferrocast_core::stream_key::random_hex(32));
    let hash = hash_refresh_token(&token);
    (token, hash)
}

/// A password reset link's secret and the hash stored of it.
pub fn new_reset_token() -> (String, String) {
    let token = format!("pr_{}", ferrocast_core::stream_key::random_hex(32));
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    // Same construction as stream keys: a full-entropy secret needs no slow hash.
    ferrocast_core::stream_key::hash(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", "http://localhost:8080".into(), 60);
        let token = keys.issue("user-1", "session-1").expect("issue");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!((claims.sub.as_str(), claims.sid.as_str()), ("user-1", "session-1"));
        let other_issuer = JwtKeys::new(b"0123456789abcdef0123456789abcdef", "https://elsewhere".into(), 60);
        assert!(other_issuer.verify(&token).is_none());
        let other_secret = JwtKeys::new(b"another-secret-another-secret-xx", "http://localhost:8080".into(), 60);
        assert!(other_secret.verify(&token).is_none());
    }

    #[test]
    fn tokens_issued_in_the_future_are_refused() {
        let secret = b"0123456789abcdef0123456789abcdef";
        let keys = JwtKeys::new(secret, "http://localhost:8080".into(), 60);
        let sign = |iat: i64| {
            let claims =
                Claims { sub: "user-1".into(), sid: "session-1".into(), iat, exp: iat + 3600, iss: "http://localhost:8080".into() };
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret)).expect("encode")
        };
        let now = chrono::Utc::now().timestamp();
        assert!(keys.verify(&sign(now + 3600)).is_none(), "an hour ahead");
        assert!(keys.verify(&sign(now + LEEWAY_SECS as i64 + 30)).is_none(), "beyond the leeway");
        assert!(keys.verify(&sign(now + 2)).is_some(), "within the leeway");
        assert!(keys.verify(&sign(now - 60)).is_some());
    }
}
