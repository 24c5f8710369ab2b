//! The PostgreSQL pool and the migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

/// The migrations of `migrations/`, embedded in the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// What a pool's connections serve, and so how long one statement may run: less than
/// the function running it has (`infra/template.json`'s `Timeout`, checked by
/// `functions/tests/functions/infra.rs`), so that no statement runs on after its function gave
/// up, holding a connection and locks for nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// REST routes: 10 s a function, 30 s at most behind API Gateway.
    Route,
    /// Topic functions: 30 s a batch.
    Topic,
    /// The configuration publisher: 60 s a sweep.
    Publisher,
    /// Log retention and migrations: 300 s a run.
    Maintenance,
}

impl Role {
    /// How long a request waits for a pooled connection (connecting included) before
    /// it fails: a REST client gets its 503 within a second while the database is
    /// down, instead of waiting for sqlx's retries to give up (5 s); background work
    /// waits longer, as its caller retries anyway.
    pub const fn acquire_timeout(self) -> Duration {
        match self {
            Role::Route => Duration::from_millis(900),
            Role::Topic | Role::Publisher | Role::Maintenance => DEFAULT_ACQUIRE_TIMEOUT,
        }
    }

    pub const fn statement_timeout(self) -> Duration {
        match self {
            Role::Route => Duration::from_secs(8),
            Role::Topic => Duration::from_secs(20),
            Role::Publisher => Duration::from_secs(45),
            Role::Maintenance => Duration::from_secs(270),
        }
    }
}

/// A lazily connecting pool for REST routes: a function starts even while the
/// database is down and answers 503 until it is back.
pub fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    Ok(connect_to(
        PgConnectOptions::from_str(url)?,
        max_connections,
    ))
}

/// [`connect`] with the server's address and credentials given as options.
pub fn connect_to(options: PgConnectOptions, max_connections: u32) -> PgPool {
    connect_as(options, max_connections, Role::Route)
}

/// A lazily connecting pool whose statements may run as long as `role` allows.
pub fn connect_as(options: PgConnectOptions, max_connections: u32, role: Role) -> PgPool {
    let statement_timeout = format!("{}ms", role.statement_timeout().as_millis());
    let options = options.options([
        // Every query is a prepared statement keyed by identifiers, which one generic
        // plan serves well; PostgreSQL's default may instead plan each execution anew,
        // which cost more CPU than running the query in the measurement page benchmark.
        ("plan_cache_mode", "force_generic_plan"),
        // PostgreSQL compiles a query whose estimated cost passes `jit_above_cost` to
        // machine code at each execution: 117 ms for the network overview of 1,000
        // sensors, which runs in 40 ms without. Our queries are short; none repays it.
        ("jit", "off"),
        ("statement_timeout", statement_timeout.as_str()),
    ]);
    pool_with(options, max_connections, role.acquire_timeout())
}

/// A lazily connecting pool of `options`, such as those of another pool; see
/// [`connect`].
pub fn connect_with(options: PgConnectOptions, max_connections: u32) -> PgPool {
    pool_with(options, max_connections, DEFAULT_ACQUIRE_TIMEOUT)
}

const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

fn pool_with(options: PgConnectOptions, max_connections: u32, acquire_timeout: Duration) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        // A ping at every checkout would add a round trip to every request. Only a
        // connection idle for a while is pinged: after a restart or failover of the
        // database every idle connection is dead, and without the ping each would fail
        // one request before the pool replaced it. One in steady use goes unpinged.
        .test_before_acquire(false)
        .before_acquire(|connection, metadata| {
            Box::pin(async move {
                if metadata.idle_for >= PING_WHEN_IDLE_FOR {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
        .connect_lazy_with(options)
}

/// How long a pooled connection may sit idle before it is pinged at checkout.
pub const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);
