-- System settings (e-wallet spec §2): how wallet registrations and personal-data change
-- requests are approved — `automatic` or `manual` (by an operator). Configuration, not part
-- of the log: the command API reads the setting when a request arrives and the command
-- records which approval applied. Every change is kept in `system_setting_changes`.

CREATE TABLE system_settings (
    key         TEXT        PRIMARY KEY,
    value       TEXT        NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_by  TEXT        NOT NULL
);

CREATE TABLE system_setting_changes (
    id          BIGSERIAL   PRIMARY KEY,
    key         TEXT        NOT NULL,
    value       TEXT        NOT NULL,
    changed_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    changed_by  TEXT        NOT NULL
);
