-- Relay v2 (DESIGN.md, "Write path v2"; command-api/src/relay.rs): a published watermark per
-- partition instead of a per-row mark, published rows pruned after a retention, and one
-- publisher elected by a lease with a fencing epoch instead of a session advisory lock.

-- Per partition: the broker acknowledged every event up to `published_sequence`, which last
-- moved at `updated_at`. A partition held at a row the relay cannot publish says which
-- (`stalled_sequence`) and why (`stall_reason`); `encode_failures` counts failed encodings.
CREATE TABLE relay_watermarks (
    partition           INTEGER     PRIMARY KEY,
    published_sequence  BIGINT      NOT NULL CHECK (published_sequence >= 0),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    stalled_sequence    BIGINT,
    stall_reason        TEXT,
    encode_failures     BIGINT      NOT NULL DEFAULT 0
);

-- Existing databases: the old relay marked each partition's rows in sequence order, up to the
-- last acknowledged one, so the last marked sequence is the watermark.
INSERT INTO relay_watermarks (partition, published_sequence, updated_at)
SELECT partition, max(sequence), max(published_at)
  FROM outbox
 WHERE published_at IS NOT NULL
 GROUP BY partition;

-- The one relay that publishes. Taking the lease bumps `epoch`; every mark renews the lease
-- `WHERE epoch = <the relay's epoch>` in the same statement, so a relay whose lease was taken
-- marks nothing.
CREATE TABLE relay_lease (
    id          INTEGER     PRIMARY KEY CHECK (id = 1),
    holder      TEXT,
    epoch       BIGINT      NOT NULL DEFAULT 0,
    expires_at  TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
INSERT INTO relay_lease (id) VALUES (1);

-- The outbox rows themselves, without a per-row publication mark.
DROP INDEX outbox_unpublished;
ALTER TABLE outbox RENAME TO outbox_events;
ALTER TABLE outbox_events DROP COLUMN published_at;
ALTER TABLE outbox_events RENAME CONSTRAINT outbox_pkey TO outbox_events_pkey;
ALTER TABLE outbox_events RENAME CONSTRAINT outbox_event_id_key TO outbox_events_event_id_key;

-- `outbox` as before for its writers and readers: the command side inserts through it (a
-- simple view, so Postgres inserts, updates and deletes through it into outbox_events), and
-- `published_at` is the time the event's partition watermark last moved once it covers the
-- event, NULL exactly while the event is not published.
CREATE VIEW outbox AS
SELECT o.partition,
       o.sequence,
       o.event_id,
       o.client_id,
       o.event_type,
       o.envelope,
       o.event,
       o.committed_at,
       (SELECT w.updated_at
          FROM relay_watermarks w
         WHERE w.partition = o.partition AND w.published_sequence >= o.sequence) AS published_at
  FROM outbox_events o;
