//! Delivering a scheduled report to its recipients (seed 003, «Модуль расписания отправки
//! отчетов … отправлять сформированные отчеты на заданные адреса доставки»): a port, and a
//! simulator that records what it was given.

use std::future::Future;
use std::pin::Pin;

use sqlx::PgPool;
use uuid::Uuid;

/// A boxed future, as the port's methods return it.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One notice to one recipient that a report is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `<run id>/<recipient>`: the same notice delivered twice is delivered once.
    pub key: String,
    pub run_id: Uuid,
    /// The delivery address as configured (an e-mail address, a channel).
    pub recipient: String,
    pub subject: String,
    pub body: String,
    /// Where the report file is stored (`file:///…`, `s3://…`).
    pub location: String,
}

/// Sends notices. A real adapter (SMTP, a messenger) is another implementation.
pub trait Delivery: Send + Sync {
    /// Sends `notice`; a notice with a key already sent is a no-op. The error is the
    /// channel's reason, kept with the run.
    fn deliver<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), String>>;
}

/// The delivery simulator: records every notice in `report_deliveries` (once per key), where
/// operators and tests read them. Addresses starting with `fail` are refused, to exercise
/// the retry path.
#[derive(Debug, Clone)]
pub struct RecordingDelivery {
    pool: PgPool,
}

impl RecordingDelivery {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

impl Delivery for RecordingDelivery {
    fn deliver<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if notice.recipient.starts_with("fail") {
                return Err(format!("{} refused the message", notice.recipient));
            }
            sqlx::query(
                "INSERT INTO report_deliveries (dedup_key, run_id, recipient, subject, body, location) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedup_key) DO NOTHING",
            )
            .bind(&notice.key)
            .bind(notice.run_id)
            .bind(&notice.recipient)
            .bind(&notice.subject)
            .bind(&notice.body)
            .bind(&notice.location)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
        })
    }
}
