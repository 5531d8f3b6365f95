-- Processing dictionaries (e-wallet spec §1.3, §3.1): what the processing centre hands the
-- wallet — services, payment sources, commission profiles, the menu profile, currency rates,
-- map points, phone-number capacity ranges, receipt templates. Configuration, not part of the
-- log. Every sync or import is one version: all dictionaries written in one transaction under
-- a new version number; the current version is the highest; earlier versions are kept. A
-- refused document writes nothing (etr_domain::dictionaries checks it before).

CREATE TABLE dictionary_versions (
    version      BIGINT      PRIMARY KEY CHECK (version > 0),
    -- Where the document came from: `processing-centre` (a sync), `file:<name>`, `rest`.
    source       TEXT        NOT NULL,
    -- Who imported it: `platform`, `operator:<id>`, `cli`.
    imported_by  TEXT        NOT NULL,
    imported_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- etr_domain::dictionaries::Counts: items per dictionary.
    counts       JSONB       NOT NULL
);

CREATE TABLE dictionary_services (
    version          BIGINT  NOT NULL REFERENCES dictionary_versions ON DELETE CASCADE,
    position         INTEGER NOT NULL,
    service_id       TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    receipt_template TEXT,
    logo             TEXT,
    PRIMARY KEY (version, service_id)
);

CREATE TABLE dictionary_payment_sources (
    version    BIGINT  NOT NULL REFERENCES dictionary_versions ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    source_id  TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    PRIMARY KEY (version, source_id)
);

CREATE TABLE dictionary_commission_profiles (
    version     BIGINT  NOT NULL REFERENCES dictionary_versions ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    profile_id  TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    currency    TEXT    NOT NULL,
    PRIMARY KEY (version, profile_id)
);

-- A rule: operations from `source_id` with an amount in [amount_from, amount_to) pay
-- clamp(fixed + amount × percent / 100, min, max); amounts in the profile's currency, exact.
CREATE TABLE dictionary_commission_rules (
    version      BIGINT  NOT NULL,
    profile_id   TEXT    NOT NULL,
    -- The rule's position in the document's `rules`.
    position     INTEGER NOT NULL,
    source_id    TEXT    NOT NULL,
    amount_from  NUMERIC NOT NULL,
    amount_to    NUMERIC,
    fixed        NUMERIC NOT NULL,
    percent      NUMERIC NOT NULL,
    min          NUMERIC NOT NULL,
    max          NUMERIC,
    PRIMARY KEY (version, profile_id, position),
    FOREIGN KEY (version, profile_id) REFERENCES dictionary_commission_profiles ON DELETE CASCADE
);

-- The menu profile as a tree: a root has no parent; `path` is the ids from the root.
CREATE TABLE dictionary_menu_items (
    version             BIGINT  NOT NULL REFERENCES dictionary_versions ON DELETE CASCADE,
    item_id             TEXT    NOT NULL,
    parent_id           TEXT,
    position            INTEGER NOT NULL,
    path                TEXT    NOT NULL,
    name                TEXT    NOT NULL,
    operation           TEXT    NOT NULL CHECK (operation IN ('payment', 'top_up', 'transfer')),
    service_id          TEXT,
    commission_profile  TEXT,
    PRIMARY KEY (version, item_id),
    CHECK ((service_id IS NULL) = (commission_profile IS NULL))
);

CREATE TABLE dictionary_currency_rates (
    version    BIGINT  NOT NULL REFERENCES dictionary_versions ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    currency   TEXT    NOT NULL,
    base       TEXT    NOT NULL,
    rate_date  DATE    NOT NULL,
    rate       NUMERIC NOT NULL CHECK (rate > 0),
    PRIMARY KEY (version, currency, base, rate_date)
);

CREATE TABLE dictionary_map_points (
    version    BIGINT  NOT NULL REFERENCES dictionary_versions ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    point_id   TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    address    TEXT    NOT NULL,
    latitude   NUMERIC NOT NULL,
    longitude  NUMERIC NOT NULL,
    kind       TEXT    NOT NULL,
    PRIMARY KEY (version, point_id)
);

-- Capacity ranges: full numbers with the country code, both ends included; a number's range
-- is the one with the greatest number_from at or below it (ranges never overlap).
CREATE TABLE dictionary_phone_ranges (
    version      BIGINT NOT NULL REFERENCES dictionary_versions ON DELETE CASCADE,
    number_from  BIGINT NOT NULL,
    number_to    BIGINT NOT NULL CHECK (number_to >= number_from),
    operator     TEXT   NOT NULL,
    region       TEXT   NOT NULL,
    PRIMARY KEY (version, number_from)
);

CREATE TABLE dictionary_receipt_templates (
    version  BIGINT NOT NULL REFERENCES dictionary_versions ON DELETE CASCADE,
    name     TEXT   NOT NULL,
    body     TEXT   NOT NULL,
    PRIMARY KEY (version, name)
);
