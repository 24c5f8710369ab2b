//! The PostgreSQL queries: one module per entity, one function per query, named
//! like the queries of the original server (`create_measurements`,
//! `read_configurations`), each taking any executor (pool, connection, transaction)
//! unless it runs more than one statement.

use std::future::Future;

use crate::error::is_unique_violation;

pub mod aggregates;
pub mod configurations;
pub mod export;
pub mod ingest;
pub mod logs;
pub mod measurements;
pub mod networks;
pub mod outbox;
pub mod partitions;
pub mod sensors;
pub mod sessions;
pub mod users;

/// Writes `value` as JSON onto an answer being written by hand (the pages, the
/// aggregates, the network overview): strings, identifiers, finite numbers and null,
/// which serialize into a `Vec` without fail.
pub(crate) fn write_json(json: &mut Vec<u8>, value: &impl serde::Serialize) {
    serde_json::to_writer(json, value).expect("strings and finite numbers serialize into a Vec");
}

/// What a batch insert does with a row whose key is stored already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// Fail the statement with a unique violation: the cheaper insert.
    Refuse,
    /// Skip the row (`ON CONFLICT DO NOTHING`).
    Skip,
}

/// Runs `insert` refusing duplicates and, only if it met a row stored already, again
/// skipping them. Stored copies are rare (a message redelivered after a crash or a
/// reconnect), and a plain insert checks each row's key once, as it inserts it;
/// `ON CONFLICT DO NOTHING` checks it twice. That made the measurement insert about
/// a quarter cheaper. Both tries are statements of their own: `insert` needs a pool.
pub(crate) async fn insert_skipping_stored<F, Fut>(insert: F) -> Result<u64, sqlx::Error>
where
    F: Fn(Duplicates) -> Fut,
    Fut: Future<Output = Result<u64, sqlx::Error>>,
{
    match insert(Duplicates::Refuse).await {
        Err(error) if is_unique_violation(&error) => insert(Duplicates::Skip).await,
        result => result,
    }
}
