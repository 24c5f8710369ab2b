-- The hourly rollup's key carries its statistics (INCLUDE), as the daily rollup's does
-- (20261202000000), so that an aggregate of hours reads them from the index alone (an
-- index-only scan) instead of one heap page per row: ingest writes every sensor's hour
-- in turn, so a sensor's hours lie on as many pages as rows. The default aggregate (28
-- days of hours, 2,684 rows of one sensor at 50 million measurements) read 2,578 heap
-- pages in 4.2 ms before and 111 index pages in 1.0 ms after (EXPLAIN ANALYZE); the key
-- built anew grows from 2.5 to 3.1 GB there, about 12 bytes a measurement. Building it
-- there took 39 s, during which ingest waits on the rollup's lock (a batch that times
-- out is delivered again); `harness migrate` runs it without the routes' statement
-- timeout.
ALTER TABLE measurement_hour
    DROP CONSTRAINT measurement_hour_pkey,
    ADD PRIMARY KEY (sensor_identifier, bucket_timestamp, attribute)
        INCLUDE (minimum, maximum, count, sum);
