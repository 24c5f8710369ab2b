//! `bench_ingest <harness binary> <json output>`: the ingest benchmark of
//! `./scripts/bench-ingest`, against the PostgreSQL of `DATABASE_URL` and the broker
//! of `MQTT_URL`. In one run: (1) the raw broker rate, a plain QoS 1 publisher to a
//! plain subscriber; (2) PostgreSQL's COPY rate for the same rows; (3) end-to-end
//! ingest of single-measurement messages through the harness, timed until every row
//! is committed; (4) the same with 64 measurements per message. Each is measured
//! `RUNS` times and its median taken, so that one run slowed or sped up by the
//! scheduling of a 2-core machine does not make the figure. Prints rates, ratios and
//! the harness's peak RSS, and writes them as JSON.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};
use sensorium_harness::mqtt::open_bridge_session;
use sensorium_harness::seed;
use sensorium_shared::domain::{Attribute, Identifier, Timestamp};
use sensorium_shared::queries::measurements::NewMeasurement;
use sensorium_shared::{database, settings};
use serde_json::json;
use sqlx::PgPool;

const SINGLE_MESSAGES: usize = 50_000;
const BATCHED_MESSAGES: usize = 2_000;
const MEASUREMENTS_PER_MESSAGE: usize = 64;
const SENSORS: usize = 100;
const FIRST_TIMESTAMP: usize = 1_700_000_000;
/// Runs of each measurement; the median is reported.
const RUNS: usize = 3;

/// One workload: the topic and payload of each message, and the rows they hold.
struct Workload {
    messages: Vec<(String, String)>,
    rows: Vec<NewMeasurement>,
}

fn workload(
    sensors: &[Identifier],
    messages: usize,
    per_message: usize,
    offset: usize,
) -> Workload {
    let mut workload = Workload {
        messages: Vec::with_capacity(messages),
        rows: Vec::with_capacity(messages * per_message),
    };
    for index in 0..messages {
        let sensor = sensors[index % sensors.len()];
        let mut elements = Vec::with_capacity(per_message);
        for position in 0..per_message {
            let timestamp = FIRST_TIMESTAMP + offset + index * per_message + position;
            let temperature = (index % 400) as f64 / 10.0;
            elements.push(json!({"timestamp": timestamp, "value": {"temperature": temperature, "humidity": 0.5}}));
            workload.rows.push(NewMeasurement {
                sensor_identifier: sensor,
                timestamp: Timestamp::parse(timestamp as f64).expect("in range"),
                revision: None,
                value: BTreeMap::from([
                    (Attribute::parse("temperature").expect("valid"), temperature),
                    (Attribute::parse("humidity").expect("valid"), 0.5),
                ]),
                receipt_timestamp: Timestamp::now(),
                position: position as i32,
            });
        }
        workload.messages.push((
            format!("measurements/{sensor}"),
            json!({ "measurements": elements }).to_string(),
        ));
    }
    workload
}

/// Bulk options, with packets large enough for the batched workload's messages.
fn client_options(url: &url::Url, client_id: &str, clean_session: bool) -> MqttOptions {
    let mut options = sensorium_harness::mqtt::bulk_client_options(url, client_id, clean_session)
        .expect("MQTT_URL names a broker");
    options.set_max_packet_size(1 << 22, 1 << 22);
    options
}

/// Publishes every message with QoS 1 and returns once the broker acknowledged all.
async fn publish_all(url: &url::Url, messages: Vec<(String, String)>) -> anyhow::Result<()> {
    let (client, mut event_loop) = AsyncClient::new(
        client_options(url, &format!("bench-publisher-{}", Identifier::new()), true),
        1000,
    );
    let total = messages.len();
    let publisher = tokio::spawn(async move {
        for (topic, payload) in messages {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await?;
        }
        anyhow::Ok(client)
    });
    let mut acknowledged = 0;
    while acknowledged < total {
        if let Event::Incoming(Packet::PubAck(_)) = event_loop.poll().await? {
            acknowledged += 1;
        }
    }
    let client = publisher.await??;
    client.disconnect().await?;
    Ok(())
}

/// (1): a plain subscriber receives what a plain publisher sends, no database.
async fn raw_broker_rate(url: &url::Url, workload: &Workload) -> anyhow::Result<f64> {
    let prefix = format!("bench-raw-{}", Identifier::new());
    let messages: Vec<(String, String)> = workload
        .messages
        .iter()
        .enumerate()
        .map(|(index, (_, payload))| (format!("{prefix}/{}", index % SENSORS), payload.clone()))
        .collect();
    let (subscriber, mut event_loop) = AsyncClient::new(
        client_options(url, &format!("{prefix}-subscriber"), true),
        1000,
    );
    subscriber
        .subscribe_many([SubscribeFilter::new(
            format!("{prefix}/+"),
            QoS::AtLeastOnce,
        )])
        .await?;
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = event_loop.poll().await? {
            break;
        }
    }
    let total = messages.len();
    let start = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut received = 0;
        while received < total {
            if let Event::Incoming(Packet::Publish(_)) = event_loop.poll().await? {
                received += 1;
            }
        }
        anyhow::Ok(start.elapsed())
    });
    publish_all(url, messages).await?;
    let elapsed = receiver.await??;
    Ok(total as f64 / elapsed.as_secs_f64())
}

/// (2): the rows through `COPY` into a table shaped like `measurement`.
async fn copy_rate(pool: &PgPool, rows: &[NewMeasurement]) -> anyhow::Result<f64> {
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (LIKE measurement INCLUDING ALL)",
    )
    .execute(pool)
    .await?;
    // Prepared before the clock starts, as the bridge's messages are.
    let mut text = String::with_capacity(rows.len() * 200);
    for row in rows {
        let value = serde_json::to_string(&row.value)?;
        text.push_str(&format!(
            "{}\t{}\t{}\t\\N\t{}\t{}\t{}\n",
            row.sensor_identifier,
            row.timestamp.as_datetime().to_rfc3339(),
            row.fingerprint(),
            value,
            row.receipt_timestamp.as_datetime().to_rfc3339(),
            row.position
        ));
    }
    let start = Instant::now();
    let mut connection = pool.acquire().await?;
    let mut copy = connection
        .copy_in_raw(
            "COPY bench_copy (sensor_identifier, creation_timestamp, fingerprint, revision, value, receipt_timestamp, position) FROM STDIN",
        )
        .await?;
    copy.send(text.as_bytes()).await?;
    copy.finish().await?;
    let rate = rows.len() as f64 / start.elapsed().as_secs_f64();
    sqlx::raw_sql("DROP TABLE bench_copy").execute(pool).await?;
    Ok(rate)
}

async fn stored(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(measurement_count), 0)::bigint FROM measurement_bucket",
    )
    .fetch_one(pool)
    .await?)
}

/// (3) and (4): publishes the workload and times it until every row is committed.
async fn ingest_rate(
    pool: &PgPool,
    url: &url::Url,
    name: &str,
    workload: &Workload,
) -> anyhow::Result<(f64, f64)> {
    let before = stored(pool).await?;
    let expected = before + workload.rows.len() as i64;
    // Copied before the clock starts, as the raw run's messages are.
    let messages = workload.messages.clone();
    let url_clone = url.clone();
    let start = Instant::now();
    let publisher = tokio::spawn(async move { publish_all(&url_clone, messages).await });
    let mut last_report = Instant::now();
    loop {
        let count = stored(pool).await?;
        if count >= expected {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            eprintln!(
                "    {name}: {} of {} rows committed after {:.1} s",
                count - before,
                workload.rows.len(),
                start.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        anyhow::ensure!(
            start.elapsed() < Duration::from_secs(600),
            "{name} did not finish in 600 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    publisher.await??;
    Ok((
        workload.messages.len() as f64 / elapsed,
        workload.rows.len() as f64 / elapsed,
    ))
}

/// (3) or (4) once per workload: the messages per second of each run.
async fn ingest_runs(
    pool: &PgPool,
    url: &url::Url,
    name: &str,
    workloads: &[Workload],
) -> anyhow::Result<Vec<f64>> {
    let mut runs = Vec::with_capacity(workloads.len());
    for workload in workloads {
        let (messages, rows) = ingest_rate(pool, url, name, workload).await?;
        eprintln!("    {messages:.0} messages/s, {rows:.0} rows/s");
        runs.push(messages);
    }
    Ok(runs)
}

/// The median of `runs`, of which there is at least one.
fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

fn peak_rss_megabytes(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/<pid>/status")?;
    let kilobytes: f64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmHWM")?
        .parse()?;
    Ok(kilobytes / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut arguments = std::env::args().skip(1);
    let (Some(harness_binary), Some(output)) = (arguments.next(), arguments.next()) else {
        anyhow::bail!("usage: bench_ingest <harness binary> <json output>");
    };
    let database_url = settings::database_url()?;
    let url = settings::mqtt_url()?;
    let pool = database::connect(&database_url, 4)?;
    database::MIGRATOR.run(&pool).await?;
    sqlx::raw_sql("TRUNCATE network, measurement, measurement_count CASCADE")
        .execute(&pool)
        .await?;
    let sensors = seed::create_network_of_sensors(&pool, "bench", SENSORS).await?;
    // Every run stores rows of its own: timestamps never repeat across workloads.
    let rows_per_run = SINGLE_MESSAGES + BATCHED_MESSAGES * MEASUREMENTS_PER_MESSAGE;
    let single: Vec<Workload> = (0..RUNS)
        .map(|run| workload(&sensors, SINGLE_MESSAGES, 1, run * rows_per_run))
        .collect();
    let batched: Vec<Workload> = (0..RUNS)
        .map(|run| {
            workload(
                &sensors,
                BATCHED_MESSAGES,
                MEASUREMENTS_PER_MESSAGE,
                run * rows_per_run + SINGLE_MESSAGES,
            )
        })
        .collect();

    eprintln!("(1) raw broker rate: {SINGLE_MESSAGES} QoS 1 messages, publisher to subscriber");
    let mut raw_runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let rate = raw_broker_rate(&url, &single[0]).await?;
        eprintln!("    {rate:.0} messages/s");
        raw_runs.push(rate);
    }
    let raw = median(&raw_runs);
    eprintln!("    median {raw:.0} messages/s");
    eprintln!("(2) PostgreSQL COPY of the same rows");
    let (mut copy_single_runs, mut copy_batched_runs) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let single_rate = copy_rate(&pool, &single[0].rows).await?;
        let batched_rate = copy_rate(&pool, &batched[0].rows).await?;
        eprintln!(
            "    {single_rate:.0} rows/s ({} rows), {batched_rate:.0} rows/s ({} rows)",
            single[0].rows.len(),
            batched[0].rows.len()
        );
        copy_single_runs.push(single_rate);
        copy_batched_runs.push(batched_rate);
    }
    let copy_single = median(&copy_single_runs);
    let copy_batched = median(&copy_batched_runs);
    eprintln!("    median {copy_single:.0} rows/s, {copy_batched:.0} rows/s");

    // The bridge's session opened before the stream, as a harness that ran before
    // left it: the broker queues for it from the first message on.
    let client_id = format!("bench-bridge-{}", Identifier::new());
    open_bridge_session(&url, &client_id).await?;

    let mut harness = Command::new(&harness_binary)
        .arg("serve")
        .env("MQTT_CLIENT_ID", &client_id)
        .env("HTTP_ADDRESS", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {harness_binary}"))?;
    let result = async {
        eprintln!("(3) end to end: {SINGLE_MESSAGES} messages of 1 measurement");
        let single_runs = ingest_runs(&pool, &url, "single", &single).await?;
        // One measurement per message: as many rows as messages.
        let single_messages = median(&single_runs);
        let single_rows = single_messages;
        eprintln!(
            "    median {single_messages:.0} messages/s, {:.2} x raw broker rate",
            single_messages / raw
        );
        eprintln!(
            "(4) end to end: {BATCHED_MESSAGES} messages of {MEASUREMENTS_PER_MESSAGE} measurements"
        );
        let batched_runs = ingest_runs(&pool, &url, "batched", &batched).await?;
        let batched_messages = median(&batched_runs);
        let batched_rows = batched_messages * MEASUREMENTS_PER_MESSAGE as f64;
        eprintln!(
            "    median {batched_messages:.0} messages/s, {batched_rows:.0} rows/s, {:.2} x COPY rate",
            batched_rows / copy_batched
        );
        let rss = peak_rss_megabytes(harness.id())?;
        anyhow::Ok(json!({
            "runs": RUNS,
            "raw_broker_messages_per_second": raw,
            "raw_broker_runs": raw_runs,
            "copy_rows_per_second": {"single": copy_single, "batched": copy_batched},
            "copy_runs": {"single": copy_single_runs, "batched": copy_batched_runs},
            "single": {
                "messages": SINGLE_MESSAGES,
                "messages_per_second": single_messages,
                "rows_per_second": single_rows,
                "ratio_to_raw_broker": single_messages / raw,
                "ratio_to_copy": single_rows / copy_single,
                "messages_per_second_runs": single_runs,
            },
            "batched": {
                "messages": BATCHED_MESSAGES,
                "measurements_per_message": MEASUREMENTS_PER_MESSAGE,
                "messages_per_second": batched_messages,
                "rows_per_second": batched_rows,
                "ratio_to_raw_broker": batched_messages / raw,
                "ratio_to_copy": batched_rows / copy_batched,
                "messages_per_second_runs": batched_runs,
            },
            "harness_peak_rss_megabytes": rss,
        }))
    }
    .await;
    harness.kill()?;
    harness.wait()?;
    let report = result?;
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(parent) = std::path::Path::new(&output).parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::File::create(&output)?.write_all(text.as_bytes())?;
    eprintln!("written to {output}");
    Ok(())
}
