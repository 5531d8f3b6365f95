-- The analysts' data platform: plain tables in schema `dp`, filled by
-- `etr replay --into data-platform` from the log. Every write is an upsert keyed by the event
-- or the business entity, so replaying the same log twice gives the same tables.
CREATE SCHEMA IF NOT EXISTS dp;

CREATE TABLE dp.dim_clients (
    client_id       UUID PRIMARY KEY,
    first_seen_at   TIMESTAMPTZ NOT NULL,
    last_seen_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE dp.dim_services (
    service_id      TEXT PRIMARY KEY,
    first_seen_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE dp.dim_partners (
    partner_id      TEXT PRIMARY KEY,
    first_seen_at   TIMESTAMPTZ NOT NULL
);

-- Every event, one row each.
CREATE TABLE dp.fact_events (
    event_id        UUID PRIMARY KEY,
    client_id       UUID        NOT NULL,
    aggregate_type  TEXT        NOT NULL,
    aggregate_id    UUID        NOT NULL,
    aggregate_version BIGINT    NOT NULL,
    event_type      TEXT        NOT NULL,
    partition       INTEGER     NOT NULL,
    sequence        BIGINT      NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    actor_kind      TEXT        NOT NULL,
    actor_id        TEXT        NOT NULL,
    command_id      TEXT        NOT NULL,
    correlation_id  TEXT        NOT NULL
);

-- Money movements on wallets: top_up, hold, capture, release, transfer_out, transfer_in.
CREATE TABLE dp.fact_wallet_operations (
    event_id        UUID PRIMARY KEY,
    client_id       UUID          NOT NULL,
    wallet_id       UUID          NOT NULL,
    kind            TEXT          NOT NULL,
    amount          NUMERIC(20,2) NOT NULL,
    currency        TEXT          NOT NULL,
    reference_id    UUID,
    occurred_at     TIMESTAMPTZ   NOT NULL
);

CREATE TABLE dp.fact_payments (
    payment_id      UUID PRIMARY KEY,
    client_id       UUID          NOT NULL,
    wallet_id       UUID,
    service_id      TEXT,
    amount          NUMERIC(20,2),
    currency        TEXT,
    status          TEXT          NOT NULL,
    initiated_at    TIMESTAMPTZ,
    last_event_at   TIMESTAMPTZ   NOT NULL
);

CREATE TABLE dp.fact_applications (
    application_id  UUID PRIMARY KEY,
    client_id       UUID          NOT NULL,
    partner_id      TEXT,
    requested       NUMERIC(20,2),
    currency        TEXT,
    term_days       INTEGER,
    status          TEXT          NOT NULL,
    submitted_at    TIMESTAMPTZ,
    last_event_at   TIMESTAMPTZ   NOT NULL
);

CREATE TABLE dp.fact_loans (
    loan_id         UUID PRIMARY KEY,
    client_id       UUID          NOT NULL,
    application_id  UUID,
    principal       NUMERIC(20,2),
    currency        TEXT,
    status          TEXT          NOT NULL,
    issued_at       TIMESTAMPTZ,
    last_event_at   TIMESTAMPTZ   NOT NULL
);
