//! The topic functions called the way the Lambda runtime calls them: SQS batches of
//! bridge envelopes, no broker in between, a real PostgreSQL behind.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use lambda_runtime::{Context, LambdaEvent};
use sensorium_functions::topics::{Topic, envelope};
use sensorium_shared::domain::Identifier;
use sensorium_shared::testing::create_sensor;
use serde_json::{Value, json};
use sqlx::PgPool;

const RECEIVED_AT: i64 = 1_700_000_000_250;

/// A stored log: severity, subject, details, revision, position.
type LogRow = (String, String, Option<String>, Option<i32>, i32);
/// A configuration's acknowledgement: revision, acknowledgement and receipt time, success.
type AcknowledgementRow = (i32, Option<f64>, Option<f64>, Option<bool>);

fn record(id: &str, topic: &str, payload: &[u8]) -> SqsMessage {
    record_received_at(id, topic, payload, RECEIVED_AT)
}

fn record_received_at(id: &str, topic: &str, payload: &[u8], received_at: i64) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(id.into());
    record.body = Some(envelope::encode(topic, payload, received_at));
    record
}

fn json_record(id: &str, topic: &str, payload: Value) -> SqsMessage {
    record(id, topic, payload.to_string().as_bytes())
}

async fn handle(pool: &PgPool, topic: Topic, records: Vec<SqsMessage>) -> Vec<String> {
    let mut event = SqsEvent::default();
    event.records = records;
    let response: SqsBatchResponse = topic
        .handle(pool, LambdaEvent::new(event, Context::default()))
        .await;
    let mut failed: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|failure| failure.item_identifier)
        .collect();
    failed.sort();
    failed
}

async fn measurements_of(
    pool: &PgPool,
    sensor: Identifier,
) -> Vec<(f64, Value, Option<i32>, i32, f64)> {
    sqlx::query_as(
        r#"
        SELECT extract(epoch FROM creation_timestamp)::float8, value, revision, position,
            extract(epoch FROM receipt_timestamp)::float8
        FROM measurement WHERE sensor_identifier = $1 ORDER BY creation_timestamp, position
        "#,
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn logs_of(pool: &PgPool, sensor: Identifier) -> Vec<LogRow> {
    sqlx::query_as(
        "SELECT severity::text, subject, details, revision, position FROM log WHERE sensor_identifier = $1 ORDER BY creation_timestamp",
    )
    .bind(sensor)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_batch_of_measurements_is_stored_with_receipt_time_and_position(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let topic = format!("measurements/{sensor}");
    let failed = handle(
        &pool,
        Topic::Measurements,
        vec![
            json_record(
                "1",
                &topic,
                json!({"measurements": [
                    {"timestamp": 10.5, "value": {"temperature": 20.5}},
                    {"timestamp": 11, "revision": 3, "value": {"temperature": 21, "humidity": 0.5}},
                ]}),
            ),
            json_record(
                "2",
                &topic,
                json!({"measurements": [
                    {"timestamp": 12, "value": {}},
                    {"timestamp": 12, "revision": null, "value": {"co2": 400}},
                ]}),
            ),
        ],
    )
    .await;
    assert!(failed.is_empty());
    let receipt = RECEIVED_AT as f64 / 1000.0;
    assert_eq!(
        measurements_of(&pool, sensor).await,
        vec![
            (10.5, json!({"temperature": 20.5}), None, 0, receipt),
            (
                11.0,
                json!({"temperature": 21.0, "humidity": 0.5}),
                Some(3),
                1,
                receipt
            ),
            // The position counts the dropped element too: it is the index in the message.
            (12.0, json!({"co2": 400.0}), None, 1, receipt),
        ]
    );
    let count: i64 = sqlx::query_scalar(
        "SELECT sum(measurement_count)::bigint FROM measurement_bucket WHERE sensor_identifier = $1",
    )
    .bind(sensor)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(count, 3);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn redelivered_measurements_are_stored_once_and_equal_timestamps_kept(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let topic = format!("measurements/{sensor}");
    let payload = json!({"measurements": [
        {"timestamp": 10, "value": {"a": 1}},
        {"timestamp": 10, "value": {"a": 2}},
        {"timestamp": 10, "value": {"a": 1}, "revision": 0},
    ]});
    let batch = vec![
        json_record("1", &topic, payload.clone()),
        json_record("2", &topic, payload.clone()),
    ];
    assert!(handle(&pool, Topic::Measurements, batch).await.is_empty());
    let again = vec![json_record("3", &topic, payload)];
    assert!(handle(&pool, Topic::Measurements, again).await.is_empty());
    assert_eq!(measurements_of(&pool, sensor).await.len(), 3);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn messages_that_can_never_be_stored_are_dropped_not_failed(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let topic = format!("measurements/{sensor}");
    let good = json!({"measurements": [{"timestamp": 1, "value": {"a": 1}}]});
    let mut not_an_envelope = SqsMessage::default();
    not_an_envelope.message_id = Some("envelope".into());
    not_an_envelope.body = Some("{\"topic\": 1}".into());
    let records = vec![
        not_an_envelope,
        json_record(
            "other-topic",
            &format!("log-messages/{sensor}"),
            good.clone(),
        ),
        json_record("malformed-sensor", "measurements/NOT-A-UUID", good.clone()),
        json_record(
            "unknown-sensor",
            &format!("measurements/{}", Identifier::new()),
            good.clone(),
        ),
        record("not-utf8", &topic, b"\xff\xfe\xfd"),
        record("not-json", &topic, b"{\"measurements\": ["),
        json_record("array", &topic, json!([good])),
        json_record(
            "wrong-key",
            &topic,
            json!({"log_messages": [{"timestamp": 1, "value": {"a": 1}}]}),
        ),
        json_record("empty", &topic, json!({"measurements": []})),
        json_record(
            "only-bad-elements",
            &topic,
            json!({"measurements": [{"timestamp": 1}]}),
        ),
        record("huge", &topic, &vec![b'x'; 1 << 20]),
        json_record("good", &topic, good),
    ];
    assert!(handle(&pool, Topic::Measurements, records).await.is_empty());
    assert_eq!(measurements_of(&pool, sensor).await.len(), 1);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM measurement")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(total, 1);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn with_the_database_down_exactly_the_storable_messages_fail(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    drop(pool);
    // Nothing listens on port 1: every connection attempt fails at once.
    let down =
        sensorium_shared::database::connect("postgres://postgres@127.0.0.1:1/none", 1).unwrap();
    let topic = format!("measurements/{sensor}");
    let good = json!({"measurements": [{"timestamp": 1, "value": {"a": 1}}]});
    let records = vec![
        json_record("good", &topic, good.clone()),
        record("not-json", &topic, b"nope"),
        // Whether the sensor exists cannot be told without the database.
        json_record(
            "unknown-sensor",
            &format!("measurements/{}", Identifier::new()),
            good,
        ),
        json_record(
            "bad-element",
            &topic,
            json!({"measurements": [{"timestamp": -1, "value": {"a": 1}}]}),
        ),
    ];
    assert_eq!(
        handle(&down, Topic::Measurements, records).await,
        vec!["good".to_string(), "unknown-sensor".to_string()]
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn a_database_failure_of_some_messages_fails_only_those(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    // The database refuses some rows: for good (a check it would never pass, 22023) or
    // for now (a serialization failure, 40001, which a retry may get past).
    refuse_measurements_by_sqlstate(&pool).await;
    let topic = format!("measurements/{sensor}");
    let measurement = |attribute: &str, timestamp: i64| json!({"measurements": [{"timestamp": timestamp, "value": {attribute: 1}}]});
    let records = vec![
        json_record("first", &topic, measurement("a", 1)),
        // The batch statement fails on this permanent error first, so the messages
        // are then stored one by one.
        json_record("refused", &topic, measurement("refuse_22023", 2)),
        json_record("busy", &topic, measurement("refuse_40001", 3)),
        json_record("last", &topic, measurement("b", 4)),
    ];
    assert_eq!(
        handle(&pool, Topic::Measurements, records).await,
        vec!["busy".to_string()]
    );
    let stored: Vec<f64> = measurements_of(&pool, sensor)
        .await
        .into_iter()
        .map(|row| row.0)
        .collect();
    assert_eq!(stored, vec![1.0, 4.0]);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn log_messages_are_stored_once_with_subject_and_details_cut(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let topic = format!("log-messages/{sensor}");
    let payload = json!({"log_messages": [
        {"severity": "error", "timestamp": 5, "subject": "s".repeat(300), "details": "d".repeat(20000), "revision": 1},
        {"severity": "info", "timestamp": 6, "subject": "booted"},
        {"severity": "fatal", "timestamp": 7, "subject": "bad severity"},
    ]});
    let records = vec![
        json_record("1", &topic, payload.clone()),
        json_record("2", &topic, payload),
    ];
    assert!(handle(&pool, Topic::LogMessages, records).await.is_empty());
    let rows = logs_of(&pool, sensor).await;
    assert_eq!(
        rows,
        vec![
            (
                "error".into(),
                "s".repeat(256),
                Some("d".repeat(16384)),
                Some(1),
                0
            ),
            ("info".into(), "booted".into(), None, None, 1),
        ]
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn the_first_heartbeat_of_a_revision_acknowledges_it(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    sqlx::query("INSERT INTO configuration (sensor_identifier, revision, value) VALUES ($1, 0, '{}'), ($1, 1, '{}')")
        .bind(sensor)
        .execute(&pool)
        .await
        .unwrap();
    let topic = format!("heartbeats/{sensor}");
    let records = vec![json_record(
        "1",
        &topic,
        json!({"heartbeats": [
            {"revision": 0, "timestamp": 100, "success": false},
            {"revision": 0, "timestamp": 101, "success": true},
            {"revision": 7, "timestamp": 102, "success": true},
            {"revision": 1, "timestamp": 103},
        ]}),
    )];
    assert!(handle(&pool, Topic::Heartbeats, records).await.is_empty());
    let later = vec![json_record(
        "2",
        &topic,
        json!({"heartbeats": [
            {"revision": 0, "timestamp": 200, "success": true},
            {"revision": 1, "timestamp": 201, "success": true},
        ]}),
    )];
    assert!(handle(&pool, Topic::Heartbeats, later).await.is_empty());
    let rows: Vec<AcknowledgementRow> = sqlx::query_as(
        r#"
        SELECT revision, extract(epoch FROM acknowledgement_timestamp)::float8,
            extract(epoch FROM receipt_timestamp)::float8, success
        FROM configuration WHERE sensor_identifier = $1 ORDER BY revision
        "#,
    )
    .bind(sensor)
    .fetch_all(&pool)
    .await
    .unwrap();
    let receipt = Some(RECEIVED_AT as f64 / 1000.0);
    assert_eq!(
        rows,
        vec![
            (0, Some(100.0), receipt, Some(false)),
            (1, Some(201.0), receipt, Some(true)),
        ]
    );
}

async fn last_seen(pool: &PgPool, sensor: Identifier) -> Option<f64> {
    sqlx::query_scalar(
        "SELECT extract(epoch FROM last_seen_timestamp)::float8 FROM sensor WHERE identifier = $1",
    )
    .bind(sensor)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn every_topic_records_when_its_sensors_were_last_seen_never_going_back(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    let silent = create_sensor(&pool).await;
    assert_eq!(last_seen(&pool, sensor).await, None);

    let measurement = json!({"measurements": [{"timestamp": 1, "value": {"a": 1}}]}).to_string();
    let measurement = measurement.as_bytes();
    let topic = format!("measurements/{sensor}");
    let batch = vec![
        record_received_at("1", &topic, measurement, 1_700_000_002_000),
        record_received_at("2", &topic, measurement, 1_700_000_001_000),
    ];
    assert!(handle(&pool, Topic::Measurements, batch).await.is_empty());
    // The newest receipt of the batch, whatever the order of its messages.
    assert_eq!(last_seen(&pool, sensor).await, Some(1_700_000_002.0));
    assert_eq!(last_seen(&pool, silent).await, None);

    // A message received earlier but stored later (a redelivery) does not go back.
    let late = vec![record_received_at(
        "3",
        &topic,
        measurement,
        1_600_000_000_000,
    )];
    assert!(handle(&pool, Topic::Measurements, late).await.is_empty());
    assert_eq!(last_seen(&pool, sensor).await, Some(1_700_000_002.0));

    // Logs and heartbeats count too, a heartbeat even for a revision that does not exist.
    let log = json!({"log_messages": [{"severity": "info", "timestamp": 1, "subject": "up"}]})
        .to_string();
    let logs = vec![record_received_at(
        "4",
        &format!("log-messages/{sensor}"),
        log.as_bytes(),
        1_700_000_003_000,
    )];
    assert!(handle(&pool, Topic::LogMessages, logs).await.is_empty());
    assert_eq!(last_seen(&pool, sensor).await, Some(1_700_000_003.0));
    let heartbeat =
        json!({"heartbeats": [{"revision": 7, "timestamp": 1, "success": true}]}).to_string();
    let heartbeats = vec![record_received_at(
        "5",
        &format!("heartbeats/{sensor}"),
        heartbeat.as_bytes(),
        1_700_000_004_000,
    )];
    assert!(
        handle(&pool, Topic::Heartbeats, heartbeats)
            .await
            .is_empty()
    );
    assert_eq!(last_seen(&pool, sensor).await, Some(1_700_000_004.0));
}

/// Makes the database refuse measurements holding the attribute `refuse_<sqlstate>`
/// with that SQLSTATE, as a failover, a timeout, a deploy or bad data would.
async fn refuse_measurements_by_sqlstate(pool: &PgPool) {
    sqlx::raw_sql(
        r#"
        CREATE FUNCTION refuse_by_sqlstate() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            attribute text;
        BEGIN
            FOR attribute IN SELECT json_object_keys(NEW.value) LOOP
                IF attribute LIKE 'refuse\_%' THEN
                    RAISE EXCEPTION 'refused' USING ERRCODE = upper(substr(attribute, 8));
                END IF;
            END LOOP;
            RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_by_sqlstate BEFORE INSERT ON measurement
            FOR EACH ROW EXECUTE FUNCTION refuse_by_sqlstate();
        "#,
    )
    .execute(pool)
    .await
    .unwrap();
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn database_errors_not_caused_by_the_data_make_messages_fail_to_be_retried(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    refuse_measurements_by_sqlstate(&pool).await;
    let topic = format!("measurements/{sensor}");
    let measurement = |attribute: &str, timestamp: i64| json!({"measurements": [{"timestamp": timestamp, "value": {attribute: 1}}]});
    // A read-only node after a failover, a statement timeout, a lock timeout, a table
    // missing during a deploy, an undefined function, the server shutting down.
    let sqlstates = ["25006", "57014", "55p03", "42p01", "42883", "57p01"];
    // Alone in a batch, and in a batch beside a message that is stored.
    for (index, sqlstate) in sqlstates.iter().enumerate() {
        let timestamp = index as i64;
        let alone = vec![json_record(
            sqlstate,
            &topic,
            measurement(&format!("refuse_{sqlstate}"), timestamp),
        )];
        assert_eq!(
            handle(&pool, Topic::Measurements, alone).await,
            vec![sqlstate.to_string()]
        );
        let beside = vec![
            json_record(
                sqlstate,
                &topic,
                measurement(&format!("refuse_{sqlstate}"), timestamp),
            ),
            json_record("good", &topic, measurement("a", 100 + timestamp)),
        ];
        assert_eq!(
            handle(&pool, Topic::Measurements, beside).await,
            vec![sqlstate.to_string()]
        );
    }
    let stored: Vec<f64> = measurements_of(&pool, sensor)
        .await
        .into_iter()
        .map(|row| row.0)
        .collect();
    assert_eq!(stored, vec![100.0, 101.0, 102.0, 103.0, 104.0, 105.0]);
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn data_errors_drop_only_the_elements_that_caused_them(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    refuse_measurements_by_sqlstate(&pool).await;
    let topic = format!("measurements/{sensor}");
    let element =
        |attribute: &str, timestamp: i64| json!({"timestamp": timestamp, "value": {attribute: 1}});
    // A data exception (class 22) and an integrity constraint violation (class 23).
    let records = vec![
        json_record(
            "mixed",
            &topic,
            json!({"measurements": [
                element("a", 1),
                element("refuse_22003", 2),
                element("b", 3),
                element("c", 4),
                element("refuse_23514", 5),
            ]}),
        ),
        json_record(
            "only-refused",
            &topic,
            json!({"measurements": [element("refuse_22p02", 6)]}),
        ),
        json_record("other", &topic, json!({"measurements": [element("d", 7)]})),
    ];
    assert!(handle(&pool, Topic::Measurements, records).await.is_empty());
    // Alone in a batch too.
    let alone = vec![json_record(
        "alone",
        &topic,
        json!({"measurements": [element("refuse_23505", 8), element("e", 9)]}),
    )];
    assert!(handle(&pool, Topic::Measurements, alone).await.is_empty());
    let stored: Vec<(f64, i32)> = measurements_of(&pool, sensor)
        .await
        .into_iter()
        .map(|row| (row.0, row.3))
        .collect();
    assert_eq!(
        stored,
        vec![(1.0, 0), (3.0, 2), (4.0, 3), (7.0, 0), (9.0, 1)]
    );
}

#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn log_messages_holding_u0000_are_bad_elements_and_the_others_stored(pool: PgPool) {
    let sensor = create_sensor(&pool).await;
    // Counts the insert statements into log that succeed: refused at parse time, the
    // bad elements never make the batch statement fail and fall back to smaller ones.
    sqlx::raw_sql(
        r#"
        CREATE TABLE log_statement (count integer NOT NULL);
        INSERT INTO log_statement VALUES (0);
        CREATE FUNCTION count_log_statement() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE log_statement SET count = count + 1;
            RETURN NULL;
        END $$;
        CREATE TRIGGER count_log_statement AFTER INSERT ON log
            FOR EACH STATEMENT EXECUTE FUNCTION count_log_statement();
        "#,
    )
    .execute(&pool)
    .await
    .unwrap();
    let topic = format!("log-messages/{sensor}");
    let payload = json!({"log_messages": [
        {"severity": "info", "timestamp": 1, "subject": "booted"},
        {"severity": "error", "timestamp": 2, "subject": "nul\u{0}"},
        {"severity": "error", "timestamp": 3, "subject": "s", "details": "\u{0}"},
        {"severity": "warning", "timestamp": 4, "subject": "battery low", "details": "3.1 V"},
    ]});
    let records = vec![
        json_record("1", &topic, payload),
        json_record(
            "2",
            &topic,
            json!({"log_messages": [{"severity": "info", "timestamp": 5, "subject": "up"}]}),
        ),
    ];
    assert!(handle(&pool, Topic::LogMessages, records).await.is_empty());
    let rows = logs_of(&pool, sensor).await;
    assert_eq!(
        rows,
        vec![
            ("info".into(), "booted".into(), None, None, 0),
            (
                "warning".into(),
                "battery low".into(),
                Some("3.1 V".into()),
                None,
                3
            ),
            ("info".into(), "up".into(), None, None, 0),
        ]
    );
    let statements: i32 = sqlx::query_scalar("SELECT count FROM log_statement")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(statements, 1);
}
