//! Example data for `./scripts/develop`: loaded only into an empty database. A user
//! with a network of three sensors, each with configurations and a week of hourly
//! measurements and logs, stored through the same queries the functions use. Where
//! the broker manages credentials, the first sensor gets its own, printed with a
//! command line that publishes as that sensor.

use std::collections::BTreeMap;

use anyhow::Context;
use sensorium_shared::credentials::{Credentials, CredentialsError, CredentialsProvider};
use sensorium_shared::domain::{
    AccessToken, Attribute, Identifier, NetworkName, Password, Revision, SensorName, Severity,
    Timestamp, UserName,
};
use sensorium_shared::limits::DEFAULT_TOKEN_LIFETIME_DAYS;
use sensorium_shared::passwords;
use sensorium_shared::queries::Duplicates;
use sensorium_shared::queries::logs::{NewLogMessage, insert_log_messages};
use sensorium_shared::queries::measurements::{NewMeasurement, insert_measurements};
use sensorium_shared::queries::{configurations, networks, sensors, sessions, users};
use sqlx::PgPool;

const USER_NAME: &str = "demo";
const PASSWORD: &str = "sensorium-demo";
const NETWORK_NAME: &str = "botanical-garden";
const SENSOR_NAMES: [&str; 3] = ["greenhouse", "orchard", "pond"];
const HOURS_OF_DATA: usize = 7 * 24;

/// Loads the example data into an empty database; `broker` is the URL sensors connect
/// to, for the printed command line.
pub async fn run(
    pool: &PgPool,
    credentials: &dyn CredentialsProvider,
    broker: &url::Url,
) -> anyhow::Result<()> {
    let users = sqlx::query_scalar!(r#"SELECT count(*) AS "users!" FROM "user""#)
        .fetch_one(pool)
        .await?;
    if users > 0 {
        tracing::info!("the database holds data already; no example data loaded");
        return Ok(());
    }
    let password_hash = passwords::hash_password(Password::parse(PASSWORD)?).await?;
    let user_identifier = Identifier::new();
    let network_identifier = Identifier::new();
    let access_token = AccessToken::generate();
    let now = Timestamp::now().as_seconds();
    let mut sensor_identifiers = Vec::new();

    let mut transaction = pool.begin().await?;
    users::create_user(
        &mut *transaction,
        user_identifier,
        &UserName::parse(USER_NAME)?,
        &password_hash,
    )
    .await?;
    let expiration_timestamp = Timestamp::from_datetime(
        Timestamp::now().as_datetime() + chrono::TimeDelta::days(DEFAULT_TOKEN_LIFETIME_DAYS),
    );
    sessions::create_session(
        &mut *transaction,
        &access_token,
        user_identifier,
        expiration_timestamp,
    )
    .await?;
    networks::create_network(
        &mut *transaction,
        network_identifier,
        &NetworkName::parse(NETWORK_NAME)?,
    )
    .await?;
    networks::create_permission(&mut *transaction, user_identifier, network_identifier).await?;
    for (index, sensor_name) in SENSOR_NAMES.into_iter().enumerate() {
        let sensor_identifier = Identifier::new();
        sensors::create_sensor(
            &mut *transaction,
            sensor_identifier,
            network_identifier,
            &SensorName::parse(sensor_name)?,
        )
        .await?;
        sensor_identifiers.push(sensor_identifier);
        for interval in [300, 60] {
            let value = serde_json::Map::from_iter([
                ("measurement_interval".to_string(), interval.into()),
                ("led".to_string(), true.into()),
            ]);
            configurations::create_configuration(&mut *transaction, sensor_identifier, &value)
                .await?
                .context("the sensor was just created")?;
        }
        let measurements = example_measurements(sensor_identifier, index as f64, now)?;
        insert_measurements(&mut *transaction, &measurements, Duplicates::Skip).await?;
        let log_messages = example_log_messages(sensor_identifier, now)?;
        insert_log_messages(&mut *transaction, &log_messages, Duplicates::Skip).await?;
    }
    transaction.commit().await?;

    println!("Example data loaded. Log in with:");
    println!("  user name:    {USER_NAME}");
    println!("  password:     {PASSWORD}");
    println!("  access token: {}", access_token.expose());
    println!("  network:      {network_identifier} ({NETWORK_NAME})");

    let sensor_identifier = sensor_identifiers[0];
    match credentials.issue(sensor_identifier).await {
        Ok(issued) => {
            sensors::update_credentials_timestamp(pool, sensor_identifier, Some(Timestamp::now()))
                .await?;
            print_sensor_commands(&issued, broker, SENSOR_NAMES[0], now);
        }
        Err(CredentialsError::Unsupported) => {}
        Err(error) => return Err(error).context("issuing the example sensor's credentials"),
    }
    Ok(())
}

/// Command lines that publish a measurement as the sensor and read its configuration.
fn print_sensor_commands(credentials: &Credentials, broker: &url::Url, name: &str, now: f64) {
    let Credentials::Password {
        client_identifier,
        user_name,
        password,
    } = credentials
    else {
        return;
    };
    let host = broker.host_str().unwrap_or("127.0.0.1");
    let port = broker.port().unwrap_or(1883);
    let connect =
        format!("-h {host} -p {port} -i {client_identifier} -u {user_name} -P {password}");
    println!("Sensor {name} ({client_identifier}) has broker credentials, shown only now:");
    println!(
        "  mosquitto_pub {connect} -q 1 -t measurements/{client_identifier} \\\n    -m '{{\"measurements\": [{{\"timestamp\": {now:.0}, \"value\": {{\"temperature\": 21.5}}}}]}}'"
    );
    println!("  mosquitto_sub {connect} -q 1 -C 1 -t configurations/{client_identifier}");
}

/// One measurement an hour over the last week: a daily temperature curve and humidity.
fn example_measurements(
    sensor_identifier: Identifier,
    offset: f64,
    now: f64,
) -> anyhow::Result<Vec<NewMeasurement>> {
    let temperature = Attribute::parse("temperature")?;
    let humidity = Attribute::parse("humidity")?;
    (0..HOURS_OF_DATA)
        .map(|hour| {
            let timestamp = now - (HOURS_OF_DATA - hour) as f64 * 3600.0;
            let phase = (hour % 24) as f64 / 24.0 * std::f64::consts::TAU;
            let value = BTreeMap::from([
                (temperature.clone(), 18.0 + offset + 6.0 * phase.sin()),
                (humidity.clone(), 0.6 - 0.15 * phase.sin()),
            ]);
            Ok(NewMeasurement {
                sensor_identifier,
                timestamp: Timestamp::parse(timestamp)?,
                revision: Some(Revision::parse(1)?),
                value,
                receipt_timestamp: Timestamp::parse(timestamp + 0.5)?,
                position: 0,
            })
        })
        .collect()
}

/// A boot message, and a recurring warning and an error over the last week.
fn example_log_messages(
    sensor_identifier: Identifier,
    now: f64,
) -> anyhow::Result<Vec<NewLogMessage>> {
    let messages = [
        (HOURS_OF_DATA, Severity::Info, "booted", None),
        (100, Severity::Warning, "battery low", Some("3.41 V")),
        (50, Severity::Warning, "battery low", Some("3.38 V")),
        (20, Severity::Error, "sd card write failed", Some("errno 5")),
        (2, Severity::Warning, "battery low", Some("3.35 V")),
    ];
    messages
        .into_iter()
        .map(|(hours_ago, severity, subject, details)| {
            let timestamp = now - hours_ago as f64 * 3600.0;
            Ok(NewLogMessage {
                sensor_identifier,
                timestamp: Timestamp::parse(timestamp)?,
                severity,
                subject: subject.into(),
                details: details.map(Into::into),
                revision: Some(Revision::parse(1)?),
                receipt_timestamp: Timestamp::parse(timestamp + 0.5)?,
                position: 0,
            })
        })
        .collect()
}

/// A network named `network_name` with `count` sensors named `sensor-0` and on, for the
/// benchmarks and the fault-injection suite, stored through the functions' queries.
pub async fn create_network_of_sensors(
    pool: &PgPool,
    network_name: &str,
    count: usize,
) -> anyhow::Result<Vec<Identifier>> {
    let network = Identifier::new();
    networks::create_network(pool, network, &NetworkName::parse(network_name)?).await?;
    let mut sensor_identifiers = Vec::with_capacity(count);
    for index in 0..count {
        let sensor = Identifier::new();
        let name = SensorName::parse(format!("sensor-{index}"))?;
        sensors::create_sensor(pool, sensor, network, &name).await?;
        sensor_identifiers.push(sensor);
    }
    Ok(sensor_identifiers)
}
