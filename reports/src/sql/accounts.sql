-- The wallet accounts of a report's scope opened before the period ends ($4), each with its
-- balance when the period starts ($3): the sum of its signed movements before that instant.
-- $1 client filter, $2 wallet filter (NULL: any).
SELECT w.wallet_id,
       w.client_id,
       COALESCE(w.currency, '') AS currency,
       COALESCE(o.opening, 0)::numeric(20, 2) AS opening
FROM rm_wallets w
LEFT JOIN LATERAL (
    SELECT sum(m.amount) AS opening
    FROM rm_wallet_movements m
    WHERE m.wallet_id = w.wallet_id AND m.occurred_at < $3
) o ON TRUE
WHERE w.opened_at < $4
  AND ($1::uuid IS NULL OR w.client_id = $1)
  AND ($2::uuid IS NULL OR w.wallet_id = $2)
ORDER BY w.client_id, w.wallet_id
