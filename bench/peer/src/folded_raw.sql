-- Every row of the raw baseline, stream by stream, in the order of the events' numbers.
SELECT stream, payload
  FROM raw_commands
 ORDER BY stream, (payload ->> 'number')::bigint
