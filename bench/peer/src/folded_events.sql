-- Every stored event of the peer's wallets, stream by stream, in sequence order.
SELECT aggregate_id AS stream, payload
  FROM events
 WHERE aggregate_type = $1
 ORDER BY aggregate_id, sequence
