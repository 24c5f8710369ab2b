//! What every Sensorium function shares: the domain types of the contract, parsed at
//! the boundary; the PostgreSQL queries; the error type and its one mapping to HTTP
//! responses; settings from the environment; telemetry; and the traits behind which
//! the cloud edges sit.

pub mod aggregation;
pub mod credentials;
pub mod database;
pub mod domain;
pub mod error;
pub mod limits;
pub mod pages;
pub mod passwords;
pub mod publisher;
pub mod queries;
pub mod queue;
pub mod settings;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::Error;
