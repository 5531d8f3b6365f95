-- One-time-password challenges (command-api/src/otp.rs): the latest challenge per client and
-- purpose, as the domain's `otp::Challenge` (a salted hash of the code, never the code).
-- Kept off the log: a 6-digit code's hash could be brute-forced by anyone who reads it.
CREATE TABLE otp_challenges (
    client_id   UUID        NOT NULL,
    purpose     TEXT        NOT NULL,
    challenge   JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (client_id, purpose)
);
