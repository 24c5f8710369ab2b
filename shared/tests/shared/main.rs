//! The shared crate's tests against a real PostgreSQL: the pools, how the errors
//! PostgreSQL raises are judged, the ingestion queries and the migrations. One binary
//! (`./scripts/test -p sensorium-shared --test shared [filter]`), a file per subject.

mod database;
mod ingest_queries;
mod migrations;
