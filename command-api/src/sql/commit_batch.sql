-- The batches of one or more partitions, in one statement (so one transaction and one fsync).
-- $1-$4 per partition: partition, the writer's epoch, the head it last committed, the new
-- head; $5 lease seconds; then the command records ($6-$11), snapshots ($12-$17), chain heads
-- ($18-$20) and outbox rows ($21-$27) as arrays. A fencing update matches no row when the
-- lease was taken or the head moved, and etr_require_fenced then aborts the whole statement;
-- a command id recorded before makes etr_require_recorded abort it (the writer then decides
-- its batch again with the recorded outcomes looked up).
WITH fence AS (
    UPDATE partition_heads p
       SET sequence = f.new_head,
           lease_expires_at = clock_timestamp() + make_interval(secs => $5)
      FROM UNNEST($1::int[], $2::bigint[], $3::bigint[], $4::bigint[]) AS f(partition, epoch, head, new_head)
     WHERE p.partition = ANY($1::int[])  -- by the primary key: the few head rows are updated
                                         -- by every commit, so a scan would walk dead versions
       AND p.partition = f.partition AND p.epoch = f.epoch AND p.sequence = f.head
    RETURNING 1
), records AS (
    INSERT INTO command_records (command_id, client_id, command_type, request_hash, accepted, outcome)
    SELECT * FROM UNNEST($6::text[], $7::uuid[], $8::text[], $9::text[], $10::bool[], $11::text[]::jsonb[])
    ON CONFLICT (command_id) DO NOTHING
    RETURNING 1
), snaps AS (
    INSERT INTO snapshots (aggregate_type, aggregate_id, client_id, version, state, last_event_at)
    SELECT * FROM UNNEST($12::text[], $13::uuid[], $14::uuid[], $15::bigint[], $16::text[]::jsonb[], $17::timestamptz[])
    ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
       SET version = EXCLUDED.version, state = EXCLUDED.state, last_event_at = EXCLUDED.last_event_at
), chains AS (
    INSERT INTO client_chain_heads (client_id, head_hash, events)
    SELECT * FROM UNNEST($18::uuid[], $19::text[], $20::bigint[])
    ON CONFLICT (client_id) DO UPDATE SET head_hash = EXCLUDED.head_hash, events = EXCLUDED.events
), written AS (
    INSERT INTO outbox_events (partition, sequence, event_id, client_id, event_type, envelope, event)
    SELECT * FROM UNNEST($21::int[], $22::bigint[], $23::uuid[], $24::uuid[], $25::text[], $26::text[]::jsonb[], $27::text[]::jsonb[])
)
SELECT etr_require_fenced((SELECT count(*) FROM fence), cardinality($1::int[]))
   AND etr_require_recorded((SELECT count(*) FROM records), cardinality($6::text[]))
