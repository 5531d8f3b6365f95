-- Process managers (DESIGN.md, "Sagas are process managers"): one row per process instance
-- with its state and its timer. The instance changes in the same transaction as the
-- process's checkpoint (projection_checkpoints, under the process's name) when an event
-- moves it, and in its own transaction when its timer fires or an external system answers.
CREATE TABLE process_instances (
    process         TEXT        NOT NULL,
    instance_id     UUID        NOT NULL,
    client_id       UUID        NOT NULL,
    correlation_id  TEXT        NOT NULL,
    state           JSONB       NOT NULL,
    -- When the runner must wake the instance (NULL: nothing scheduled).
    due_at          TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (process, instance_id)
);
CREATE INDEX process_instances_due ON process_instances (process, due_at) WHERE due_at IS NOT NULL;
