-- Measurements and log messages arrive in batches of hundreds of rows. A foreign key
-- checks every row with a query of its own, which cost ingest about three times the
-- insert itself. These statement-level triggers keep the foreign keys' guarantees at
-- one check per statement:
--   * every inserted row names an existing sensor, which stays locked (FOR KEY SHARE,
--     as a foreign key locks it) until the transaction ends;
--   * deleting a sensor deletes its measurements and log messages.
-- Rows never move between sensors and sensor identifiers never change, so updates
-- need no checks.

ALTER TABLE measurement DROP CONSTRAINT measurement_sensor_identifier_fkey;
ALTER TABLE log DROP CONSTRAINT log_sensor_identifier_fkey;

CREATE FUNCTION check_inserted_sensors_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sensors uuid[] := ARRAY(SELECT DISTINCT sensor_identifier FROM inserted);
    locked bigint;
BEGIN
    SELECT count(*) INTO locked
    FROM (SELECT FROM sensor WHERE identifier = ANY (sensors) FOR KEY SHARE) AS existing;
    IF locked < cardinality(sensors) THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('a row inserted into %I names a sensor that does not exist', TG_TABLE_NAME);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER measurement_sensor_exists AFTER INSERT ON measurement
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION check_inserted_sensors_exist();

CREATE TRIGGER log_sensor_exists AFTER INSERT ON log
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION check_inserted_sensors_exist();

CREATE FUNCTION delete_data_of_deleted_sensors() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM measurement WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    DELETE FROM log WHERE sensor_identifier IN (SELECT identifier FROM deleted);
    RETURN NULL;
END
$$;

CREATE TRIGGER sensor_data_deleted AFTER DELETE ON sensor
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION delete_data_of_deleted_sensors();
