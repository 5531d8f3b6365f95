//! GraphiQL, served at `/` (and `GET /graphql`) with every file it needs compiled in:
//! GraphiQL 3.8.3, React and React-DOM 18.3.1 from the npm registry (`assets/VENDORED`), and
//! the page's own script (`assets/graphiql-page.js`), which prefills the header editor with
//! `Authorization: Bearer …` from `?token=` or the token field and runs subscriptions over
//! `/graphql/ws`. Nothing is loaded from another host ([`etr_infra::web`]).
//!
//! The page takes the schema from `/graphql/introspection` ([`introspection`]): GraphiQL's
//! own introspection query nests deeper than the API's depth limit lets any request go.

use async_graphql::{EmptyMutation, Schema};
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use etr_infra::web::{self, Asset, CSS, JAVASCRIPT};
use tokio::sync::OnceCell;

use crate::subscription::Subscription;
use crate::Query;

/// The standard introspection query (graphql-js `getIntrospectionQuery`, with deprecated
/// arguments and input fields).
const INTROSPECTION_QUERY: &str = include_str!("introspection.graphql");

/// The GraphiQL page.
pub const GRAPHIQL_HTML: &str = include_str!("../assets/graphiql.html");

/// Every file the page loads, at the path it loads it from.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/assets/graphiql-3.8.3/graphiql.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/vendor/graphiql-3.8.3/graphiql.min.js"),
        versioned: true,
    },
    Asset {
        path: "/assets/graphiql-3.8.3/graphiql.min.css",
        content_type: CSS,
        body: include_bytes!("../assets/vendor/graphiql-3.8.3/graphiql.min.css"),
        versioned: true,
    },
    Asset {
        path: "/assets/graphiql-3.8.3/LICENSE",
        content_type: web::TEXT,
        body: include_bytes!("../assets/vendor/graphiql-3.8.3/LICENSE"),
        versioned: true,
    },
    Asset {
        path: "/assets/react-18.3.1/react.production.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/vendor/react-18.3.1/react.production.min.js"),
        versioned: true,
    },
    Asset {
        path: "/assets/react-18.3.1/LICENSE",
        content_type: web::TEXT,
        body: include_bytes!("../assets/vendor/react-18.3.1/LICENSE"),
        versioned: true,
    },
    Asset {
        path: "/assets/react-dom-18.3.1/react-dom.production.min.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/vendor/react-dom-18.3.1/react-dom.production.min.js"),
        versioned: true,
    },
    Asset {
        path: "/assets/react-dom-18.3.1/LICENSE",
        content_type: web::TEXT,
        body: include_bytes!("../assets/vendor/react-dom-18.3.1/LICENSE"),
        versioned: true,
    },
    Asset {
        path: "/assets/etr/graphiql-page.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/graphiql-page.js"),
        versioned: false,
    },
    Asset {
        path: "/assets/etr/graphiql-page.css",
        content_type: CSS,
        body: include_bytes!("../assets/graphiql-page.css"),
        versioned: false,
    },
];

pub(crate) async fn graphiql() -> Response {
    web::page(GRAPHIQL_HTML)
}

/// The schema's introspection result (`{"data": {"__schema": …}}`), computed once from the
/// schema's types alone (no data, no limits) with [`INTROSPECTION_QUERY`]. The schema is
/// public: the same types any request may introspect, field by field, within the limits.
pub(crate) async fn introspection() -> Response {
    static RESULT: OnceCell<String> = OnceCell::const_new();
    let body = RESULT
        .get_or_init(|| async {
            let schema = Schema::build(Query::default(), EmptyMutation, Subscription).finish();
            let response = schema.execute(INTROSPECTION_QUERY).await;
            serde_json::to_string(&response).unwrap_or_else(|e| {
                serde_json::json!({"errors": [{"message": e.to_string()}]}).to_string()
            })
        })
        .await;
    ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response()
}

pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    match web::find(ASSETS, &format!("/assets/{path}")) {
        Some(asset) => asset.response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_files_match_their_recorded_hashes_and_no_served_file_names_an_unlisted_host() {
        let lines = web::vendored(include_str!("../assets/VENDORED")).unwrap();
        assert_eq!(lines.len(), 7);
        let problems = web::asset_problems(
            ASSETS,
            GRAPHIQL_HTML,
            include_str!("../assets/VENDORED"),
            include_str!("../assets/HOSTS"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/assets"),
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[tokio::test]
    async fn introspection_describes_the_whole_schema() {
        let response = introspection().await;
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v["errors"].is_null(), "{v}");
        assert_eq!(v["data"]["__schema"]["queryType"]["name"], "Query");
        assert_eq!(
            v["data"]["__schema"]["subscriptionType"]["name"],
            "Subscription"
        );
        let types = v["data"]["__schema"]["types"].as_array().unwrap();
        assert!(types.iter().any(|t| t["name"] == "Wallet"), "{v}");
    }

    #[test]
    fn the_page_loads_only_served_assets() {
        let refs: Vec<&str> = GRAPHIQL_HTML
            .split(['"', '\''])
            .filter(|s| s.starts_with("/assets/"))
            .collect();
        assert_eq!(refs.len(), 6, "{refs:?}");
        for r in refs {
            assert!(web::find(ASSETS, r).is_some(), "{r} is not served");
        }
    }
}
