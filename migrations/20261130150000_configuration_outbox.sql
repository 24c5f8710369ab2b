-- The publisher's outbox as a table of its own: per sensor, its newest configuration
-- while the broker has not accepted it. A newer configuration replaces the row, so a
-- superseded one leaves the outbox without ever being sent (sending it, retained,
-- would replace the newer one on the broker). A publication that fails backs off on
-- its own row (attempts, next attempt, last error) without holding up the others.
CREATE TABLE configuration_outbox (
    sensor_identifier uuid PRIMARY KEY,
    revision integer NOT NULL,
    attempt_count integer NOT NULL DEFAULT 0,
    next_attempt_timestamp timestamptz NOT NULL DEFAULT now(),
    last_error text,
    FOREIGN KEY (sensor_identifier, revision)
        REFERENCES configuration (sensor_identifier, revision) ON DELETE CASCADE
);

CREATE INDEX configuration_outbox_due_index ON configuration_outbox (next_attempt_timestamp);

INSERT INTO configuration_outbox (sensor_identifier, revision)
SELECT DISTINCT ON (sensor_identifier) sensor_identifier, revision
FROM configuration
ORDER BY sensor_identifier, revision DESC;

-- Only the newest configurations that are still unpublished wait.
DELETE FROM configuration_outbox AS outbox
USING configuration
WHERE configuration.sensor_identifier = outbox.sensor_identifier
    AND configuration.revision = outbox.revision
    AND configuration.publication_timestamp IS NOT NULL;

DROP INDEX configuration_unpublished_index;
