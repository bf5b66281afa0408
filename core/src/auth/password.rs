//! Password hashing with argon2id, run on blocking threads with bounded concurrency so a
//! burst of sign-ins cannot starve the async runtime or exhaust memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::anyhow;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::{Error, Result};

/// Memory cost in KiB (19 MiB, OWASP's minimum for argon2id).
const MEMORY_KIB: u32 = 19 * 1024;
/// Iterations.
const ITERATIONS: u32 = 2;

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, 1, None).map_err(|e| anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A password as typed: 8 to 128 characters, no composition rules.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Accepts a candidate new password.
    pub fn parse(raw: String) -> Result<Self> {
        let length = raw.chars().count();
        if !(8..=128).contains(&length) {
            return Err(Error::invalid("invalid_password", "password must be 8 to 128 characters long"));
        }
        Ok(Self(raw.into()))
    }

    /// Wraps a password offered for verification, which is never length-checked (so the
    /// check reveals nothing about the stored one).
    pub fn offered(raw: String) -> Self {
        Self(raw.into())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// How long a password check may wait for a CPU before the caller is told to come back.
const MAX_WAIT: Duration = Duration::from_secs(5);

/// Password checks allowed to wait per CPU; more are refused at once.
const WAITING_PER_CPU: usize = 64;

/// Hashes and verifies passwords off the async runtime, at most one per CPU at a time. New
/// hashes (sign-up, password changes) may hold only some of the CPUs, so a sign-up flood
/// cannot starve sign-ins; waiting is bounded in time and in length, past which callers get
/// 503 with `Retry-After`.
#[derive(Clone)]
pub struct PasswordHasher {
    cpus: Arc<Semaphore>,
    hashing: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl PasswordHasher {
    /// A hasher allowing one concurrent hash per available CPU, new hashes on half of them.
    pub fn new() -> Self {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self::with_cpus(cpus)
    }

    fn with_cpus(cpus: usize) -> Self {
        Self {
            cpus: Arc::new(Semaphore::new(cpus)),
            hashing: Arc::new(Semaphore::new((cpus / 2).max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: cpus * WAITING_PER_CPU,
        }
    }

    /// Hashes a new password into PHC format.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let _share = self.acquire(&self.hashing).await?;
        let secret = password.0.clone();
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()?
                .hash_password(secret.expose_secret().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| Error::Internal(anyhow!("hashing failed: {e}")))
        })
        .await
    }

    /// Verifies `password` against `stored`; with no stored hash (unknown account) it verifies
    /// against a dummy hash so both cases take the same time, and answers false.
    pub async fn verify(&self, password: &Password, stored: Option<String>) -> Result<bool> {
        let secret = password.0.clone();
        self.run(move || {
            let known = stored.is_some();
            let stored = match stored {
                Some(hash) => hash,
                None => dummy_hash()?.to_owned(),
            };
            let parsed =
                PasswordHash::new(&stored).map_err(|e| Error::Internal(anyhow!("stored hash unreadable: {e}")))?;
            let matches = argon2()?.verify_password(secret.expose_secret().as_bytes(), &parsed).is_ok();
            Ok(known && matches)
        })
        .await
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
        let _cpu = self.acquire(&self.cpus).await?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| Error::Internal(anyhow!("password hashing thread failed: {e}")))?
    }

    /// A permit of `slots`, waiting at most [`MAX_WAIT`] behind at most `max_waiting` others.
    async fn acquire<'a>(&self, slots: &'a Semaphore) -> Result<SemaphorePermit<'a>> {
        if let Ok(permit) = slots.try_acquire() {
            return Ok(permit);
        }
        let busy = || Error::unavailable("the server is busy checking passwords; try again shortly", 1);
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(busy());
        }
        let permit = tokio::time::timeout(MAX_WAIT, slots.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match permit {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(Error::Internal(anyhow!("password hasher closed: {closed}"))),
            Err(_) => Err(busy()),
        }
    }
}

fn dummy_hash() -> Result<&'static str> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2()?
        .hash_password(b"tasklane-dummy-password-for-timing", &salt)
        .map_err(|e| Error::Internal(anyhow!("dummy hash: {e}")))?
        .to_string();
    Ok(DUMMY.get_or_init(|| hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_use_argon2id_with_strong_parameters() {
        let hasher = PasswordHasher::new();
        let password = Password::parse("correct horse battery".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(hasher.verify(&password, Some(hash.clone())).await.unwrap());
        assert!(!hasher.verify(&Password::offered("wrong password".into()), Some(hash)).await.unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
    }

    #[tokio::test]
    async fn new_hashes_leave_a_cpu_for_checks_and_a_full_queue_is_refused() {
        let hasher = PasswordHasher::with_cpus(2);
        // Sign-ups hold the hashing share (one of two CPUs): a check still gets the other at once.
        let _share = hasher.hashing.try_acquire().unwrap();
        assert!(hasher.cpus.try_acquire().is_ok());
        // Every CPU busy and the queue full: refused at once with 503, not queued.
        let _cpus = hasher.cpus.try_acquire_many(2).unwrap();
        hasher.waiting.store(hasher.max_waiting, Ordering::SeqCst);
        let started = std::time::Instant::now();
        let err = hasher.verify(&Password::offered("x".into()), None).await.unwrap_err();
        assert!(matches!(
            err,
            Error::Client { kind: crate::error::ErrorKind::Unavailable, retry_after_secs: Some(1), .. }
        ));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn password_length_is_bounded() {
        assert!(Password::parse("short".into()).is_err());
        assert!(Password::parse("x".repeat(129)).is_err());
        assert!(Password::parse("한국어비밀번호입니다".into()).is_ok());
    }
}
