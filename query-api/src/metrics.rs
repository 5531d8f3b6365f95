//! `/metrics` in the Prometheus text format: per projection and partition, the sequence
//! applied, the write side's head and the lag between them.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sqlx::PgPool;
use std::fmt::Write as _;

use crate::PROJECTIONS;

/// A gauge's name, help text, and value from (applied, head).
type Gauge = (&'static str, &'static str, fn(i64, i64) -> i64);

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
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
