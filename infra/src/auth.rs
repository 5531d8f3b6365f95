//! Bearer tokens shared by the command API and the query API: HS256 JWTs with a role
//! (`client`, `partner`, `operator`, `auditor`) and a subject (for a client, its client id).
//! The key is configuration (`ETR_JWT_SECRET`).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Client,
    Partner,
    Operator,
    Auditor,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who: the client id for clients, a partner / staff id otherwise.
    pub sub: String,
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("a bearer token is required")]
    Missing,
    #[error("expected `Authorization: Bearer <token>`")]
    NotBearer,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("a client token must carry the client id as `sub`")]
    ClientWithoutId,
    #[error("could not sign a token: {0}")]
    Sign(String),
}

/// The signing keys (one shared secret; configuration, `ETR_JWT_SECRET`).
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Keys {
    /// Verifies an `Authorization` header value (`Bearer <token>`).
    pub fn verify_header(&self, authorization: Option<&str>) -> Result<Viewer, TokenError> {
        let value = authorization.ok_or(TokenError::Missing)?;
        let token = value.strip_prefix("Bearer ").ok_or(TokenError::NotBearer)?;
        self.verify(token.trim())
    }

    pub fn from_secret(secret: &[u8]) -> Keys {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Signs a token for `sub` with `role`, valid until `exp` (seconds since the epoch).
    pub fn issue(&self, sub: &str, role: Role, exp: i64) -> Result<String, TokenError> {
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            exp,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Viewer, TokenError> {
        let validation = Validation::new(Algorithm::HS256);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let client = match claims.role {
            Role::Client => {
                Some(Uuid::parse_str(&claims.sub).map_err(|_| TokenError::ClientWithoutId)?)
            }
            _ => None,
        };
        Ok(Viewer {
            role: claims.role,
            client,
            sub: claims.sub,
            expires_at: claims.exp,
        })
    }
}

/// Who is asking, as the token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub role: Role,
    pub client: Option<Uuid>,
    pub sub: String,
    /// When the token expires, seconds since the epoch.
    pub expires_at: i64,
}
