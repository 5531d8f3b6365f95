//! Advertising end to end on the real broker and Postgres (e-wallet spec §6): an operator
//! creates places, campaigns and banners with weights and selection conditions over REST;
//! GraphQL serves the banners of a web-application place round-robin over the shuffled
//! playlist — each matching banner `weight` times per lap, never one whose conditions the
//! operation does not meet or whose campaign has ended — and a banner's image is served
//! same-origin by both APIs; a receipt rendered from the processing centre's default
//! template shows the next banner of its place, escaped.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use support::{token, Api, Env};

use etr_query_api::auth::Role;

const PLACES: &str = "/v1/operator/advertising/places";
const CAMPAIGNS: &str = "/v1/operator/advertising/campaigns";
const BANNERS: &str = "/v1/operator/advertising/banners";

/// A PNG of one transparent pixel.
const PIXEL: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

async fn send(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = api.http.request(method, format!("{}{path}", api.base));
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const BANNER: &str =
    "query($place: String!, $service: String, $amount: String, $attributes: [AttributeInput!]) {
  banner(placeId: $place, serviceId: $service, amount: $amount, attributes: $attributes) {
    id campaignId title link imageUrl html
  }
}";

/// Asks GraphQL for the next banner of `place` `n` times; the ids served (`-` for none).
async fn served(env: &Env, bearer: &str, place: &str, op: &Value, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut vars = op.clone();
        vars["place"] = json!(place);
        let body = env.graphql(Some(bearer), BANNER, vars).await;
        assert!(body["errors"].is_null(), "{body}");
        out.push(
            body["data"]["banner"]["id"]
                .as_str()
                .unwrap_or("-")
                .to_owned(),
        );
    }
    out
}

fn counts(ids: &[String]) -> BTreeMap<&str, usize> {
    let mut m = BTreeMap::new();
    for id in ids {
        *m.entry(id.as_str()).or_insert(0) += 1;
    }
    m
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn banners_are_served_by_weight_round_robin_and_only_where_their_conditions_match() {
    let env = Env::new("advertising").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let operator = token("operator-1", Role::Operator);
    let client = token(&uuid::Uuid::new_v4().to_string(), Role::Client);
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;

    // The routes are in the OpenAPI document.
    let (status, doc) = send(&api, get.clone(), "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    for path in [PLACES, CAMPAIGNS, BANNERS] {
        assert!(doc["paths"][path]["post"].is_object(), "{path}");
    }
    assert!(doc["components"]["schemas"]["NewBanner"].is_object());

    // Places: one of the web application, one of e-mail receipts.
    let (status, body) = send(
        &api,
        post.clone(),
        PLACES,
        Some(&operator),
        Some(
            json!({"id": "content", "name": "Receipt footer", "interface_type": "web_application"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["interface_type"], "web_application");
    let (status, _) = send(
        &api,
        post.clone(),
        PLACES,
        Some(&operator),
        Some(json!({"id": "mail", "name": "E-mail receipt", "interface_type": "email_receipt"})),
    )
    .await;
    assert_eq!(status, 201);
    for (body, status_code, refusal) in [
        (
            json!({"id": "content", "name": "Again", "interface_type": "web_application"}),
            409,
            "advertising_place_exists",
        ),
        (
            json!({"id": "side", "name": "Side", "interface_type": "android"}),
            400,
            "invalid_interface_type",
        ),
        (
            json!({"id": "Side Bar", "name": "Side", "interface_type": "web_application"}),
            400,
            "invalid_advertising_id",
        ),
        (
            json!({"id": "side", "name": "Side", "interface_type": "web_application", "x": 1}),
            400,
            "unknown_field",
        ),
    ] {
        let (status, answer) = send(&api, post.clone(), PLACES, Some(&operator), Some(body)).await;
        assert_eq!((status, code(&answer)), (status_code, refusal), "{answer}");
    }
    let (status, body) = send(
        &api,
        post.clone(),
        PLACES,
        Some(&client),
        Some(json!({"id": "side", "name": "Side", "interface_type": "web_application"})),
    )
    .await;
    assert_eq!((status, code(&body)), (403, "forbidden"));

    // Campaigns: one running since yesterday for ever, one that has ended.
    let now = time::OffsetDateTime::now_utc();
    let rfc = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let (status, body) = send(
        &api,
        post.clone(),
        CAMPAIGNS,
        Some(&operator),
        Some(json!({"id": "winter", "name": "Winter", "active_from": rfc(now - time::Duration::days(1))})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["active_to"].is_null() && body["active"] == true,
        "{body}"
    );
    let (status, _) = send(
        &api,
        post.clone(),
        CAMPAIGNS,
        Some(&operator),
        Some(json!({"id": "autumn", "name": "Autumn",
            "active_from": rfc(now - time::Duration::days(60)),
            "active_to": rfc(now - time::Duration::days(30))})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, body) = send(
        &api,
        post.clone(),
        CAMPAIGNS,
        Some(&operator),
        Some(json!({"id": "backwards", "name": "B", "active_from": rfc(now), "active_to": rfc(now - time::Duration::days(1))})),
    )
    .await;
    assert_eq!((status, code(&body)), (422, "empty_period"), "{body}");

    // Banners of the web place: weights 3, 2, 1 with conditions, and one of the ended
    // campaign.
    let banner = |id: &str, campaign: &str, weight: i64, extra: Value| {
        let mut b = json!({"id": id, "campaign_id": campaign, "place_id": "content",
            "title": format!("Offer {id}"), "text": "Only this winter", "link": format!("/offers/{id}"),
            "weight": weight});
        if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        b
    };
    for b in [
        banner("alpha", "winter", 3, json!({})),
        banner(
            "beta",
            "winter",
            2,
            json!({"service_ids": ["mts"], "amount_from": "100.00", "amount_to": "1000.00"}),
        ),
        banner(
            "gamma",
            "winter",
            1,
            json!({"attribute_patterns": {"phone": "79\\d{9}"}}),
        ),
        banner("old", "autumn", 5, json!({})),
    ] {
        let (status, body) = send(&api, post.clone(), BANNERS, Some(&operator), Some(b)).await;
        assert_eq!(status, 201, "{body}");
    }
    for (b, status_code, refusal) in [
        (banner("bad", "winter", 0, json!({})), 400, "invalid_weight"),
        (
            banner(
                "bad",
                "winter",
                1,
                json!({"attribute_patterns": {"phone": "79("}}),
            ),
            422,
            "invalid_regex",
        ),
        (
            banner(
                "bad",
                "winter",
                1,
                json!({"amount_from": "500", "amount_to": "100"}),
            ),
            422,
            "empty_amount_range",
        ),
        (
            banner("bad", "winter", 1, json!({"link": "javascript:alert(1)"})),
            400,
            "invalid_link",
        ),
        (
            banner("bad", "spring", 1, json!({})),
            422,
            "unknown_campaign",
        ),
        (
            banner("bad", "winter", 1, json!({"place_id": "nowhere"})),
            422,
            "unknown_place",
        ),
        (
            banner("alpha", "winter", 1, json!({})),
            409,
            "advertising_banner_exists",
        ),
    ] {
        let (status, answer) = send(&api, post.clone(), BANNERS, Some(&operator), Some(b)).await;
        assert_eq!((status, code(&answer)), (status_code, refusal), "{answer}");
    }

    // The playlist holds each banner weight times (the ended campaign's too: it is active;
    // its period is checked when serving).
    let (entries, position): (Vec<String>, i64) =
        sqlx::query_as("SELECT entries, position FROM ad_playlists WHERE place_id = 'content'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(position, 0);
    let in_playlist = counts(&entries);
    assert_eq!(
        in_playlist,
        BTreeMap::from([("alpha", 3), ("beta", 2), ("gamma", 1), ("old", 5)])
    );

    // An operation every running banner matches: two laps of 6, each the playlist's order
    // without the ended campaign's banner, each banner weight times.
    let everything = json!({"service": "mts", "amount": "500.00",
        "attributes": [{"name": "phone", "value": "79001234567"}]});
    let ids = served(&env, &client, "content", &everything, 12).await;
    let expected: Vec<String> = entries.iter().filter(|e| *e != "old").cloned().collect();
    assert_eq!(ids[..6], expected[..], "round-robin over the playlist");
    assert_eq!(ids[6..], expected[..], "the second lap repeats the first");
    assert_eq!(
        counts(&ids[..6]),
        BTreeMap::from([("alpha", 3), ("beta", 2), ("gamma", 1)])
    );

    // Conditions: another service, a small amount, no phone — only the banner without
    // conditions; the amount range excludes its end; a phone of another form is not matched.
    let plain = json!({"service": "tele2", "amount": "50.00"});
    let ids = served(&env, &client, "content", &plain, 6).await;
    assert_eq!(counts(&ids), BTreeMap::from([("alpha", 6)]), "{ids:?}");
    let at_the_end = json!({"service": "mts", "amount": "1000.00",
        "attributes": [{"name": "phone", "value": "+79001234567"}]});
    let ids = served(&env, &client, "content", &at_the_end, 9).await;
    assert_eq!(counts(&ids), BTreeMap::from([("alpha", 9)]), "{ids:?}");
    let in_range = json!({"service": "mts", "amount": "999.99"});
    let ids = served(&env, &client, "content", &in_range, 5).await;
    assert_eq!(
        counts(&ids),
        BTreeMap::from([("alpha", 3), ("beta", 2)]),
        "{ids:?}"
    );

    // A banner's image, uploaded by the operator, served same-origin by both APIs.
    let resp = api
        .http
        .put(format!("{}{BANNERS}/alpha/image", api.base))
        .bearer_auth(&operator)
        .header("content-type", "image/png")
        .body(PIXEL.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["image_url"], "/advertising/banners/alpha/image");
    let resp = api
        .http
        .put(format!("{}{BANNERS}/alpha/image", api.base))
        .bearer_auth(&operator)
        .header("content-type", "image/svg+xml")
        .body("<svg/>")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    for base in [api.base.clone(), format!("http://{}", env.query_addr)] {
        let resp = reqwest::get(format!("{base}/advertising/banners/alpha/image"))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{base}");
        assert_eq!(resp.headers()["content-type"], "image/png");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), PIXEL);
        let missing = reqwest::get(format!("{base}/advertising/banners/beta/image"))
            .await
            .unwrap();
        assert_eq!(missing.status().as_u16(), 404, "{base}");
    }
    let body = env
        .graphql(
            Some(&client),
            BANNER,
            json!({"place": "content", "service": "tele2"}),
        )
        .await;
    let b = &body["data"]["banner"];
    assert_eq!(b["id"], "alpha", "{body}");
    assert_eq!(b["imageUrl"], "/advertising/banners/alpha/image");
    let html = b["html"].as_str().unwrap();
    assert!(
        html.contains(r#"<a href="/offers/alpha" rel="noopener""#),
        "{html}"
    );

    // A receipt from the processing centre's default template shows the place's next
    // banner, every value escaped.
    let doc: Value =
        serde_json::from_str(include_str!("../../sagas/data/processing_centre.json")).unwrap();
    let template = doc["receipt_templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "default.check-render")
        .unwrap()["body"]
        .as_str()
        .unwrap()
        .to_owned();
    let parsed = etr_domain::receipt::Template::parse(&template).unwrap();
    let place = parsed.banner_place().unwrap().to_string();
    let ads = etr_infra::advertising::Advertising::new(pool.clone());
    let op = etr_domain::advertising::Operation {
        service_id: Some("tele2".into()),
        ..Default::default()
    };
    let next = ads.next_banner(&place, &op, now).await.unwrap().unwrap();
    assert_eq!(next.id.as_str(), "alpha");
    let data = etr_domain::receipt::ReceiptData {
        operation_id: "op-1".into(),
        date: "04.12.2026 12:00".into(),
        service_name: "Tele2".into(),
        amount: "50.00".into(),
        commission: "0.00".into(),
        total: "50.00".into(),
        currency: "RUB".into(),
        attributes: BTreeMap::from([("phone".into(), "<script>alert(1)</script>".into())]),
        agent: "ETR".into(),
    };
    let receipt = etr_domain::receipt::render_receipt(&template, &data, Some(&next)).unwrap();
    assert!(
        receipt.contains(r#"<aside class="etr-banner" data-banner="alpha">"#),
        "{receipt}"
    );
    assert!(receipt.contains("phone: &lt;script&gt;"), "{receipt}");
    assert!(!receipt.contains("<script>"), "{receipt}");

    // Operators page through the settings over GraphQL; clients may not.
    let list = "query($after: String) { advertisingBanners(placeId: \"content\", first: 3, after: $after) { nodes { id weight serviceIds amountFrom amountTo attributePatterns { attribute pattern } } endCursor hasNextPage } }";
    let first = env.graphql(Some(&operator), list, json!({})).await;
    let page = &first["data"]["advertisingBanners"];
    assert_eq!(page["hasNextPage"], true, "{first}");
    let names: Vec<&str> = page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);
    assert_eq!(page["nodes"][1]["amountFrom"], "100.00");
    assert_eq!(page["nodes"][1]["amountTo"], "1000.00");
    assert_eq!(
        page["nodes"][2]["attributePatterns"][0]["pattern"],
        "79\\d{9}"
    );
    let second = env
        .graphql(Some(&operator), list, json!({"after": page["endCursor"]}))
        .await;
    let page = &second["data"]["advertisingBanners"];
    assert_eq!(page["nodes"][0]["id"], "old", "{second}");
    assert_eq!(page["hasNextPage"], false);
    let places = env
        .graphql(
            Some(&operator),
            "{ advertisingPlaces { nodes { id interfaceType } } advertisingCampaigns(first: 1) { nodes { id activeTo } hasNextPage } }",
            json!({}),
        )
        .await;
    assert_eq!(
        places["data"]["advertisingPlaces"]["nodes"][1]["interfaceType"], "email_receipt",
        "{places}"
    );
    assert_eq!(places["data"]["advertisingCampaigns"]["hasNextPage"], true);
    let refused = env
        .graphql(
            Some(&client),
            "{ advertisingPlaces { nodes { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "FORBIDDEN");
    let refused = env.graphql(None, BANNER, json!({"place": "content"})).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    let refused = env
        .graphql(Some(&client), BANNER, json!({"place": "mail"}))
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        "PLACE_NOT_FOR_WEB_APPLICATION"
    );
    let refused = env
        .graphql(Some(&client), BANNER, json!({"place": "nowhere"}))
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "UNKNOWN_PLACE");
    let refused = env
        .graphql(
            Some(&client),
            BANNER,
            json!({"place": "content", "amount": "1.001"}),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // Changing a banner rebuilds the playlist (a new version, the cursor at 0); a campaign
    // switched off shows nothing.
    let (version_before,): (i64,) =
        sqlx::query_as("SELECT version FROM ad_playlists WHERE place_id = 'content'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let mut gamma = banner("gamma", "winter", 4, json!({}));
    gamma.as_object_mut().unwrap().remove("id");
    let (status, body) = send(
        &api,
        put.clone(),
        &format!("{BANNERS}/gamma"),
        Some(&operator),
        Some(gamma),
    )
    .await;
    assert_eq!((status, body["weight"].as_i64()), (200, Some(4)), "{body}");
    let (entries, version, position): (Vec<String>, i64, i64) = sqlx::query_as(
        "SELECT entries, version, position FROM ad_playlists WHERE place_id = 'content'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((version, position), (version_before + 1, 0));
    assert_eq!(counts(&entries)["gamma"], 4);
    let (status, _) = send(
        &api,
        put.clone(),
        &format!("{CAMPAIGNS}/winter"),
        Some(&operator),
        Some(json!({"name": "Winter", "active_from": rfc(now - time::Duration::days(1)), "active": false})),
    )
    .await;
    assert_eq!(status, 200);
    let ids = served(&env, &client, "content", &everything, 2).await;
    assert_eq!(ids, ["-", "-"]);
    let (status, body) = send(
        &api,
        get.clone(),
        &format!("{BANNERS}?place_id=content&limit=2"),
        Some(&operator),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(2), "{body}");
}
