//! The functions' tests: handlers called the way the Lambda runtime calls them (a
//! route's `Router` given a Lambda request, a topic function given an SQS batch), the
//! function binaries under cargo-lambda's emulator, the cloud edges against moto and
//! recording stand-ins, the payload parsers' properties, and the template against the
//! code. One binary (`./scripts/test --test functions [filter]`), a file per subject;
//! what the files share is in `helpers`.

mod helpers;

mod asyncapi;
mod cloud_database;
mod cloud_publisher;
mod dashboard;
mod emulator;
mod errors;
mod infra;
mod payloads;
mod retain_logs;
mod retain_measurements;
mod routes;
mod status;
mod topics;
