-- Daily balances in the data platform, and the log position that orders entity facts.
--
-- dp.fact_daily_balances: one row per wallet and UTC day on which the wallet had at least one
-- event, with the closing balance, held amount and available amount at the end of that day and
-- the day's turnover (credit = top-ups and transfers in; debit = captured holds and transfers
-- out). A day without events has no row: the closing figures of the latest earlier row hold.
--
-- Where the balance comes from. Wallet events carry amounts, not balances, so the running
-- balance is derived from the money movements the data platform itself holds
-- (dp.fact_wallet_operations): a row's balance is the sum of every movement of the wallet that
-- occurred up to the end of its day. The loader maintains this incrementally: each movement
-- that is new to dp (its event id was not there yet) adds its amount to its day and to every
-- later day of the wallet; a movement already in dp adds nothing, so a replay is idempotent,
-- and a replay of an earlier window after a later one corrects the later days.
-- Consequently a `--from` window is exact when dp already holds the wallet's earlier events
-- (the usual case: one full replay, then windows). When it does not (a window replayed into an
-- empty dp), the row says so: `events_through` counts the wallet's events dp holds up to the
-- end of the day and `version_through` is the highest wallet version among them; wallet
-- versions are dense from 1, so `complete` (the two are equal) is true exactly when the
-- figures are the wallet's real balance.
ALTER TABLE dp.fact_payments ADD COLUMN last_sequence BIGINT;
ALTER TABLE dp.fact_applications ADD COLUMN last_sequence BIGINT;
ALTER TABLE dp.fact_loans ADD COLUMN last_sequence BIGINT;
COMMENT ON COLUMN dp.fact_payments.last_sequence IS
    'partition sequence of the latest event applied; an older event never overwrites the status';
COMMENT ON COLUMN dp.fact_applications.last_sequence IS
    'partition sequence of the latest event applied; an older event never overwrites the status';
COMMENT ON COLUMN dp.fact_loans.last_sequence IS
    'partition sequence of the latest event applied; an older event never overwrites the status';

CREATE TABLE dp.fact_daily_balances (
    wallet_id        UUID          NOT NULL,
    day              DATE          NOT NULL,
    client_id        UUID          NOT NULL,
    currency         TEXT,
    balance          NUMERIC(20,2) NOT NULL,
    held             NUMERIC(20,2) NOT NULL,
    available        NUMERIC(20,2) GENERATED ALWAYS AS (balance - held) STORED,
    credit_turnover  NUMERIC(20,2) NOT NULL,
    debit_turnover   NUMERIC(20,2) NOT NULL,
    operations       INTEGER       NOT NULL,
    events_through   BIGINT        NOT NULL,
    version_through  BIGINT        NOT NULL,
    complete         BOOLEAN       GENERATED ALWAYS AS (events_through = version_through) STORED,
    PRIMARY KEY (wallet_id, day)
);
COMMENT ON TABLE dp.fact_daily_balances IS
    'closing balance, held and available per wallet and UTC day with events, and the day''s turnover';
COMMENT ON COLUMN dp.fact_daily_balances.operations IS
    'money movements (rows of fact_wallet_operations) of the day';
COMMENT ON COLUMN dp.fact_daily_balances.complete IS
    'dp holds every event of the wallet up to the end of the day, so the figures are exact';
CREATE INDEX fact_daily_balances_day ON dp.fact_daily_balances (day);

-- Rows for what dp already holds, so the incremental maintenance starts from a correct table.
INSERT INTO dp.fact_daily_balances (wallet_id, day, client_id, currency, balance, held,
    credit_turnover, debit_turnover, operations, events_through, version_through)
SELECT wallet_id, day, client_id, max(currency) OVER (PARTITION BY wallet_id),
       sum(d_balance) OVER w, sum(d_held) OVER w, credit, debit, operations,
       sum(events) OVER w, max(max_version) OVER w
FROM (
    SELECT e.aggregate_id AS wallet_id,
           (e.occurred_at AT TIME ZONE 'UTC')::date AS day,
           (array_agg(e.client_id))[1] AS client_id,
           max(o.currency) AS currency,
           coalesce(sum(CASE WHEN o.kind IN ('top_up', 'transfer_in') THEN o.amount
                             WHEN o.kind IN ('capture', 'transfer_out') THEN -o.amount END), 0) AS d_balance,
           coalesce(sum(CASE WHEN o.kind = 'hold' THEN o.amount
                             WHEN o.kind IN ('capture', 'release') THEN -o.amount END), 0) AS d_held,
           coalesce(sum(o.amount) FILTER (WHERE o.kind IN ('top_up', 'transfer_in')), 0) AS credit,
           coalesce(sum(o.amount) FILTER (WHERE o.kind IN ('capture', 'transfer_out')), 0) AS debit,
           count(o.event_id)::integer AS operations,
           count(*) AS events,
           max(e.aggregate_version) AS max_version
    FROM dp.fact_events e
    LEFT JOIN dp.fact_wallet_operations o ON o.event_id = e.event_id
    WHERE e.aggregate_type = 'wallet_account'
    GROUP BY 1, 2
) per_day
WINDOW w AS (PARTITION BY wallet_id ORDER BY day);
