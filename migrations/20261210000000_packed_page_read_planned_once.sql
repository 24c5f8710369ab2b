-- The packed measurements of a page (see 20261209000000) read by a PL/pgSQL function,
-- whose two statements (one a direction) are planned once a connection, instead of by a
-- SQL function. A page passes the function the reach of its rows as a subquery, which
-- keeps PostgreSQL from inlining a SQL function into the page's statement: it planned
-- the function's body anew on every call. In pgbench (one client, prepared statements,
-- 1,000 sensors' 5.5 million rows, the month before packed), the newest page's
-- statement ran 1,350 times a second with the SQL function and 3,172 with this one;
-- before packing, it read the rows alone at 4,242.
CREATE OR REPLACE FUNCTION packed_measurements_of_page(sensor uuid, bound timestamptz,
    far_end timestamptz, wanted integer, ascending boolean)
RETURNS SETOF measurement LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    IF ascending THEN
        RETURN QUERY
        SELECT packed.sensor_identifier, stored.creation_timestamp, stored.receipt_timestamp,
            stored.fingerprint, stored.revision, stored.position, stored.value
        FROM (
            SELECT day.day_timestamp
            FROM (
                SELECT day_timestamp,
                    coalesce(sum(measurement_count) OVER (ORDER BY day_timestamp
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                        - first_value(measurement_count) OVER (ORDER BY day_timestamp) AS before
                FROM measurement_packed
                WHERE sensor_identifier = sensor
                    AND day_timestamp > bound - interval '1 day' AND day_timestamp < far_end
                ORDER BY day_timestamp
                LIMIT wanted + 1
            ) AS day
            WHERE day.before < wanted
        ) AS chosen
        CROSS JOIN LATERAL (
            SELECT * FROM measurement_packed AS packed
            WHERE packed.sensor_identifier = sensor AND packed.day_timestamp = chosen.day_timestamp
        ) AS packed,
        unnest(packed.creation_timestamps, packed.receipt_timestamps, packed.fingerprints,
            packed.revisions, packed.positions, packed."values")
            AS stored (creation_timestamp, receipt_timestamp, fingerprint, revision, position, value)
        WHERE stored.creation_timestamp > bound AND stored.creation_timestamp < far_end;
    ELSE
        RETURN QUERY
        SELECT packed.sensor_identifier, stored.creation_timestamp, stored.receipt_timestamp,
            stored.fingerprint, stored.revision, stored.position, stored.value
        FROM (
            SELECT day.day_timestamp
            FROM (
                SELECT day_timestamp,
                    coalesce(sum(measurement_count) OVER (ORDER BY day_timestamp DESC
                        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                        - first_value(measurement_count) OVER (ORDER BY day_timestamp DESC) AS before
                FROM measurement_packed
                WHERE sensor_identifier = sensor
                    AND day_timestamp < bound AND day_timestamp > far_end - interval '1 day'
                ORDER BY day_timestamp DESC
                LIMIT wanted + 1
            ) AS day
            WHERE day.before < wanted
        ) AS chosen
        CROSS JOIN LATERAL (
            SELECT * FROM measurement_packed AS packed
            WHERE packed.sensor_identifier = sensor AND packed.day_timestamp = chosen.day_timestamp
        ) AS packed,
        unnest(packed.creation_timestamps, packed.receipt_timestamps, packed.fingerprints,
            packed.revisions, packed.positions, packed."values")
            AS stored (creation_timestamp, receipt_timestamp, fingerprint, revision, position, value)
        WHERE stored.creation_timestamp < bound AND stored.creation_timestamp > far_end;
    END IF;
END
$$;
