-- Log retention counts from the server's receipt time, not the sensor's clock (API.md):
-- by creation_timestamp, a sensor with an unset clock (1970) lost its logs at the next
-- run and one with a clock years ahead kept them forever. Every log has carried its
-- receipt time (from the envelope) since the first migration, so nothing needs filling
-- in; the index the retention delete scans moves to it. Building it holds back log
-- inserts for a while; their messages wait in the queue, nothing is lost.
CREATE INDEX log_receipt_timestamp_index ON log (receipt_timestamp);

-- Only the retention delete used it: every other query of logs is by sensor.
DROP INDEX log_creation_timestamp_index;
