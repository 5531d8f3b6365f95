-- Takes the runs waiting for work: new ones, ones whose last attempt failed more than a
-- minute ago ($3), and ones left `running` by a runner that died ($2), while they have
-- attempts left ($4); at most 5 per tick. $1 is the clock's time.
UPDATE report_runs r
SET status = 'running', attempts = r.attempts + 1, claimed_at = $1
FROM report_schedules s
WHERE s.schedule_id = r.schedule_id
  AND r.run_id IN (
    SELECT run_id FROM report_runs
    WHERE attempts < $4
      AND (status = 'pending'
           OR (status = 'retry' AND claimed_at < $3)
           OR (status = 'running' AND claimed_at < $2))
    ORDER BY due_at
    LIMIT 5
    FOR UPDATE SKIP LOCKED)
RETURNING r.run_id, r.schedule_id, s.name, r.period_from, r.period_to, r.attempts,
          s.report, s.format, s.chart_by, s.client_id, s.wallet_id, s.utc_offset_seconds,
          s.recipients
