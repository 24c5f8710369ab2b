-- Sensor status (API.md): when the server last heard from each sensor, and when its
-- current broker credentials were issued (the credentials themselves live only in the
-- broker: a password hash in Mosquitto's dynamic-security file, a certificate in IoT
-- Core).
-- last_seen_timestamp is written by the topic functions in the statement that checks
-- which sensors of a batch exist, so it costs ingest no extra round trip; it is not
-- indexed, so those updates stay HOT.
ALTER TABLE sensor
    ADD COLUMN last_seen_timestamp timestamptz,
    ADD COLUMN credentials_timestamp timestamptz;
