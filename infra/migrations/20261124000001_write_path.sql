-- Write path: the commit point of every command (DESIGN.md, "Why the write path commits in
-- Postgres"). Snapshots are a cache of the log; the outbox holds events until the relay has
-- published them to Kafka; command records make commands idempotent.

CREATE TABLE snapshots (
    aggregate_type  TEXT        NOT NULL,
    aggregate_id    UUID        NOT NULL,
    client_id       UUID        NOT NULL,
    version         BIGINT      NOT NULL CHECK (version > 0),
    state           JSONB       NOT NULL,
    last_event_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id)
);
CREATE INDEX snapshots_client ON snapshots (client_id);

-- One row per partition: the last sequence number handed out. Locking the row orders the
-- commits of one partition, so commit order = sequence order.
CREATE TABLE partition_heads (
    partition   INTEGER PRIMARY KEY,
    sequence    BIGINT  NOT NULL DEFAULT 0
);

-- Per-client hash chain head: the hash of the client's latest event.
CREATE TABLE client_chain_heads (
    client_id   UUID PRIMARY KEY,
    head_hash   TEXT   NOT NULL,
    events      BIGINT NOT NULL
);

CREATE TABLE outbox (
    partition       INTEGER     NOT NULL,
    sequence        BIGINT      NOT NULL,
    event_id        UUID        NOT NULL UNIQUE,
    client_id       UUID        NOT NULL,
    event_type      TEXT        NOT NULL,
    envelope        JSONB       NOT NULL,
    event           JSONB       NOT NULL,
    committed_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    published_at    TIMESTAMPTZ,
    PRIMARY KEY (partition, sequence)
);
CREATE INDEX outbox_unpublished ON outbox (partition, sequence) WHERE published_at IS NULL;

-- Command id (Idempotency-Key) -> first outcome. A repeated id returns this and writes nothing.
CREATE TABLE command_records (
    command_id      TEXT        PRIMARY KEY,
    client_id       UUID        NOT NULL,
    command_type    TEXT        NOT NULL,
    request_hash    TEXT        NOT NULL,
    accepted        BOOLEAN     NOT NULL,
    outcome         JSONB       NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
