-- Write path v2 (DESIGN.md, "Write path v2"): one writer per partition, holding a lease with a
-- fencing epoch on the partition's head row. A writer takes the lease by bumping `epoch`; every
-- batch it commits updates the head row only `WHERE epoch = <its epoch> AND sequence = <the
-- head it last saw>`, so a writer whose lease was taken (or whose view is stale) cannot commit.
ALTER TABLE partition_heads
    ADD COLUMN writer_id        TEXT,
    ADD COLUMN epoch            BIGINT      NOT NULL DEFAULT 0,
    ADD COLUMN lease_expires_at TIMESTAMPTZ;

-- Raises when a batch's fencing update matched no row; the whole batch statement is then
-- rolled back (SQLSTATE EF001).
CREATE FUNCTION etr_require_fenced(matched BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF matched <> 1 THEN
        RAISE EXCEPTION 'partition writer lease lost or head moved' USING ERRCODE = 'EF001';
    END IF;
    RETURN TRUE;
END
$$;
