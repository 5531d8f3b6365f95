//! The system settings of the e-wallet (spec §2): whether wallet registrations and
//! personal-data change requests are approved automatically or by an operator. Stored in
//! `system_settings`, every change also in `system_setting_changes`; a setting never written
//! has its default (automatic).

use etr_domain::client::Approval;
use sqlx::PgPool;

use crate::error::{Error, Result};

/// A setting the platform knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// How a wallet registration is approved.
    WalletRegistrationApproval,
    /// How a personal-data change request is approved.
    PersonalDataChangeApproval,
}

impl Setting {
    pub const ALL: [Setting; 2] = [
        Setting::WalletRegistrationApproval,
        Setting::PersonalDataChangeApproval,
    ];

    /// The setting's key: `wallet_registration_approval`, `personal_data_change_approval`.
    pub fn key(self) -> &'static str {
        match self {
            Setting::WalletRegistrationApproval => "wallet_registration_approval",
            Setting::PersonalDataChangeApproval => "personal_data_change_approval",
        }
    }

    pub fn parse(key: &str) -> Option<Setting> {
        Self::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// The approval a setting asks for now (automatic when never set).
///
/// Errors: Postgres; a stored value that is not `automatic` or `manual`.
pub async fn approval(pool: &PgPool, setting: Setting) -> Result<Approval> {
    let value: Option<String> =
        sqlx::query_scalar("SELECT value FROM system_settings WHERE key = $1")
            .bind(setting.key())
            .fetch_optional(pool)
            .await?;
    match value {
        None => Ok(Approval::Automatic),
        Some(v) => Approval::parse(&v)
            .ok_or_else(|| Error::Config(format!("setting {} holds `{v}`", setting.key()))),
    }
}

/// Every setting with its current approval.
///
/// Errors: Postgres; a stored value that does not parse.
pub async fn all(pool: &PgPool) -> Result<Vec<(Setting, Approval)>> {
    let mut out = Vec::new();
    for setting in Setting::ALL {
        out.push((setting, approval(pool, setting).await?));
    }
    Ok(out)
}

/// Sets `setting` to `value` on behalf of `by`, recording the change.
///
/// Errors: Postgres.
pub async fn set(pool: &PgPool, setting: Setting, value: Approval, by: &str) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO system_settings (key, value, updated_by) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, \
         updated_at = clock_timestamp()",
    )
    .bind(setting.key())
    .bind(value.label())
    .bind(by)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO system_setting_changes (key, value, changed_by) VALUES ($1, $2, $3)")
        .bind(setting.key())
        .bind(value.label())
        .bind(by)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}
