//! The export's query: a sensor's rows in order, read in the key's order rather than
//! sorted, however little memory PostgreSQL may use.

use futures_util::TryStreamExt;
use sensorium_shared::queries::export::{
    ExportRange, reset_after_export, set_up_export, stream_measurements,
};
use sensorium_shared::testing::{create_sensor, insert_interleaved_measurements};
use sqlx::PgPool;

const SENSORS: usize = 20;
const PER_SENSOR: usize = 2_000;

/// With too little `work_mem` to sort a sensor's rows in memory and no room for
/// temporary files, an export whose plan sorted would fail; set up for export, it reads
/// the rows in the key's order and streams them all, in order.
#[sqlx::test(migrator = "sensorium_shared::database::MIGRATOR")]
async fn an_export_reads_its_rows_in_the_keys_order_without_sorting(pool: PgPool) {
    let mut sensors = Vec::with_capacity(SENSORS);
    for _ in 0..SENSORS {
        sensors.push(create_sensor(&pool).await);
    }
    let newest = "2026-06-01T00:00:00Z".parse().unwrap();
    insert_interleaved_measurements(&pool, &sensors, PER_SENSOR, newest).await;
    let mut connection = pool.acquire().await.unwrap();
    sqlx::raw_sql("SET work_mem = '64kB'; SET temp_file_limit = '64kB'")
        .execute(&mut *connection)
        .await
        .unwrap();

    set_up_export(&mut connection, "60s").await.unwrap();
    let rows: Vec<_> = stream_measurements(&mut connection, sensors[0], ExportRange::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(rows.len(), PER_SENSOR);
    assert!(
        rows.windows(2).all(|pair| {
            pair[0].creation_timestamp.as_datetime() < pair[1].creation_timestamp.as_datetime()
        }),
        "the rows are in time order"
    );
    reset_after_export(&mut connection).await.unwrap();
    let settings: (String, String) = sqlx::query_as(
        "SELECT current_setting('enable_sort'), current_setting('statement_timeout')",
    )
    .fetch_one(&mut *connection)
    .await
    .unwrap();
    assert_eq!(settings.0, "on");
    assert_ne!(settings.1, "1min");
}
