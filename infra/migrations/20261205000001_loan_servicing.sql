-- Loan servicing: interest and penalties accrued by the day-close, and the date the last
-- instalment is due for a serviced loan (its schedule, not issue date + term).
ALTER TABLE rm_loans ADD COLUMN accrued NUMERIC(20,2) NOT NULL DEFAULT 0,
    ADD COLUMN written_off NUMERIC(20,2) NOT NULL DEFAULT 0;
