-- The MVD list of invalid Russian passports (seed 000, 6.11: identification checks a
-- passport against it). Each load replaces the list as a whole (the MVD publishes full
-- snapshots) and is recorded with its counts.
CREATE TABLE invalid_passports (
    series  CHAR(4) NOT NULL,
    number  CHAR(6) NOT NULL,
    PRIMARY KEY (series, number)
);

CREATE TABLE invalid_passport_loads (
    load_id     BIGSERIAL   PRIMARY KEY,
    source      TEXT        NOT NULL,
    rows_read   BIGINT      NOT NULL,
    listed      BIGINT      NOT NULL,
    skipped     BIGINT      NOT NULL,
    loaded_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
