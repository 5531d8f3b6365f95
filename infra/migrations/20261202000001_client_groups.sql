-- Client groups and their limits (e-wallet spec §2): configuration, not part of the log. The
-- command side decides every operation under the catalogue current at that moment; a client's
-- membership is an event of the client (`ClientGroupChanged`).

CREATE TABLE client_groups (
    group_id    TEXT        PRIMARY KEY CHECK (group_id ~ '^[a-z0-9_-]{1,40}$'),
    name        TEXT        NOT NULL,
    -- Limits by ISO 4217 currency: etr_domain::limits::CurrencyLimits as JSON, amounts as
    -- decimal strings.
    limits      JSONB       NOT NULL,
    is_default  BOOLEAN     NOT NULL DEFAULT false,
    version     BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_by  TEXT        NOT NULL
);
-- At most one default group.
CREATE UNIQUE INDEX client_groups_one_default ON client_groups (is_default) WHERE is_default;

-- Every version of every group, for the audit trail.
CREATE TABLE client_group_versions (
    group_id    TEXT        NOT NULL,
    version     BIGINT      NOT NULL,
    name        TEXT        NOT NULL,
    limits      JSONB       NOT NULL,
    is_default  BOOLEAN     NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    changed_by  TEXT        NOT NULL,
    PRIMARY KEY (group_id, version)
);

-- Read model (projection `wallets`): each client's group, UTC offset and spending per local
-- day, folded from ClientGroupChanged, ClientTimeZoneChanged, SpendingCounted and
-- SpendingReleased with the domain's own `evolve`; the query API shows a wallet's limits and
-- their usage from it.
CREATE TABLE rm_client_limits (
    client_id   UUID        PRIMARY KEY,
    group_id    TEXT,
    utc_offset  TEXT,
    state       JSONB       NOT NULL,
    version     BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
