-- The partition writer commits a batch without looking its command ids up first (a repeated
-- id is rare): the batch statement inserts the command records ON CONFLICT DO NOTHING and
-- raises when fewer were inserted than sent (SQLSTATE EF002); the writer then decides the
-- batch again, this time with the recorded outcomes looked up.
CREATE FUNCTION etr_require_recorded(inserted BIGINT, expected BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    IF inserted <> expected THEN
        RAISE EXCEPTION 'a command id of the batch is already recorded' USING ERRCODE = 'EF002';
    END IF;
    RETURN TRUE;
END
$$;
