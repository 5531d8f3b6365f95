-- The platform's own Confluent-compatible schema registry (infra/src/registry).
--
-- A schema is identified globally by an id that never changes and is never reused: the same
-- schema (same normalized form and references) registered under several subjects shares one id.
-- A subject is an ordered list of versions, each pointing at a schema id. Deleting a version is
-- soft by default (the row stays, `deleted = true`), so consumers can still resolve the ids of
-- old messages; a permanent delete removes the version row but keeps the schema row and its id.

CREATE TABLE schema_registry_schemas (
    -- the global schema id carried in the Confluent wire format (magic byte 0 + 4-byte id)
    id           serial PRIMARY KEY,
    schema_type  text        NOT NULL DEFAULT 'AVRO',
    -- the schema text as first registered, returned unchanged to clients
    schema_text  text        NOT NULL,
    -- Avro Parsing Canonical Form (self-contained, references inlined); informational
    canonical    text        NOT NULL,
    -- SHA-256 of the identity: normalized schema JSON (keeps defaults, docs, aliases) + references
    fingerprint  bytea       NOT NULL,
    -- [{"name": ..., "subject": ..., "version": N}] schemas this one imports
    refs         jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schema_registry_schemas_identity UNIQUE (schema_type, fingerprint)
);

CREATE TABLE schema_registry_versions (
    subject     text        NOT NULL,
    version     integer     NOT NULL CHECK (version > 0),
    schema_id   integer     NOT NULL REFERENCES schema_registry_schemas (id),
    deleted     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- one version number per subject, even under concurrent registrations
    PRIMARY KEY (subject, version)
);

CREATE INDEX schema_registry_versions_by_schema ON schema_registry_versions (schema_id);

-- Compatibility configuration. The row with subject '' is the global default (a subject can never
-- be empty); any other row overrides it for one subject.
CREATE TABLE schema_registry_config (
    subject        text        PRIMARY KEY,
    compatibility  text        NOT NULL CHECK (compatibility IN (
                                   'NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD',
                                   'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE')),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

INSERT INTO schema_registry_config (subject, compatibility) VALUES ('', 'BACKWARD');
