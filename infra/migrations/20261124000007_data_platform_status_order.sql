-- The order of entity facts in the data platform, corrected.
--
-- 1. A loan's status has its own position. Repayments and prolongations do not change a
--    loan's status but do advance `last_sequence`, so comparing a status-changing event with
--    `last_sequence` let a repayment hide an earlier `LoanBecameOverdue` replayed after it
--    (a window replayed after a later one). `status_sequence` is the partition sequence of the
--    latest status-changing event applied (LoanIssued, LoanBecameOverdue, LoanRepaid); the
--    status follows it, while `last_sequence` / `last_event_at` still describe the latest event
--    of any kind. Every payment and application event sets the status, so for those
--    `last_sequence` is already the status' position.
--    A loan whose only events in dp are repayments or prolongations now has a row too (so its
--    `last_sequence` is kept when the earlier events arrive), with status NULL: dp does not hold
--    an event that says what the status is.
-- 2. Rows written before 20261124000006 have no `last_sequence`, and the loader let any window
--    overwrite them, an older one included. They are filled in here from what dp holds
--    (dp.fact_events carries every event the loader ever applied): the position and time of the
--    entity's latest event, and the status of its latest status-changing event. Loans are
--    recomputed whenever dp holds a status-changing event of theirs, which also repairs a status
--    that a repayment hid as in 1.
ALTER TABLE dp.fact_loans ADD COLUMN status_sequence BIGINT;
ALTER TABLE dp.fact_loans ALTER COLUMN status DROP NOT NULL;
COMMENT ON COLUMN dp.fact_loans.status_sequence IS
    'partition sequence of the latest status-changing event applied (LoanIssued, LoanBecameOverdue, LoanRepaid); an older one never overwrites the status';
COMMENT ON COLUMN dp.fact_loans.last_sequence IS
    'partition sequence of the latest event applied, of any kind (repayments and prolongations included)';
COMMENT ON COLUMN dp.fact_loans.status IS
    'status after the latest status-changing event dp holds; NULL while dp holds only repayments or prolongations of the loan';

-- Latest event of each payment, application and loan that dp holds.
CREATE TEMPORARY TABLE dp_latest AS
SELECT DISTINCT ON (aggregate_id) aggregate_type, aggregate_id, client_id, event_type, sequence, occurred_at
FROM dp.fact_events
WHERE aggregate_type IN ('payment', 'application', 'loan')
ORDER BY aggregate_id, sequence DESC, occurred_at DESC;

UPDATE dp.fact_payments t SET
    last_sequence = l.sequence,
    last_event_at = l.occurred_at,
    status = CASE l.event_type
        WHEN 'PaymentInitiated' THEN 'fraud_control'
        WHEN 'PaymentLocked' THEN 'locked'
        WHEN 'PaymentBalanceChecked' THEN 'balance_checked'
        WHEN 'PaymentReserved' THEN 'reserved'
        WHEN 'PaymentExecutionStarted' THEN 'executing'
        WHEN 'PaymentExecuted' THEN 'post_processing_success'
        WHEN 'PaymentSucceeded' THEN 'succeeded'
        WHEN 'PaymentExecutionFailed' THEN 'post_processing_failure'
        WHEN 'PaymentFailed' THEN 'failed'
        WHEN 'PaymentCancelled' THEN 'cancelled'
        ELSE t.status END
FROM dp_latest l
WHERE l.aggregate_type = 'payment' AND t.payment_id = l.aggregate_id
  AND (t.last_sequence IS NULL OR l.sequence > t.last_sequence);

UPDATE dp.fact_applications t SET
    last_sequence = l.sequence,
    last_event_at = l.occurred_at,
    status = CASE l.event_type
        WHEN 'ApplicationSubmitted' THEN 'submitted'
        WHEN 'ClientIdentified' THEN 'identified'
        WHEN 'IdentificationFailed' THEN 'declined'
        WHEN 'ApplicationDeclined' THEN 'declined'
        WHEN 'ApplicationApproved' THEN 'approved'
        WHEN 'OfferChosen' THEN 'offer_chosen'
        WHEN 'ContractSigned' THEN 'contract_signed'
        WHEN 'LoanDisbursed' THEN 'disbursed'
        WHEN 'ApplicationCancelled' THEN 'cancelled'
        ELSE t.status END
FROM dp_latest l
WHERE l.aggregate_type = 'application' AND t.application_id = l.aggregate_id
  AND (t.last_sequence IS NULL OR l.sequence > t.last_sequence);

UPDATE dp.fact_loans t SET last_sequence = l.sequence, last_event_at = l.occurred_at
FROM dp_latest l
WHERE l.aggregate_type = 'loan' AND t.loan_id = l.aggregate_id
  AND (t.last_sequence IS NULL OR l.sequence > t.last_sequence);

UPDATE dp.fact_loans t SET
    status_sequence = s.sequence,
    status = CASE s.event_type
        WHEN 'LoanIssued' THEN 'active'
        WHEN 'LoanBecameOverdue' THEN 'overdue'
        WHEN 'LoanRepaid' THEN 'repaid' END
FROM (
    SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type, sequence
    FROM dp.fact_events
    WHERE aggregate_type = 'loan' AND event_type IN ('LoanIssued', 'LoanBecameOverdue', 'LoanRepaid')
    ORDER BY aggregate_id, sequence DESC, occurred_at DESC
) s
WHERE t.loan_id = s.aggregate_id;

-- Loans of which dp held only repayments or prolongations had no row.
INSERT INTO dp.fact_loans (loan_id, client_id, status, last_event_at, last_sequence)
SELECT l.aggregate_id, l.client_id, NULL, l.occurred_at, l.sequence
FROM dp_latest l
WHERE l.aggregate_type = 'loan'
ON CONFLICT (loan_id) DO NOTHING;

DROP TABLE dp_latest;
