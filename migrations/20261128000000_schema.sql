-- The whole schema of API.md, core PostgreSQL 15 only (runs on RDS and Aurora).
-- sqlx records applied migrations, so applying them twice is a no-op.

CREATE TABLE "user" (
    identifier uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    creation_timestamp timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of each access token is stored; tokens have 256 bits of entropy,
-- so a fast hash suffices and lookups stay one index probe.
CREATE TABLE session (
    access_token_hash bytea PRIMARY KEY,
    user_identifier uuid NOT NULL REFERENCES "user" (identifier) ON DELETE CASCADE,
    creation_timestamp timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX session_user_identifier_index ON session (user_identifier);

CREATE TABLE network (
    identifier uuid PRIMARY KEY,
    name text NOT NULL UNIQUE,
    creation_timestamp timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE permission (
    user_identifier uuid NOT NULL REFERENCES "user" (identifier) ON DELETE CASCADE,
    network_identifier uuid NOT NULL REFERENCES network (identifier) ON DELETE CASCADE,
    creation_timestamp timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_identifier, network_identifier)
);

CREATE INDEX permission_network_identifier_index ON permission (network_identifier);

CREATE TABLE sensor (
    identifier uuid PRIMARY KEY,
    name text NOT NULL,
    network_identifier uuid NOT NULL REFERENCES network (identifier) ON DELETE CASCADE,
    -- The revision the next configuration gets; bumped in the same statement that
    -- inserts the configuration, so revisions are gap-free under concurrency.
    next_revision integer NOT NULL DEFAULT 0,
    creation_timestamp timestamptz NOT NULL DEFAULT now(),
    UNIQUE (network_identifier, name)
);

CREATE TABLE configuration (
    sensor_identifier uuid NOT NULL REFERENCES sensor (identifier) ON DELETE CASCADE,
    revision integer NOT NULL CHECK (revision >= 0),
    value jsonb NOT NULL,
    creation_timestamp timestamptz NOT NULL DEFAULT now(),
    publication_timestamp timestamptz,
    acknowledgement_timestamp timestamptz,
    receipt_timestamp timestamptz,
    success boolean,
    PRIMARY KEY (sensor_identifier, revision)
);

-- The publisher's outbox: the configurations still waiting for the broker.
CREATE INDEX configuration_unpublished_index ON configuration (sensor_identifier, revision)
    WHERE publication_timestamp IS NULL;

-- A measurement is identified by sensor, timestamp and a fingerprint (SHA-256 of
-- revision and value, computed by the ingest code), so a redelivered message stores
-- nothing twice. The key's leading columns serve the cursor pages.
CREATE TABLE measurement (
    sensor_identifier uuid NOT NULL REFERENCES sensor (identifier) ON DELETE CASCADE,
    creation_timestamp timestamptz NOT NULL,
    fingerprint bytea NOT NULL,
    revision integer CHECK (revision >= 0),
    value jsonb NOT NULL,
    receipt_timestamp timestamptz NOT NULL,
    position integer NOT NULL,
    PRIMARY KEY (sensor_identifier, creation_timestamp, fingerprint)
);

-- Measurement counts per sensor and 4-hour bucket, maintained on ingest, so the
-- network overview reads a few hundred rows instead of scanning 28 days of data.
CREATE TABLE measurement_bucket (
    sensor_identifier uuid NOT NULL REFERENCES sensor (identifier) ON DELETE CASCADE,
    bucket_timestamp timestamptz NOT NULL,
    measurement_count bigint NOT NULL,
    PRIMARY KEY (sensor_identifier, bucket_timestamp)
);

CREATE TYPE severity AS ENUM ('info', 'warning', 'error');

CREATE TABLE log (
    sensor_identifier uuid NOT NULL REFERENCES sensor (identifier) ON DELETE CASCADE,
    creation_timestamp timestamptz NOT NULL,
    fingerprint bytea NOT NULL,
    severity severity NOT NULL,
    subject text NOT NULL,
    details text,
    revision integer CHECK (revision >= 0),
    receipt_timestamp timestamptz NOT NULL,
    position integer NOT NULL,
    PRIMARY KEY (sensor_identifier, creation_timestamp, fingerprint)
);

-- The retention job deletes by age across all sensors.
CREATE INDEX log_creation_timestamp_index ON log (creation_timestamp);

-- The aggregates route groups a sensor's warnings and errors by severity and subject.
CREATE INDEX log_aggregate_index ON log (sensor_identifier, severity, subject, creation_timestamp)
    WHERE severity <> 'info';
