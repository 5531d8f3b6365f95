//! The key store for personal data (seed 000, 6.2.1; 152-FZ): each client's data key, the
//! sealing and opening of [`PersonalData`], and blind indexes for search.
//!
//! - A client's data key is 32 random bytes (OS CSPRNG) kept in `client_data_keys`, never on
//!   the log. [`Vault::seal`] encrypts the JSON of the personal data with XChaCha20-Poly1305
//!   (`chacha20poly1305`, RustCrypto) under a fresh 24-byte nonce; the associated data is the
//!   client id and key version, so a sealed value moved to another client does not open.
//! - [`Vault::erase`] destroys the key and the client's lookup rows: every sealed value of the
//!   client becomes unreadable ([`Error::Erased`]) while the events and their hash chain stay.
//! - Blind indexes: HMAC-SHA256 (`hmac`) of a canonical identifier under the platform's
//!   lookup key (`platform_keys`), so phone / passport / INN / SNILS / card can be searched
//!   and compared across clients without being stored in clear.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use etr_domain::personal::{PersonalData, Sealed};
use etr_domain::ClientId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{Error, Result};

const KEY_VERSION: i32 = 1;
const LOOKUP_KEY: &str = "lookup";

/// Seals, opens and indexes personal data.
#[derive(Clone)]
pub struct Vault {
    pool: PgPool,
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| Error::Crypto(format!("no randomness: {e}")))?;
    Ok(bytes)
}

fn associated_data(client: ClientId, version: u32) -> Vec<u8> {
    let mut aad = client.0.as_bytes().to_vec();
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

/// Identifier kinds of the blind index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Phone,
    Passport,
    Inn,
    Snils,
    Card,
}

impl Lookup {
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Phone => "phone",
            Lookup::Passport => "passport",
            Lookup::Inn => "inn",
            Lookup::Snils => "snils",
            Lookup::Card => "card",
        }
    }
}

impl Vault {
    pub fn new(pool: PgPool) -> Vault {
        Vault { pool }
    }

    /// The client's key, created on first use. Errors: [`Error::Erased`] after erasure.
    async fn key(&self, client: ClientId, create: bool) -> Result<(u32, [u8; 32])> {
        if create {
            let fresh = random::<32>()?;
            sqlx::query(
                "INSERT INTO client_data_keys (client_id, key_version, data_key) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id) DO NOTHING",
            )
            .bind(client.0)
            .bind(KEY_VERSION)
            .bind(&fresh[..])
            .execute(&self.pool)
            .await?;
        }
        let row: Option<(i32, Option<Vec<u8>>)> = sqlx::query_as(
            "SELECT key_version, data_key FROM client_data_keys WHERE client_id = $1",
        )
        .bind(client.0)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some((version, Some(key))) => {
                let key: [u8; 32] = key
                    .try_into()
                    .map_err(|_| Error::Crypto("a stored data key is not 32 bytes".into()))?;
                Ok((u32::try_from(version).unwrap_or(1), key))
            }
            Some((_, None)) | None => Err(Error::Erased(client.0)),
        }
    }

    /// Seals `data` with the client's key (creating the key on first use).
    ///
    /// Errors: [`Error::Erased`] for an erased client; Postgres; [`Error::Crypto`].
    pub async fn seal(&self, client: ClientId, data: &PersonalData) -> Result<Sealed> {
        let plain = serde_json::to_vec(data).map_err(|e| Error::Crypto(e.to_string()))?;
        self.seal_bytes(client, &plain).await
    }

    /// Seals any bytes of the client (a document's file or number) like [`Vault::seal`].
    pub async fn seal_bytes(&self, client: ClientId, plain: &[u8]) -> Result<Sealed> {
        let (version, key) = self.key(client, true).await?;
        let nonce = random::<24>()?;
        let cipher = XChaCha20Poly1305::new(&key.into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &associated_data(client, version),
                },
            )
            .map_err(|_| Error::Crypto("encryption failed".into()))?;
        Ok(Sealed {
            key_version: version,
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(sealed),
        })
    }

    /// Opens a sealed value of `client`.
    ///
    /// Errors: [`Error::Erased`] once the key is destroyed; [`Error::Crypto`] for a value
    /// sealed for another client or altered.
    pub async fn open(&self, client: ClientId, sealed: &Sealed) -> Result<PersonalData> {
        let plain = self.open_bytes(client, sealed).await?;
        serde_json::from_slice(&plain).map_err(|e| Error::Crypto(e.to_string()))
    }

    /// Opens bytes sealed by [`Vault::seal_bytes`]; errors as [`Vault::open`].
    pub async fn open_bytes(&self, client: ClientId, sealed: &Sealed) -> Result<Vec<u8>> {
        let (version, key) = self.key(client, false).await?;
        if version != sealed.key_version {
            return Err(Error::Crypto(format!(
                "sealed with key version {}, the client's key is version {version}",
                sealed.key_version
            )));
        }
        let nonce = hex::decode(&sealed.nonce).map_err(|e| Error::Crypto(e.to_string()))?;
        if nonce.len() != 24 {
            return Err(Error::Crypto("the nonce is not 24 bytes".into()));
        }
        let ciphertext =
            hex::decode(&sealed.ciphertext).map_err(|e| Error::Crypto(e.to_string()))?;
        let cipher = XChaCha20Poly1305::new(&key.into());
        let plain = cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &associated_data(client, version),
                },
            )
            .map_err(|_| {
                Error::Crypto("the sealed data does not open with this client's key".into())
            })?;
        Ok(plain)
    }

    /// Destroys the client's key and lookup rows. Idempotent.
    pub async fn erase(&self, client: ClientId) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO client_data_keys (client_id, key_version, data_key, erased_at) VALUES ($1, $2, NULL, clock_timestamp()) \
             ON CONFLICT (client_id) DO UPDATE SET data_key = NULL, erased_at = COALESCE(client_data_keys.erased_at, clock_timestamp())",
        )
        .bind(client.0)
        .bind(KEY_VERSION)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM client_lookup WHERE client_id = $1")
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lookup_key(&self) -> Result<Vec<u8>> {
        let fresh = random::<32>()?;
        sqlx::query(
            "INSERT INTO platform_keys (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(LOOKUP_KEY)
        .bind(&fresh[..])
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT secret FROM platform_keys WHERE name = $1")
                .bind(LOOKUP_KEY)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The blind-index digest of a canonical identifier (lowercase hex HMAC-SHA256).
    pub async fn digest(&self, kind: Lookup, canonical: &str) -> Result<String> {
        let key = self.lookup_key().await?;
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .map_err(|e| Error::Crypto(e.to_string()))?;
        mac.update(kind.as_str().as_bytes());
        mac.update(b":");
        mac.update(canonical.as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// The identifiers of `data` as (kind, canonical value).
    pub fn identifiers(data: &PersonalData) -> Vec<(Lookup, String)> {
        let mut ids = vec![(Lookup::Phone, data.phone.as_str().to_owned())];
        if let Some(p) = &data.passport {
            ids.push((Lookup::Passport, p.number.as_str().to_owned()));
        }
        if let Some(inn) = &data.inn {
            ids.push((Lookup::Inn, inn.as_str().to_owned()));
        }
        if let Some(snils) = &data.snils {
            ids.push((Lookup::Snils, snils.as_str().to_owned()));
        }
        ids
    }

    /// Replaces the client's lookup rows of the identifier kinds in `data` (and `cards`,
    /// provider tokens).
    pub async fn index(&self, client: ClientId, data: &PersonalData) -> Result<()> {
        let mut rows = Vec::new();
        for (kind, value) in Self::identifiers(data) {
            rows.push((kind.as_str(), self.digest(kind, &value).await?));
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM client_lookup WHERE client_id = $1 AND kind <> 'card'")
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        for (kind, digest) in rows {
            sqlx::query(
                "INSERT INTO client_lookup (kind, digest, client_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(kind)
            .bind(digest)
            .bind(client.0)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds a card (by its provider token) to the client's lookup rows.
    pub async fn index_card(&self, client: ClientId, token: &str) -> Result<()> {
        let digest = self.digest(Lookup::Card, token).await?;
        sqlx::query(
            "INSERT INTO client_lookup (kind, digest, client_id) VALUES ('card', $1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(digest)
        .bind(client.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Clients whose identifier of `kind` equals `canonical`.
    pub async fn find(&self, kind: Lookup, canonical: &str) -> Result<Vec<Uuid>> {
        let digest = self.digest(kind, canonical).await?;
        Ok(sqlx::query_scalar(
            "SELECT client_id FROM client_lookup WHERE kind = $1 AND digest = $2 ORDER BY client_id",
        )
        .bind(kind.as_str())
        .bind(digest)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Other clients sharing any identifier with `client`: (their id, the kind shared).
    pub async fn duplicates(&self, client: ClientId) -> Result<Vec<(Uuid, String)>> {
        Ok(sqlx::query_as(
            "SELECT DISTINCT o.client_id, o.kind FROM client_lookup m \
             JOIN client_lookup o ON o.kind = m.kind AND o.digest = m.digest AND o.client_id <> m.client_id \
             WHERE m.client_id = $1 ORDER BY o.client_id, o.kind",
        )
        .bind(client.0)
        .fetch_all(&self.pool)
        .await?)
    }
}
