-- Balance reports of the e-wallet (seed 003, «ОТЧЕТНОСТЬ»).

-- Every change of a wallet account's balance, one row per balance-changing wallet event
-- (WalletToppedUp, HoldCaptured, TransferSent, TransferReceived; holds do not move the
-- balance). Written by the `wallets` projection, rebuilt from the log with it.
CREATE TABLE rm_wallet_movements (
    wallet_id      UUID          NOT NULL,
    client_id      UUID          NOT NULL,
    partition      INTEGER       NOT NULL,
    sequence       BIGINT        NOT NULL,
    -- the event's business time (envelope occurred_at): it decides the movement's day
    occurred_at    TIMESTAMPTZ   NOT NULL,
    -- top_up | payment | transfer_out | transfer_in | refund
    kind           TEXT          NOT NULL,
    -- the top-up operation, payment (also of a refund) or transfer
    operation_id   UUID          NOT NULL,
    -- signed: positive money in (credit), negative money out (debit)
    amount         NUMERIC(20,2) NOT NULL,
    currency       TEXT          NOT NULL,
    balance_after  NUMERIC(20,2) NOT NULL,
    PRIMARY KEY (wallet_id, partition, sequence)
);
CREATE INDEX rm_wallet_movements_wallet_time ON rm_wallet_movements (wallet_id, occurred_at);
CREATE INDEX rm_wallet_movements_client_time ON rm_wallet_movements (client_id, occurred_at);
CREATE INDEX rm_wallet_movements_time ON rm_wallet_movements (occurred_at);

-- Scheduled reports: operators' configuration, not a projection of the log.
CREATE TABLE report_schedules (
    schedule_id         UUID        PRIMARY KEY,
    name                TEXT        NOT NULL,
    report              TEXT        NOT NULL CHECK (report IN ('turnover', 'daily', 'chart')),
    format              TEXT        NOT NULL CHECK (format IN ('csv', 'xlsx', 'png', 'svg')),
    chart_by            TEXT        CHECK (chart_by IN ('day', 'month')),
    -- the scope: NULL and NULL is every wallet account
    client_id           UUID,
    wallet_id           UUID,
    every               TEXT        NOT NULL CHECK (every IN ('day', 'week', 'month')),
    -- the UTC offset report days are counted in (10800 = Moscow, +03:00)
    utc_offset_seconds  INTEGER     NOT NULL DEFAULT 10800,
    recipients          TEXT[]      NOT NULL CHECK (cardinality(recipients) > 0),
    next_run_at         TIMESTAMPTZ NOT NULL,
    active              BOOLEAN     NOT NULL DEFAULT TRUE,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX report_schedules_due ON report_schedules (next_run_at) WHERE active;

-- One run per schedule and due time: the period it covers, its state, the stored file.
CREATE TABLE report_runs (
    run_id       UUID        PRIMARY KEY,
    schedule_id  UUID        NOT NULL REFERENCES report_schedules (schedule_id) ON DELETE CASCADE,
    due_at       TIMESTAMPTZ NOT NULL,
    period_from  DATE        NOT NULL,
    period_to    DATE        NOT NULL,
    -- pending | running | retry | done | failed
    status       TEXT        NOT NULL,
    attempts     INTEGER     NOT NULL DEFAULT 0,
    planned_at   TIMESTAMPTZ NOT NULL,
    claimed_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    location     TEXT,
    bytes        BIGINT,
    error        TEXT,
    UNIQUE (schedule_id, due_at)
);
CREATE INDEX report_runs_waiting ON report_runs (due_at) WHERE status IN ('pending', 'running', 'retry');

-- The book of the report delivery simulator: every notice it was given, once per key. A
-- real delivery adapter keeps nothing here.
CREATE TABLE report_deliveries (
    dedup_key  TEXT        PRIMARY KEY,
    run_id     UUID        NOT NULL,
    recipient  TEXT        NOT NULL,
    subject    TEXT        NOT NULL,
    body       TEXT        NOT NULL,
    location   TEXT        NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
