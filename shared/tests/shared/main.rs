//! The shared crate's tests against a real PostgreSQL: the pools, the mapping of the
//! errors PostgreSQL raises, the ingestion queries and the migrations. One binary
//! (`./scripts/test -p sensorium-shared --test shared [filter]`), a file per subject.

mod database;
mod errors;
mod ingest_queries;
mod migrations;
