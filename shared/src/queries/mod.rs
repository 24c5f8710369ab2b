//! The PostgreSQL queries: one module per entity, one function per query, named
//! like the queries of the original server (`create_measurements`,
//! `read_configurations`), each taking any executor (pool, connection, transaction)
//! unless it runs more than one statement.

pub mod configurations;
pub mod ingest;
pub mod logs;
pub mod measurements;
pub mod networks;
pub mod outbox;
pub mod sensors;
pub mod sessions;
pub mod users;

/// What a batch insert does with a row whose key is stored already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// Fail the statement with a unique violation: the cheaper insert.
    Refuse,
    /// Skip the row (`ON CONFLICT DO NOTHING`).
    Skip,
}
