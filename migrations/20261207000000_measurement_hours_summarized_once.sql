-- Ingest's trigger reads the JSON of the inserted rows once, not once for the daily
-- rollup and again for each hour of the day they fall in: a sensor's backlog (64
-- measurements over 11 hours in one statement) parsed its rows 12 times. The statement's
-- hours are summarized first, into an array of measurement_hour_summary; the daily
-- rollup is summed from them, and each hour's upsert of the hourly rollup (as in
-- 20261206000000) reads its own.

-- One hour's statistics of one sensor's attribute: the hour is `slot` (0 to 23) of the
-- day that starts at day_timestamp.
CREATE TYPE measurement_hour_summary AS (
    sensor_identifier uuid,
    day_timestamp timestamptz,
    slot integer,
    attribute text,
    minimum double precision,
    maximum double precision,
    count bigint,
    sum numeric
);

-- A day's 24 elements holding one hour's `element` at `slot` (0 to 23), `zero` in the
-- others.
CREATE FUNCTION measurement_hour_of_day(slot integer, element anyelement, zero anyelement)
RETURNS anyarray LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_fill(zero, ARRAY[slot]) || element || array_fill(zero, ARRAY[23 - slot])
$$;

CREATE OR REPLACE FUNCTION summarize_inserted_measurements() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hours measurement_hour_summary[];
    current_slot integer;
BEGIN
    -- Every upsert in a fixed order, so that concurrent statements lock summaries
    -- without deadlock.
    INSERT INTO measurement_count AS counted (sensor_identifier, day_timestamp, count_00h,
        count_04h, count_08h, count_12h, count_16h, count_20h)
    SELECT
        sensor_identifier, day_timestamp,
        count(*) FILTER (WHERE hour < 4), count(*) FILTER (WHERE hour >= 4 AND hour < 8),
        count(*) FILTER (WHERE hour >= 8 AND hour < 12), count(*) FILTER (WHERE hour >= 12 AND hour < 16),
        count(*) FILTER (WHERE hour >= 16 AND hour < 20), count(*) FILTER (WHERE hour >= 20)
    FROM (
        SELECT
            sensor_identifier,
            date_bin('1 day', creation_timestamp, timestamptz '1970-01-01 00:00:00+00') AS day_timestamp,
            date_part('hour', creation_timestamp AT TIME ZONE 'UTC') AS hour
        FROM inserted
    ) AS measurement
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (sensor_identifier, day_timestamp) DO UPDATE SET
        count_00h = counted.count_00h + excluded.count_00h,
        count_04h = counted.count_04h + excluded.count_04h,
        count_08h = counted.count_08h + excluded.count_08h,
        count_12h = counted.count_12h + excluded.count_12h,
        count_16h = counted.count_16h + excluded.count_16h,
        count_20h = counted.count_20h + excluded.count_20h;

    SELECT array_agg(hour) INTO hours
    FROM (
        SELECT
            inserted.sensor_identifier,
            date_bin('1 day', inserted.creation_timestamp, timestamptz '1970-01-01 00:00:00+00'),
            date_part('hour', inserted.creation_timestamp AT TIME ZONE 'UTC')::integer,
            data_point.key,
            min(data_point.value::double precision),
            max(data_point.value::double precision),
            count(*),
            sum(data_point.value::numeric)
        FROM inserted, json_each_text(inserted.value) AS data_point
        GROUP BY 1, 2, 3, 4
    ) AS hour (sensor_identifier, day_timestamp, slot, attribute, minimum, maximum, count, sum);

    INSERT INTO measurement_day AS day (sensor_identifier, bucket_timestamp, attribute,
        minimum, maximum, count, sum)
    SELECT sensor_identifier, day_timestamp, attribute, min(minimum), max(maximum),
        sum(count), sum(sum)
    FROM unnest(hours)
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (sensor_identifier, bucket_timestamp, attribute) DO UPDATE SET
        minimum = least(day.minimum, excluded.minimum),
        maximum = greatest(day.maximum, excluded.maximum),
        count = day.count + excluded.count,
        sum = day.sum + excluded.sum;

    -- An upsert per hour of the day among the rows: within one, each row of
    -- measurement_hour is proposed once. The daily upsert above holds the lock of each
    -- day's row, so these lock no row another statement could hold while it waits for
    -- one of this statement's.
    FOR current_slot IN SELECT DISTINCT slot FROM unnest(hours) ORDER BY 1
    LOOP
        INSERT INTO measurement_hour AS day (sensor_identifier, day_timestamp, attribute,
            minimums, maximums, counts, sums)
        SELECT
            sensor_identifier, day_timestamp, attribute,
            measurement_hour_of_day(current_slot, minimum, 0::double precision),
            measurement_hour_of_day(current_slot, maximum, 0::double precision),
            measurement_hour_of_day(current_slot, count, 0::bigint),
            measurement_hour_of_day(current_slot, sum, 0::numeric)
        FROM unnest(hours)
        WHERE slot = current_slot
        ORDER BY 1, 2, 3
        ON CONFLICT (sensor_identifier, day_timestamp, attribute) DO UPDATE SET
            minimums[current_slot + 1] = CASE WHEN day.counts[current_slot + 1] = 0
                THEN excluded.minimums[current_slot + 1]
                ELSE least(day.minimums[current_slot + 1], excluded.minimums[current_slot + 1]) END,
            maximums[current_slot + 1] = CASE WHEN day.counts[current_slot + 1] = 0
                THEN excluded.maximums[current_slot + 1]
                ELSE greatest(day.maximums[current_slot + 1], excluded.maximums[current_slot + 1]) END,
            counts[current_slot + 1] = day.counts[current_slot + 1] + excluded.counts[current_slot + 1],
            sums[current_slot + 1] = day.sums[current_slot + 1] + excluded.sums[current_slot + 1];
    END LOOP;
    RETURN NULL;
END
$$;
