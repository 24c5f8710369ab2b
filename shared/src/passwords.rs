//! Argon2id password hashes with OWASP's parameters (19 MiB, 2 passes, 1 lane), the
//! defaults of the `argon2` crate. Hashing takes tens of milliseconds of CPU, so it
//! runs on tokio's blocking threads, at most one hash per spare core at a time, and at
//! most a few hashes per core wait for one: a burst of sign-ups or logins queues here
//! instead of starving the requests that need no hash, and a flood beyond the queue is
//! refused at once (503 with `Retry-After`) instead of waiting without bound.

use std::sync::{Arc, LazyLock};

use argon2::password_hash::Error as HashError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::domain::Password;

/// Why no hash was made or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// More hashes are running and waiting than may (a flood); retry in a moment.
    #[error("the password hashing queue is full")]
    Overloaded,
    #[error("password hashing failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PasswordError {
    fn failed(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Failed(cause.into())
    }
}

/// Hashes that may wait for each running one. A hash takes 20 to 50 ms, so a request
/// let in waits at most about 400: a login stays usable while a flood is refused. On
/// two cores (one hashing) that admits the 8 concurrent logins of `./scripts/bench
/// rest`, and refuses most of its 64 concurrent sign-ups.
const WAITING_HASHES_PER_RUNNING: usize = 8;

/// Hashes running at once: every core but one, so one core stays for everything else.
static HASHING: LazyLock<HashingGate> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    HashingGate::new(cores.saturating_sub(1).max(1), WAITING_HASHES_PER_RUNNING)
});

/// Bounds hashing: `running` hashes at once on the blocking threads, and as many
/// admitted in all as run or wait; a hash beyond that is refused.
struct HashingGate {
    admitted: Arc<Semaphore>,
    running: Arc<Semaphore>,
}

impl HashingGate {
    fn new(running: usize, waiting_per_running: usize) -> Self {
        Self {
            admitted: Arc::new(Semaphore::new(running * (1 + waiting_per_running))),
            running: Arc::new(Semaphore::new(running)),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
    ) -> Result<T, PasswordError> {
        let admission = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| PasswordError::Overloaded)?;
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(PasswordError::failed)?;
        // The permits go with the work: should the request be dropped, the hash still
        // runs to its end on its thread and holds its place until then.
        tokio::task::spawn_blocking(move || {
            let _permits = (admission, permit);
            work()
        })
        .await
        .map_err(PasswordError::failed)?
    }
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) to store.
pub async fn hash_password(password: Password) -> Result<String, PasswordError> {
    HASHING
        .run(move || {
            Argon2::default()
                .hash_password(password.expose().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(PasswordError::failed)
        })
        .await
}

/// Whether `password` matches the stored PHC string `hash`.
pub async fn verify_password(password: Password, hash: String) -> Result<bool, PasswordError> {
    HASHING
        .run(move || {
            // The parameters come from the stored string, so older hashes still verify.
            match Argon2::default().verify_password(password.expose().as_bytes(), hash.as_str()) {
                Ok(()) => Ok(true),
                Err(HashError::PasswordInvalid) => Ok(false),
                Err(error) => Err(PasswordError::failed(error)),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let password = Password::parse("correct horse battery").unwrap();
        let hash = hash_password(password.clone()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password(password, hash.clone()).await.unwrap());
        let wrong = Password::parse("incorrect horse battery").unwrap();
        assert!(!verify_password(wrong, hash).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_beyond_the_running_and_waiting_ones_are_refused_at_once() {
        let gate = Arc::new(HashingGate::new(1, 1));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move {
                gate.run(move || {
                    released.recv().map_err(PasswordError::failed)?;
                    Ok(1)
                })
                .await
            }
        });
        while gate.running.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.run(|| Ok(2)).await }
        });
        while gate.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let refused = gate.run(|| Ok(3)).await;
        assert!(
            matches!(refused, Err(PasswordError::Overloaded)),
            "{refused:?}"
        );
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap().unwrap(), 1);
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
        assert_eq!(gate.run(|| Ok(4)).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn equal_passwords_get_different_salts() {
        let password = Password::parse("correct horse battery").unwrap();
        let first = hash_password(password.clone()).await.unwrap();
        let second = hash_password(password).await.unwrap();
        assert_ne!(first, second);
    }
}
