//! The scheduled functions: on a schedule in the cloud, on a timer in the harness.

pub mod migrate;
pub mod publish_configurations;
pub mod retain_logs;
pub mod retain_measurements;
