-- Closed months packed: a sensor's measurements of a UTC day in one row of arrays, once
-- their month has closed, instead of a row (and a key entry) each.
--
-- A measurement row costs about 99 bytes of heap (28 of them tuple header and line
-- pointer) and 49 of key, so that with its summaries a one-attribute measurement took
-- about 204 bytes. Packed, a day's timestamps, fingerprints, receipt timestamps,
-- revisions, positions and values are six arrays of one row, which PostgreSQL
-- compresses as a whole (the values repeat their attribute names): about 30 bytes a
-- measurement at a fleet's density (134 a sensor a day), with one key entry a day.
--
-- measurement_packed holds the packed days, partitioned by month as the measurements
-- are, so that retention drops them whole. pack_measurement_month moves a month's rows
-- into it. The month's partition of measurement stays, empty, for the measurements
-- that arrive late (a sensor's backlog): a trigger skips those already packed, so a
-- redelivered measurement is still stored once, and the next packing of the month
-- merges the others into their days. A closed month receives few rows, so reads
-- take the union of both (measurements_in), and a day's arrays are sorted by creation
-- timestamp and fingerprint, the order of the key.
--
-- The summaries (4-hour counts, hourly and daily rollups) are untouched by packing: they
-- count a measurement when it is inserted, packed or not later.

CREATE TABLE measurement_packed (
    sensor_identifier uuid NOT NULL,
    day_timestamp timestamptz NOT NULL,
    -- The arrays' length, in the key so that a page finds how many days to read from
    -- the key alone.
    measurement_count integer NOT NULL CHECK (measurement_count > 0),
    creation_timestamps timestamptz[] NOT NULL,
    fingerprints bigint[] NOT NULL,
    receipt_timestamps timestamptz[] NOT NULL,
    revisions integer[] NOT NULL,
    positions integer[] NOT NULL,
    "values" json[] NOT NULL,
    PRIMARY KEY (sensor_identifier, day_timestamp) INCLUDE (measurement_count)
) PARTITION BY RANGE (day_timestamp);

CREATE TABLE measurement_packed_default PARTITION OF measurement_packed DEFAULT;

-- The packed measurements of a sensor whose creation timestamps lie in
-- [lower_bound, upper_bound), unordered, as rows of measurement.
CREATE FUNCTION packed_measurements_in(sensor uuid, lower_bound timestamptz,
    upper_bound timestamptz)
RETURNS SETOF measurement LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT packed.sensor_identifier, stored.creation_timestamp, stored.receipt_timestamp,
        stored.fingerprint, stored.revision, stored.position, stored.value
    FROM measurement_packed AS packed,
        unnest(packed.creation_timestamps, packed.receipt_timestamps, packed.fingerprints,
            packed.revisions, packed.positions, packed."values")
            AS stored (creation_timestamp, receipt_timestamp, fingerprint, revision, position, value)
    WHERE packed.sensor_identifier = sensor
        AND packed.day_timestamp > lower_bound - interval '1 day'
        AND packed.day_timestamp < upper_bound
        AND stored.creation_timestamp >= lower_bound
        AND stored.creation_timestamp < upper_bound
$$;

-- Every measurement of a sensor whose creation timestamp lies in [lower_bound,
-- upper_bound), stored as a row or packed, unordered.
CREATE FUNCTION measurements_in(sensor uuid, lower_bound timestamptz, upper_bound timestamptz)
RETURNS SETOF measurement LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM measurement
    WHERE sensor_identifier = sensor
        AND creation_timestamp >= lower_bound AND creation_timestamp < upper_bound
    UNION ALL
    SELECT * FROM packed_measurements_in(sensor, lower_bound, upper_bound)
$$;

-- The packed measurements a page needs: those of a sensor after `bound` and before
-- `far_end` (both excluded), in the page's direction (`ascending` or not), from as many
-- packed days as hold `wanted` of them, unordered. The days are chosen from the key
-- (day and count) alone: the first day, which may hold measurements on the wrong side
-- of the bound, and then days until they hold `wanted`.
CREATE FUNCTION packed_measurements_of_page(sensor uuid, bound timestamptz,
    far_end timestamptz, wanted integer, ascending boolean)
RETURNS SETOF measurement LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH day AS (
        SELECT day_timestamp,
            coalesce(sum(measurement_count) OVER (ORDER BY day_timestamp
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                - first_value(measurement_count) OVER (ORDER BY day_timestamp) AS before
        FROM measurement_packed
        WHERE ascending AND sensor_identifier = sensor
            AND day_timestamp > bound - interval '1 day' AND day_timestamp < far_end
        ORDER BY day_timestamp
        LIMIT wanted + 1
    ), previous_day AS (
        SELECT day_timestamp,
            coalesce(sum(measurement_count) OVER (ORDER BY day_timestamp DESC
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                - first_value(measurement_count) OVER (ORDER BY day_timestamp DESC) AS before
        FROM measurement_packed
        WHERE NOT ascending AND sensor_identifier = sensor
            AND day_timestamp < bound AND day_timestamp > far_end - interval '1 day'
        ORDER BY day_timestamp DESC
        LIMIT wanted + 1
    )
    SELECT packed.sensor_identifier, stored.creation_timestamp, stored.receipt_timestamp,
        stored.fingerprint, stored.revision, stored.position, stored.value
    FROM (
        SELECT day_timestamp FROM day WHERE before < wanted
        UNION ALL
        SELECT day_timestamp FROM previous_day WHERE before < wanted
    ) AS chosen
    JOIN measurement_packed AS packed
        ON packed.sensor_identifier = sensor AND packed.day_timestamp = chosen.day_timestamp,
        unnest(packed.creation_timestamps, packed.receipt_timestamps, packed.fingerprints,
            packed.revisions, packed.positions, packed."values")
            AS stored (creation_timestamp, receipt_timestamp, fingerprint, revision, position, value)
    WHERE CASE WHEN ascending
        THEN stored.creation_timestamp > bound AND stored.creation_timestamp < far_end
        ELSE stored.creation_timestamp < bound AND stored.creation_timestamp > far_end END
$$;

-- A measurement that arrives in a packed month is stored as a row (its summaries
-- counted by ingest's trigger) unless it is packed already: a redelivered copy.
CREATE FUNCTION skip_packed_measurement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (
        SELECT FROM packed_measurements_in(NEW.sensor_identifier, NEW.creation_timestamp,
            NEW.creation_timestamp + interval '1 microsecond') AS stored
        WHERE stored.fingerprint = NEW.fingerprint
    ) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

-- Packs the rows of the UTC month that starts at month_start into measurement_packed,
-- merged with the days packed before, and empties its partition of measurement, which
-- from then on skips measurements already packed. Inserts into the month wait until it
-- is done; reads do not, and see the rows either stored or packed. Returns how many
-- rows it packed.
CREATE FUNCTION pack_measurement_month(month_start timestamp) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    month_partition text := 'measurement_' || to_char(month_start, 'YYYY_MM');
    packed bigint;
BEGIN
    IF to_regclass(month_partition) IS NULL THEN
        RETURN 0;
    END IF;
    -- Blocks inserts into the month, not reads, until the transaction ends; taken first,
    -- then the partition of the packed days, as a late insert's trigger reads them.
    EXECUTE format('LOCK TABLE %I IN SHARE ROW EXCLUSIVE MODE', month_partition);
    PERFORM create_month_partition('measurement_packed', 'day_timestamp', month_start);
    IF NOT EXISTS (
        SELECT FROM pg_trigger
        WHERE tgrelid = month_partition::regclass AND tgname = 'measurement_skip_packed'
    ) THEN
        EXECUTE format(
            'CREATE TRIGGER measurement_skip_packed BEFORE INSERT ON %I '
            'FOR EACH ROW EXECUTE FUNCTION skip_packed_measurement()', month_partition);
    END IF;
    EXECUTE format('SELECT count(*) FROM %I', month_partition) INTO packed;
    IF packed = 0 THEN
        RETURN 0;
    END IF;
    -- Each day with rows, packed with the measurements packed before in it: the
    -- statement reads the packed days as they were and replaces them.
    EXECUTE format($statement$
        INSERT INTO measurement_packed AS packed (sensor_identifier, day_timestamp,
            measurement_count, creation_timestamps, fingerprints, receipt_timestamps,
            revisions, positions, "values")
        SELECT sensor_identifier, day_timestamp, count(*),
            array_agg(creation_timestamp ORDER BY creation_timestamp, fingerprint),
            array_agg(fingerprint ORDER BY creation_timestamp, fingerprint),
            array_agg(receipt_timestamp ORDER BY creation_timestamp, fingerprint),
            array_agg(revision ORDER BY creation_timestamp, fingerprint),
            array_agg(position ORDER BY creation_timestamp, fingerprint),
            array_agg(value ORDER BY creation_timestamp, fingerprint)
        FROM (
            SELECT date_bin('1 day', creation_timestamp, timestamptz '1970-01-01 00:00:00+00')
                    AS day_timestamp, *
            FROM %1$I
            UNION ALL
            SELECT day_timestamp, stored.*
            FROM (
                SELECT DISTINCT sensor_identifier,
                    date_bin('1 day', creation_timestamp, timestamptz '1970-01-01 00:00:00+00')
                        AS day_timestamp
                FROM %1$I
            ) AS day,
            LATERAL packed_measurements_in(day.sensor_identifier, day.day_timestamp,
                day.day_timestamp + interval '1 day') AS stored
        ) AS measurement
        GROUP BY sensor_identifier, day_timestamp
        ON CONFLICT (sensor_identifier, day_timestamp) DO UPDATE SET
            measurement_count = excluded.measurement_count,
            creation_timestamps = excluded.creation_timestamps,
            fingerprints = excluded.fingerprints,
            receipt_timestamps = excluded.receipt_timestamps,
            revisions = excluded.revisions,
            positions = excluded.positions,
            "values" = excluded."values"
        $statement$, month_partition);
    EXECUTE format('TRUNCATE %I', month_partition);
    RETURN packed;
END
$$;

-- Retention drops the packed days of the months it drops.
CREATE OR REPLACE FUNCTION drop_measurement_partitions(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    kept_from timestamptz := date_trunc('month', cutoff AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    dropped integer;
BEGIN
    dropped := drop_month_partitions('measurement', 'creation_timestamp', kept_from);
    PERFORM drop_month_partitions('measurement_packed', 'day_timestamp', kept_from);
    PERFORM drop_month_partitions('measurement_count', 'day_timestamp', kept_from);
    PERFORM drop_month_partitions('measurement_day', 'bucket_timestamp', kept_from);
    PERFORM drop_month_partitions('measurement_hour', 'day_timestamp', kept_from);
    RETURN dropped;
END
$$;

-- A deleted sensor's packed days go with its rows.
CREATE OR REPLACE FUNCTION delete_data_of_deleted_sensors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM measurement WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM measurement_packed WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM measurement_hour WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM measurement_day WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM log WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    RETURN NULL;
END
$$;

-- The summaries rebuilt from the rows and the packed days, a month at a time: each
-- partition of measurement with the packed days of its month.
CREATE OR REPLACE FUNCTION rebuild_measurement_summaries() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    month_partition regclass;
    packed_partition regclass;
    source text;
BEGIN
    TRUNCATE measurement_count, measurement_hour, measurement_day;
    FOR month_partition IN
        SELECT inhrelid::regclass FROM pg_inherits
        WHERE inhparent = 'measurement'::regclass
        ORDER BY 1
    LOOP
        source := format('SELECT sensor_identifier, creation_timestamp, value FROM %s',
            month_partition);
        packed_partition := to_regclass(
            'measurement_packed' || substring(month_partition::text FROM 12));
        IF packed_partition IS NOT NULL THEN
            source := source || format(
                ' UNION ALL SELECT packed.sensor_identifier, stored.creation_timestamp, stored.value '
                'FROM %s AS packed, unnest(packed.creation_timestamps, packed."values") '
                'AS stored (creation_timestamp, value)', packed_partition);
        END IF;
        EXECUTE format(
            'INSERT INTO measurement_count (sensor_identifier, day_timestamp, count_00h, '
            '    count_04h, count_08h, count_12h, count_16h, count_20h) '
            'SELECT sensor_identifier, day_timestamp, '
            '    count(*) FILTER (WHERE hour < 4), count(*) FILTER (WHERE hour >= 4 AND hour < 8), '
            '    count(*) FILTER (WHERE hour >= 8 AND hour < 12), count(*) FILTER (WHERE hour >= 12 AND hour < 16), '
            '    count(*) FILTER (WHERE hour >= 16 AND hour < 20), count(*) FILTER (WHERE hour >= 20) '
            'FROM ( '
            '    SELECT sensor_identifier, '
            '        date_bin(''1 day'', creation_timestamp, timestamptz ''1970-01-01 00:00:00+00'') AS day_timestamp, '
            '        date_part(''hour'', creation_timestamp AT TIME ZONE ''UTC'') AS hour '
            '    FROM (%s) AS measurement '
            ') AS measurement '
            'GROUP BY 1, 2', source);
        PERFORM insert_measurement_hours(format(
            'SELECT measurement.sensor_identifier, '
            '    date_bin(''1 hour'', measurement.creation_timestamp, timestamptz ''1970-01-01 00:00:00+00'') AS bucket_timestamp, '
            '    data_point.key AS attribute, min(data_point.value::double precision) AS minimum, '
            '    max(data_point.value::double precision) AS maximum, count(*) AS count, '
            '    sum(data_point.value::numeric) AS sum '
            'FROM (%s) AS measurement, json_each_text(measurement.value) AS data_point '
            'GROUP BY 1, 2, 3', source));
    END LOOP;
    PERFORM roll_up_days_from_hours();
END
$$;

-- The keys of closed months are no longer compacted: their rows are packed.
DROP TABLE measurement_compaction;
