//! How the storage layer judges its errors: a taken key, data the database refuses,
//! failures that may pass by themselves. The REST API maps these judgements to its
//! statuses (`sensorium_functions::error`); the topic functions to retry or drop.

/// Whether the database refused a row because its unique key is taken.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .is_some_and(|database_error| database_error.is_unique_violation())
}

/// Whether the database refused a statement for the data it carries: SQLSTATE class
/// 22 (data exception: a value out of range, a string it cannot store) or 23
/// (integrity constraint violation). The same data is refused again, so retrying is
/// pointless; any other error of the database says nothing about the data.
pub fn is_caused_by_data(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|database_error| database_error.code())
        .is_some_and(|code| code.starts_with("22") || code.starts_with("23"))
}

/// Whether a database error may go away by itself, so that retrying later is
/// worthwhile: the connection or pool failed, or the server refused the statement for
/// anything but its data (a read-only node after a failover, a statement or lock
/// timeout, a table missing during a deploy, a shutdown). Errors of this side, such as
/// a row that does not decode, are not.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(_) => !is_caused_by_data(error),
        _ => false,
    }
}

/// Displays an error with all its causes, `outer: inner: innermost`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(formatter, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}
