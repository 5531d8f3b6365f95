-- Read models (projections of `etr.events`) and their checkpoints. Every table here can be
-- rebuilt from the log.

-- Last partition sequence applied per projection and partition; written in the same
-- transaction as the read-model changes of a batch.
CREATE TABLE projection_checkpoints (
    projection  TEXT        NOT NULL,
    partition   INTEGER     NOT NULL,
    sequence    BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (projection, partition)
);

CREATE TABLE rm_clients (
    client_id       UUID        PRIMARY KEY,
    events          BIGINT      NOT NULL,
    first_event_at  TIMESTAMPTZ NOT NULL,
    last_event_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE rm_wallets (
    wallet_id       UUID          PRIMARY KEY,
    client_id       UUID          NOT NULL,
    currency        TEXT,
    status          TEXT          NOT NULL,
    balance         NUMERIC(20,2) NOT NULL,
    held            NUMERIC(20,2) NOT NULL,
    available       NUMERIC(20,2) NOT NULL,
    version         BIGINT        NOT NULL,
    state           JSONB         NOT NULL,
    opened_at       TIMESTAMPTZ   NOT NULL,
    updated_at      TIMESTAMPTZ   NOT NULL
);
CREATE INDEX rm_wallets_client ON rm_wallets (client_id);

CREATE TABLE rm_payments (
    payment_id          UUID          PRIMARY KEY,
    client_id           UUID          NOT NULL,
    wallet_id           UUID          NOT NULL,
    amount              NUMERIC(20,2),
    currency            TEXT,
    service_id          TEXT          NOT NULL,
    status_code         SMALLINT,
    status              TEXT          NOT NULL,
    provider_reference  TEXT,
    failure_reason      TEXT,
    version             BIGINT        NOT NULL,
    state               JSONB         NOT NULL,
    created_at          TIMESTAMPTZ   NOT NULL,
    updated_at          TIMESTAMPTZ   NOT NULL
);
CREATE INDEX rm_payments_wallet ON rm_payments (wallet_id, created_at DESC);

-- Every status a payment went through, in log order.
CREATE TABLE rm_payment_history (
    payment_id   UUID        NOT NULL,
    sequence     BIGINT      NOT NULL,
    partition    INTEGER     NOT NULL,
    event_type   TEXT        NOT NULL,
    status_code  SMALLINT,
    status       TEXT        NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (payment_id, partition, sequence)
);
