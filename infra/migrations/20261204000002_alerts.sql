-- The alert system (e-wallet spec §4): operators' subscriptions to alert types and channels,
-- the deliveries the alert dispatcher queues (an outbox: queued in the transaction of the
-- dispatcher's checkpoint, or of the API edge that raised the alert, and sent through the
-- notification port outside it), the states the dispatcher folds to read amounts and
-- balances, and the notification simulator's book. Configuration and effects, not the log.

CREATE TABLE alert_subscriptions (
    subscription_id UUID        PRIMARY KEY,
    -- The operator who subscribed (a token subject): the deliveries' recipient.
    operator        TEXT        NOT NULL,
    -- Alert type codes (etr_domain::alerts::AlertType::code), at least one.
    alert_types     TEXT[]      NOT NULL CHECK (cardinality(alert_types) > 0),
    -- sms / email / push / web, at least one.
    channels        TEXT[]      NOT NULL CHECK (cardinality(channels) > 0
                                   AND channels <@ ARRAY['sms', 'email', 'push', 'web']),
    -- Only alerts about this client; NULL: every client.
    client_id       UUID,
    version         BIGINT      NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX alert_subscriptions_types ON alert_subscriptions USING GIN (alert_types);

-- One row per alert, subscription and channel. `dedup_key` is the delivery's idempotency key
-- (`<alert key>/<subscription>/<channel>`, the alert key being `<event id>/<type>` for an alert
-- raised from the log): queued once, sent once.
CREATE TABLE alert_deliveries (
    delivery_id     BIGSERIAL   PRIMARY KEY,
    dedup_key       TEXT        NOT NULL UNIQUE,
    subscription_id UUID        NOT NULL,
    recipient       TEXT        NOT NULL,
    channel         TEXT        NOT NULL,
    alert_type      TEXT        NOT NULL,
    client_id       UUID,
    -- Attribute code → value as text (money as `100.50 RUB`); their kinds are the catalogue's.
    attributes      JSONB       NOT NULL,
    body            TEXT        NOT NULL,
    -- The event that raised it (NULL for an alert raised at the edge).
    event_id        UUID,
    occurred_at     TIMESTAMPTZ NOT NULL,
    status          TEXT        NOT NULL DEFAULT 'pending'
                                CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    last_error      TEXT,
    queued_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    sent_at         TIMESTAMPTZ
);

CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alert_deliveries_type ON alert_deliveries (alert_type, delivery_id);
CREATE INDEX alert_deliveries_client ON alert_deliveries (client_id, delivery_id);

-- The dispatcher's fold of the wallet and payment aggregates (etr_domain's State as JSON):
-- the state before an event, which alerts read amounts and balances from.
CREATE TABLE alert_aggregate_states (
    aggregate_id    UUID        PRIMARY KEY,
    state           JSONB       NOT NULL
);

-- What the notification simulator was given, once per delivery key (tests read it).
CREATE TABLE simulator_alert_notifications (
    dedup_key       TEXT        PRIMARY KEY,
    recipient       TEXT        NOT NULL,
    channel         TEXT        NOT NULL,
    alert_type      TEXT        NOT NULL,
    client_id       UUID,
    body            TEXT        NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
