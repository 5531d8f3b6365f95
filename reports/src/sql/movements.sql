-- The movements of a report's scope inside the period [$3, $4), in log order.
-- $1 client filter, $2 wallet filter (NULL: any).
SELECT m.wallet_id, m.partition, m.sequence, m.occurred_at, m.kind, m.amount, m.balance_after
FROM rm_wallet_movements m
WHERE m.occurred_at >= $3 AND m.occurred_at < $4
  AND ($1::uuid IS NULL OR m.client_id = $1)
  AND ($2::uuid IS NULL OR m.wallet_id = $2)
ORDER BY m.partition, m.sequence
