-- A daily rollup beside the hourly one, the summaries kept by one trigger, and the
-- 4-hour counts read from their index alone.
--
-- * measurement_day: per sensor, attribute and day (UTC, aligned to the epoch), the
--   same statistics as measurement_hour. An aggregate in days (a year, daily) read 24
--   hourly rows per day and attribute, so its cost grew with the data (about 35,000
--   rows a request for a sensor measuring every 10 minutes); it now reads one.
-- * One statement trigger keeps the 4-hour counts, the hourly and the daily rollup, from
--   the rows actually inserted (a duplicate skipped by ON CONFLICT DO NOTHING counts
--   once), in the inserting transaction. Two triggers did the counts and the hours
--   before; each trigger costs an insert statement a PL/pgSQL call of its own.
-- * The network overview reads 168 4-hour counts of each of its sensors. Counts are
--   upserted as measurements arrive, so a sensor's counts lie on as many heap pages as
--   it has buckets: 168,000 page visits for 1,000 sensors. With the count in the key's
--   index (INCLUDE), the overview reads a few index pages per sensor instead.
-- * Measurement retention drops whole months of rows and of summaries alike.
-- * rebuild_measurement_summaries works a partition at a time: in one statement, 50
--   million rows spilled their sort to tens of gigabytes of temporary files.

CREATE TABLE measurement_day (
    sensor_identifier uuid NOT NULL,
    bucket_timestamp timestamptz NOT NULL,
    minimum double precision NOT NULL,
    maximum double precision NOT NULL,
    count bigint NOT NULL,
    attribute text NOT NULL,
    sum numeric NOT NULL,
    PRIMARY KEY (sensor_identifier, bucket_timestamp, attribute)
);

ALTER TABLE measurement_bucket DROP CONSTRAINT measurement_bucket_pkey,
    ADD PRIMARY KEY (sensor_identifier, bucket_timestamp) INCLUDE (measurement_count);

DROP TRIGGER measurement_sensor_exists_then_counted ON measurement;
DROP TRIGGER measurement_sensor_exists_then_rolled_up ON measurement;
DROP FUNCTION roll_up_inserted_measurements();
-- Still called by nothing else; the new trigger does its work.
DROP FUNCTION count_inserted_measurements();

CREATE FUNCTION summarize_inserted_measurements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Every upsert in a fixed order, so that concurrent statements lock summaries
    -- without deadlock.
    INSERT INTO measurement_bucket (sensor_identifier, bucket_timestamp, measurement_count)
    SELECT
        sensor_identifier,
        date_bin('4 hours', creation_timestamp, timestamptz '1970-01-01 00:00:00+00'),
        count(*)
    FROM inserted
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (sensor_identifier, bucket_timestamp) DO UPDATE
        SET measurement_count = measurement_bucket.measurement_count + excluded.measurement_count;

    -- The values are read out of their json once, for both rollups. PostgreSQL runs
    -- the hourly upsert (a WITH part the main statement does not read) after the daily
    -- one, in every statement alike.
    WITH hourly AS (
        SELECT
            inserted.sensor_identifier,
            date_bin('1 hour', inserted.creation_timestamp, timestamptz '1970-01-01 00:00:00+00')
                AS bucket_timestamp,
            data_point.key AS attribute,
            min(data_point.value::double precision) AS minimum,
            max(data_point.value::double precision) AS maximum,
            count(*) AS count,
            sum(data_point.value::numeric) AS sum
        FROM inserted, json_each_text(inserted.value) AS data_point
        GROUP BY 1, 2, 3
    ), hours AS (
        INSERT INTO measurement_hour AS hour (sensor_identifier, bucket_timestamp, attribute,
            minimum, maximum, count, sum)
        SELECT sensor_identifier, bucket_timestamp, attribute, minimum, maximum, count, sum
        FROM hourly
        ORDER BY 1, 2, 3
        ON CONFLICT (sensor_identifier, bucket_timestamp, attribute) DO UPDATE SET
            minimum = least(hour.minimum, excluded.minimum),
            maximum = greatest(hour.maximum, excluded.maximum),
            count = hour.count + excluded.count,
            sum = hour.sum + excluded.sum
    )
    INSERT INTO measurement_day AS day (sensor_identifier, bucket_timestamp, attribute,
        minimum, maximum, count, sum)
    SELECT
        sensor_identifier,
        date_bin('1 day', bucket_timestamp, timestamptz '1970-01-01 00:00:00+00'),
        attribute, min(minimum), max(maximum), sum(count), sum(sum)
    FROM hourly
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (sensor_identifier, bucket_timestamp, attribute) DO UPDATE SET
        minimum = least(day.minimum, excluded.minimum),
        maximum = greatest(day.maximum, excluded.maximum),
        count = day.count + excluded.count,
        sum = day.sum + excluded.sum;
    RETURN NULL;
END
$$;

-- Named to fire after measurement_sensor_exists (triggers fire in name order), so that
-- a missing sensor is reported by that check.
CREATE TRIGGER measurement_sensor_exists_then_summarized AFTER INSERT ON measurement
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION summarize_inserted_measurements();

-- Fills the (empty) daily rollup from the hourly one.
CREATE FUNCTION roll_up_days_from_hours() RETURNS void LANGUAGE sql AS $$
    INSERT INTO measurement_day (sensor_identifier, bucket_timestamp, attribute, minimum,
        maximum, count, sum)
    SELECT
        sensor_identifier,
        date_bin('1 day', bucket_timestamp, timestamptz '1970-01-01 00:00:00+00'),
        attribute, min(minimum), max(maximum), sum(count), sum(sum)
    FROM measurement_hour
    GROUP BY 1, 2, 3;
$$;

-- Rebuilds the 4-hour counts and both rollups from the rows, as the trigger keeps them:
-- for bulk loads that disable the trigger (the scale benchmark). A partition at a time
-- (months hold whole hours, days and 4-hour buckets), so each sort stays the size of a
-- month; the days from the hours.
CREATE OR REPLACE FUNCTION rebuild_measurement_summaries() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    partition regclass;
BEGIN
    TRUNCATE measurement_bucket, measurement_hour, measurement_day;
    FOR partition IN
        SELECT inhrelid::regclass FROM pg_inherits
        WHERE inhparent = 'measurement'::regclass
        ORDER BY 1
    LOOP
        EXECUTE format(
            'INSERT INTO measurement_bucket (sensor_identifier, bucket_timestamp, measurement_count) '
            'SELECT sensor_identifier, '
            '    date_bin(''4 hours'', creation_timestamp, timestamptz ''1970-01-01 00:00:00+00''), '
            '    count(*) '
            'FROM %s GROUP BY 1, 2', partition);
        EXECUTE format(
            'INSERT INTO measurement_hour (sensor_identifier, bucket_timestamp, attribute, '
            '    minimum, maximum, count, sum) '
            'SELECT measurement.sensor_identifier, '
            '    date_bin(''1 hour'', measurement.creation_timestamp, timestamptz ''1970-01-01 00:00:00+00''), '
            '    data_point.key, min(data_point.value::double precision), '
            '    max(data_point.value::double precision), count(*), sum(data_point.value::numeric) '
            'FROM %s AS measurement, json_each_text(measurement.value) AS data_point '
            'GROUP BY 1, 2, 3', partition);
    END LOOP;
    PERFORM roll_up_days_from_hours();
END
$$;

SELECT roll_up_days_from_hours();

-- Retention drops whole months only, the default partition's rows and every summary
-- included: before, it deleted the counts and rollups up to the cutoff while the rows of
-- the cutoff's month stayed (until the next month's run), so aggregates of those days
-- lost values that pages still showed. Months start at midnight UTC, so they hold whole
-- hours, days and 4-hour buckets.
CREATE OR REPLACE FUNCTION drop_measurement_partitions(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    kept_from timestamptz := date_trunc('month', cutoff AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    partition_name text;
    dropped integer := 0;
BEGIN
    FOR partition_name IN
        SELECT child.relname
        FROM pg_inherits
        JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
        WHERE pg_inherits.inhparent = 'measurement'::regclass
            AND child.relname ~ '^measurement_[0-9]{4}_[0-9]{2}$'
            AND (to_date(substring(child.relname FROM 13), 'YYYY_MM') + interval '1 month')
                AT TIME ZONE 'UTC' <= kept_from
        ORDER BY child.relname
    LOOP
        EXECUTE format('DROP TABLE %I', partition_name);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM measurement_default WHERE creation_timestamp < kept_from;
    DELETE FROM measurement_day WHERE bucket_timestamp < kept_from;
    DELETE FROM measurement_hour WHERE bucket_timestamp < kept_from;
    DELETE FROM measurement_bucket WHERE bucket_timestamp < kept_from;
    RETURN dropped;
END
$$;

-- A deleted sensor's rollups go with its rows.
CREATE OR REPLACE FUNCTION delete_data_of_deleted_sensors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM measurement WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM measurement_hour WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM measurement_day WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM log WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    RETURN NULL;
END
$$;
