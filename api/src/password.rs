//! Password hashing with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane: the
//! `argon2` crate's defaults). Hashing takes tens of milliseconds of CPU, so it always runs on the
//! blocking pool, never on the async runtime's threads, and at most one hash per CPU runs at a
//! time: a burst of logins waits for a permit instead of starting hundreds of 19 MiB hashes.

use std::num::NonZeroUsize;
use std::sync::{Arc, Once, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;

use tokio::sync::Semaphore;

use crate::error::ApiError;

/// One permit per CPU, shared by every hash and verification in the process.
fn hashing_permits() -> Arc<Semaphore> {
    static PERMITS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    PERMITS.get_or_init(|| Arc::new(Semaphore::new(std::thread::available_parallelism().map_or(1, NonZeroUsize::get)))).clone()
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
    Ok(Argon2::default().hash_password(password.as_bytes(), &salt)?.to_string())
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
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
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

    #[tokio::test]
    async fn a_burst_never_runs_more_hashes_than_permits() {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
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
