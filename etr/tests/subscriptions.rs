//! Subscriptions that see the client's own writes and miss nothing, on the real broker and
//! Postgres: subscribing right after a command's response with its position (`minPosition`
//! to find what the command created, `fromPosition` to start from it) yields every status
//! 0…6 of a payment in order, 50 times over; a client that disconnects mid-payment and
//! resubscribes from its last message's position gets exactly what it missed, then live
//! changes; both websocket protocols (graphql-transport-ws and the older graphql-ws); a
//! socket whose token expires is closed with 4401 `token expired`; `clientChanged` gives one
//! socket every event of the client.

mod support;

use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;
use support::{next, send, subscribe, token, Api, Env, Socket};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use etr_query_api::auth::Role;

const CHANGES: &str = "subscription($w: UUID!, $min: PositionInput, $from: PositionInput) { \
    operationStatusChanged(walletId: $w, minPosition: $min, fromPosition: $from) { paymentId statusCode partition sequence } }";

fn position(body: &Value) -> Value {
    body["position"].clone()
}

/// Opens a wallet and tops it up; the wallet and the open command's position.
async fn open_wallet(api: &Api, client: &str, key: &str) -> (String, Value) {
    let (status, _, opened) = api
        .post(
            &format!("/v1/clients/{client}/wallets"),
            Some(&format!("{key}-open")),
            r#"{"currency":"RUB"}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{opened}");
    let wallet = opened["wallets"][0]["wallet_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (wallet, position(&opened))
}

async fn top_up(api: &Api, client: &str, wallet: &str, key: &str) -> Value {
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
            Some(&format!("{key}-top-up")),
            r#"{"amount":"1000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn pay(api: &Api, client: &str, wallet: &str, key: &str) -> Value {
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/payments"),
            Some(&format!("{key}-pay")),
            r#"{"amount":"10.00","currency":"RUB","service_id":"mobile"}"#,
        )
        .await
        .unwrap();
    assert!(status == 200 || status == 202, "{body}");
    body
}

/// The next `n` status changes of a graphql-transport-ws subscription: (code, (partition,
/// sequence)).
async fn changes(ws: &mut Socket, n: usize) -> Vec<(i64, (i64, i64))> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = next(ws).await;
        assert_eq!(m["type"], "next", "{m}");
        let c = &m["payload"]["data"]["operationStatusChanged"];
        assert!(!c.is_null(), "{m}");
        out.push((
            c["statusCode"].as_i64().unwrap(),
            (
                c["partition"].as_i64().unwrap(),
                c["sequence"].as_i64().unwrap(),
            ),
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_from_a_commands_position_sees_every_status_and_resumes_without_gaps() {
    let env = Env::new("subscriptions").await;
    let platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let mine = token(&client, Role::Client);

    // 50 times: subscribe right after opening the wallet, with the open's position; top up
    // and pay at once; subscribe again right after the payment's response: on both, every
    // status 0…6 arrives, in log order.
    for round in 0..50 {
        let key = format!("r{round}");
        let (wallet, opened_at) = open_wallet(&api, &client, &key).await;
        let mut ws = subscribe(
            &env,
            Some(&mine),
            CHANGES,
            json!({"w": wallet, "min": opened_at, "from": opened_at}),
        )
        .await;
        let topped = top_up(&api, &client, &wallet, &key).await;
        let paid = pay(&api, &client, &wallet, &key).await;
        // And right after the payment's response, from the top-up's position.
        let mut after = subscribe(
            &env,
            Some(&mine),
            CHANGES,
            json!({"w": wallet, "min": position(&paid), "from": position(&topped)}),
        )
        .await;
        for ws in [&mut ws, &mut after] {
            let got = changes(ws, 7).await;
            let codes: Vec<i64> = got.iter().map(|(c, _)| *c).collect();
            assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6], "round {round}: {got:?}");
            assert!(
                got.windows(2).all(|w| w[0].1 < w[1].1),
                "round {round}: {got:?}"
            );
        }
        drop(ws);
        drop(after);
    }

    // A wallet the read model has not applied yet is not reported missing: with a position
    // beyond the log the answer is POSITION_NOT_REACHED.
    let (wallet, opened_at) = open_wallet(&api, &client, "far").await;
    let far = json!({"partition": opened_at["partition"], "sequence": 1_000_000_000});
    let mut ws = subscribe(&env, Some(&mine), CHANGES, json!({"w": wallet, "min": far})).await;
    let m = next(&mut ws).await;
    assert_eq!(
        m["payload"]["errors"][0]["extensions"]["code"], "POSITION_NOT_REACHED",
        "{m}"
    );

    // Disconnect after two changes of a payment, resubscribe from the last one: exactly the
    // five missed, then a live one of the next payment.
    let top = top_up(&api, &client, &wallet, "resume").await;
    let mut ws = subscribe(
        &env,
        Some(&mine),
        CHANGES,
        json!({"w": wallet, "min": position(&top), "from": position(&top)}),
    )
    .await;
    pay(&api, &client, &wallet, "resume-1").await;
    let first = changes(&mut ws, 2).await;
    drop(ws);
    let last = first[1].1;
    let mut ws = subscribe(
        &env,
        Some(&mine),
        CHANGES,
        json!({"w": wallet, "from": {"partition": last.0, "sequence": last.1}}),
    )
    .await;
    let rest = changes(&mut ws, 5).await;
    let codes: Vec<i64> = first.iter().chain(rest.iter()).map(|(c, _)| *c).collect();
    assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6], "{first:?} {rest:?}");
    assert!(rest.iter().all(|(_, p)| *p > last));
    pay(&api, &client, &wallet, "resume-2").await;
    let live = changes(&mut ws, 7).await;
    assert_eq!(
        live.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5, 6]
    );
    assert!(live[0].1 > rest[4].1, "no duplicate across the switch");

    // The older graphql-ws protocol: the same resumption.
    let mut request = format!("ws://{}/graphql/ws", env.query_addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-ws".parse().unwrap());
    let (mut old, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    send(
        &mut old,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {mine}")}}),
    )
    .await;
    let mut codes = Vec::new();
    send(
        &mut old,
        json!({"id": "1", "type": "start", "payload": {"query": CHANGES,
            "variables": {"w": wallet, "from": {"partition": last.0, "sequence": last.1}}}}),
    )
    .await;
    while codes.len() < 12 {
        let m = tokio::time::timeout(Duration::from_secs(20), old.next())
            .await
            .expect("a message within 20 s")
            .expect("open")
            .unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(&t).unwrap();
        match v["type"].as_str() {
            Some("data") => codes.push(
                v["payload"]["data"]["operationStatusChanged"]["statusCode"]
                    .as_i64()
                    .unwrap_or(-1),
            ),
            Some("connection_ack") | Some("ka") => {}
            other => panic!("unexpected {other:?}: {v}"),
        }
    }
    assert_eq!(codes, vec![2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6]);

    // One socket for all of the client's changes: from a position, every event after it in
    // log order — the history, then live — exactly those the timeline holds.
    let (other_wallet, opened_at) = open_wallet(&api, &client, "all").await;
    let everything = "subscription($c: UUID!, $min: PositionInput, $from: PositionInput) { \
        clientChanged(clientId: $c, minPosition: $min, fromPosition: $from) { aggregateType aggregateId eventType partition sequence } }";
    let mut ws = subscribe(
        &env,
        Some(&mine),
        everything,
        json!({"c": client, "min": opened_at, "from": opened_at}),
    )
    .await;
    top_up(&api, &client, &other_wallet, "all").await;
    pay(&api, &client, &other_wallet, "all").await;
    let mut seen: Vec<(String, i64)> = Vec::new();
    while !seen.iter().any(|(t, _)| t == "PaymentSucceeded") {
        let m = next(&mut ws).await;
        let c = &m["payload"]["data"]["clientChanged"];
        assert!(!c.is_null(), "{m}");
        seen.push((
            c["eventType"].as_str().unwrap().to_owned(),
            c["sequence"].as_i64().unwrap(),
        ));
    }
    assert!(seen.windows(2).all(|w| w[0].1 < w[1].1), "{seen:?}");
    assert_eq!(seen[0].0, "WalletToppedUp", "{seen:?}");
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let held: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM rm_timeline WHERE client_id = $1::uuid AND partition = $2 AND sequence > $3 AND sequence <= $4 ORDER BY sequence",
    )
    .bind(&client)
    .bind(opened_at["partition"].as_i64().unwrap() as i32)
    .bind(opened_at["sequence"].as_i64().unwrap())
    .bind(seen.last().unwrap().1)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        held,
        seen.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>()
    );
    pool.close().await;
    // Another client may not listen.
    let theirs = token(&Uuid::new_v4().to_string(), Role::Client);
    let mut stranger = subscribe(&env, Some(&theirs), everything, json!({"c": client})).await;
    let refused = next(&mut stranger).await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{refused}"
    );

    // A token that expires: the server closes the socket with 4401 `token expired`.
    let expiring = etr_query_api::auth::Keys::from_secret(support::JWT_SECRET.as_bytes())
        .issue(
            &client,
            Role::Client,
            time::OffsetDateTime::now_utc().unix_timestamp() + 3,
        )
        .unwrap();
    let mut ws = subscribe(&env, Some(&expiring), CHANGES, json!({"w": wallet})).await;
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed within 15 s")
    .expect("with a close frame");
    assert_eq!(u16::from(closed.code), 4401);
    assert_eq!(closed.reason.as_str(), "token expired");

    drop(platform);
    etr_infra::pg::drop_database(&env.database_url)
        .await
        .unwrap();
}
