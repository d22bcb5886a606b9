//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane: the
//! `argon2` crate's defaults). Hashing takes tens of milliseconds of CPU, so it always runs on the
//! blocking pool, never on the async runtime's threads.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

use crate::error::ApiError;

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for a new password.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await.map_err(ApiError::internal)?.map_err(ApiError::internal)
}

/// Checks `password` against `stored`. With no stored hash (unknown user) it verifies against a
/// throw-away hash instead, so both failures cost the same time and cannot be told apart.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let stored = match &stored {
            Some(hash) => hash.as_str(),
            None => dummy_hash(),
        };
        let parsed = PasswordHash::new(stored).map_err(ApiError::internal)?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(matches && stored != dummy_hash())
    })
    .await
    .map_err(ApiError::internal)?
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        hash_blocking(&format!("{random:?}")).unwrap_or_else(|_| {
            String::from("$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn right_password_verifies_and_wrong_or_unknown_does_not() {
        let stored = hash("correct horse".to_string()).await.expect("hash");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse".to_string(), Some(stored.clone())).await.expect("verify"));
        assert!(!verify("wrong horse".to_string(), Some(stored)).await.expect("verify"));
        assert!(!verify("correct horse".to_string(), None).await.expect("verify"));
    }
}
