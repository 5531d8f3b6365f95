//! The GraphQL query API for client apps (async-graphql on axum): reads Postgres read models
//! only, never the write path's tables.
//!
//! Not built yet: it arrives with the read side (projections, GraphQL, timeline).
