//! `/networks/{n}/sensors/{s}/measurements/export` and `.../logs/export`: every
//! measurement or log message of a sensor in a range, streamed as NDJSON or CSV.
//!
//! The rows are read from PostgreSQL as it sends them, written into chunks of
//! [`CHUNK_SIZE`] bytes and handed to the response body through a channel of
//! [`CHANNEL_CHUNKS`] chunks: memory stays constant whatever the count, and a client
//! that reads slowly holds the query back instead of filling memory. In the cloud the
//! `export` function serves these routes through a function URL with response
//! streaming (API Gateway would buffer the whole answer and cap it at a few megabytes).

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use sensorium_shared::domain::{Identifier, Timestamp};
use sensorium_shared::error::ErrorChain;
use sensorium_shared::queries::export::{self, ExportRange, ExportedMeasurement};
use sensorium_shared::queries::logs::LogMessage;
use serde::Deserialize;
use sqlx::PgConnection;
use sqlx::pool::PoolConnection;
use tokio::sync::mpsc;

use crate::AppState;
use crate::auth::authorize_sensor;
use crate::error::Error;
use crate::extract::{Authorization, PathParameters, QueryParameters, SensorPath};

/// The export routes: served by the harness's router and, in the cloud, by the
/// `export` function's URL, not by API Gateway (so not in `routes::ROUTES`).
pub const EXPORT_ROUTES: &[(&str, &str)] = &[
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/measurements/export",
    ),
    (
        "GET",
        "/networks/{network_identifier}/sensors/{sensor_identifier}/logs/export",
    ),
];

/// Bytes gathered before a chunk goes to the client.
const CHUNK_SIZE: usize = 64 * 1024;
/// Chunks waiting for the client at most.
const CHANNEL_CHUNKS: usize = 4;
/// How long an export's query may run: far longer than a page's, as a sensor's whole
/// history may take minutes; less than the `export` function's 900 s.
/// [`export::reset_after_export`] gives the connection its pool's timeout back.
const EXPORT_STATEMENT_TIMEOUT: &str = "870s";

pub fn router() -> Router<AppState> {
    Router::new()
        .route(EXPORT_ROUTES[0].1, get(export_measurements))
        .route(EXPORT_ROUTES[1].1, get(export_log_messages))
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    #[default]
    Ndjson,
    Csv,
}

impl ExportFormat {
    fn content_type(self) -> &'static str {
        match self {
            Self::Ndjson => "application/x-ndjson",
            Self::Csv => "text/csv",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Ndjson => "ndjson",
            Self::Csv => "csv",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    #[serde(default)]
    pub format: ExportFormat,
}

impl ExportQuery {
    fn range(&self) -> Result<ExportRange, Error> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from.as_datetime() >= to.as_datetime()
        {
            return Err(Error::bad_request("from is not before to"));
        }
        Ok(ExportRange {
            from: self.from,
            to: self.to,
        })
    }
}

/// Every measurement of the sensor in the range, ascending.
pub async fn export_measurements(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(query): QueryParameters<ExportQuery>,
    authorization: Authorization,
) -> Result<Response, Error> {
    let kind = Kind {
        name: "measurements",
        read: export::stream_measurements,
        ndjson: write_measurement_line,
        csv_header: "creation_timestamp,revision,attribute,value\n",
        csv: write_measurement_rows,
    };
    respond(&state, &authorization, &path, &query, kind).await
}

/// Every log message of the sensor in the range, ascending.
pub async fn export_log_messages(
    State(state): State<AppState>,
    PathParameters(path): PathParameters<SensorPath>,
    QueryParameters(query): QueryParameters<ExportQuery>,
    authorization: Authorization,
) -> Result<Response, Error> {
    let kind = Kind {
        name: "logs",
        read: export::stream_log_messages,
        ndjson: write_log_line,
        csv_header: "creation_timestamp,revision,severity,subject,details\n",
        csv: write_log_row,
    };
    respond(&state, &authorization, &path, &query, kind).await
}

/// What is exported and how each row is written in either format.
struct Kind<T> {
    name: &'static str,
    read: Reader<T>,
    ndjson: Writer<T>,
    csv_header: &'static str,
    csv: Writer<T>,
}

/// The streamed answer to an authorized export request.
async fn respond<T: Send + 'static>(
    state: &AppState,
    authorization: &Authorization,
    path: &SensorPath,
    query: &ExportQuery,
    kind: Kind<T>,
) -> Result<Response, Error> {
    let range = query.range()?;
    let authorized = authorize_sensor(state, authorization, path).await?;
    let (header, write) = match query.format {
        ExportFormat::Ndjson => ("", kind.ndjson),
        ExportFormat::Csv => (kind.csv_header, kind.csv),
    };
    let body = stream_body(
        authorized.connection,
        Export {
            read: kind.read,
            sensor_identifier: path.sensor_identifier,
            range,
            header,
            write,
        },
    );
    Ok(attachment(body, kind.name, path, query))
}

/// Reads the rows of one sensor and range, as PostgreSQL sends them.
type Reader<T> = for<'c> fn(
    &'c mut PgConnection,
    Identifier,
    ExportRange,
) -> BoxStream<'c, Result<T, sqlx::Error>>;

/// Writes one row in the export's format; fails only on a value that was stored
/// malformed.
type Writer<T> = fn(&mut Vec<u8>, T) -> Result<(), serde_json::Error>;

/// One export: which rows, and how each is written.
struct Export<T> {
    read: Reader<T>,
    sensor_identifier: Identifier,
    range: ExportRange,
    header: &'static str,
    write: Writer<T>,
}

#[derive(Debug, thiserror::Error)]
enum ExportError {
    #[error("reading the rows failed")]
    Database(#[from] sqlx::Error),
    #[error("a stored value could not be written")]
    Value(#[from] serde_json::Error),
    #[error("the client went away")]
    ClientGone,
}

/// The response body of `export`, filled by a task that owns the connection.
fn stream_body<T: Send + 'static>(
    mut connection: PoolConnection<sqlx::Postgres>,
    export: Export<T>,
) -> Body {
    let (sender, receiver) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(CHANNEL_CHUNKS);
    let sensor_identifier = export.sensor_identifier;
    tokio::spawn(async move {
        let outcome = send_rows(&mut connection, export, &sender).await;
        let reset = match &outcome {
            Ok(()) => export::reset_after_export(&mut connection)
                .await
                .map_err(ExportError::from),
            Err(_) => Ok(()),
        };
        if let Err(error) = outcome.and(reset) {
            if !matches!(error, ExportError::ClientGone) {
                tracing::error!(
                    error = %ErrorChain(&error),
                    sensor_identifier = %sensor_identifier,
                    "an export failed after it started",
                );
                // The client sees the body end in an error, never a short file.
                let _ = sender
                    .send(Err(std::io::Error::other("export failed")))
                    .await;
            }
            // Closed rather than returned to the pool, which would first read the
            // rest of the rows the query still sends.
            drop(connection.detach());
        }
    });
    Body::from_stream(futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|chunk| (chunk, receiver)) },
    ))
}

async fn send_rows<T>(
    connection: &mut PgConnection,
    export: Export<T>,
    sender: &mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) -> Result<(), ExportError> {
    export::set_up_export(connection, EXPORT_STATEMENT_TIMEOUT).await?;
    let mut rows = (export.read)(connection, export.sensor_identifier, export.range);
    let mut chunk = Vec::with_capacity(CHUNK_SIZE * 2);
    chunk.extend_from_slice(export.header.as_bytes());
    while let Some(row) = rows.next().await {
        (export.write)(&mut chunk, row?)?;
        if chunk.len() >= CHUNK_SIZE {
            let full = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK_SIZE * 2));
            sender
                .send(Ok(full))
                .await
                .map_err(|_| ExportError::ClientGone)?;
        }
    }
    sender
        .send(Ok(chunk))
        .await
        .map_err(|_| ExportError::ClientGone)
}

/// `body` as a download named after what it holds: kind, sensor and range.
fn attachment(body: Body, kind: &str, path: &SensorPath, query: &ExportQuery) -> Response {
    let bound = |timestamp: Option<Timestamp>, unset: &str| {
        timestamp.map_or(unset.to_owned(), |timestamp| {
            timestamp
                .as_datetime()
                .format("%Y%m%dT%H%M%S%.6fZ")
                .to_string()
        })
    };
    let name = format!(
        "{kind}-{}-{}-{}.{}",
        path.sensor_identifier,
        bound(query.from, "start"),
        bound(query.to, "end"),
        query.format.extension()
    );
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .expect("identifiers, digits and letters make a valid header value");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(query.format.content_type()),
    );
    headers.insert(header::CONTENT_DISPOSITION, disposition);
    response
}

/// `{"value":…,"revision":…,"creation_timestamp":…}` and a newline.
fn write_measurement_line(
    out: &mut Vec<u8>,
    row: ExportedMeasurement,
) -> Result<(), serde_json::Error> {
    out.extend_from_slice(br#"{"value":"#);
    out.extend_from_slice(row.value.as_bytes());
    out.extend_from_slice(br#","revision":"#);
    serde_json::to_writer(&mut *out, &row.revision)?;
    out.extend_from_slice(br#","creation_timestamp":"#);
    serde_json::to_writer(&mut *out, &row.creation_timestamp)?;
    out.extend_from_slice(b"}\n");
    Ok(())
}

/// One CSV line per attribute: `creation_timestamp,revision,attribute,value`.
fn write_measurement_rows(
    out: &mut Vec<u8>,
    row: ExportedMeasurement,
) -> Result<(), serde_json::Error> {
    // Parsed into serde_json's map, sorted by attribute as the value was stored; the
    // numbers print as they were sent (float_roundtrip).
    let value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&row.value)?;
    let mut prefix = Vec::with_capacity(32);
    serde_json::to_writer(&mut prefix, &row.creation_timestamp)?;
    prefix.push(b',');
    if let Some(revision) = row.revision {
        serde_json::to_writer(&mut prefix, &revision)?;
    }
    prefix.push(b',');
    for (attribute, number) in value {
        out.extend_from_slice(&prefix);
        write_csv_field(out, &attribute);
        out.push(b',');
        serde_json::to_writer(&mut *out, &number)?;
        out.push(b'\n');
    }
    Ok(())
}

/// `{"severity":…,"subject":…,"details":…,"revision":…,"creation_timestamp":…}` and a newline.
fn write_log_line(out: &mut Vec<u8>, row: LogMessage) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *out, &row)?;
    out.push(b'\n');
    Ok(())
}

/// `creation_timestamp,revision,severity,subject,details`; no details is an empty field,
/// empty details a quoted empty string.
fn write_log_row(out: &mut Vec<u8>, row: LogMessage) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *out, &row.creation_timestamp)?;
    out.push(b',');
    if let Some(revision) = row.revision {
        serde_json::to_writer(&mut *out, &revision)?;
    }
    out.push(b',');
    out.extend_from_slice(row.severity.as_str().as_bytes());
    out.push(b',');
    write_csv_field(out, &row.subject);
    out.push(b',');
    match row.details.as_deref() {
        Some("") => out.extend_from_slice(b"\"\""),
        Some(details) => write_csv_field(out, details),
        None => {}
    }
    out.push(b'\n');
    Ok(())
}

/// A CSV field (RFC 4180): quoted, with its quotes doubled, when it holds a comma, a
/// quote or a line break.
fn write_csv_field(out: &mut Vec<u8>, field: &str) {
    if field.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(field.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(field: &str) -> String {
        let mut out = Vec::new();
        write_csv_field(&mut out, field);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv("plain subject"), "plain subject");
        assert_eq!(csv("a,b"), "\"a,b\"");
        assert_eq!(csv("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv("carriage\rreturn"), "\"carriage\rreturn\"");
    }

    #[test]
    fn a_measurement_is_one_csv_line_per_attribute() {
        let mut out = Vec::new();
        write_measurement_rows(
            &mut out,
            ExportedMeasurement {
                value: r#"{"humidity":0.1,"temperature":-21.5}"#.into(),
                revision: None,
                creation_timestamp: Timestamp::parse(1_683_645_000.25).unwrap(),
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "1683645000.25,,humidity,0.1\n1683645000.25,,temperature,-21.5\n"
        );
    }
}
