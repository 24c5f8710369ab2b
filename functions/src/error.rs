//! The one error type of the REST API and its one mapping to `{"details": …}`
//! responses. Causes of 5xx errors are logged with the step that failed, never sent to
//! the client.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sensorium_shared::credentials::CredentialsError;
use sensorium_shared::error::{ErrorChain, is_transient};
use sensorium_shared::passwords::PasswordError;

type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Validation of path, query or body failed; the reason is logged at debug level.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("conflict")]
    Conflict,
    #[error("payload too large")]
    PayloadTooLarge,
    /// The client is throttled (too many failed logins) for this many more seconds.
    #[error("too many requests; retry after {retry_after_seconds} s")]
    TooManyRequests { retry_after_seconds: u64 },
    /// The deployment lacks what the route needs (a broker that manages credentials).
    #[error("not implemented")]
    NotImplemented,
    /// A dependency (the database) is unreachable or overloaded; retrying may succeed.
    #[error("service unavailable")]
    Unavailable(#[source] Cause),
    /// This process has more work of a bounded kind (password hashing) queued than it
    /// can finish soon; refused at once, so that the queue cannot grow without end.
    /// Expected under a flood, so not logged as an error.
    #[error("overloaded: {0}")]
    Overloaded(&'static str),
    #[error("internal error")]
    Internal(#[source] Cause),
}

/// The step of a handler an error happened in, shown before its cause in the log.
#[derive(Debug, thiserror::Error)]
#[error("{step}")]
struct Step {
    step: &'static str,
    #[source]
    cause: Cause,
}

impl Error {
    pub fn bad_request(reason: impl std::fmt::Display) -> Self {
        Self::BadRequest(reason.to_string())
    }

    pub fn internal(cause: impl Into<Cause>) -> Self {
        Self::Internal(cause.into())
    }

    /// Names the step that failed, for a server error's log line (`internal error:
    /// storing the sensor: …`); errors the client caused pass unchanged.
    pub fn context(self, step: &'static str) -> Self {
        match self {
            Self::Internal(cause) => Self::Internal(Box::new(Step { step, cause })),
            Self::Unavailable(cause) => Self::Unavailable(Box::new(Step { step, cause })),
            other => other,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            Self::Unavailable(_) | Self::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// `.context("step")` on the results of a handler's steps; see [`Error::context`].
pub trait Context<T> {
    fn context(self, step: &'static str) -> Result<T, Error>;
}

impl<T, E: Into<Error>> Context<T> for Result<T, E> {
    fn context(self, step: &'static str) -> Result<T, Error> {
        self.map_err(|error| error.into().context(step))
    }
}

/// Database errors by kind: a taken unique key is a conflict, a missing referenced
/// row means the parent does not exist, anything that may go away by itself is
/// temporary. What remains (other data errors, which validation should have caught;
/// errors of this side, such as a row that does not decode) is internal.
impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database_error) = &error {
            match database_error.kind() {
                sqlx::error::ErrorKind::UniqueViolation => return Self::Conflict,
                sqlx::error::ErrorKind::ForeignKeyViolation => return Self::NotFound,
                _ => {}
            }
        }
        if is_transient(&error) {
            Self::Unavailable(error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

/// A database error of a query whose answer several requests shared
/// (`crate::coalesce`), classified as [`From<sqlx::Error>`] does.
impl From<Arc<sqlx::Error>> for Error {
    fn from(error: Arc<sqlx::Error>) -> Self {
        let transient = is_transient(&error);
        let cause = Box::new(SharedError(error));
        if transient {
            Self::Unavailable(cause)
        } else {
            Self::Internal(cause)
        }
    }
}

/// A cause shared by the requests it failed.
#[derive(Debug)]
struct SharedError(Arc<sqlx::Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(formatter)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// A provider that does not manage credentials is 501; one that failed (a broker or
/// cloud service that refused or did not answer) is 503: nothing was issued, and a
/// retry may succeed.
impl From<CredentialsError> for Error {
    fn from(error: CredentialsError) -> Self {
        match error {
            CredentialsError::Unsupported => Self::NotImplemented,
            CredentialsError::Provider(_) => Self::Unavailable(error.into()),
        }
    }
}

impl From<PasswordError> for Error {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Overloaded => Self::Overloaded("the password hashing queue is full"),
            PasswordError::Failed(_) => Self::Internal(error.into()),
        }
    }
}

/// Seconds an overloaded process asks clients to wait: a queue of hashes drains in
/// well under that.
const OVERLOADED_RETRY_AFTER_SECONDS: u64 = 1;

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = match &self {
            Self::TooManyRequests {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            Self::Overloaded(_) => Some(OVERLOADED_RETRY_AFTER_SECONDS),
            _ => None,
        };
        if let Self::Overloaded(_) = self {
            tracing::warn!(error = %self, status = status.as_u16(), "request refused");
        } else if status.is_server_error() {
            tracing::error!(error = %ErrorChain(&self), status = status.as_u16(), "request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "request refused");
        }
        let mut response = error_response(status);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The body every error has: the standard reason phrase of its status.
pub fn error_response(status: StatusCode) -> Response {
    let details = status.canonical_reason().unwrap_or("Error");
    (
        status,
        axum::Json(serde_json::json!({ "details": details })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn errors_answer_with_the_reason_phrase_of_their_status() {
        let cases = [
            (Error::bad_request("name"), 400, "Bad Request"),
            (Error::Unauthorized, 401, "Unauthorized"),
            (Error::Forbidden, 403, "Forbidden"),
            (Error::NotFound, 404, "Not Found"),
            (Error::MethodNotAllowed, 405, "Method Not Allowed"),
            (Error::Conflict, 409, "Conflict"),
            (Error::PayloadTooLarge, 413, "Payload Too Large"),
            (
                Error::TooManyRequests {
                    retry_after_seconds: 7,
                },
                429,
                "Too Many Requests",
            ),
            (
                Error::from(PasswordError::Overloaded),
                503,
                "Service Unavailable",
            ),
            (Error::NotImplemented, 501, "Not Implemented"),
        ];
        for (error, status, details) in cases {
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(
                body_of(response).await,
                serde_json::json!({ "details": details })
            );
        }
    }

    #[test]
    fn throttled_and_overloaded_answers_say_when_to_retry() {
        let throttled = Error::TooManyRequests {
            retry_after_seconds: 7,
        }
        .into_response();
        assert_eq!(throttled.headers()[header::RETRY_AFTER], "7");
        let overloaded = Error::from(PasswordError::Overloaded).into_response();
        assert_eq!(overloaded.headers()[header::RETRY_AFTER], "1");
        let unavailable = Error::from(sqlx::Error::PoolTimedOut).into_response();
        assert!(!unavailable.headers().contains_key(header::RETRY_AFTER));
    }

    #[tokio::test]
    async fn internal_errors_do_not_show_their_cause() {
        let error = Error::internal("password authentication failed for user admin");
        let response = error.into_response();
        assert_eq!(response.status().as_u16(), 500);
        assert_eq!(
            body_of(response).await,
            serde_json::json!({ "details": "Internal Server Error" })
        );
    }

    #[test]
    fn pool_timeouts_are_unavailable_and_missing_rows_internal() {
        assert_eq!(
            Error::from(sqlx::Error::PoolTimedOut).status().as_u16(),
            503
        );
        assert_eq!(Error::from(sqlx::Error::RowNotFound).status().as_u16(), 500);
    }

    #[test]
    fn context_names_the_failed_step_of_server_errors_only() {
        let failed: Result<(), sqlx::Error> = Err(sqlx::Error::RowNotFound);
        let error = failed.context("reading the sensor").unwrap_err();
        assert_eq!(error.status().as_u16(), 500);
        assert_eq!(
            ErrorChain(&error).to_string(),
            format!(
                "internal error: reading the sensor: {}",
                sqlx::Error::RowNotFound
            )
        );
        let refused: Result<(), Error> = Err(Error::NotFound);
        assert!(matches!(
            refused.context("reading the sensor"),
            Err(Error::NotFound)
        ));
    }
}
