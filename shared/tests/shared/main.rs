//! The shared crate's tests against a real PostgreSQL: the pools, how the errors
//! PostgreSQL raises are judged, the ingestion, aggregate and export queries, the
//! migrations and the packing of closed months. One binary (`./scripts/test -p sensorium-shared --test shared [filter]`),
//! a file per subject.

mod aggregate_queries;
mod database;
mod export_queries;
mod ingest_queries;
mod migrations;
mod packed_months;
