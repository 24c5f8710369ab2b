//! Argon2id password hashes with OWASP's parameters (19 MiB, 2 passes, 1 lane), the
//! defaults of the `argon2` crate. Hashing takes tens of milliseconds of CPU, so it
//! runs on tokio's blocking threads, and at most one hash per spare core at a time: a
//! burst of logins queues here instead of starving the requests that need no hash.

use std::sync::LazyLock;

use argon2::password_hash::Error as HashError;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::domain::Password;
use crate::error::Error;

/// Hashes running at once: every core but one, so one core stays for everything else.
static HASHING_PERMITS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    Semaphore::new(cores.saturating_sub(1).max(1))
});

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) to store.
pub async fn hash_password(password: Password) -> Result<String, Error> {
    run_hashing(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(Error::internal)
    })
    .await
}

/// Whether `password` matches the stored PHC string `hash`.
pub async fn verify_password(password: Password, hash: String) -> Result<bool, Error> {
    run_hashing(move || {
        // The parameters come from the stored string, so older hashes still verify.
        match Argon2::default().verify_password(password.expose().as_bytes(), hash.as_str()) {
            Ok(()) => Ok(true),
            Err(HashError::PasswordInvalid) => Ok(false),
            Err(error) => Err(Error::internal(error)),
        }
    })
    .await
}

async fn run_hashing<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let _permit = HASHING_PERMITS.acquire().await.map_err(Error::internal)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(Error::internal)?
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
    async fn equal_passwords_get_different_salts() {
        let password = Password::parse("correct horse battery").unwrap();
        let first = hash_password(password.clone()).await.unwrap();
        let second = hash_password(password).await.unwrap();
        assert_ne!(first, second);
    }
}
