//! Bearer-token authorisation: HS256 JWTs with a role and, for clients, their client id.
//!
//! `client` sees only its own client's data; `partner`, `operator` and `auditor` may read any
//! client. A request without a valid token gets `UNAUTHENTICATED`; a client asking for another
//! client's data gets `FORBIDDEN`, never the data.

use async_graphql::{Context, ErrorExtensions};
use uuid::Uuid;

pub use etr_infra::auth::{Claims, Keys, Role, TokenError as Error, Viewer};

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
