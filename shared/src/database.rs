//! The PostgreSQL pool and the migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A lazily connecting pool: a function starts even while the database is down and
/// answers 503 until it is back.
pub fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    Ok(connect_to(
        PgConnectOptions::from_str(url)?,
        max_connections,
    ))
}

/// [`connect`] with the server's address and credentials given as options.
pub fn connect_to(options: PgConnectOptions, max_connections: u32) -> PgPool {
    // Every query is a prepared statement keyed by identifiers, which one generic plan
    // serves well; PostgreSQL's default may instead plan each execution anew, which
    // cost more CPU than running the query in the measurement page benchmark.
    let options = options.options([("plan_cache_mode", "force_generic_plan")]);
    connect_with(options, max_connections)
}

/// A lazily connecting pool of `options`, such as those of another pool; see
/// [`connect`].
pub fn connect_with(options: PgConnectOptions, max_connections: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // A ping at every checkout would add a round trip to every request; a broken
        // connection fails its query instead (503), and the ping the pool makes when
        // a connection comes back weeds it out.
        .test_before_acquire(false)
        .connect_lazy_with(options)
}
