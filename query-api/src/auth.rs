//! Bearer-token authorisation: HS256 JWTs with a role and, for clients, their client id.
//!
//! `client` sees only its own client's data; `partner`, `operator` and `auditor` may read any
//! client. A request without a valid token gets `UNAUTHENTICATED`; a client asking for another
//! client's data gets `FORBIDDEN`, never the data.

use async_graphql::{Context, ErrorExtensions};
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
pub enum Error {
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
    pub fn from_secret(secret: &[u8]) -> Keys {
        Keys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// Signs a token for `sub` with `role`, valid until `exp` (seconds since the epoch).
    pub fn issue(&self, sub: &str, role: Role, exp: i64) -> Result<String, Error> {
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            exp,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::Sign(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Viewer, Error> {
        let validation = Validation::new(Algorithm::HS256);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let claims = data.claims;
        let client = match claims.role {
            Role::Client => Some(Uuid::parse_str(&claims.sub).map_err(|_| Error::ClientWithoutId)?),
            _ => None,
        };
        Ok(Viewer {
            role: claims.role,
            client,
            sub: claims.sub,
        })
    }
}

/// Who is asking, as the token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    pub role: Role,
    pub client: Option<Uuid>,
    pub sub: String,
}

/// The outcome of reading the `Authorization` header, put into every request's context.
#[derive(Debug, Clone)]
pub enum Access {
    Granted(Viewer),
    Denied(String),
}

pub(crate) fn error(code: &'static str, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message.into()).extend_with(|_, e| e.set("code", code))
}

/// The viewer, or `UNAUTHENTICATED`.
pub fn viewer<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Viewer> {
    match ctx.data_opt::<Access>() {
        Some(Access::Granted(v)) => Ok(v),
        Some(Access::Denied(why)) => Err(error("UNAUTHENTICATED", why.clone())),
        None => Err(error("UNAUTHENTICATED", "a bearer token is required")),
    }
}

/// May the viewer read `client`'s data? Clients only their own; other roles any.
pub fn may_read(ctx: &Context<'_>, client: Uuid) -> async_graphql::Result<()> {
    let v = viewer(ctx)?;
    match v.role {
        Role::Client if v.client != Some(client) => {
            Err(error("FORBIDDEN", "a client may read only its own data"))
        }
        _ => Ok(()),
    }
}

/// May the viewer read `client`'s timeline (the audit trail)? The client itself, operators
/// and auditors; partners never.
pub fn may_read_timeline(ctx: &Context<'_>, client: Uuid) -> async_graphql::Result<()> {
    let v = viewer(ctx)?;
    match v.role {
        Role::Partner => Err(error(
            "FORBIDDEN",
            "a client's timeline is for the client, operators and auditors",
        )),
        Role::Client if v.client != Some(client) => {
            Err(error("FORBIDDEN", "a client may read only its own data"))
        }
        _ => Ok(()),
    }
}
