//! `/metrics` in the Prometheus text format: per projection and partition, the sequence
//! applied, the write side's head and the lag between them; per consumer of the log, the
//! dead letters still open.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use std::fmt::Write as _;

use crate::PROJECTIONS;

/// A gauge's name, help text, and value from (applied, head).
type Gauge = (&'static str, &'static str, fn(i64, i64) -> i64);

/// `GET /metrics`: `etr_projection_lag_events`, `etr_projection_applied_sequence` and
/// `etr_write_head_sequence` per projection and partition, and `etr_dead_letters` (open dead
/// letters) per consumer. 503 when Postgres does not answer.
pub async fn metrics(State(pool): State<PgPool>) -> Response {
    let rows: Result<Vec<(String, i32, i64, i64)>, sqlx::Error> = sqlx::query_as(
        "SELECT p.projection, h.partition, COALESCE(c.sequence, 0), h.sequence \
         FROM unnest($1::text[]) AS p(projection) CROSS JOIN partition_heads h \
         LEFT JOIN projection_checkpoints c ON c.projection = p.projection AND c.partition = h.partition \
         ORDER BY p.projection, h.partition",
    )
    .bind(PROJECTIONS)
    .fetch_all(&pool)
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("read models unavailable: {e}\n"),
            )
                .into_response()
        }
    };
    // Every projection's consumer (`projection.<name>`, as the projectors record them) with
    // 0 when it has none, and any other consumer that has dead letters.
    let dead: Result<Vec<(String, i64)>, sqlx::Error> = sqlx::query_as(
        "SELECT c.consumer, count(d.id) \
         FROM (SELECT 'projection.' || p FROM unnest($1::text[]) AS p UNION SELECT consumer FROM dead_letters) AS c(consumer) \
         LEFT JOIN dead_letters d ON d.consumer = c.consumer AND d.resolved_at IS NULL \
         GROUP BY c.consumer ORDER BY c.consumer",
    )
    .bind(PROJECTIONS)
    .fetch_all(&pool)
    .await;
    let dead = match dead {
        Ok(dead) => dead,
        Err(e) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("dead letters unavailable: {e}\n"),
            )
                .into_response()
        }
    };
    let mut out = String::new();
    let gauges: [Gauge; 3] = [
        (
            "etr_projection_lag_events",
            "Events committed on the write side and not yet applied by the projection.",
            |applied, head| (head - applied).max(0),
        ),
        (
            "etr_projection_applied_sequence",
            "Last partition sequence the projection applied.",
            |applied, _| applied,
        ),
        (
            "etr_write_head_sequence",
            "Last partition sequence committed on the write side.",
            |_, head| head,
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (projection, partition, applied, head) in &rows {
            let _ = writeln!(
                out,
                "{name}{{projection=\"{projection}\",partition=\"{partition}\"}} {}",
                value(*applied, *head)
            );
        }
    }
    let name = "etr_dead_letters";
    let _ = writeln!(
        out,
        "# HELP {name} Records a consumer of the log could not decode, not yet retried successfully.\n# TYPE {name} gauge"
    );
    for (consumer, open) in &dead {
        let _ = writeln!(out, "{name}{{consumer=\"{}\"}} {open}", label(consumer));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
