//! The business day-close of serviced loans: once a day has ended in Moscow, every open loan
//! whose ledger has not accrued it is sent `CloseDays { through: today }` — the day's
//! interest and penalties accrue and the instalments due fall overdue (`etr_domain::loan`).
//!
//! The loans to close are read from the lending read model; the command is decided against
//! the loan's authoritative state, and its id (`platform:day-close/<loan>/<date>`) makes a
//! repeated run a no-op, so two processes running the close, or a restart mid-run, close
//! each day once.

use etr_domain::{loan, Actor, ClientId, Command};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::runtime::{Commands, Issue, Issued};

/// Moscow time: the lender's business day.
pub use etr_domain::limits::MOSCOW;

pub struct DayClose {
    pub pool: PgPool,
    pub commands: Arc<dyn Commands>,
    /// How often to look for loans with an unclosed day.
    pub poll: Duration,
}

impl DayClose {
    /// Runs the close forever.
    pub async fn run(self) {
        loop {
            let today = OffsetDateTime::now_utc().to_offset(MOSCOW).date();
            match self.close_through(today).await {
                Ok(n) if n > 0 => tracing::info!(loans = n, %today, "business days closed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the day-close did not run"),
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Closes every day before `through` of every open serviced loan; returns how many loans
    /// it closed days of.
    ///
    /// Errors: reading the read model; a command the platform could not commit (the next run
    /// retries it with the same id).
    pub async fn close_through(&self, through: Date) -> Result<usize, crate::Error> {
        let due: Vec<(Uuid, Uuid)> = sqlx::query_as(
            "SELECT loan_id, client_id FROM rm_loans \
             WHERE status IN ('active', 'overdue') AND state->'ledger' IS NOT NULL \
               AND state->'ledger'->>'accrued_until' < $1 \
             ORDER BY loan_id",
        )
        .bind(through.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut closed = 0;
        for (loan_id, client_id) in due {
            let issued = self
                .commands
                .issue(Issue {
                    command_id: etr_domain::ids::platform_command_id(
                        "day-close",
                        loan_id,
                        &through.to_string(),
                    ),
                    correlation_id: format!("day-close/{through}"),
                    actor: Actor::system("day-close"),
                    command: Command::Loan {
                        client_id: ClientId(client_id),
                        loan_id,
                        command: loan::Command::CloseDays { through },
                    },
                })
                .await
                .map_err(crate::Error::CommandNotTaken)?;
            match issued {
                Issued::Accepted => closed += 1,
                Issued::Rejected { code } => {
                    tracing::warn!(%loan_id, code, "the day-close of a loan was refused");
                }
            }
        }
        Ok(closed)
    }
}
