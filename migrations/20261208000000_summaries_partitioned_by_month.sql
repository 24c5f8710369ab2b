-- The summaries of the measurements (the 4-hour counts, the hourly and the daily
-- rollup) partitioned by UTC month as the measurements are, a partition of each beside
-- each of measurement's: measurement retention drops a month of summaries whole, as it
-- drops the month's measurements, where it deleted their rows one by one. At 1,000
-- sensors measuring 4 attributes all day, a month is about 120,000 rows of each rollup
-- and 30,000 of counts, whose deletion took time that grew with the fleet and left as
-- many dead rows for vacuum.
--
-- Each summary's days lie wholly in one month (a day starts at a UTC midnight), and each
-- key still begins with the sensor: a read of a sensor's range scans the key of each
-- month it overlaps. Rows outside every month's partition (a clock years off) wait in
-- each table's default partition, as measurements do in measurement_default, and move
-- into a month's partition when it is created.

-- Creates parent's partition of the UTC month that starts at month_start, named
-- parent_YYYY_MM, unless it exists, with the table's defaults, constraints and column
-- storage and the given fillfactor; moves the month's rows (by column `bounded`, the
-- partition key) out of the default partition, parent_default. Returns whether it
-- created one.
CREATE FUNCTION create_month_partition(parent text, bounded text, month_start timestamp,
    fillfactor integer DEFAULT 100)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    lower_bound timestamptz := date_trunc('month', month_start) AT TIME ZONE 'UTC';
    upper_bound timestamptz := (date_trunc('month', month_start) + interval '1 month') AT TIME ZONE 'UTC';
    partition_name text := parent || '_' || to_char(month_start, 'YYYY_MM');
BEGIN
    IF to_regclass(partition_name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format(
        'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE) '
        'WITH (fillfactor = %s)', partition_name, parent, fillfactor);
    -- With this constraint, attaching needs no scan of the new table.
    EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (%I >= %L AND %I < %L)',
        partition_name, partition_name || '_bounds', bounded, lower_bound, bounded, upper_bound);
    EXECUTE format(
        'WITH moved AS (DELETE FROM %I WHERE %I >= $1 AND %I < $2 RETURNING *) '
        'INSERT INTO %I SELECT * FROM moved',
        parent || '_default', bounded, bounded, partition_name)
        USING lower_bound, upper_bound;
    EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        parent, partition_name, lower_bound, upper_bound);
    EXECUTE format('ALTER TABLE %I DROP CONSTRAINT %I', partition_name, partition_name || '_bounds');
    RETURN true;
END
$$;

-- Drops parent's month partitions (parent_YYYY_MM) of the months that end at or before
-- kept_from, and deletes the rows of its default partition before kept_from (by column
-- `bounded`). Returns how many partitions it dropped.
CREATE FUNCTION drop_month_partitions(parent text, bounded text, kept_from timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month_partition text;
    dropped integer := 0;
BEGIN
    FOR month_partition IN
        SELECT child.relname
        FROM pg_inherits
        JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
        WHERE pg_inherits.inhparent = parent::regclass
            AND child.relname ~ ('^' || parent || '_[0-9]{4}_[0-9]{2}$')
            AND (to_date(right(child.relname, 7), 'YYYY_MM') + interval '1 month')
                AT TIME ZONE 'UTC' <= kept_from
        ORDER BY child.relname
    LOOP
        EXECUTE format('DROP TABLE %I', month_partition);
        dropped := dropped + 1;
    END LOOP;
    EXECUTE format('DELETE FROM %I WHERE %I < $1', parent || '_default', bounded) USING kept_from;
    RETURN dropped;
END
$$;

-- The month's partition of the measurements and of each summary. Tables are locked in
-- the order ingest locks them (the measurements, then its trigger's counts, daily and
-- hourly rollup), so that creating them cannot deadlock with an insert. Returns whether
-- the measurements' partition was created.
CREATE OR REPLACE FUNCTION create_measurement_partition(month_start timestamp) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    created boolean;
BEGIN
    created := create_month_partition('measurement', 'creation_timestamp', month_start);
    PERFORM create_month_partition('measurement_count', 'day_timestamp', month_start);
    PERFORM create_month_partition('measurement_day', 'bucket_timestamp', month_start);
    -- Room on each page for ingest's updates of a day's hours (see 20261206000000).
    PERFORM create_month_partition('measurement_hour', 'day_timestamp', month_start, 75);
    RETURN created;
END
$$;

-- The months wholly before the month of cutoff, dropped: their partitions of the
-- measurements and of each summary, the rows of the default partitions before it, and
-- the record of the dropped partitions' compaction. Returns how many partitions of the
-- measurements it dropped.
CREATE OR REPLACE FUNCTION drop_measurement_partitions(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    kept_from timestamptz := date_trunc('month', cutoff AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    dropped integer;
BEGIN
    dropped := drop_month_partitions('measurement', 'creation_timestamp', kept_from);
    PERFORM drop_month_partitions('measurement_count', 'day_timestamp', kept_from);
    PERFORM drop_month_partitions('measurement_day', 'bucket_timestamp', kept_from);
    PERFORM drop_month_partitions('measurement_hour', 'day_timestamp', kept_from);
    DELETE FROM measurement_compaction WHERE to_regclass(partition_name) IS NULL;
    RETURN dropped;
END
$$;

-- The tables, partitioned, with the columns, keys and storage they had.
DROP VIEW measurement_bucket;
ALTER TABLE measurement_count RENAME TO measurement_count_unpartitioned;
ALTER TABLE measurement_count_unpartitioned
    RENAME CONSTRAINT measurement_count_pkey TO measurement_count_unpartitioned_pkey;
ALTER TABLE measurement_day RENAME TO measurement_day_unpartitioned;
ALTER TABLE measurement_day_unpartitioned
    RENAME CONSTRAINT measurement_day_pkey TO measurement_day_unpartitioned_pkey;
ALTER TABLE measurement_hour RENAME TO measurement_hour_unpartitioned;
ALTER TABLE measurement_hour_unpartitioned
    RENAME CONSTRAINT measurement_hour_pkey TO measurement_hour_unpartitioned_pkey;
ALTER TABLE measurement_hour_unpartitioned
    RENAME CONSTRAINT measurement_hour_check TO measurement_hour_unpartitioned_check;

CREATE TABLE measurement_count (
    sensor_identifier uuid NOT NULL REFERENCES sensor (identifier) ON DELETE CASCADE,
    day_timestamp timestamptz NOT NULL,
    -- The measurements of the bucket that starts at hour 0, 4, ... 20 (UTC) of the day.
    count_00h bigint NOT NULL,
    count_04h bigint NOT NULL,
    count_08h bigint NOT NULL,
    count_12h bigint NOT NULL,
    count_16h bigint NOT NULL,
    count_20h bigint NOT NULL,
    PRIMARY KEY (sensor_identifier, day_timestamp)
        INCLUDE (count_00h, count_04h, count_08h, count_12h, count_16h, count_20h)
) PARTITION BY RANGE (day_timestamp);
CREATE TABLE measurement_count_default PARTITION OF measurement_count DEFAULT;

CREATE TABLE measurement_day (
    sensor_identifier uuid NOT NULL,
    bucket_timestamp timestamptz NOT NULL,
    minimum double precision NOT NULL,
    maximum double precision NOT NULL,
    count bigint NOT NULL,
    attribute text NOT NULL,
    sum numeric NOT NULL,
    PRIMARY KEY (sensor_identifier, bucket_timestamp, attribute)
        INCLUDE (minimum, maximum, count, sum)
) PARTITION BY RANGE (bucket_timestamp);
-- The sum stays in the row, never compressed or moved out, as the key includes it.
ALTER TABLE measurement_day ALTER COLUMN sum SET STORAGE MAIN;
CREATE TABLE measurement_day_default PARTITION OF measurement_day DEFAULT;

-- A row per sensor, attribute and day, its 24 hours as arrays (see 20261206000000).
CREATE TABLE measurement_hour (
    sensor_identifier uuid NOT NULL,
    day_timestamp timestamptz NOT NULL,
    attribute text NOT NULL,
    minimums double precision[] NOT NULL,
    maximums double precision[] NOT NULL,
    counts bigint[] NOT NULL,
    sums numeric[] NOT NULL,
    CONSTRAINT measurement_hour_check CHECK (cardinality(minimums) = 24
        AND cardinality(maximums) = 24 AND cardinality(counts) = 24 AND cardinality(sums) = 24),
    PRIMARY KEY (sensor_identifier, day_timestamp, attribute)
) PARTITION BY RANGE (day_timestamp);
CREATE TABLE measurement_hour_default PARTITION OF measurement_hour DEFAULT
    WITH (fillfactor = 75);

-- A month of summaries beside each month of measurements.
DO $$
DECLARE
    month_start timestamp;
BEGIN
    FOR month_start IN
        SELECT to_date(right(child.relname, 7), 'YYYY_MM')::timestamp
        FROM pg_inherits
        JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
        WHERE pg_inherits.inhparent = 'measurement'::regclass
            AND child.relname ~ '^measurement_[0-9]{4}_[0-9]{2}$'
        ORDER BY 1
    LOOP
        PERFORM create_measurement_partition(month_start);
    END LOOP;
END
$$;

INSERT INTO measurement_count (sensor_identifier, day_timestamp, count_00h, count_04h,
    count_08h, count_12h, count_16h, count_20h)
SELECT sensor_identifier, day_timestamp, count_00h, count_04h, count_08h, count_12h,
    count_16h, count_20h
FROM measurement_count_unpartitioned;
INSERT INTO measurement_day (sensor_identifier, bucket_timestamp, minimum, maximum, count,
    attribute, sum)
SELECT sensor_identifier, bucket_timestamp, minimum, maximum, count, attribute, sum
FROM measurement_day_unpartitioned;
INSERT INTO measurement_hour (sensor_identifier, day_timestamp, attribute, minimums,
    maximums, counts, sums)
SELECT sensor_identifier, day_timestamp, attribute, minimums, maximums, counts, sums
FROM measurement_hour_unpartitioned;
DROP TABLE measurement_count_unpartitioned, measurement_day_unpartitioned,
    measurement_hour_unpartitioned;

CREATE VIEW measurement_bucket AS
SELECT
    measurement_count.sensor_identifier,
    measurement_count.day_timestamp + bucket.start_offset AS bucket_timestamp,
    bucket.measurement_count
FROM measurement_count
CROSS JOIN LATERAL (VALUES
    (interval '0 hours', count_00h), (interval '4 hours', count_04h),
    (interval '8 hours', count_08h), (interval '12 hours', count_12h),
    (interval '16 hours', count_16h), (interval '20 hours', count_20h)
) AS bucket (start_offset, measurement_count)
WHERE bucket.measurement_count > 0;
