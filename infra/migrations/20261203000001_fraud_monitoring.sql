-- Fraud monitoring (e-wallet spec §8.3): rules limiting API requests per period, and the
-- statistics of requests operators analyse to write them. Configuration and counters, not
-- part of the log. Every API process reloads the rules every second; while the table is
-- empty the built-in defaults apply (etr_domain::fraud::defaults).

CREATE TABLE fraud_rules (
    rule_id         TEXT        PRIMARY KEY CHECK (rule_id ~ '^[a-z0-9_-]{1,40}$'),
    -- Requests without a valid bearer token, or with one.
    level           TEXT        NOT NULL CHECK (level IN ('unauthenticated', 'authenticated')),
    -- Only requests from this interface type (X-Interface-Type); NULL: every type.
    interface_type  TEXT        CHECK (interface_type IN ('web', 'android', 'ios', 'terminal', 'partner-api', 'other')),
    -- What requests are counted by: the peer address, the token's subject, the interface.
    key             TEXT        NOT NULL CHECK (key IN ('ip', 'client', 'interface')),
    request_limit   INTEGER     NOT NULL CHECK (request_limit BETWEEN 1 AND 1000000),
    period_secs     INTEGER     NOT NULL CHECK (period_secs BETWEEN 1 AND 86400),
    -- Only requests whose path starts with this; NULL: every path.
    route_prefix    TEXT,
    -- Only requests of this token subject (authenticated rules); NULL: every client.
    client_id       TEXT,
    active          BOOLEAN     NOT NULL DEFAULT true,
    version         BIGINT      NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_by      TEXT        NOT NULL,
    CHECK (level = 'authenticated' OR (key <> 'client' AND client_id IS NULL))
);

-- Requests per hour, API, interface type, level, peer address, token subject, route
-- template and status class. Each API process aggregates in memory and adds its counts here
-- about once a second in one upsert; `refused` counts the requests a rule refused (429).
CREATE TABLE api_request_stats (
    hour            TIMESTAMPTZ NOT NULL,
    api             TEXT        NOT NULL CHECK (api IN ('command', 'query')),
    interface_type  TEXT        NOT NULL,
    level           TEXT        NOT NULL,
    -- The connection's peer address; NULL when the server did not learn it.
    ip              TEXT,
    -- The bearer token's subject (a client's id for a client token); NULL unauthenticated.
    client_id       TEXT,
    -- The route template (`/v1/clients/{client_id}/wallets`), `(no route)` for a path no
    -- route serves.
    route           TEXT        NOT NULL,
    status_class    TEXT        NOT NULL CHECK (status_class IN ('1xx', '2xx', '3xx', '4xx', '5xx')),
    requests        BIGINT      NOT NULL CHECK (requests >= 0),
    refused         BIGINT      NOT NULL CHECK (refused >= 0),
    CONSTRAINT api_request_stats_key
        UNIQUE NULLS NOT DISTINCT (hour, api, interface_type, level, ip, client_id, route, status_class)
);
CREATE INDEX api_request_stats_client ON api_request_stats (client_id, hour)
    WHERE client_id IS NOT NULL;
