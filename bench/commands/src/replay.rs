//! `etr bench replay`: the data-platform replay next to a raw Postgres COPY of the same rows,
//! and the auditor timeline's read latency for one client with many events, in one run.
//!
//! The platform it writes through is [`crate::platform`]'s (command side only: the benchmark
//! projects the timeline itself); the log reader it measures is `etr_projections::log`
//! (`read_log`, `replay_into_data_platform`), the one `etr timeline` and `etr replay` use.

#![allow(clippy::float_arithmetic)] // rates and latencies are statistics, not money

use etr_domain::{Envelope, Event};
use etr_infra::config::Settings;
use etr_infra::pg;
use etr_platform::client_bearer;
use etr_projections::log::{read_log, replay_into_data_platform};
use serde_json::json;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{ensure, Context as _};
use crate::handler::drop_database;
use crate::platform::{self, Roles};
use crate::stats::percentile;
use crate::Error;

/// Writes `target` events for one client through the platform running in this process (a
/// fresh database, dropped afterwards, and a fresh topic), then measures and prints.
///
/// Errors: `target` outside 100..=1,000,000 ([`Error::Invalid`]); any measurement's.
pub async fn run(mut settings: Settings, target: usize) -> Result<(), Error> {
    if !(100..=1_000_000).contains(&target) {
        return Err(Error::Invalid("--events must be 100..=1000000".to_owned()));
    }
    let (pool, url) = pg::fresh_database("etr_bench")
        .await
        .context("creating the bench database")?;
    pool.close().await;
    settings.database_url = url;
    settings.topic = format!("etr.bench-replay-{}", Uuid::new_v4().simple());
    let result = measure(&mut settings, target).await;
    drop_database(&settings.database_url).await;
    result
}

async fn measure(settings: &mut Settings, target: usize) -> Result<(), Error> {
    let platform = platform::start(settings, Roles::COMMAND_SIDE).await?;
    let http = reqwest::Client::new();
    let client = Uuid::new_v4();
    let base = format!("http://{}/v1/clients/{client}", settings.command_api_addr);
    let bearer = client_bearer(settings, &base)?;
    // Eight wallets of the one client, topped up concurrently (one writer per wallet).
    let mut wallets = Vec::new();
    for i in 0..8 {
        let v: serde_json::Value = http
            .post(format!("{base}/wallets"))
            .header("Idempotency-Key", format!("w{i}"))
            .header(reqwest::header::AUTHORIZATION, &bearer)
            .json(&json!({"currency": "RUB"}))
            .send()
            .await?
            .json()
            .await?;
        wallets.push(
            v["wallets"][0]["wallet_id"]
                .as_str()
                .ok_or_else(|| Error::Failed(format!("opening a wallet answered {v}")))?
                .to_owned(),
        );
    }
    eprintln!("[bench] writing {target} events for one client");
    let per_wallet = target.div_ceil(wallets.len());
    let mut workers = tokio::task::JoinSet::new();
    for (w, wallet) in wallets.iter().enumerate() {
        let (http, url, bearer) = (
            http.clone(),
            format!("{base}/wallets/{wallet}/top-ups"),
            bearer.clone(),
        );
        workers.spawn(async move {
            for i in 0..per_wallet {
                let r = http
                    .post(&url)
                    .header("Idempotency-Key", format!("t{w}-{i}"))
                    .header(reqwest::header::AUTHORIZATION, &bearer)
                    .json(&json!({"amount": "1.00", "currency": "RUB", "source": "card"}))
                    .send()
                    .await?;
                ensure!(r.status().is_success(), "top-up refused: {}", r.status());
            }
            Ok::<(), Error>(())
        });
    }
    while let Some(r) = workers.join_next().await {
        r.map_err(|e| Error::Panicked(e.to_string()))??;
    }
    let db = sqlx::PgPool::connect(&settings.database_url).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&db)
                .await?;
        if pending == 0 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{pending} events not published in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 1. Replay end to end: read + decode from Kafka, load into dp (the registry is the
    // platform's, serving in this process).
    let codec = etr_infra::avro::EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    let t = Instant::now();
    let mut events: Vec<(Envelope, Event)> = Vec::new();
    read_log(settings, &codec, false, |_, _, e, ev| {
        events.push((e, ev));
        Ok(())
    })
    .await?;
    let read = t.elapsed();
    let batch = etr_projections::data_platform::BATCH;
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        etr_projections::data_platform::load(&db, chunk).await?;
    }
    let load = t.elapsed();
    let n = events.len();
    // The same events again: every row is already there, nothing changes.
    let t = Instant::now();
    for chunk in events.chunks(batch) {
        etr_projections::data_platform::load(&db, chunk).await?;
    }
    let reload = t.elapsed();
    // The `etr replay` path on an empty dp: seek, read and load overlapped, in batches.
    sqlx::query(
        "TRUNCATE dp.fact_events, dp.fact_wallet_operations, dp.fact_payments, dp.fact_applications, \
         dp.fact_loans, dp.fact_daily_balances, dp.dim_clients, dp.dim_services, dp.dim_partners",
    )
    .execute(&db)
    .await?;
    let t = Instant::now();
    let streamed =
        replay_into_data_platform(settings, &db, &codec, None, None, Duration::from_secs(300))
            .await?;
    let stream = t.elapsed();
    ensure!(
        streamed.events == events.len(),
        "the streaming replay loaded {} of {} events",
        streamed.events,
        events.len()
    );

    // 2. Baseline: COPY the same rows (the fact_events columns) into a plain table.
    sqlx::query("CREATE TABLE bench_copy (LIKE dp.fact_events)")
        .execute(&db)
        .await?;
    let mut csv = String::with_capacity(n * 300);
    for (e, _) in &events {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            e.event_id,
            e.client_id,
            e.aggregate_type.as_str(),
            e.aggregate_id,
            e.aggregate_version,
            e.event_type,
            e.partition,
            e.sequence,
            e.occurred_at,
            e.actor.kind,
            e.actor.id,
            e.command_id,
            e.correlation_id
        ));
    }
    let mut conn = db.acquire().await?;
    let t = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY bench_copy FROM STDIN (FORMAT csv)")
        .await?;
    copy.send(csv.as_bytes()).await?;
    copy.finish().await?;
    let copied = t.elapsed();
    drop(conn);

    // 3. Timeline reads of the one client (the whole log, as `etr timeline` does).
    let mut latencies = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let mut count = 0usize;
        read_log(settings, &codec, false, |_, _, _, _| {
            count += 1;
            Ok(())
        })
        .await?;
        ensure!(count == n, "timeline read {count} of {n} events");
        latencies.push(t.elapsed());
    }
    latencies.sort();

    // 4. The timeline as a read model: project it, then query it through GraphQL.
    let t = Instant::now();
    for chunk in events.chunks(500) {
        etr_projections::runtime::apply_batch(&db, &etr_projections::timeline::Timeline, chunk)
            .await?;
    }
    let projected = t.elapsed();
    let graphql = timeline_queries(settings, &db, client, n).await?;
    platform.stop().await;
    db.close().await;

    let rate = |d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    println!("ETR replay benchmark ({n} events of one client)");
    println!(
        "  replay into dp, load only     {:>9.0} events/s",
        rate(load)
    );
    println!(
        "  replay into dp, read + load   {:>9.0} events/s",
        rate(read + load)
    );
    println!(
        "  etr replay (streamed)         {:>9.0} events/s",
        rate(stream)
    );
    println!(
        "  load again (already loaded)   {:>9.0} events/s",
        rate(reload)
    );
    println!("baseline (same run)");
    println!(
        "  raw Postgres COPY, same rows  {:>9.0} rows/s",
        rate(copied)
    );
    println!("ratios");
    println!("  load ÷ COPY        = {:.3}", rate(load) / rate(copied));
    println!(
        "  read+load ÷ COPY   = {:.3}",
        rate(read + load) / rate(copied)
    );
    println!("  streamed ÷ COPY    = {:.3}", rate(stream) / rate(copied));
    println!(
        "timeline of the client ({n} events, read from the log): p50 {:.1} ms  p99 {:.1} ms",
        ms(percentile(&latencies, 500)),
        ms(percentile(&latencies, 990))
    );
    println!(
        "timeline projection: {:.0} events/s into rm_timeline",
        rate(projected)
    );
    println!(
        "clientTimeline (GraphQL, first 100 of {n}): p50 {:.1} ms  p99 {:.1} ms; same rows by raw SQL p50 {:.2} ms (ratio SQL ÷ GraphQL {:.3})",
        ms(graphql.page_p50), ms(graphql.page_p99), ms(graphql.sql_p50), graphql.sql_p50.as_secs_f64() / graphql.page_p50.as_secs_f64().max(1e-9)
    );
    println!(
        "clientTimeline, all {n} events in pages of 100: p50 {:.1} ms  p99 {:.1} ms",
        ms(graphql.all_p50),
        ms(graphql.all_p99)
    );
    println!(
        "clientStateAsOf (folds {n} events): p50 {:.1} ms  p99 {:.1} ms",
        ms(graphql.as_of_p50),
        ms(graphql.as_of_p99)
    );
    println!(
        "{}",
        json!({"bench": "replay_timeline_read_model", "timeline_projection_events_per_s": rate(projected).round(),
               "graphql_page_p50_ms": ms(graphql.page_p50), "graphql_page_p99_ms": ms(graphql.page_p99), "raw_sql_page_p50_ms": ms(graphql.sql_p50),
               "graphql_all_pages_p50_ms": ms(graphql.all_p50), "graphql_all_pages_p99_ms": ms(graphql.all_p99),
               "state_as_of_p50_ms": ms(graphql.as_of_p50), "state_as_of_p99_ms": ms(graphql.as_of_p99)})
    );
    println!(
        "{}",
        json!({"bench": "replay", "events": n, "load_events_per_s": rate(load).round(), "read_load_events_per_s": rate(read + load).round(), "streamed_events_per_s": rate(stream).round(), "reload_events_per_s": rate(reload).round(), "batch": batch,
               "copy_rows_per_s": rate(copied).round(), "load_vs_copy": rate(load) / rate(copied), "read_load_vs_copy": rate(read + load) / rate(copied), "streamed_vs_copy": rate(stream) / rate(copied),
               "timeline_p50_ms": ms(percentile(&latencies, 500)), "timeline_p99_ms": ms(percentile(&latencies, 990))})
    );
    Ok(())
}

/// The columns the GraphQL page asks for, read by raw SQL.
type TimelineRow = (
    i32,
    i64,
    String,
    String,
    String,
    OffsetDateTime,
    String,
    serde_json::Value,
);

struct TimelineFigures {
    page_p50: Duration,
    page_p99: Duration,
    sql_p50: Duration,
    all_p50: Duration,
    all_p99: Duration,
    as_of_p50: Duration,
    as_of_p99: Duration,
}

/// Serves the GraphQL API in-process and measures the timeline queries of `client` as an
/// auditor, next to the same first page read by raw SQL.
async fn timeline_queries(
    settings: &Settings,
    db: &sqlx::PgPool,
    client: Uuid,
    n: usize,
) -> Result<TimelineFigures, Error> {
    let keys = etr_infra::auth::Keys::from_secret(settings.jwt_secret.as_bytes());
    let token = keys.issue(
        "bench-auditor",
        etr_infra::auth::Role::Auditor,
        i64::MAX / 2,
    )?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    let server = tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
        listener,
        etr_query_api::router(db.clone(), keys),
    )));
    let http = reqwest::Client::new();
    let query = |q: &'static str, vars: serde_json::Value| {
        let (http, url, token) = (http.clone(), url.clone(), token.clone());
        async move {
            let v: serde_json::Value = http
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({"query": q, "variables": vars}))
                .send()
                .await?
                .json()
                .await?;
            ensure!(v["errors"].is_null(), "GraphQL error: {v}");
            Ok::<_, Error>(v)
        }
    };
    const PAGE: &str = "query($c: UUID!, $after: String) { clientTimeline(clientId: $c, first: 100, after: $after) { edges { cursor node { sequence eventType actorKind commandId occurredAt hash event } } pageInfo { hasNextPage } } }";
    let timed = |mut samples: Vec<Duration>| {
        samples.sort();
        (percentile(&samples, 500), percentile(&samples, 990))
    };
    // Alternating, so both see the same machine conditions.
    let (mut page, mut sql) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let t = Instant::now();
        let v = query(PAGE, json!({"c": client})).await?;
        page.push(t.elapsed());
        let edges = v["data"]["clientTimeline"]["edges"]
            .as_array()
            .map_or(0, Vec::len);
        ensure!(edges == 100.min(n), "a page of {edges} events");
        let t = Instant::now();
        let rows: Vec<TimelineRow> = sqlx::query_as(
            "SELECT partition, sequence, event_type, actor_kind, command_id, occurred_at, hash, event FROM rm_timeline WHERE client_id = $1 ORDER BY partition, sequence LIMIT 101",
        )
        .bind(client)
        .fetch_all(db)
        .await?;
        ensure!(rows.len() == 101.min(n), "raw page of {} rows", rows.len());
        sql.push(t.elapsed());
    }
    sql.sort();
    let mut all = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let (mut after, mut seen) = (serde_json::Value::Null, 0usize);
        loop {
            let v = query(PAGE, json!({"c": client, "after": after})).await?;
            let edges = v["data"]["clientTimeline"]["edges"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            seen += edges.len();
            if v["data"]["clientTimeline"]["pageInfo"]["hasNextPage"] != true {
                break;
            }
            after = edges
                .last()
                .map(|e| e["cursor"].clone())
                .unwrap_or_default();
        }
        ensure!(seen == n, "paged through {seen} of {n} events");
        all.push(t.elapsed());
    }
    let mut as_of = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let v = query(
            "query($c: UUID!) { clientStateAsOf(clientId: $c, at: \"2999-01-01T00:00:00Z\") { events wallets { balance } } }",
            json!({"c": client}),
        )
        .await?;
        ensure!(
            v["data"]["clientStateAsOf"]["events"] == json!(n),
            "as-of folded {v}"
        );
        as_of.push(t.elapsed());
    }
    server.abort();
    let (page_p50, page_p99) = timed(page);
    let (all_p50, all_p99) = timed(all);
    let (as_of_p50, as_of_p99) = timed(as_of);
    Ok(TimelineFigures {
        page_p50,
        page_p99,
        sql_p50: percentile(&sql, 500),
        all_p50,
        all_p99,
        as_of_p50,
        as_of_p99,
    })
}
