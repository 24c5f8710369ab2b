//! Limits and windows of the contract (docs/rest.md, docs/mqtt.md), in one place.

/// Most elements a cursor page holds.
pub const PAGE_SIZE: i64 = 64;
/// Largest request body the REST API accepts, in bytes.
pub const MAXIMUM_BODY_SIZE: usize = 256 * 1024;
/// Largest MQTT message payload the server takes from sensors, in bytes: what AWS IoT
/// Core carries. The broker refuses bigger ones (see the harness's bridge).
pub const MAXIMUM_MESSAGE_SIZE: usize = 128 * 1024;
/// Largest configuration, in bytes of its compact JSON: with the envelope around it,
/// it must fit the 128 KB AWS IoT Core carries in one message.
pub const MAXIMUM_CONFIGURATION_SIZE: usize = 100 * 1024;
/// Longest name (user, network, sensor, attribute), in characters.
pub const MAXIMUM_NAME_LENGTH: usize = 64;
/// Password length bounds, in characters.
pub const MINIMUM_PASSWORD_LENGTH: usize = 8;
pub const MAXIMUM_PASSWORD_LENGTH: usize = 256;
/// Most attributes a measurement value holds.
pub const MAXIMUM_ATTRIBUTE_COUNT: usize = 1024;
/// A log message's subject and details are cut to these many characters.
pub const MAXIMUM_SUBJECT_LENGTH: usize = 256;
pub const MAXIMUM_DETAILS_LENGTH: usize = 16384;
/// Exclusive upper bound of timestamps (seconds) and revisions.
pub const TIMESTAMP_LIMIT: f64 = 2_147_483_648.0;
pub const REVISION_LIMIT: i64 = 2_147_483_648;
/// How far back the network overview and the measurement aggregation look.
pub const AGGREGATION_WINDOW_DAYS: i64 = 28;
/// Width of the network overview's measurement-count buckets.
pub const BUCKET_SECONDS: i64 = 4 * 60 * 60;
/// Logs received longer ago than this are deleted by the retention job.
pub const LOG_RETENTION_DAYS: i64 = 8 * 7;
/// How long an access token works after it was issued, unless the deployment says
/// otherwise (`TOKEN_LIFETIME_DAYS`).
pub const DEFAULT_TOKEN_LIFETIME_DAYS: i64 = 30;
/// Wrong passwords for one user name within the window after which logins of that
/// name answer 429 until the window has passed.
pub const LOGIN_FAILURE_LIMIT: i32 = 10;
pub const LOGIN_FAILURE_WINDOW_SECONDS: i64 = 15 * 60;
