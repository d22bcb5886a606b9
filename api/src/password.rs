//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane: the
//! `argon2` crate's defaults). Hashing takes tens of milliseconds of CPU, so it always runs on the
//! blocking pool, never on the async runtime's threads, and at most one hash per CPU runs at a
//! time: a burst of logins waits for a permit instead of starting hundreds of 19 MiB hashes.
//!
//! The 19 MiB come from `transient_buffer` rather than from the `argon2` crate: allocated as the
//! crate does it, one hash raised glibc's thresholds for the whole process, and the server kept
//! 40 MB more (see `ferrocast_core::transient_buffer`).

use std::sync::{Arc, Once, OnceLock};

use argon2::password_hash::{self, Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use ferrocast_core::transient_buffer::transient_buffer;
use rand::RngCore;

use tokio::sync::Semaphore;

use crate::error::ApiError;

/// One permit per CPU, shared by every hash and verification in the process.
fn hashing_permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(ferrocast_core::cores::available()))).clone()
}

/// Runs `work` on the blocking pool once a hashing permit is free. The permit moves into the
/// blocking task, so a request that is abandoned meanwhile still cannot push more hashes than
/// permits onto the CPUs.
async fn with_permit<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let permit = hashing_permits().acquire_owned().await.map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(move || {
        let result = work();
        drop(permit);
        result
    })
    .await
    .map_err(ApiError::internal)
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(OwnMemoryArgon2.hash_password(password.as_bytes(), &salt)?.to_string())
}

/// argon2 (id by default, any variant and version a stored hash names) computed in memory from
/// `transient_buffer`. Hashing and verifying both go through `hash_password_customized`.
struct OwnMemoryArgon2;

impl PasswordHasher for OwnMemoryArgon2 {
    type Params = Params;

    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm.map(Algorithm::try_from).transpose()?.unwrap_or_default();
        let version = version.map(Version::try_from).transpose()?.unwrap_or_default();
        let salt = salt.into();
        let mut salt_buffer = [0u8; Salt::MAX_LENGTH];
        let salt_bytes = salt.decode_b64(&mut salt_buffer)?;
        let hasher = Argon2::new(algorithm, version, params.clone());
        let output = Output::init_with(params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN), |out| {
            let memory = transient_buffer(params.block_count(), Block::default());
            Ok(hasher.hash_password_into_with_memory(password, salt_bytes, out, memory)?)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for a new password.
pub async fn hash(password: String) -> Result<String, ApiError> {
    with_permit(move || hash_blocking(&password)).await?.map_err(ApiError::internal)
}

/// Checks `password` against `stored`. With no stored hash (unknown user) it verifies against a
/// throw-away hash instead, so both failures cost the same time and cannot be told apart.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    with_permit(move || {
        let stored = match &stored {
            Some(hash) => hash.as_str(),
            None => dummy_hash(),
        };
        let parsed = PasswordHash::new(stored).map_err(ApiError::internal)?;
        let matches = OwnMemoryArgon2.verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(matches && stored != dummy_hash())
    })
    .await?
}

/// Computes the throw-away hash on a thread of its own, once per process, so the first login for
/// an unknown account does not pay for it (and stand out by its timing).
pub fn warm_up() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new().name("argon2-warm-up".into()).spawn(|| {
            dummy_hash();
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot warm up the password hasher; the first unknown-account login will");
        }
    });
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

    /// Accounts made before hashing moved to our own memory keep their passwords, and ours stay
    /// readable by the crate's own verifier: the same algorithm, byte for byte.
    #[tokio::test]
    async fn hashes_match_the_argon2_crates_own_both_ways() {
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("salt");
        let theirs = Argon2::default().hash_password(b"correct horse", &salt).expect("hash").to_string();
        let ours = OwnMemoryArgon2.hash_password(b"correct horse", &salt).expect("hash").to_string();
        assert_eq!(ours, theirs);
        assert!(verify("correct horse".to_string(), Some(theirs)).await.expect("verify"));
        let stored = hash("battery staple".to_string()).await.expect("hash");
        let parsed = PasswordHash::new(&stored).expect("parse");
        assert!(Argon2::default().verify_password(b"battery staple", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"battery stable", &parsed).is_err());
    }

    #[tokio::test]
    async fn a_burst_never_runs_more_hashes_than_permits() {
        let cpus = ferrocast_core::cores::available();
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..cpus * 4)
            .map(|_| {
                let (running, peak) = (running.clone(), peak.clone());
                tokio::spawn(with_permit(move || {
                    let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }))
            })
            .collect();
        for task in tasks {
            task.await.expect("task").expect("ran");
        }
        let peak = peak.load(std::sync::atomic::Ordering::SeqCst);
        assert!(peak >= 1 && peak <= cpus, "at most one per CPU: {peak}");
    }
}
