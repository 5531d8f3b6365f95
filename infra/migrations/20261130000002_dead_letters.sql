-- Records a consumer of the log could not decode (no magic byte, an unknown schema id, a
-- truncated body, a null payload), kept with their position and bytes so an operator can
-- find them on the topic again and retry them (projections/src/dead_letters.rs). One row per
-- consumer and record: recording the same record again changes nothing.
CREATE TABLE dead_letters (
    id             BIGSERIAL   PRIMARY KEY,
    -- who could not read it: `projection.<name>` for a projection's projector
    consumer       TEXT        NOT NULL,
    topic          TEXT        NOT NULL,
    partition      INTEGER     NOT NULL,
    -- the record's offset in its partition (`offset` is an SQL keyword)
    record_offset  BIGINT      NOT NULL,
    key            BYTEA,
    -- NULL for a record without a payload (a tombstone)
    payload        BYTEA,
    -- why it could not be read, from the last attempt
    reason         TEXT        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- operator retries: how many, the last one, and what a successful one did
    retries        INTEGER     NOT NULL DEFAULT 0,
    retried_at     TIMESTAMPTZ,
    -- the partition sequence of the event, once the record decodes
    sequence       BIGINT,
    resolution     TEXT,
    resolved_at    TIMESTAMPTZ,
    CONSTRAINT dead_letters_position UNIQUE (consumer, topic, partition, record_offset)
);

-- The open dead letters of a consumer (the `etr_dead_letters` gauge, `etr dead-letters list`).
CREATE INDEX dead_letters_open ON dead_letters (consumer) WHERE resolved_at IS NULL;
