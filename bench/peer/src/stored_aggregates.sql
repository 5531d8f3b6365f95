-- The peer's stored wallet states (aggregate store only).
SELECT aggregate_id AS stream, payload
  FROM snapshots
 WHERE aggregate_type = $1
