//! DataLoaders: a parent's children (a client's wallets, an operation's history, …) are
//! loaded for all parents of a response in one query per kind, not one per parent.

use async_graphql::dataloader::{DataLoader, Loader};
use sqlx::postgres::PgRow;
use sqlx::{FromRow, PgPool};
use std::collections::HashMap;
use std::marker::PhantomData;
use uuid::Uuid;

use crate::store;

/// Loads rows of `T` grouped by a key. `sql` selects the key as its first column, named
/// `group_key`, then `T`'s columns, and filters with `= ANY($1)`; it orders the rows as a
/// parent should list them.
pub struct Children<T> {
    pool: PgPool,
    sql: &'static str,
    rows: PhantomData<fn() -> T>,
}

impl<T> Children<T> {
    pub fn loader(pool: PgPool, sql: &'static str) -> DataLoader<Self> {
        DataLoader::new(
            Children {
                pool,
                sql,
                rows: PhantomData,
            },
            tokio::spawn,
        )
    }
}

struct Keyed<T> {
    key: Uuid,
    row: T,
}

impl<'r, T: FromRow<'r, PgRow>> FromRow<'r, PgRow> for Keyed<T> {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        use sqlx::Row as _;
        Ok(Keyed {
            key: row.try_get("group_key")?,
            row: T::from_row(row)?,
        })
    }
}

impl<T> Loader<Uuid> for Children<T>
where
    T: for<'r> FromRow<'r, PgRow> + Clone + Send + Sync + Unpin + 'static,
{
    type Value = Vec<T>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<T>>, Self::Error> {
        let rows: Vec<Keyed<T>> = sqlx::query_as(self.sql)
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(store)?;
        let mut grouped: HashMap<Uuid, Vec<T>> = HashMap::new();
        for Keyed { key, row } in rows {
            grouped.entry(key).or_default().push(row);
        }
        Ok(grouped)
    }
}

/// The children of `key` through the loader registered for `T`.
pub async fn children<T>(
    ctx: &async_graphql::Context<'_>,
    key: Uuid,
) -> async_graphql::Result<Vec<T>>
where
    T: for<'r> FromRow<'r, PgRow> + Clone + Send + Sync + Unpin + 'static,
{
    Ok(ctx
        .data::<DataLoader<Children<T>>>()?
        .load_one(key)
        .await?
        .unwrap_or_default())
}
