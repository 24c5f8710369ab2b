-- A month is packed only once it has been closed for 7 days, as the upkeep job does
-- (CLOSED_AFTER in sensorium_shared::queries::partitions): pages read the measurements
-- of later months as rows alone, without looking for packed days (never_packed_since):
-- looking cost the newest page's statement 25 to 40 % of its rate in pgbench. Called
-- for a month closed for less,
-- pack_measurement_month raises an error instead of packing rows that pages would then
-- miss.

CREATE OR REPLACE FUNCTION pack_measurement_month(month_start timestamp) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    month_partition text := 'measurement_' || to_char(month_start, 'YYYY_MM');
    packed bigint;
BEGIN
    IF (date_trunc('month', month_start) + interval '1 month') AT TIME ZONE 'UTC'
            > now() - interval '7 days' THEN
        RAISE EXCEPTION 'the month of % closed less than 7 days ago: it is not packed yet',
            to_char(month_start, 'YYYY-MM');
    END IF;
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
