//! Bearer tokens shared by the command API and the query API: HS256 JWTs with a role
//! (`client`, `partner`, `operator`, `auditor`) and a subject (for a client, its client id).
//! The key is configuration (`ETR_JWT_SECRET`).
//!
//! A token is accepted only if it is HS256 (`alg: none` and every other algorithm are
//! refused), its signature verifies, its issuer and audience are [`ISSUER`] and
//! [`AUDIENCE`], it has not expired (`exp`, no leeway: the platform issues its tokens on its
//! own clock) and, when it has `nbf`, it is already valid. Anything else is
//! [`TokenError::Invalid`], which both APIs answer with 401 / `UNAUTHENTICATED`.

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

/// The issuer every token of the platform names (`iss`).
pub const ISSUER: &str = "etr";
/// The audience every token of the platform names (`aud`): its two APIs.
pub const AUDIENCE: &str = "etr-api";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Who: the client id for clients, a partner / staff id otherwise.
    pub sub: String,
    pub role: Role,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// The issuer: [`ISSUER`].
    pub iss: String,
    /// The audience: [`AUDIENCE`].
    pub aud: String,
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
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Sign(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<Viewer, TokenError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    const SECRET: &[u8] = b"test-secret";

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }

    fn signed(header: &Header, claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({
            "sub": "operator-1", "role": "operator", "exp": now() + 600,
            "iss": ISSUER, "aud": AUDIENCE
        })
    }

    fn refused(token: &str) -> bool {
        matches!(
            Keys::from_secret(SECRET).verify(token),
            Err(TokenError::Invalid(_))
        )
    }

    #[test]
    fn a_token_the_platform_issued_is_accepted() {
        let keys = Keys::from_secret(SECRET);
        let token = keys
            .issue("operator-1", Role::Operator, now() + 600)
            .unwrap();
        assert_eq!(keys.verify(&token).unwrap().role, Role::Operator);
        assert!(!refused(&signed(&Header::new(Algorithm::HS256), &claims())));
    }

    #[test]
    fn every_other_token_is_refused() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // alg: none, no signature.
        let none = format!(
            "{}.{}.",
            b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64.encode(claims().to_string())
        );
        assert!(refused(&none));
        // Another algorithm with the same secret.
        assert!(refused(&signed(&Header::new(Algorithm::HS512), &claims())));
        let mut c = claims();
        c["exp"] = serde_json::json!(now() - 1);
        assert!(
            refused(&signed(&Header::new(Algorithm::HS256), &c)),
            "expired"
        );
        let mut c = claims();
        c["nbf"] = serde_json::json!(now() + 600);
        assert!(
            refused(&signed(&Header::new(Algorithm::HS256), &c)),
            "not yet valid"
        );
        for (claim, value) in [("iss", "someone-else"), ("aud", "another-api")] {
            let mut c = claims();
            c[claim] = serde_json::json!(value);
            assert!(
                refused(&signed(&Header::new(Algorithm::HS256), &c)),
                "{claim}"
            );
        }
        for claim in ["iss", "aud", "exp"] {
            let mut c = claims();
            c.as_object_mut().unwrap().remove(claim);
            assert!(
                refused(&signed(&Header::new(Algorithm::HS256), &c)),
                "no {claim}"
            );
        }
        // A tampered payload under the original signature, and a flipped signature.
        let good = signed(&Header::new(Algorithm::HS256), &claims());
        let parts: Vec<&str> = good.split('.').collect();
        let mut admin = claims();
        admin["sub"] = serde_json::json!("operator-2");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64.encode(admin.to_string()),
            parts[2]
        );
        assert!(refused(&tampered));
        let mut signature = b64.decode(parts[2]).unwrap();
        signature[0] ^= 1;
        let flipped = format!("{}.{}.{}", parts[0], parts[1], b64.encode(signature));
        assert!(refused(&flipped));
        // Signed with another secret.
        let other = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(b"another-secret"),
        )
        .unwrap();
        assert!(refused(&other));
    }
}
