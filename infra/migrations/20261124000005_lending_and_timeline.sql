-- Read models of the `lending` projection (applications, loans, repayments) and the
-- `timeline` projection (every event of every client, for auditors and clientTimeline).
-- Like every rm_* table, each can be rebuilt from the log.

CREATE TABLE rm_applications (
    application_id     UUID          PRIMARY KEY,
    client_id          UUID          NOT NULL,
    status             TEXT          NOT NULL,
    requested_amount   NUMERIC(20,2),
    currency           TEXT,
    term_days          INTEGER       NOT NULL,
    partner_id         TEXT,
    chosen_offer_id    UUID,
    loan_id            UUID,
    reason             TEXT,
    -- The offers made after scoring, as the domain serialises them (amounts are decimal strings).
    offers             JSONB         NOT NULL,
    version            BIGINT        NOT NULL,
    state              JSONB         NOT NULL,
    submitted_at       TIMESTAMPTZ   NOT NULL,
    updated_at         TIMESTAMPTZ   NOT NULL
);
CREATE INDEX rm_applications_client ON rm_applications (client_id, submitted_at DESC);

CREATE TABLE rm_loans (
    loan_id            UUID          PRIMARY KEY,
    client_id          UUID          NOT NULL,
    application_id     UUID,
    status             TEXT          NOT NULL,
    principal          NUMERIC(20,2),
    currency           TEXT,
    outstanding        NUMERIC(20,2) NOT NULL,
    repaid             NUMERIC(20,2) NOT NULL,
    fees               NUMERIC(20,2) NOT NULL,
    term_days          INTEGER       NOT NULL,
    daily_rate_percent TEXT,
    issued_at          TIMESTAMPTZ   NOT NULL,
    -- issued_at's UTC date + term_days (prolongations included).
    due_on             DATE          NOT NULL,
    version            BIGINT        NOT NULL,
    state              JSONB         NOT NULL,
    updated_at         TIMESTAMPTZ   NOT NULL
);
CREATE INDEX rm_loans_client ON rm_loans (client_id, issued_at DESC);

-- Repayments and prolongation fees of a loan, in log order.
CREATE TABLE rm_loan_movements (
    loan_id      UUID          NOT NULL,
    partition    INTEGER       NOT NULL,
    sequence     BIGINT        NOT NULL,
    kind         TEXT          NOT NULL,   -- repayment | prolongation_fee
    amount       NUMERIC(20,2) NOT NULL,
    currency     TEXT          NOT NULL,
    reference    TEXT,
    occurred_at  TIMESTAMPTZ   NOT NULL,
    PRIMARY KEY (loan_id, partition, sequence)
);

-- Every event of every client with its envelope; the event itself as the domain serialises
-- it, so `clientStateAsOf` can fold it with the domain's own `evolve`. A client's events all
-- live in one partition, so (partition, sequence) is the client's log order.
CREATE TABLE rm_timeline (
    client_id          UUID        NOT NULL,
    partition          INTEGER     NOT NULL,
    sequence           BIGINT      NOT NULL,
    event_id           UUID        NOT NULL,
    event_type         TEXT        NOT NULL,
    schema_version     INTEGER     NOT NULL,
    aggregate_type     TEXT        NOT NULL,
    aggregate_id       UUID        NOT NULL,
    aggregate_version  BIGINT      NOT NULL,
    actor_kind         TEXT        NOT NULL,
    actor_id           TEXT        NOT NULL,
    command_id         TEXT        NOT NULL,
    correlation_id     TEXT        NOT NULL,
    occurred_at        TIMESTAMPTZ NOT NULL,
    prev_hash          TEXT        NOT NULL,
    hash               TEXT        NOT NULL,
    event              JSONB       NOT NULL,
    PRIMARY KEY (client_id, partition, sequence)
);
CREATE INDEX rm_timeline_client_time ON rm_timeline (client_id, occurred_at);
