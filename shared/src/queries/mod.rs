//! The PostgreSQL queries: one module per entity, one function per query, named
//! like the queries of the original server (`create_measurements`,
//! `read_configurations`), each taking any executor (pool, connection, transaction).

pub mod configurations;
pub mod ingest;
pub mod logs;
pub mod measurements;
pub mod networks;
pub mod outbox;
pub mod sensors;
pub mod sessions;
pub mod users;
