-- The credit-history builder (seed 000 §6.6.6): one record per platform event a bureau is
-- told of, in the unified format's codes. The subject's title data is not kept here: it is
-- opened from the client's sealed personal data when the day's file is assembled, so an
-- erased client's data never reaches a file.
CREATE TABLE bki_records (
    event_id    UUID        PRIMARY KEY,
    client_id   UUID        NOT NULL,
    -- The application's or the loan's id: the obligation's id at the bureau.
    uid         UUID        NOT NULL,
    code        TEXT        NOT NULL,
    -- The Moscow date the event was recorded, and the last day it may be uploaded.
    event_day   DATE        NOT NULL,
    deadline    DATE        NOT NULL,
    obligation  JSONB,
    detail      TEXT        NOT NULL,
    partition   INTEGER     NOT NULL,
    sequence    BIGINT      NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX bki_records_day ON bki_records (event_day, partition, sequence);
CREATE INDEX bki_records_uid ON bki_records (uid);

-- The builder's own fold of the applications and loans it reports on.
CREATE TABLE bki_subject_states (
    aggregate_id UUID  PRIMARY KEY,
    state        JSONB NOT NULL
);

-- Days that are not business days besides Saturdays and Sundays (the upload deadline skips
-- them).
CREATE TABLE bki_holidays (
    day DATE PRIMARY KEY
);

-- The day's report files, one per bureau: signed and encrypted for the bureau.
CREATE TABLE bki_files (
    file_id           UUID        PRIMARY KEY,
    bureau            TEXT        NOT NULL,
    report_day        DATE        NOT NULL,
    -- The upload (and attempt) the file was assembled for.
    upload_id         UUID        NOT NULL,
    attempt           INTEGER     NOT NULL,
    records           INTEGER     NOT NULL,
    -- SHA-256 (hex) of the plain file (what the signature is over) and of what is stored.
    plain_sha256      TEXT        NOT NULL,
    encrypted_sha256  TEXT        NOT NULL,
    signature_sha256  TEXT        NOT NULL,
    location          TEXT        NOT NULL,
    signature_location TEXT       NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    UNIQUE (upload_id, attempt)
);

-- An upload of the day's records to a bureau, the pure process `bki_upload` driving it.
CREATE TABLE bki_uploads (
    upload_id   UUID        PRIMARY KEY,
    bureau      TEXT        NOT NULL,
    report_day  DATE        NOT NULL,
    state       JSONB,
    due_at      TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (bureau, report_day)
);

-- Every send, receipt, rejection and parking of an upload, in order: the journal the
-- per-loan report reads.
CREATE TABLE bki_upload_events (
    upload_id   UUID        NOT NULL,
    seq         INTEGER     NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('sent', 'accepted', 'rejected', 'parked', 'unanswered')),
    attempt     INTEGER     NOT NULL,
    file_id     UUID,
    receipt_id  TEXT,
    event_ids   UUID[]      NOT NULL,
    errors      JSONB,
    at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (upload_id, seq)
);

-- Each record's standing with each bureau: which upload it went in, whether accepted.
CREATE TABLE bki_record_uploads (
    event_id    UUID        NOT NULL,
    bureau      TEXT        NOT NULL,
    upload_id   UUID        NOT NULL,
    status      TEXT        NOT NULL CHECK (status IN ('sent', 'accepted', 'rejected', 'parked')),
    first_sent_at TIMESTAMPTZ NOT NULL,
    late        BOOLEAN     NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id, bureau)
);
