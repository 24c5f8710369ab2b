-- The keys of closed months, compacted: the measurement retention job rebuilds the
-- primary key of each monthly partition once its month has closed (REINDEX INDEX
-- CONCURRENTLY, which blocks neither ingest nor reads), packed full (fillfactor 100).
--
-- Ingest writes every sensor's newest measurement into the middle of the key (its
-- first column is the sensor), so pages split in halves and the key of a month stays
-- about half empty: at 50 million measurements it took 87.8 bytes a measurement where
-- its entries need 44. A closed month receives few rows (a sensor's backlog), so its
-- key can be packed, and stays so.
--
-- This table says which partitions were compacted and how many rows they held then
-- (PostgreSQL's estimate, pg_class.reltuples): a month that has grown by a quarter
-- since (a bulk import of history) is compacted again. A partition's row goes when
-- retention drops it.
CREATE TABLE measurement_compaction (
    partition_name text PRIMARY KEY,
    row_count bigint NOT NULL,
    compaction_timestamp timestamptz NOT NULL
);

CREATE OR REPLACE FUNCTION drop_measurement_partitions(cutoff timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    kept_from timestamptz := date_trunc('month', cutoff AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    month_partition text;
    dropped integer := 0;
BEGIN
    FOR month_partition IN
        SELECT child.relname
        FROM pg_inherits
        JOIN pg_class AS child ON child.oid = pg_inherits.inhrelid
        WHERE pg_inherits.inhparent = 'measurement'::regclass
            AND child.relname ~ '^measurement_[0-9]{4}_[0-9]{2}$'
            AND (to_date(substring(child.relname FROM 13), 'YYYY_MM') + interval '1 month')
                AT TIME ZONE 'UTC' <= kept_from
        ORDER BY child.relname
    LOOP
        EXECUTE format('DROP TABLE %I', month_partition);
        DELETE FROM measurement_compaction WHERE partition_name = month_partition;
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM measurement_default WHERE creation_timestamp < kept_from;
    DELETE FROM measurement_day WHERE bucket_timestamp < kept_from;
    DELETE FROM measurement_hour WHERE bucket_timestamp < kept_from;
    DELETE FROM measurement_count WHERE day_timestamp < kept_from;
    RETURN dropped;
END
$$;
