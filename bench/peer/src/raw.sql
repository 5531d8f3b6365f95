-- The raw baseline: one row per command, written by one autocommit INSERT.
CREATE TABLE raw_commands
(
    id      uuid PRIMARY KEY,
    stream  text NOT NULL,
    payload json NOT NULL
);
