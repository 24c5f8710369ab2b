//! What every Sensorium function shares: the domain types of the contract, parsed at
//! the boundary; the PostgreSQL queries and how their errors are judged; settings
//! from the environment; telemetry; and the traits behind which the cloud edges sit.
//! Nothing here speaks HTTP: the REST API's errors and responses live in
//! `sensorium-functions`.

pub mod aggregation;
pub mod arrays;
pub mod credentials;
pub mod database;
pub mod domain;
pub mod error;
pub mod limits;
pub mod numeric;
pub mod pages;
pub mod passwords;
pub mod publisher;
pub mod queries;
pub mod queue;
pub mod settings;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
