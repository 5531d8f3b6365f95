-- Adds the request counts one process aggregated since its last flush (one row per hour, API,
-- interface type, level, peer address, token subject, route template and status class) to
-- api_request_stats. Rows arrive sorted, so concurrent flushes lock shared rows in one order.
INSERT INTO api_request_stats AS s
    (hour, api, interface_type, level, ip, client_id, route, status_class, requests, refused)
SELECT *
FROM UNNEST(
    $1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[],
    $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[]
)
ON CONFLICT ON CONSTRAINT api_request_stats_key DO UPDATE
SET requests = s.requests + EXCLUDED.requests,
    refused  = s.refused + EXCLUDED.refused
