//! The merchants partner shops are registered as (e-wallet spec §7.2): who the shop's
//! partner token is, where its callbacks go and the key they are signed with, the service
//! whose receipt template its receipts use, and its settlement wallet. Configuration kept in
//! `merchants`; the orders themselves are events of `etr_domain::merchant_order`.
//!
//! Callback signatures: `X-ETR-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>" under the merchant's key>` ([`sign`], [`verify`]).

use etr_domain::{ClientId, Currency};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{Error, Result};

/// A registered merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merchant {
    /// The merchant's client id: the partition key of its orders and settlement wallet.
    pub merchant_id: ClientId,
    /// The subject of the partner token the shop calls with.
    pub partner_id: String,
    pub name: String,
    pub callback_url: String,
    /// The callbacks' HMAC-SHA256 key, hex.
    pub callback_secret: String,
    /// The processing centre's service whose receipt template the receipt uses.
    pub service_id: String,
    pub settlement_wallet_id: Uuid,
    pub currency: Currency,
}

/// The merchant id of a partner: UUID v5 of the partner id, so registering is idempotent.
pub fn merchant_id_of(partner_id: &str) -> ClientId {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6d65_7263_6861_6e74_0000_0000_0000_0001);
    ClientId(Uuid::new_v5(&NAMESPACE, partner_id.as_bytes()))
}

/// The settlement wallet of a merchant.
pub fn settlement_wallet_of(merchant: ClientId) -> Uuid {
    etr_domain::ids::derived_id(merchant.0, "settlement-wallet")
}

/// A fresh callback key: 32 bytes from the OS CSPRNG, hex.
///
/// Errors: [`Error::Crypto`] without randomness.
pub fn new_callback_secret() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| Error::Crypto(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

/// The `X-ETR-Signature` header value of a callback `body` sent at `timestamp` (unix
/// seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// Whether `header` is a valid signature of `body` under `secret` (constant-time compare).
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", s)) => signature = hex::decode(s).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(s)) = (timestamp, signature) else {
        return false;
    };
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    m.update(format!("{t}.").as_bytes());
    m.update(body);
    m.verify_slice(&s).is_ok()
}

/// The key a checkout link carries (`?key=`): the first 128 bits of HMAC-SHA256 of
/// `checkout/<order id>` under the merchant's key, hex — so only the merchant (and whoever it
/// sends the link to) can open the order's page, receipt and payment endpoints.
pub fn checkout_key(secret: &str, order_id: Uuid) -> String {
    let mac = mac(secret, 0, format!("checkout/{order_id}").as_bytes());
    hex::encode(mac.get(..16).unwrap_or_default())
}

/// Whether `key` is the checkout key of `order_id` (constant-time compare).
pub fn checkout_key_matches(secret: &str, order_id: Uuid, key: &str) -> bool {
    let expected = checkout_key(secret, order_id);
    expected.len() == key.len()
        && expected
            .bytes()
            .zip(key.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    // HMAC accepts a key of any length, so `new_from_slice` cannot fail here.
    let mut m = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return Vec::new(),
    };
    m.update(format!("{timestamp}.").as_bytes());
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

type Row = (Uuid, String, String, String, String, String, Uuid, String);

const COLUMNS: &str = "merchant_id, partner_id, name, callback_url, callback_secret, service_id, \
     settlement_wallet_id, currency";

fn merchant(row: Row) -> Result<Merchant> {
    let (merchant_id, partner_id, name, callback_url, callback_secret, service_id, wallet, cur) =
        row;
    let currency = cur
        .parse::<Currency>()
        .map_err(|_| Error::Config(format!("merchant {partner_id} has currency `{cur}`")))?;
    Ok(Merchant {
        merchant_id: ClientId(merchant_id),
        partner_id,
        name,
        callback_url,
        callback_secret,
        service_id,
        settlement_wallet_id: wallet,
        currency,
    })
}

/// Stores a merchant; `false` when the partner is already registered (nothing changed).
///
/// Errors: Postgres.
pub async fn insert(pool: &PgPool, m: &Merchant, created_by: &str) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO merchants (merchant_id, partner_id, name, callback_url, callback_secret, \
             service_id, settlement_wallet_id, currency, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
    )
    .bind(m.merchant_id.0)
    .bind(&m.partner_id)
    .bind(&m.name)
    .bind(&m.callback_url)
    .bind(&m.callback_secret)
    .bind(&m.service_id)
    .bind(m.settlement_wallet_id)
    .bind(m.currency.code())
    .bind(created_by)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The merchant of a partner token's subject.
///
/// Errors: Postgres; a stored currency that does not parse.
pub async fn by_partner(pool: &PgPool, partner_id: &str) -> Result<Option<Merchant>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM merchants WHERE partner_id = $1"
    ))
    .bind(partner_id)
    .fetch_optional(pool)
    .await?;
    row.map(merchant).transpose()
}

/// A merchant by id.
///
/// Errors: Postgres; a stored currency that does not parse.
pub async fn by_id(pool: &PgPool, merchant_id: ClientId) -> Result<Option<Merchant>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM merchants WHERE merchant_id = $1"
    ))
    .bind(merchant_id.0)
    .fetch_optional(pool)
    .await?;
    row.map(merchant).transpose()
}

/// Every merchant, by partner id.
///
/// Errors: Postgres; a stored currency that does not parse.
pub async fn all(pool: &PgPool) -> Result<Vec<Merchant>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM merchants ORDER BY partner_id"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(merchant).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_and_key() {
        let header = sign("k1", 1_764_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1764000000,v1="));
        assert!(verify("k1", &header, b"{\"a\":1}"));
        assert!(!verify("k2", &header, b"{\"a\":1}"));
        assert!(!verify("k1", &header, b"{\"a\":2}"));
        assert!(!verify("k1", "t=1,v1=zz", b"{\"a\":1}"));
        assert_ne!(merchant_id_of("shop-1"), merchant_id_of("shop-2"));
    }
}
