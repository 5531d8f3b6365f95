-- The customer registry (seed 000, 6.2.1) and the loan conveyor's side tables.
--
-- Personal data is on the log only sealed with the client's data key; the keys live here,
-- never on the log. Erasing a client deletes its key (and its lookup rows): its events stay
-- and keep their hash chain, but their personal fields can no longer be opened.
CREATE TABLE client_data_keys (
    client_id    UUID        PRIMARY KEY,
    key_version  INTEGER     NOT NULL,
    -- 32 random bytes (XChaCha20-Poly1305); NULL once erased
    data_key     BYTEA,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    erased_at    TIMESTAMPTZ,
    CHECK ((data_key IS NULL) = (erased_at IS NOT NULL))
);

-- The platform's key for blind indexes (keyed hashes of identifiers, for search and
-- duplicate checks without the identifiers in clear). One row.
CREATE TABLE platform_keys (
    name        TEXT        PRIMARY KEY,
    secret      BYTEA       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Blind index of client identifiers: kind (`phone`, `passport`, `inn`, `snils`, `card`) and
-- the keyed hash of the canonical value.
CREATE TABLE client_lookup (
    kind        TEXT        NOT NULL,
    digest      TEXT        NOT NULL,
    client_id   UUID        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (kind, digest, client_id)
);
CREATE INDEX client_lookup_client ON client_lookup (client_id);

-- Read model of the registry (`lending` projection): the client's cabinet with its sealed
-- personal data (opened only for authorised readers), tags, bound cards.
CREATE TABLE rm_customers (
    client_id         UUID        PRIMARY KEY,
    status            TEXT        NOT NULL,
    personal          JSONB,
    registered_by     TEXT,
    block_reason      TEXT,
    tags              JSONB       NOT NULL,
    cards             JSONB       NOT NULL,
    open_application  UUID,
    loans_disbursed   INTEGER     NOT NULL,
    version           BIGINT      NOT NULL,
    state             JSONB       NOT NULL,
    registered_at     TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL
);

-- Operator tasks opened by the conveyor (CRM tickets, seed 000 6.5.1): photo identification
-- and referred applications. Resolving one sends the operator's decision as a command.
CREATE TABLE operator_tasks (
    task_id         UUID        PRIMARY KEY,
    kind            TEXT        NOT NULL,
    application_id  UUID        NOT NULL,
    client_id       UUID        NOT NULL,
    reason          TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    resolved_at     TIMESTAMPTZ,
    resolved_by     TEXT,
    resolution      TEXT
);
CREATE INDEX operator_tasks_open ON operator_tasks (created_at) WHERE resolved_at IS NULL;

-- Steps of a process manager that failed for good (a poison step), with the reason.
CREATE TABLE process_dead_letters (
    process       TEXT        NOT NULL,
    instance_id   UUID        NOT NULL,
    reason        TEXT        NOT NULL,
    state         JSONB       NOT NULL,
    recorded_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    resolved_at   TIMESTAMPTZ,
    PRIMARY KEY (process, instance_id, recorded_at)
);

-- Notifications to clients: queued by the process managers (in the transaction that moved
-- the instance), sent through the notification port by their executor, kept for support.
CREATE TABLE client_notifications (
    id           BIGSERIAL   PRIMARY KEY,
    client_id    UUID        NOT NULL,
    dedup_key    TEXT        NOT NULL UNIQUE,
    text         TEXT        NOT NULL,
    queued_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- when an executor took it to send (another may take it again 30 s later)
    claimed_at   TIMESTAMPTZ,
    -- NULL until the port took it
    sent_at      TIMESTAMPTZ
);
CREATE INDEX client_notifications_pending ON client_notifications (id) WHERE sent_at IS NULL;

-- Books of the simulated external systems (payment providers, SMS gateway). Only the
-- simulators write them; a real adapter keeps nothing here. They live in the platform's
-- database so that a simulator stays idempotent across a restart of the platform, and tests
-- can read what was "sent" and "paid".
CREATE TABLE simulator_card_operations (
    provider     TEXT          NOT NULL,
    -- hold | payout
    kind         TEXT          NOT NULL,
    key          UUID          NOT NULL,
    amount       NUMERIC(20,2),
    attempts     INTEGER       NOT NULL,
    reference    TEXT,
    settled_at   TIMESTAMPTZ,
    released_at  TIMESTAMPTZ,
    PRIMARY KEY (provider, kind, key)
);

CREATE TABLE simulator_sms (
    id       BIGSERIAL   PRIMARY KEY,
    phone    TEXT        NOT NULL,
    text     TEXT        NOT NULL,
    sent_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX simulator_sms_phone ON simulator_sms (phone, id);

-- Which client (partition) an application belongs to and which partner created it: the
-- routing of `/v1/partner/applications/{id}` (written before the command, idempotently).
CREATE TABLE application_routes (
    application_id  UUID        PRIMARY KEY,
    client_id       UUID        NOT NULL,
    partner_id      TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
