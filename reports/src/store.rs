//! Reading a report's input from the read models: the wallet accounts of a scope
//! (`rm_wallets`) with their opening balances and the movements of the period
//! (`rm_wallet_movements`, written by the `wallets` projection from the log).

use rust_decimal::Decimal;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::period::Period;
use crate::sheet::{Account, Ledger, Movement, MovementKind};
use crate::Error;

/// Whose wallet accounts a report covers. Both filters apply when both are given (a client's
/// own wallet); none means every account.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope {
    pub client: Option<Uuid>,
    pub wallet: Option<Uuid>,
}

impl Scope {
    /// Every wallet account.
    pub fn all() -> Self {
        Self::default()
    }

    /// The scope as a chart prints it under its title.
    pub fn describe(&self) -> String {
        match (self.client, self.wallet) {
            (_, Some(w)) => format!("Кошелёк {w}"),
            (Some(c), None) => format!("Все кошельки клиента {c}"),
            (None, None) => "Все кошельки".to_owned(),
        }
    }
}

/// The accounts of `scope` that were opened before the period ended, each with its balance
/// at the period's start (the sum of its movements before it), and their movements inside
/// the period in log order.
///
/// Errors: [`Error::Database`]; [`Error::Invalid`] for a movement kind the crate does not
/// know (a read model newer than the code).
pub async fn ledger(pool: &PgPool, scope: Scope, period: Period) -> Result<Ledger, Error> {
    let (start, end) = (period.start(), period.end());
    let accounts: Vec<(Uuid, Uuid, String, Decimal)> =
        sqlx::query_as(include_str!("sql/accounts.sql"))
            .bind(scope.client)
            .bind(scope.wallet)
            .bind(start)
            .bind(end)
            .fetch_all(pool)
            .await?;
    let rows: Vec<(Uuid, i32, i64, OffsetDateTime, String, Decimal, Decimal)> =
        sqlx::query_as(include_str!("sql/movements.sql"))
            .bind(scope.client)
            .bind(scope.wallet)
            .bind(start)
            .bind(end)
            .fetch_all(pool)
            .await?;
    let movements = rows
        .into_iter()
        .map(
            |(wallet_id, partition, sequence, occurred_at, kind, amount, balance_after)| {
                let kind = MovementKind::parse(&kind).ok_or_else(|| {
                    Error::Invalid(format!("unknown wallet movement kind `{kind}`"))
                })?;
                Ok(Movement {
                    wallet_id,
                    partition,
                    sequence,
                    occurred_at,
                    kind,
                    amount,
                    balance_after,
                })
            },
        )
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(Ledger {
        period,
        accounts: accounts
            .into_iter()
            .map(|(wallet_id, client_id, currency, opening)| Account {
                wallet_id,
                client_id,
                currency,
                opening,
            })
            .collect(),
        movements,
    })
}

/// The client owning `wallet`, if the read model knows the wallet.
///
/// Errors: [`Error::Database`].
pub async fn wallet_owner(pool: &PgPool, wallet: Uuid) -> Result<Option<Uuid>, Error> {
    Ok(
        sqlx::query_scalar("SELECT client_id FROM rm_wallets WHERE wallet_id = $1")
            .bind(wallet)
            .fetch_optional(pool)
            .await?,
    )
}
