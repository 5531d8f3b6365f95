//! Postgres pool, migrations and throw-away databases for tests.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;

use crate::error::Result;

/// Migrations of every table the platform owns (write path, registry, read models).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The connection options of every pool the platform opens: `url` with Postgres's JIT
/// compilation off. The platform's statements are short; when the planner's estimate of one
/// passes `jit_above_cost` (as the relay's outbox read does on tables whose statistics lag),
/// compiling it took 10–30 ms of every execution that runs in about 1 ms.
///
/// Errors: a URL that does not parse.
pub fn connect_options(url: &str) -> Result<PgConnectOptions> {
    Ok(PgConnectOptions::from_str(url)?.options([("jit", "off")]))
}

/// Opens a pool and applies pending migrations. The database is created when missing.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<PgPool> {
    ensure_database(url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .connect_with(connect_options(url)?)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Creates the database named in `url` when it does not exist yet.
pub async fn ensure_database(url: &str) -> Result<()> {
    let opts = PgConnectOptions::from_str(url)?;
    let name = opts.get_database().unwrap_or("postgres").to_owned();
    let admin = opts.clone().database("postgres");
    let mut conn = admin.connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""));
        if let Err(e) = sqlx::query(&sql).execute(&mut conn).await {
            // A concurrent creator may have won the race; that is fine.
            let raced = e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c == "42P04" || c == "23505");
            if !raced {
                return Err(e.into());
            }
        }
    }
    conn.close().await?;
    Ok(())
}

/// A fresh, migrated database with a unique name on the server of `base_url`
/// (default: `DATABASE_URL` or the local server). Used by integration tests and benchmarks.
pub async fn fresh_database(prefix: &str) -> Result<(PgPool, String)> {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let opts = PgConnectOptions::from_str(&base)?;
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let url = with_database(&base, &name);
    drop(opts);
    let pool = connect_and_migrate(&url, 16).await?;
    Ok((pool, url))
}

/// Drops the database named in `url` (a [`fresh_database`] once its test or run is done),
/// through the server's maintenance database, closing its other sessions first.
///
/// Errors: Postgres (connecting to the maintenance database, or the drop).
pub async fn drop_database(url: &str) -> Result<()> {
    let opts = connect_options(url)?;
    let Some(name) = opts.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let mut admin = opts.database("postgres").connect().await?;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
        name.replace('"', "\"\"")
    ))
    .execute(&mut admin)
    .await?;
    admin.close().await?;
    Ok(())
}

/// Replaces the database path of a `postgres://` URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_database_keeping_query() {
        assert_eq!(
            with_database("postgres://u@h:5432/a?sslmode=disable", "b"),
            "postgres://u@h:5432/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "b"), "postgres://u@h/b");
    }
}
