-- The day-close looks for open serviced loans every minute.
CREATE INDEX rm_loans_open ON rm_loans (loan_id) WHERE status IN ('active', 'overdue');
