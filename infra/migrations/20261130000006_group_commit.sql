-- Group commit across partitions (command-api/src/committer.rs): one statement carries the
-- batches of several partitions and fences every one of their heads. Raises unless every
-- fencing update matched its row (SQLSTATE EF001), so the whole statement is rolled back.
CREATE FUNCTION etr_require_fenced(matched BIGINT, expected BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF matched <> expected THEN
        RAISE EXCEPTION 'partition writer lease lost or head moved (% of % partitions fenced)', matched, expected
            USING ERRCODE = 'EF001';
    END IF;
    RETURN TRUE;
END
$$;
