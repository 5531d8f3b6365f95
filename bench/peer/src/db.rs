//! A throw-away database per measurement on the server of an admin URL.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use std::str::FromStr;

use crate::{Error, Workload};

/// Pool size for `callers` concurrent callers: one connection each, at least 1, at most 64.
pub fn pool_size(callers: usize) -> u32 {
    u32::try_from(callers.clamp(1, 64)).unwrap_or(64)
}

/// A fresh database holding the tables of one workload, and a pool on it. Dropped with
/// [`Database::drop`] (there is no async `Drop`; a database left behind by a panic is named
/// `etr_peer_*`).
pub struct Database {
    admin: PgConnectOptions,
    name: String,
    pub pool: PgPool,
}

impl Database {
    /// Creates `etr_peer_<workload>_<random>` on the server of `admin_url` (any database there
    /// the user may connect to, e.g. `postgres://postgres@127.0.0.1:5432/postgres`), its
    /// tables, and a pool of `pool_size` connections on it.
    ///
    /// Errors: [`Error::Database`] when the server refuses any of it.
    pub async fn create(
        admin_url: &str,
        workload: Workload,
        pool_size: u32,
    ) -> Result<Database, Error> {
        // Only the server of the URL counts: databases are created from the maintenance
        // database, whatever database the URL names (it need not exist).
        let admin = PgConnectOptions::from_str(admin_url)?.database("postgres");
        let name = format!(
            "etr_peer_{}_{}",
            workload.name().replace('-', "_"),
            uuid::Uuid::new_v4().simple()
        );
        let mut conn = admin.connect().await?;
        sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .connect_with(admin.clone().database(&name))
            .await;
        let database = match pool {
            Ok(pool) => Database { admin, name, pool },
            Err(e) => {
                drop_database(&admin, &name).await?;
                return Err(e.into());
            }
        };
        let ddl = match workload {
            Workload::PeerEventStore | Workload::PeerAggregateStore => include_str!("peer.sql"),
            Workload::RawInsert => include_str!("raw.sql"),
        };
        if let Err(e) = sqlx::raw_sql(ddl).execute(&database.pool).await {
            database.drop().await?;
            return Err(e.into());
        }
        Ok(database)
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the pool and drops the database.
    pub async fn drop(self) -> Result<(), Error> {
        self.pool.close().await;
        drop_database(&self.admin, &self.name).await
    }
}

async fn drop_database(admin: &PgConnectOptions, name: &str) -> Result<(), Error> {
    let mut conn = admin.connect().await?;
    sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
}
