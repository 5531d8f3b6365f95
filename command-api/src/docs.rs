//! The API reference at `/docs`: Swagger UI 5.35.0 from the npm registry (`assets/VENDORED`)
//! over `/openapi.json`, every file compiled in and served under `/assets/`, nothing loaded
//! from another host ([`etr_infra::web`]). The page's own script (`assets/docs-page.js`) turns
//! the validator badge off, takes the bearer token from "Authorize" or `?token=`, and fills a
//! fresh `Idempotency-Key` into every POST sent with the key left empty.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use etr_infra::web::{self, Asset, CSS, JAVASCRIPT};

/// The reference page.
pub const DOCS_HTML: &str = include_str!("../assets/docs.html");

/// Every file the page loads, at the path it loads it from, and the licences.
pub const ASSETS: &[Asset] = &[
    Asset {
        path: "/assets/swagger-ui-dist-5.35.0/swagger-ui-bundle.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js"),
        versioned: true,
    },
    Asset {
        path: "/assets/swagger-ui-dist-5.35.0/swagger-ui.css",
        content_type: CSS,
        body: include_bytes!("../assets/vendor/swagger-ui-dist-5.35.0/swagger-ui.css"),
        versioned: true,
    },
    Asset {
        path: "/assets/swagger-ui-dist-5.35.0/LICENSE",
        content_type: web::TEXT,
        body: include_bytes!("../assets/vendor/swagger-ui-dist-5.35.0/LICENSE"),
        versioned: true,
    },
    Asset {
        path: "/assets/swagger-ui-dist-5.35.0/NOTICE",
        content_type: web::TEXT,
        body: include_bytes!("../assets/vendor/swagger-ui-dist-5.35.0/NOTICE"),
        versioned: true,
    },
    Asset {
        path: "/assets/swagger-ui-dist-5.35.0/swagger-ui-bundle.js.LICENSE.txt",
        content_type: web::TEXT,
        body: include_bytes!(
            "../assets/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js.LICENSE.txt"
        ),
        versioned: true,
    },
    Asset {
        path: "/assets/etr/docs-page.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/docs-page.js"),
        versioned: false,
    },
    Asset {
        path: "/assets/etr/docs-page.css",
        content_type: CSS,
        body: include_bytes!("../assets/docs-page.css"),
        versioned: false,
    },
    Asset {
        path: "/assets/etr/checkout-page.js",
        content_type: JAVASCRIPT,
        body: include_bytes!("../assets/checkout-page.js"),
        versioned: false,
    },
    Asset {
        path: "/assets/etr/checkout-page.css",
        content_type: CSS,
        body: include_bytes!("../assets/checkout-page.css"),
        versioned: false,
    },
];

pub(crate) async fn docs() -> Response {
    web::page(DOCS_HTML)
}

pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    match web::find(ASSETS, &format!("/assets/{path}")) {
        Some(asset) => asset.response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

/// What the OpenAPI document says beyond the routes: the bearer scheme (`bearer`, HTTP
/// bearer with a JWT) every operation requires — the reference's "Authorize" fills it — and
/// the licence by name only (an SPDX identifier would make the reference link to spdx.org).
pub(crate) struct DocumentSettings;

impl utoipa::Modify for DocumentSettings {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        if let Some(license) = openapi.info.license.as_mut() {
            license.identifier = None;
            license.url = None;
        }
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An HS256 JWT (claims sub, role, exp): a client token for its own client, a partner or operator token; `etr token` mints one.",
                    ))
                    .build(),
            ),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    #[test]
    fn vendored_files_match_their_recorded_hashes_and_no_served_file_names_an_unlisted_host() {
        let lines = web::vendored(include_str!("../assets/VENDORED")).unwrap();
        assert_eq!(lines.len(), 5);
        let problems = web::asset_problems(
            ASSETS,
            DOCS_HTML,
            include_str!("../assets/VENDORED"),
            include_str!("../assets/HOSTS"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/assets"),
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn the_page_loads_only_served_assets() {
        let refs: Vec<&str> = DOCS_HTML
            .split(['"', '\''])
            .filter(|s| s.starts_with("/assets/"))
            .collect();
        assert_eq!(refs.len(), 4, "{refs:?}");
        for r in refs {
            assert!(web::find(ASSETS, r).is_some(), "{r} is not served");
        }
    }

    #[test]
    fn the_document_requires_the_bearer_scheme_and_links_nowhere() {
        let doc = serde_json::to_value(crate::api::ApiDoc::openapi()).unwrap();
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(doc["security"][0]["bearer"], serde_json::json!([]));
        assert!(doc["info"]["license"]["identifier"].is_null(), "{doc}");
        assert!(web::external_hosts(&doc.to_string()).is_empty(), "{doc}");
    }
}
