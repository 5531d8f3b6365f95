-- The advertising module (e-wallet spec §6): places per interface type, campaigns, banners
-- with their selection conditions and weights, and each place's playlist with the cursor
-- every process serves from. Configuration, not part of the log
-- (etr_domain::advertising holds the rules; etr_infra::advertising reads and writes here).

CREATE TABLE ad_places (
    place_id        TEXT        PRIMARY KEY CHECK (place_id ~ '^[a-z0-9_-]{1,40}$'),
    name            TEXT        NOT NULL,
    interface_type  TEXT        NOT NULL CHECK (interface_type IN ('web_application', 'email_receipt')),
    version         BIGINT      NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_by      TEXT        NOT NULL
);

CREATE TABLE ad_campaigns (
    campaign_id     TEXT        PRIMARY KEY CHECK (campaign_id ~ '^[a-z0-9_-]{1,40}$'),
    name            TEXT        NOT NULL,
    -- Runs in [active_from, active_to); no end: for ever.
    active_from     TIMESTAMPTZ NOT NULL,
    active_to       TIMESTAMPTZ CHECK (active_to > active_from),
    active          BOOLEAN     NOT NULL DEFAULT true,
    version         BIGINT      NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_by      TEXT        NOT NULL
);

CREATE TABLE ad_banners (
    banner_id       TEXT        PRIMARY KEY CHECK (banner_id ~ '^[a-z0-9_-]{1,40}$'),
    campaign_id     TEXT        NOT NULL REFERENCES ad_campaigns (campaign_id),
    place_id        TEXT        NOT NULL REFERENCES ad_places (place_id),
    title           TEXT        NOT NULL,
    body            TEXT        NOT NULL DEFAULT '',
    link            TEXT        NOT NULL,
    weight          INTEGER     NOT NULL CHECK (weight BETWEEN 1 AND 1000),
    -- Selection conditions: empty arrays / NULL bounds / an empty object hold for anything.
    service_ids     TEXT[]      NOT NULL DEFAULT '{}',
    menu_item_ids   TEXT[]      NOT NULL DEFAULT '{}',
    amount_from     NUMERIC,
    amount_to       NUMERIC,
    -- Attribute name -> regular expression the attribute matches as a whole.
    attribute_patterns JSONB    NOT NULL DEFAULT '{}',
    image           BYTEA       CHECK (octet_length(image) BETWEEN 1 AND 262144),
    image_type      TEXT        CHECK (image_type IN ('image/png', 'image/jpeg', 'image/gif', 'image/webp')),
    version         BIGINT      NOT NULL DEFAULT 1,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_by      TEXT        NOT NULL,
    CHECK ((image IS NULL) = (image_type IS NULL)),
    CHECK (amount_from IS NULL OR amount_to IS NULL OR amount_to > amount_from)
);

CREATE INDEX ad_banners_by_place ON ad_banners (place_id, banner_id);
CREATE INDEX ad_banners_by_campaign ON ad_banners (campaign_id);

-- A place's playlist (every banner of its active campaigns `weight` times, shuffled with the
-- seed of its version) and the cursor of the next request. Rebuilt, with a new version and
-- the cursor at 0, in the transaction that changes one of the place's banners or campaigns;
-- a request locks the row, picks the next matching entry and moves the cursor past it.
CREATE TABLE ad_playlists (
    place_id        TEXT        PRIMARY KEY REFERENCES ad_places (place_id),
    version         BIGINT      NOT NULL,
    seed            BIGINT      NOT NULL,
    entries         TEXT[]      NOT NULL,
    position        BIGINT      NOT NULL DEFAULT 0 CHECK (position >= 0),
    rebuilt_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
