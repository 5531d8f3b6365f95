-- Watch lists (seed 000, 6.6.1 financial-monitoring-service, 6.6.9 list-manager-service):
-- the Rosfinmonitoring list (115-FZ) loaded from published files with its history kept, and
-- the operators' own block and allow lists. Names are stored as written and normalised
-- (etr_domain::legal::normalize_name, computed by the application), documents as kind +
-- canonical number; lookups go by normalised name + birth date and by document.

-- Every load of a published list, with its counts.
CREATE TABLE watchlist_loads (
    id          BIGSERIAL   PRIMARY KEY,
    list        TEXT        NOT NULL,
    source      TEXT        NOT NULL,
    loaded_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- Data lines read (the header and blank lines not counted), malformed ones included.
    rows        BIGINT      NOT NULL,
    skipped     BIGINT      NOT NULL,
    -- Entries on the list after the load, entries it added and entries it delisted.
    listed      BIGINT      NOT NULL,
    added       BIGINT      NOT NULL,
    delisted    BIGINT      NOT NULL
);

-- One row per continuous listing of an entry: listed by one load, delisted by the first later
-- load that no longer has it (NULL while it is still on the list). An entry whose data change
-- is the old row delisted and a new row listed by the same load. The state at load L is the
-- rows with listed_in_load <= L and (delisted_in_load IS NULL or > L).
CREATE TABLE rosfinmonitoring_entries (
    id               BIGSERIAL PRIMARY KEY,
    -- SHA-256 (hex) of the entry's identifying content: its ID, normalised name, birth date
    -- and document. Equal keys in two loads are the same entry.
    entry_key        TEXT      NOT NULL,
    entry_id         TEXT      NOT NULL,
    full_name        TEXT      NOT NULL,
    name_norm        TEXT      NOT NULL,
    birth_date       DATE,
    document_kind    TEXT,
    document         TEXT,
    listed_in_load   BIGINT    NOT NULL REFERENCES watchlist_loads (id),
    delisted_in_load BIGINT    REFERENCES watchlist_loads (id),
    CHECK (delisted_in_load IS NULL OR delisted_in_load > listed_in_load),
    CHECK ((document_kind IS NULL) = (document IS NULL))
);
CREATE UNIQUE INDEX rosfinmonitoring_entries_current
    ON rosfinmonitoring_entries (entry_key) WHERE delisted_in_load IS NULL;
CREATE INDEX rosfinmonitoring_entries_by_name
    ON rosfinmonitoring_entries (name_norm, birth_date);
CREATE INDEX rosfinmonitoring_entries_by_document
    ON rosfinmonitoring_entries (document);

-- Operator-managed lists. A block list's action says what its hits do to an application;
-- an allow list's hits clear block-list hits (its action is not used).
CREATE TABLE watchlists (
    id          BIGSERIAL   PRIMARY KEY,
    name        TEXT        NOT NULL UNIQUE CHECK (name <> ''),
    kind        TEXT        NOT NULL CHECK (kind IN ('block', 'allow')),
    action      TEXT        NOT NULL CHECK (action IN ('decline', 'manual_review')),
    description TEXT        NOT NULL,
    created_by  TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Entries of the operators' lists; removal is soft (who, when, why are kept).
CREATE TABLE watchlist_entries (
    id             BIGSERIAL   PRIMARY KEY,
    list_id        BIGINT      NOT NULL REFERENCES watchlists (id),
    full_name      TEXT        NOT NULL,
    name_norm      TEXT        NOT NULL,
    birth_date     DATE,
    document_kind  TEXT,
    document       TEXT,
    reason         TEXT        NOT NULL,
    added_by       TEXT        NOT NULL,
    added_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    removed_at     TIMESTAMPTZ,
    removed_by     TEXT,
    removal_reason TEXT,
    -- An entry must be able to match: a document, or a name and a birth date.
    CHECK (document IS NOT NULL OR (name_norm <> '' AND birth_date IS NOT NULL)),
    CHECK ((document_kind IS NULL) = (document IS NULL)),
    CHECK ((removed_at IS NULL) = (removed_by IS NULL)
           AND (removed_at IS NULL) = (removal_reason IS NULL))
);
CREATE INDEX watchlist_entries_by_name
    ON watchlist_entries (name_norm, birth_date) WHERE removed_at IS NULL;
CREATE INDEX watchlist_entries_by_document
    ON watchlist_entries (document) WHERE removed_at IS NULL;
CREATE INDEX watchlist_entries_page ON watchlist_entries (list_id, id);
