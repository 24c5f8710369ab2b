-- Measurements at fleet scale (50 million rows and more):
--
-- * A smaller key. The 32-byte SHA-256 fingerprint in the primary key becomes its first
--   8 bytes as a bigint. The key is still sensor, timestamp and fingerprint, so two
--   different measurements collide only when sensor and timestamp are equal and 64 bits
--   of their hash too (about 1 in 10^19 per such pair), while a redelivered copy always
--   has the same key. Columns are ordered so that no alignment padding is stored.
-- * Partitions by month of creation_timestamp (UTC), declarative and core only, so
--   measurement retention drops whole partitions instead of deleting rows, and each
--   partition's index stays the size of a month. Rows of a month without a partition
--   (a sensor's clock far off, or the job not run yet) wait in the default partition;
--   create_measurement_partition moves them when it creates their month.
-- * An hourly rollup per sensor and attribute (minimum, maximum, sum, count) kept by a
--   statement trigger from the rows actually inserted, in the inserting transaction, so
--   that a duplicate skipped by ON CONFLICT DO NOTHING counts once. Long-range aggregates
--   read it instead of the rows.
--
-- The existing rows are carried over, and their 4-hour counts and rollups built anew.

ALTER TABLE measurement RENAME TO measurement_unpartitioned;
ALTER TABLE measurement_unpartitioned
    RENAME CONSTRAINT measurement_pkey TO measurement_unpartitioned_pkey;

CREATE TABLE measurement (
    sensor_identifier uuid NOT NULL,
    creation_timestamp timestamptz NOT NULL,
    receipt_timestamp timestamptz NOT NULL,
    fingerprint bigint NOT NULL,
    revision integer CHECK (revision >= 0),
    position integer NOT NULL,
    value json NOT NULL,
    PRIMARY KEY (sensor_identifier, creation_timestamp, fingerprint)
) PARTITION BY RANGE (creation_timestamp);

CREATE TABLE measurement_default PARTITION OF measurement DEFAULT;

-- Creates the partition of the UTC month that starts at month_start (a timestamp in
-- UTC, the first of a month) unless it exists, moving its rows out of the default
-- partition. Returns whether it created one. Named measurement_YYYY_MM, which
-- drop_measurement_partitions reads the bounds from.
CREATE FUNCTION create_measurement_partition(month_start timestamp) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    lower_bound timestamptz := date_trunc('month', month_start) AT TIME ZONE 'UTC';
    upper_bound timestamptz := (date_trunc('month', month_start) + interval '1 month') AT TIME ZONE 'UTC';
    partition_name text := 'measurement_' || to_char(month_start, 'YYYY_MM');
BEGIN
    IF to_regclass(partition_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE measurement INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', partition_name);
    -- With this constraint, attaching needs no scan of the new table.
    EXECUTE format(
        'ALTER TABLE %I ADD CONSTRAINT %I CHECK (creation_timestamp >= %L AND creation_timestamp < %L)',
        partition_name, partition_name || '_bounds', lower_bound, upper_bound);
    EXECUTE format(
        'WITH moved AS (DELETE FROM measurement_default WHERE creation_timestamp >= $1 AND creation_timestamp < $2 RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved', partition_name)
        USING lower_bound, upper_bound;
    EXECUTE format('ALTER TABLE measurement ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        partition_name, lower_bound, upper_bound);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', partition_name, partition_name || '_bounds');
    RETURN true;
END
$$;

-- Creates the partitions of the months from the one holding first to the one holding
-- last (UTC); returns how many it created.
CREATE FUNCTION create_measurement_partitions(first timestamptz, last timestamptz) RETURNS integer
LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE create_measurement_partition(month))::integer
    FROM generate_series(
        date_trunc('month', first AT TIME ZONE 'UTC'),
        date_trunc('month', last AT TIME ZONE 'UTC'),
        interval '1 month'
    ) AS month
$$;

-- Measurement retention: drops every monthly partition whose months all lie before
-- cutoff, deletes the default partition's rows before it (a sensor's clock far off: few
-- rows), and the rollups and 4-hour counts before it. Returns the partitions dropped.
CREATE FUNCTION drop_measurement_partitions(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
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
                AT TIME ZONE 'UTC' <= cutoff
        ORDER BY child.relname
    LOOP
        EXECUTE format('DROP TABLE %I', partition_name);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM measurement_default WHERE creation_timestamp < cutoff;
    DELETE FROM measurement_hour WHERE bucket_timestamp < date_bin('1 hour', cutoff, timestamptz '1970-01-01 00:00:00+00');
    DELETE FROM measurement_bucket WHERE bucket_timestamp < date_bin('4 hours', cutoff, timestamptz '1970-01-01 00:00:00+00');
    RETURN dropped;
END
$$;

-- The months that hold data (five years back at most: older rows wait in the default
-- partition) and the current one through three months ahead; the retention job keeps
-- creating months ahead.
SELECT count(*) FILTER (WHERE create_measurement_partition(month))
FROM (
    SELECT DISTINCT date_trunc('month', creation_timestamp AT TIME ZONE 'UTC') AS month
    FROM measurement_unpartitioned
    WHERE creation_timestamp >= now() - interval '5 years'
        AND creation_timestamp < now() + interval '3 months'
    UNION
    SELECT generate_series(
        date_trunc('month', now() AT TIME ZONE 'UTC'),
        date_trunc('month', (now() + interval '3 months') AT TIME ZONE 'UTC'),
        interval '1 month'
    )
) AS months;

INSERT INTO measurement (sensor_identifier, creation_timestamp, receipt_timestamp, fingerprint,
    revision, position, value)
SELECT sensor_identifier, creation_timestamp, receipt_timestamp,
    ('x' || encode(substring(fingerprint FROM 1 FOR 8), 'hex'))::bit(64)::bigint,
    revision, position, value
FROM measurement_unpartitioned
ON CONFLICT DO NOTHING;

DROP TABLE measurement_unpartitioned;

-- Per sensor, attribute and hour (aligned to the epoch): the statistics of the values
-- stored. The sum is numeric, exact: float8 would overflow (and fail the insert) for
-- 1e308 and 1e308 in one hour, and no stored value may make an aggregate fail.
-- No foreign key, as for measurement: its rows come from measurement rows, whose
-- sensors the statement trigger checked (and locked), and they are deleted with them;
-- a foreign key's check of each row cost the rollup a sixth of its time.
CREATE TABLE measurement_hour (
    sensor_identifier uuid NOT NULL,
    bucket_timestamp timestamptz NOT NULL,
    minimum double precision NOT NULL,
    maximum double precision NOT NULL,
    count bigint NOT NULL,
    attribute text NOT NULL,
    sum numeric NOT NULL,
    PRIMARY KEY (sensor_identifier, bucket_timestamp, attribute)
);

-- Rebuilds the hourly rollups and the 4-hour counts from the rows, as the triggers
-- below keep them: for the rows carried over here, and for bulk loads that disable the
-- triggers (the scale benchmark).
CREATE FUNCTION rebuild_measurement_summaries() RETURNS void LANGUAGE sql AS $$
    TRUNCATE measurement_hour, measurement_bucket;
    INSERT INTO measurement_hour (sensor_identifier, bucket_timestamp, attribute, minimum,
        maximum, count, sum)
    SELECT
        measurement.sensor_identifier,
        date_bin('1 hour', measurement.creation_timestamp, timestamptz '1970-01-01 00:00:00+00'),
        data_point.key,
        min(data_point.value::double precision),
        max(data_point.value::double precision),
        count(*),
        sum(data_point.value::numeric)
    FROM measurement, json_each_text(measurement.value) AS data_point
    GROUP BY 1, 2, 3;
    INSERT INTO measurement_bucket (sensor_identifier, bucket_timestamp, measurement_count)
    SELECT
        sensor_identifier,
        date_bin('4 hours', creation_timestamp, timestamptz '1970-01-01 00:00:00+00'),
        count(*)
    FROM measurement
    GROUP BY 1, 2;
$$;

SELECT rebuild_measurement_summaries();

CREATE FUNCTION roll_up_inserted_measurements() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- In a fixed order, so that concurrent statements lock rollups without deadlock.
    INSERT INTO measurement_hour AS hour (sensor_identifier, bucket_timestamp, attribute,
        minimum, maximum, count, sum)
    SELECT
        inserted.sensor_identifier,
        date_bin('1 hour', inserted.creation_timestamp, timestamptz '1970-01-01 00:00:00+00'),
        data_point.key,
        min(data_point.value::double precision),
        max(data_point.value::double precision),
        count(*),
        sum(data_point.value::numeric)
    FROM inserted, json_each_text(inserted.value) AS data_point
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (sensor_identifier, bucket_timestamp, attribute) DO UPDATE SET
        minimum = least(hour.minimum, excluded.minimum),
        maximum = greatest(hour.maximum, excluded.maximum),
        count = hour.count + excluded.count,
        sum = hour.sum + excluded.sum;
    RETURN NULL;
END
$$;

-- A deleted sensor's rollups go with its rows.
CREATE OR REPLACE FUNCTION delete_data_of_deleted_sensors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM measurement WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM measurement_hour WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM log WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    RETURN NULL;
END
$$;

-- The triggers of the table replaced, and the rollup's; they fire in name order, the
-- sensor check first.
CREATE TRIGGER measurement_sensor_exists AFTER INSERT ON measurement
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION check_inserted_sensors_exist();
CREATE TRIGGER measurement_sensor_exists_then_counted AFTER INSERT ON measurement
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION count_inserted_measurements();
CREATE TRIGGER measurement_sensor_exists_then_rolled_up AFTER INSERT ON measurement
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION roll_up_inserted_measurements();
