//! Test support: runs the real `etr` binary against the real broker and a fresh database.

#![allow(dead_code)]

pub mod browser;
pub mod lending;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The token secret the test platforms run with.
pub const JWT_SECRET: &str = "etr-test-secret";

/// A bearer token for the query API.
pub fn token(sub: &str, role: etr_query_api::auth::Role) -> String {
    etr_query_api::auth::Keys::from_secret(JWT_SECRET.as_bytes())
        .issue(sub, role, 4_000_000_000)
        .expect("token")
}

pub struct Env {
    pub database_url: String,
    pub topic: String,
    pub api_addr: String,
    pub query_addr: String,
    pub registry_addr: String,
    pub partitions: u32,
}

/// A port for a server the test starts later, free now. It is taken below the kernel's
/// ephemeral range (32768–60999): a port from `bind(0)` comes from that range, where every
/// outgoing connection — the broker clients of the tests running meanwhile — may take it
/// before the server binds it ("Address already in use").
pub fn free_port() -> u16 {
    loop {
        let port = 20_000 + u16::try_from(uuid::Uuid::new_v4().as_u128() % 12_000).unwrap_or(0);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Env {
    pub async fn new(name: &str) -> Env {
        let (pool, database_url) = etr_infra::pg::fresh_database(&format!("etr_test_{name}"))
            .await
            .expect("Postgres must be running (scripts/test starts it)");
        pool.close().await;
        Env {
            database_url,
            topic: format!("etr.events.test-{name}-{}", uuid::Uuid::new_v4().simple()),
            api_addr: format!("127.0.0.1:{}", free_port()),
            query_addr: format!("127.0.0.1:{}", free_port()),
            registry_addr: format!("127.0.0.1:{}", free_port()),
            partitions: 4,
        }
    }

    pub fn bootstrap(&self) -> String {
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
    }

    pub fn registry_url(&self) -> String {
        format!("http://{}", self.registry_addr)
    }

    pub fn api(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_etr"));
        c.args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("ETR_TOPIC", &self.topic)
            .env("ETR_PARTITIONS", self.partitions.to_string())
            .env("ETR_COMMAND_API_ADDR", &self.api_addr)
            .env("ETR_QUERY_API_ADDR", &self.query_addr)
            .env("ETR_REGISTRY_ADDR", &self.registry_addr)
            .env("SCHEMA_REGISTRY_URL", self.registry_url())
            .env("KAFKA_BOOTSTRAP_SERVERS", self.bootstrap())
            .env("ETR_JWT_SECRET", JWT_SECRET)
            .env("RUST_LOG", "warn");
        c
    }

    /// Starts `etr <args>` and waits until the command API answers.
    pub async fn start(&self, args: &[&str]) -> Running {
        self.start_with(self.command(args)).await
    }

    /// Starts a prepared `etr` command (see [`Env::command`]) and waits until the command
    /// API answers.
    pub async fn start_with(&self, command: Command) -> Running {
        self.start_logging_to(command, Stdio::inherit()).await
    }

    /// As [`Env::start_with`], the process's log (its standard error) written to `log`.
    pub async fn start_logging_to(&self, mut command: Command, log: impl Into<Stdio>) -> Running {
        let args: Vec<String> = command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etr");
        let running = Running { child };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/health", self.api())).send().await {
                if r.status().is_success() {
                    return running;
                }
            }
            assert!(Instant::now() < deadline, "etr {args:?} did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a GraphQL query against the query API; returns the whole response body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request =
            reqwest::Client::new().post(format!("http://{}/graphql", self.query_addr));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        request
            .json(&serde_json::json!({"query": query, "variables": variables}))
            .send()
            .await
            .expect("query API answers")
            .json()
            .await
            .expect("JSON response")
    }

    pub fn codec(&self) -> etr_infra::avro::EventCodec {
        etr_infra::avro::EventCodec::new(&self.registry_url(), &self.topic).expect("codec")
    }
}

impl Drop for Env {
    /// Drops the test database unless the test failed (then it is kept for inspection).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.database_url);
            return;
        }
        let Some((server, name)) = self.database_url.rsplit_once('/') else {
            return;
        };
        let _ = Command::new("psql")
            .arg(format!("{server}/postgres"))
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A running `etr` process; killed with SIGKILL when dropped or on request.
pub struct Running {
    child: Child,
}

impl Running {
    pub fn from_child(child: Child) -> Running {
        Running { child }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(env: &Env) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: env.api(),
        }
    }

    /// Opens a RUB wallet for `client` (as that client); returns its id.
    pub async fn open_wallet(&self, client: &str, key: &str) -> String {
        let (status, _, body) = self
            .post(
                &format!("/v1/clients/{client}/wallets"),
                Some(key),
                r#"{"currency":"RUB"}"#,
            )
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
        body["wallets"][0]["wallet_id"].as_str().unwrap().to_owned()
    }

    /// POSTs JSON text with an Idempotency-Key as the client the path names (with that
    /// client's bearer token); returns status, replay flag and body.
    pub async fn post(
        &self,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> reqwest::Result<(u16, bool, Value)> {
        let client = path
            .strip_prefix("/v1/clients/")
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_default();
        let bearer = token(client, etr_query_api::auth::Role::Client);
        self.post_as(Some(&bearer), path, key, body).await
    }

    /// POSTs JSON text with `bearer` as the token (none when `None`).
    pub async fn post_as(
        &self,
        bearer: Option<&str>,
        path: &str,
        key: Option<&str>,
        body: &str,
    ) -> reqwest::Result<(u16, bool, Value)> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        if let Some(t) = bearer {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let replayed = resp.headers().get("idempotent-replayed").is_some();
        let body = resp.json().await.unwrap_or(Value::Null);
        Ok((status, replayed, body))
    }
}

/// Waits until every payment in the snapshots is final (6, 8 or 9): none left reserved once
/// the payment processor has run. Fails after `within`.
pub async fn wait_payments_final(pool: &sqlx::PgPool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM snapshots WHERE aggregate_type = 'payment' AND state->'Payment'->>'status' NOT IN ('Succeeded', 'Failed', 'Cancelled')",
        )
        .fetch_one(pool)
        .await
        .expect("count payments");
        if open == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{open} payments not final");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The accepted commands the platform issued itself (`platform:` ids), each with its event ids.
pub async fn platform_commands(pool: &sqlx::PgPool) -> Vec<(String, Vec<String>)> {
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT command_id, outcome FROM command_records WHERE command_id LIKE 'platform:%' AND accepted",
    )
    .fetch_all(pool)
    .await
    .expect("platform commands");
    rows.into_iter()
        .map(|(id, outcome)| (id, event_ids(&outcome)))
        .collect()
}

/// Event ids of an accepted command response.
pub fn event_ids(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["event_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A record of the log, raw and decoded.
pub struct Record {
    pub partition: i32,
    pub raw: Vec<u8>,
    pub envelope: etr_domain::Envelope,
    pub event: etr_domain::Event,
}

/// Reads every record of the test topic with a plain librdkafka consumer (no group).
pub async fn read_topic(env: &Env) -> Vec<Record> {
    use rdkafka::consumer::Consumer;
    use rdkafka::Message;
    let (consumer, highs) =
        etr_infra::kafka::reader_from_beginning(&env.bootstrap(), &env.topic, env.partitions)
            .expect("reader");
    let codec = env.codec();
    let mut remaining: i64 = highs.iter().sum();
    let mut out = Vec::new();
    while remaining > 0 {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
            .await
            .expect("log read timed out")
            .expect("record");
        remaining -= 1;
        let raw = msg.payload().expect("payload").to_vec();
        let (envelope, event) = codec
            .decode(&raw)
            .await
            .expect("decodes through the registry");
        out.push(Record {
            partition: msg.partition(),
            raw,
            envelope,
            event,
        });
    }
    consumer.unassign().ok();
    out
}

/// Waits until the outbox of the test database has no unpublished event.
pub async fn wait_published(env: &Env) {
    let pool = sqlx::PgPool::connect(&env.database_url).await.expect("db");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&pool)
                .await
                .expect("count");
        if pending == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{pending} events still unpublished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.close().await;
}

/// Waits until `projection` has applied `sequence` of `partition`.
pub async fn wait_projected(pool: &sqlx::PgPool, projection: &str, partition: i64, sequence: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT sequence FROM projection_checkpoints WHERE projection = $2 AND partition = $1",
        )
        .bind(partition as i32)
        .bind(projection)
        .fetch_optional(pool)
        .await
        .unwrap();
        if at.is_some_and(|s| s >= sequence) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "projection stuck at {at:?}, waiting for {sequence}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every read-model row as text, in a stable order, for comparisons.
pub async fn dump_read_models(pool: &sqlx::PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for sql in [
        "SELECT concat_ws('|', wallet_id, client_id, currency, status, balance, held, available, version, state::text, opened_at, updated_at) FROM rm_wallets ORDER BY wallet_id",
        "SELECT concat_ws('|', payment_id, wallet_id, amount, currency, service_id, status_code, status, provider_reference, failure_reason, version, state::text, created_at, updated_at) FROM rm_payments ORDER BY payment_id",
        "SELECT concat_ws('|', payment_id, partition, sequence, event_type, status_code, status, occurred_at) FROM rm_payment_history ORDER BY payment_id, partition, sequence",
        "SELECT concat_ws('|', client_id, events, first_event_at, last_event_at) FROM rm_clients ORDER BY client_id",
        "SELECT concat_ws('|', wallet_id, client_id, partition, sequence, occurred_at, kind, operation_id, amount, currency, balance_after) FROM rm_wallet_movements ORDER BY wallet_id, partition, sequence",
        "SELECT concat_ws('|', client_id, partition, sequence, event_id, event_type, aggregate_id, aggregate_version, actor_kind, actor_id, command_id, occurred_at, prev_hash, hash, event::text) FROM rm_timeline ORDER BY client_id, partition, sequence",
    ] {
        let part: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
        rows.extend(part);
    }
    rows
}

// ---- GraphQL subscriptions over a websocket (graphql-transport-ws) ----

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a graphql-transport-ws connection with `token` in the `connection_init` payload.
pub async fn subscribe(env: &Env, token: Option<&str>, query: &str, variables: Value) -> Socket {
    let mut request = format!("ws://{}/graphql/ws", env.query_addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let payload = match token {
        Some(t) => serde_json::json!({"Authorization": format!("Bearer {t}")}),
        None => serde_json::json!({}),
    };
    send(
        &mut ws,
        serde_json::json!({"type": "connection_init", "payload": payload}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "connection_ack");
    send(
        &mut ws,
        serde_json::json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}}),
    )
    .await;
    ws
}

pub async fn send(ws: &mut Socket, message: Value) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next protocol message (pings answered), within 20 s.
pub async fn next(ws: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a websocket message within 20 s")
            .expect("the socket is open")
            .unwrap();
        match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == "ping" {
                    send(ws, serde_json::json!({"type": "pong"})).await;
                    continue;
                }
                return v;
            }
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected websocket message {other:?}"),
        }
    }
}

/// A `POST /v1/me/registration` body of a client with `phone` (E.164) and a random passport
/// number, so repeated runs never collide.
pub fn registration(phone: &str) -> Value {
    let n = uuid::Uuid::new_v4().as_u128();
    serde_json::json!({
        "last_name": "Смирнова", "first_name": "Анна", "middle_name": "Игоревна",
        "birth_date": "1990-01-15", "phone": phone, "email": "anna@example.ru",
        "passport": {"number": format!("45{:02} {:06}", n % 100, (n >> 8) % 1_000_000),
            "issued_on": "2012-02-01", "department_code": "770-002", "issued_by": "ОВД района Арбат"},
        "registration_address": "г. Москва, ул. Арбат, д. 5",
        "employment": {"employer": "ООО Лютик", "position": "бухгалтер", "months_employed": 24},
        "monthly_income": "80000.00",
        "guarantors": []
    })
}
