//! The crash campaign's machinery (`tests/crash_cycles.rs`): a Postgres cluster and a Tansu
//! broker private to the campaign (it kills and restarts them; the shared ones at 5432 and
//! 9092 are never touched), the platform as one process or as role processes, the mixed load
//! of concurrent clients, and the checks run after every cycle. The scale-out test
//! (`tests/scale_out.rs`) runs the same machinery with two processes per role.

#![allow(dead_code)]

use crate::support::{event_ids, free_port, lending, token, Env};
use etr_domain::envelope::GENESIS_HASH;
use etr_domain::{loan, payment, wallet, Envelope, Event};
use etr_query_api::auth::Role as TokenRole;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

// ---- a seeded random source ---------------------------------------------------------------

/// SplitMix64: small, seedable, good enough to pick faults, moments and commands.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0 ..= n − 1 (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// lo ..= hi.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// An independent stream for a task.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

// ---- a private Postgres cluster -------------------------------------------------------------

/// A Postgres cluster of its own (initdb in the campaign's directory, a free port, trust
/// auth), so the campaign can crash and restart it. As root it runs as the `postgres` OS
/// user (initdb refuses root).
pub struct PrivatePostgres {
    dir: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
}

fn postgres_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("ETR_CHAOS_PG_BIN") {
        return bin.into();
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql: the Postgres server binaries (initdb, pg_ctl) are needed")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("no /usr/lib/postgresql/*/bin/initdb (or set ETR_CHAOS_PG_BIN)")
        .1
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    pub fn start(dir: &Path) -> PrivatePostgres {
        let dir = dir.join("postgres");
        std::fs::create_dir_all(&dir).expect("the cluster's directory");
        let pg = PrivatePostgres {
            data: dir.join("data"),
            dir,
            bin: postgres_bin(),
            port: free_port(),
            as_postgres: running_as_root(),
        };
        if pg.as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&pg.dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of {}", pg.dir.display());
        }
        let out = pg
            .tool("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .expect("initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start_server();
        pg
    }

    fn tool(&self, name: &str) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(name));
            c
        } else {
            Command::new(self.bin.join(name))
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Starts the server (after a crash: its recovery) and waits until it accepts
    /// connections.
    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=500 -c shared_buffers=64MB",
            self.port,
            self.dir.display()
        );
        let status = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "120", "-o", &options, "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(
            status.success(),
            "the private Postgres did not start:\n{}",
            tail(&self.log())
        );
    }

    /// Stops the server: `immediate` is a crash (no checkpoint; recovery at the next start),
    /// `fast` a clean shutdown that disconnects every session.
    pub fn stop_server(&self, mode: &str) {
        let status = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "120", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("pg_ctl stop");
        assert!(
            status.success(),
            "the private Postgres did not stop:\n{}",
            tail(&self.log())
        );
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---- a private broker -----------------------------------------------------------------------

/// A Tansu broker of its own (libsql storage in the campaign's directory, a free port), so
/// the campaign can `kill -9` and restart it.
pub struct PrivateBroker {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

fn tansu_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("ETR_CHAOS_TANSU") {
        return bin.into();
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let installed = Path::new(&home).join(".cargo/bin/tansu");
    if installed.exists() {
        installed
    } else {
        "tansu".into()
    }
}

impl PrivateBroker {
    pub async fn start(dir: &Path) -> PrivateBroker {
        let dir = dir.join("tansu");
        std::fs::create_dir_all(&dir).expect("the broker's directory");
        let mut broker = PrivateBroker {
            dir,
            port: free_port(),
            child: None,
        };
        broker.restart().await;
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker on its storage and waits until it answers.
    pub async fn restart(&mut self) {
        let url = format!("tcp://{}", self.bootstrap());
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .expect("broker log");
        let child = Command::new(tansu_bin())
            .current_dir(&self.dir)
            .args(["broker", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect(
                "tansu (cargo install tansu --version 0.6.0 --locked --features dynostore,libsql)",
            );
        self.child = Some(child);
        etr_infra::kafka::wait_until_ready(&self.bootstrap(), Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "the private broker did not answer: {e}\n{}",
                    tail(&self.dir.join("tansu.log"))
                )
            });
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- the platform's processes ---------------------------------------------------------------

/// How the platform runs: `etr up` in one process, or one process per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    Whole,
    Split,
}

/// A process of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `etr up --no-demo`: every role.
    Up,
    Registry,
    /// `etr command-api`: the command API, the payment processor, the loan conveyor.
    CommandApi,
    Relay,
    Projector,
    QueryApi,
}

impl Role {
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Role::Up => &["up", "--no-demo"],
            Role::Registry => &["registry"],
            Role::CommandApi => &["command-api"],
            Role::Relay => &["relay"],
            Role::Projector => &["projector"],
            Role::QueryApi => &["query-api"],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Up => "platform",
            Role::Registry => "registry",
            Role::CommandApi => "command-api",
            Role::Relay => "relay",
            Role::Projector => "projector",
            Role::QueryApi => "query-api",
        }
    }
}

impl Mode {
    pub fn roles(self) -> &'static [Role] {
        match self {
            Mode::Whole => &[Role::Up],
            Mode::Split => &[
                Role::Registry,
                Role::CommandApi,
                Role::Relay,
                Role::Projector,
                Role::QueryApi,
            ],
        }
    }
}

struct Proc {
    child: Child,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the campaign runs: its directory, the private Postgres and broker, the
/// platform's processes.
pub struct Site {
    procs: BTreeMap<Role, Proc>,
    /// The second process of a role, when the platform is scaled out
    /// ([`Site::start_seconds`]): its own listen addresses and log (`<role>-2.log`).
    seconds: BTreeMap<Role, Proc>,
    /// Where the second command API and query API listen.
    pub second_api_addr: String,
    pub second_query_addr: String,
    /// The `etr` binary the campaign runs: a copy taken at the start, so a build running
    /// meanwhile in the same checkout never swaps it mid-campaign.
    bin: PathBuf,
    pub mode: Option<Mode>,
    pub env: Env,
    pub broker: PrivateBroker,
    pub pg: PrivatePostgres,
    pub dir: PathBuf,
}

impl Site {
    pub async fn new(seed: u64) -> Site {
        let dir =
            std::env::temp_dir().join(format!("etr-chaos-{seed:016x}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("logs")).expect("the campaign's directory");
        let bin = dir.join("etr");
        std::fs::copy(env!("CARGO_BIN_EXE_etr"), &bin).expect("a copy of the etr binary");
        let pg = PrivatePostgres::start(&dir);
        let broker = PrivateBroker::start(&dir).await;
        let env = Env {
            database_url: pg.url("etr"),
            topic: "etr.events".into(),
            api_addr: format!("127.0.0.1:{}", free_port()),
            query_addr: format!("127.0.0.1:{}", free_port()),
            registry_addr: format!("127.0.0.1:{}", free_port()),
            partitions: 4,
        };
        etr_infra::pg::connect_and_migrate(&env.database_url, 2)
            .await
            .expect("the platform's database on the private Postgres")
            .close()
            .await;
        Site {
            procs: BTreeMap::new(),
            seconds: BTreeMap::new(),
            second_api_addr: format!("127.0.0.1:{}", free_port()),
            second_query_addr: format!("127.0.0.1:{}", free_port()),
            bin,
            mode: None,
            env,
            broker,
            pg,
            dir,
        }
    }

    fn command(&self, role: Role) -> Command {
        self.command_of(role, false)
    }

    /// The command of `role`'s first process, or of its second (`second`): the second listens
    /// on [`Site::second_api_addr`] / [`Site::second_query_addr`] and names itself after them
    /// (its partition writers and its relay lease), logging to `<role>-2.log`.
    fn command_of(&self, role: Role, second: bool) -> Command {
        let prepared = self.env.command(role.args());
        let mut c = Command::new(&self.bin);
        c.args(prepared.get_args());
        for (key, value) in prepared.get_envs() {
            if let Some(value) = value {
                c.env(key, value);
            }
        }
        let dir = self.dir.display();
        c.env("KAFKA_BOOTSTRAP_SERVERS", self.broker.bootstrap())
            .env("ETR_DOCUMENTS_DIR", format!("{dir}/documents"))
            .env("ETR_BKI_KEYS_DIR", format!("{dir}/bki/keys"))
            .env("ETR_BKI_FILES_DIR", format!("{dir}/bki/files"))
            .env("ETR_REPORTS_DIR", format!("{dir}/reports"))
            // Calls interrupted by a crash are retried after these.
            .env("ETR_CONVEYOR_ATTEMPT_TIMEOUT_MS", "2000")
            .env("ETR_PAYMENT_ATTEMPT_TIMEOUT_MS", "1500")
            .env("ETR_OTP_RESEND_AFTER_SECS", "0");
        let log_name = if second {
            c.env("ETR_COMMAND_API_ADDR", &self.second_api_addr)
                .env("ETR_QUERY_API_ADDR", &self.second_query_addr);
            format!("logs/{}-2.log", role.name())
        } else {
            format!("logs/{}.log", role.name())
        };
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(log_name))
            .expect("role log");
        c.stdout(Stdio::null()).stderr(log);
        c
    }

    fn spawn(&mut self, role: Role) {
        let child = self.command(role).spawn().expect("spawn etr");
        self.procs.insert(role, Proc { child });
    }

    async fn ready(&mut self, role: Role) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap();
        let url = match role {
            Role::Up | Role::CommandApi => Some(format!("{}/health", self.env.api())),
            Role::Registry => Some(format!("{}/subjects", self.env.registry_url())),
            Role::QueryApi => Some(format!("http://{}/", self.env.query_addr)),
            Role::Relay | Role::Projector => None,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some(status) = self
                .procs
                .get_mut(&role)
                .and_then(|p| p.child.try_wait().ok().flatten())
            {
                panic!(
                    "etr {} exited at start ({status}):\n{}",
                    role.name(),
                    tail(&self.dir.join(format!("logs/{}.log", role.name())))
                );
            }
            match &url {
                Some(url) => {
                    if let Ok(r) = http.get(url).send().await {
                        if r.status().is_success() {
                            return;
                        }
                    }
                }
                None => return,
            }
            assert!(
                Instant::now() < deadline,
                "etr {} did not come up within 90 s",
                role.name()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts `roles` (the registry first when it is among them) and waits until they serve.
    pub async fn start(&mut self, roles: &[Role]) {
        if roles.contains(&Role::Registry) {
            self.spawn(Role::Registry);
            self.ready(Role::Registry).await;
        }
        for role in roles.iter().filter(|r| **r != Role::Registry) {
            self.spawn(*role);
        }
        for role in roles.iter().filter(|r| **r != Role::Registry) {
            self.ready(*role).await;
        }
    }

    /// Runs the platform in `mode`, stopping (SIGKILL) the processes of another mode first.
    pub async fn run_in(&mut self, mode: Mode) {
        if self.mode == Some(mode) {
            return;
        }
        self.kill_all();
        self.start(mode.roles()).await;
        self.mode = Some(mode);
    }

    /// SIGKILL of one process.
    pub fn kill(&mut self, role: Role) {
        if let Some(mut p) = self.procs.remove(&role) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// Starts a second process of each of `roles` beside the first (scale-out) and waits
    /// until the ones that serve HTTP answer.
    pub async fn start_seconds(&mut self, roles: &[Role]) {
        for role in roles {
            let child = self.command_of(*role, true).spawn().expect("spawn etr");
            self.seconds.insert(*role, Proc { child });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        for role in roles {
            let url = match role {
                Role::CommandApi => format!("http://{}/health", self.second_api_addr),
                Role::QueryApi => format!("http://{}/", self.second_query_addr),
                _ => continue,
            };
            let deadline = Instant::now() + Duration::from_secs(90);
            while !http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                assert!(
                    Instant::now() < deadline,
                    "the second etr {} did not come up within 90 s",
                    role.name()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// SIGKILL of the second process of `role`.
    pub fn kill_second(&mut self, role: Role) {
        if let Some(mut p) = self.seconds.remove(&role) {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }

    /// SIGKILL of every process of the platform.
    pub fn kill_all(&mut self) {
        let roles: Vec<Role> = self.procs.keys().copied().collect();
        for role in roles {
            self.kill(role);
        }
        let roles: Vec<Role> = self.seconds.keys().copied().collect();
        for role in roles {
            self.kill_second(role);
        }
    }

    /// The processes that stopped by themselves, with their exit status and last log lines.
    pub fn exited(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let procs = self.procs.iter_mut().map(|(r, p)| (r.name().to_owned(), p));
        let seconds = self
            .seconds
            .iter_mut()
            .map(|(r, p)| (format!("{}-2", r.name()), p));
        for (name, p) in procs.chain(seconds) {
            if let Ok(Some(status)) = p.child.try_wait() {
                out.push(format!(
                    "etr {name} stopped by itself ({status}):\n{}",
                    tail(&self.dir.join(format!("logs/{name}.log")))
                ));
            }
        }
        out
    }

    /// A small pool on the platform's database (connections checked before use, so it
    /// survives a Postgres restart).
    pub fn pool(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy(&self.env.database_url)
            .expect("pool")
    }
}

impl Drop for Site {
    /// Stops everything; the directory (logs, data) is kept when the campaign failed.
    fn drop(&mut self) {
        self.kill_all();
        self.broker.kill();
        if std::thread::panicking() {
            eprintln!(
                "crash campaign: keeping {} (logs/, postgres/, tansu/) for inspection; the private Postgres and broker are stopped",
                self.dir.display()
            );
        } else {
            let dir = self.dir.clone();
            // The cluster stops (PrivatePostgres's drop) before the directory can go; remove
            // what can be removed now and the rest after it.
            let _ = self.pg.stop_server_quietly();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl PrivatePostgres {
    fn stop_server_quietly(&self) -> std::io::Result<std::process::ExitStatus> {
        self.tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    }
}

// ---- the load -------------------------------------------------------------------------------

/// One command as a client sends it; resent with the same key until it is answered.
#[derive(Debug, Clone)]
pub struct Pending {
    pub kind: &'static str,
    pub path: String,
    pub key: String,
    pub body: String,
    pub bearer: String,
    /// The command id the platform gives it: `<client>/<key>`.
    pub command_id: String,
    pub attempts: u32,
    pub first_sent: Option<Instant>,
}

impl Pending {
    fn new(kind: &'static str, client: &str, path: String, key: String, body: Value) -> Pending {
        Pending {
            kind,
            path,
            command_id: format!("{client}/{key}"),
            key,
            body: body.to_string(),
            bearer: token(client, TokenRole::Client),
            attempts: 0,
            first_sent: None,
        }
    }
}

/// How a command was answered.
enum Answer {
    Accepted(Value),
    /// Refused, with the code; `true` when the answer replays the first one recorded.
    Refused(String, bool),
    /// No answer, or one that says nothing was decided (503, 500, a timeout): sent again
    /// with the same key.
    Lost(String),
    Unexpected(u16, Value),
}

fn code_of(v: &Value) -> String {
    v["code"]
        .as_str()
        .or_else(|| v["error"]["code"].as_str())
        .unwrap_or("?")
        .to_owned()
}

async fn send(http: &reqwest::Client, base: &str, p: &Pending) -> Answer {
    let request = http
        .post(format!("{base}{}", p.path))
        .header("content-type", "application/json")
        .header("Idempotency-Key", &p.key)
        .bearer_auth(&p.bearer)
        .body(p.body.clone());
    let response = match request.send().await {
        Ok(r) => r,
        Err(e) => return Answer::Lost(format!("no answer: {e}")),
    };
    let status = response.status().as_u16();
    let replayed = response.headers().get("idempotent-replayed").is_some();
    let body: Value = match response.json().await {
        Ok(v) => v,
        Err(e) => return Answer::Lost(format!("{status}, body lost: {e}")),
    };
    match status {
        200..=202 if p.kind == "sign" && body["status"] != "accepted" => {
            Answer::Refused(format!("sign {}", body["status"]), replayed)
        }
        200..=202 => Answer::Accepted(body),
        422 => Answer::Refused(code_of(&body), replayed),
        408 | 429 | 500 | 502 | 503 | 504 => Answer::Lost(format!("{status} {}", code_of(&body))),
        other => Answer::Unexpected(other, body),
    }
}

/// What the clients did, summed.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests sent, resends included.
    pub requests: u64,
    /// Distinct commands (keys) sent.
    pub commands: u64,
    pub accepted: u64,
    pub refused: u64,
    /// Requests sent again with the same key after no answer.
    pub resent: u64,
    /// Requests that got no answer, or one that decided nothing (a timeout, 5xx, 429).
    pub lost: u64,
    pub by_kind: BTreeMap<&'static str, (u64, u64, u64)>,
    pub refusals: BTreeMap<String, u64>,
    /// Refusals decided anew for a resend whose first attempt got no answer (not a replay of
    /// a first outcome the platform recorded). `otp_used` among them is a violation: the
    /// code is spent by the command, and the same command sent again verifies again.
    pub refused_on_resend: BTreeMap<String, u64>,
    pub reads_ok: u64,
    pub reads_failed: u64,
    pub loans_disbursed: u64,
    pub loans_abandoned: BTreeMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        self.commands += other.commands;
        self.accepted += other.accepted;
        self.refused += other.refused;
        self.resent += other.resent;
        self.lost += other.lost;
        for (k, (s, a, r)) in &other.by_kind {
            let e = self.by_kind.entry(k).or_default();
            e.0 += s;
            e.1 += a;
            e.2 += r;
        }
        for (k, n) in &other.refusals {
            *self.refusals.entry(k.clone()).or_default() += n;
        }
        for (k, n) in &other.refused_on_resend {
            *self.refused_on_resend.entry(k.clone()).or_default() += n;
        }
        self.reads_ok += other.reads_ok;
        self.reads_failed += other.reads_failed;
        self.loans_disbursed += other.loans_disbursed;
        for (k, n) in &other.loans_abandoned {
            *self.loans_abandoned.entry(k.clone()).or_default() += n;
        }
    }
}

/// What one client task reports.
#[derive(Default)]
pub struct TaskReport {
    pub tally: Tally,
    /// Accepted commands: command id → the event ids of its answer.
    pub accepted: Vec<(String, Vec<String>)>,
    pub violations: Vec<String>,
}

impl TaskReport {
    /// Adds what a client task accepted to `accepted` (command id → event ids) and its
    /// violations to `checks`; a command answered with other events than before is one.
    pub fn merge_into(self, accepted: &mut BTreeMap<String, Vec<String>>, checks: &mut Checks) {
        for (command, ids) in self.accepted {
            if let Some(first) = accepted.get(&command) {
                if *first != ids {
                    checks.violations.push(format!(
                        "{command} answered with other events on a resend: {first:?} then {ids:?}"
                    ));
                }
            }
            accepted.insert(command, ids);
        }
        checks.violations.extend(self.violations);
    }
}

/// What the clients share: when to stop, who can be paid, where the platform is.
pub struct Shared {
    pub stop: AtomicBool,
    pub wallets: Vec<(String, String)>,
    pub api: String,
    pub graphql: String,
    /// A second command API and GraphQL address (a scaled-out platform): a request whose
    /// answer was lost goes to the other process next, as behind a load balancer.
    pub second: Option<(String, String)>,
    pub db: sqlx::PgPool,
}

impl Shared {
    /// The command API for a request's `attempt`: the processes in turn (always the first
    /// when there is no second).
    pub fn api_for(&self, attempt: u32) -> &str {
        match &self.second {
            Some((api, _)) if attempt % 2 == 1 => api,
            _ => &self.api,
        }
    }

    /// The GraphQL endpoint for a read numbered `n`: the processes in turn.
    pub fn graphql_for(&self, n: u64) -> &str {
        match &self.second {
            Some((_, graphql)) if n % 2 == 1 => graphql,
            _ => &self.graphql,
        }
    }
}

/// Sends `p` until it is answered (or, once the load stops, until 120 s after it was first
/// sent); records the outcome. Returns the accepted body.
async fn settle(
    http: &reqwest::Client,
    shared: &Shared,
    rng: &mut Rng,
    p: &mut Pending,
    report: &mut TaskReport,
) -> Option<Result<Value, String>> {
    loop {
        p.attempts += 1;
        report.tally.requests += 1;
        if p.attempts == 1 {
            p.first_sent = Some(Instant::now());
            report.tally.commands += 1;
            report.tally.by_kind.entry(p.kind).or_default().0 += 1;
        } else {
            report.tally.resent += 1;
        }
        // Spread over the processes by key; a resend goes to the other one.
        let spread = p.key.bytes().map(u32::from).sum::<u32>();
        match send(http, shared.api_for(p.attempts + spread), p).await {
            Answer::Accepted(v) => {
                report.tally.accepted += 1;
                report.tally.by_kind.entry(p.kind).or_default().1 += 1;
                report.accepted.push((p.command_id.clone(), event_ids(&v)));
                return Some(Ok(v));
            }
            Answer::Refused(code, replayed) => {
                report.tally.refused += 1;
                report.tally.by_kind.entry(p.kind).or_default().2 += 1;
                *report
                    .tally
                    .refusals
                    .entry(format!("{} {code}", p.kind))
                    .or_default() += 1;
                if p.attempts > 1 && !replayed {
                    if code == "otp_used" {
                        report.violations.push(format!(
                            "{} {} (key {}): resent after no answer and refused otp_used — the code it spent was not recognised as its own",
                            p.kind, p.path, p.key
                        ));
                    }
                    *report
                        .tally
                        .refused_on_resend
                        .entry(format!("{} {code}", p.kind))
                        .or_default() += 1;
                }
                return Some(Err(code));
            }
            Answer::Unexpected(status, body) => {
                report.violations.push(format!(
                    "{} {} (key {}): unexpected {status} {body}",
                    p.kind, p.path, p.key
                ));
                return None;
            }
            Answer::Lost(why) => {
                report.tally.lost += 1;
                let waited = p.first_sent.map_or(Duration::ZERO, |t| t.elapsed());
                if shared.stop.load(Ordering::Relaxed) && waited > Duration::from_secs(120) {
                    report.violations.push(format!(
                        "{} {} (key {}) still unanswered after {} s and {} attempts: {why}",
                        p.kind,
                        p.path,
                        p.key,
                        waited.as_secs(),
                        p.attempts
                    ));
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(rng.between(100, 400))).await;
            }
        }
    }
}

/// A wallet client: top-ups, payments, transfers to other clients, balance reads.
#[derive(Debug, Clone)]
pub struct WalletClient {
    pub id: String,
    pub wallet: String,
    pub n: u64,
    pub pending: Option<Pending>,
}

impl WalletClient {
    fn next(&mut self, rng: &mut Rng, wallets: &[(String, String)]) -> Pending {
        self.n += 1;
        let n = self.n;
        let base = format!("/v1/clients/{}/wallets/{}", self.id, self.wallet);
        let roll = rng.below(100);
        if roll < 40 {
            let amount = format!("{}.00", rng.between(10, 40));
            Pending::new(
                "top-up",
                &self.id,
                format!("{base}/top-ups"),
                format!("t{n}"),
                json!({"amount": amount, "currency": "RUB", "source": "card"}),
            )
        } else if roll < 70 {
            let amount = format!("{}.{:02}", rng.between(1, 9), rng.below(100));
            Pending::new(
                "payment",
                &self.id,
                format!("{base}/payments"),
                format!("p{n}"),
                json!({"amount": amount, "currency": "RUB", "service_id": "mobile"}),
            )
        } else {
            let (to, to_wallet) = loop {
                let c = rng.pick(wallets);
                if c.0 != self.id {
                    break c.clone();
                }
            };
            let amount = format!("{}.{:02}", rng.between(1, 6), rng.below(100));
            Pending::new(
                "transfer",
                &self.id,
                format!("{base}/client-transfers"),
                format!("x{n}"),
                json!({"to_client_id": to, "to_wallet_id": to_wallet, "amount": amount, "currency": "RUB"}),
            )
        }
    }
}

async fn read_balance(http: &reqwest::Client, shared: &Shared, c: &WalletClient, n: u64) -> bool {
    let response = http
        .post(shared.graphql_for(n))
        .bearer_auth(token(&c.id, TokenRole::Client))
        .json(&json!({"query": "query($w: UUID!) { wallet(id: $w) { balance } }", "variables": {"w": c.wallet}}))
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => r
            .json::<Value>()
            .await
            .is_ok_and(|v| v["data"]["wallet"]["balance"].is_string()),
        _ => false,
    }
}

pub async fn run_wallet_client(
    mut c: WalletClient,
    shared: Arc<Shared>,
    mut rng: Rng,
) -> (Client, TaskReport) {
    let http = http_client();
    let mut report = TaskReport::default();
    loop {
        if c.pending.is_none() {
            if shared.stop.load(Ordering::Relaxed) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(rng.between(60, 250))).await;
            if rng.percent(8) {
                let n = report.tally.reads_ok + report.tally.reads_failed;
                if read_balance(&http, &shared, &c, n).await {
                    report.tally.reads_ok += 1;
                } else {
                    report.tally.reads_failed += 1;
                }
                continue;
            }
            c.pending = Some(c.next(&mut rng, &shared.wallets));
        }
        let mut p = c.pending.take().expect("a pending command");
        settle(&http, &shared, &mut rng, &mut p, &mut report).await;
    }
    (Client::Wallet(c), report)
}

/// Where a borrower is in the conveyor's REST flow (the steps of `support::lending::Flow`),
/// then servicing from a wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Register,
    Apply,
    AwaitApproval,
    ChooseOffer,
    AwaitContract,
    RequestCode,
    Sign,
    BindCard,
    AwaitDisbursal,
    OpenWallet,
    TopUp,
    BindBankCard,
    Repay,
    SaveTemplate,
    CreateAutopayment,
    /// The autopayment runs (every 5 s) until this time or the end of the load.
    Autopaying(Instant),
    CancelAutopayment,
    Done,
    Abandoned(String),
}

/// A borrower: registers, applies for a payday loan, signs it, binds a card, waits for the
/// disbursement, then repays twice from a wallet and once from a bank card bound to it (one
/// card in ten is one the bank declines), then pays 1.00 from the wallet by an autopayment
/// every 5 seconds for 6–20 seconds and cancels it (at the latest when the load stops).
#[derive(Debug, Clone)]
pub struct LoanClient {
    pub id: String,
    pub phone: String,
    pub passport: String,
    pub card_token: String,
    pub provider: &'static str,
    pub step: Step,
    pub application: Option<String>,
    pub offer: Option<String>,
    pub loan: Option<String>,
    pub wallet: Option<String>,
    /// The number of the bank card the last repayment comes from, and its id once bound.
    pub bank_card_number: &'static str,
    pub bank_card: Option<String>,
    pub template: Option<String>,
    pub autopayment: Option<String>,
    /// How long the autopayment runs before the client cancels it.
    pub autopay_for: Duration,
    pub round: u32,
    pub repaid: u32,
    pub pending: Option<Pending>,
}

impl LoanClient {
    pub fn new(rng: &mut Rng) -> LoanClient {
        let id = Uuid::new_v4().to_string();
        // Some cards make the payout provider fail its first attempts (retried by the
        // conveyor); the provider's books must still show one payout.
        let flaky = if rng.percent(30) { "flaky-2-" } else { "" };
        LoanClient {
            card_token: format!("tok-chaos-{flaky}{}", &id[..8]),
            provider: ["sbc", "tinkoff", "elecsnet"][rng.below(3) as usize],
            id,
            phone: lending::unique_phone(),
            passport: lending::unique_passport(),
            step: Step::Register,
            application: None,
            offer: None,
            loan: None,
            wallet: None,
            bank_card_number: if rng.percent(10) {
                "4000 0000 0000 0002"
            } else {
                "4111 1111 1111 1111"
            },
            bank_card: None,
            template: None,
            autopayment: None,
            autopay_for: Duration::from_secs(rng.between(6, 20)),
            round: 1,
            repaid: 0,
            pending: None,
        }
    }

    pub fn active(&self) -> bool {
        !matches!(self.step, Step::Done | Step::Abandoned(_))
    }

    fn app_path(&self, tail: &str) -> String {
        let app = self.application.as_deref().unwrap_or_default();
        if tail.is_empty() {
            format!("/v1/me/applications/{app}")
        } else {
            format!("/v1/me/applications/{app}/{tail}")
        }
    }

    fn command(&self, rng: &mut Rng) -> Option<Pending> {
        let id = self.id.as_str();
        Some(match self.step {
            Step::Register => Pending::new(
                "register",
                id,
                "/v1/me/registration".into(),
                "register".into(),
                lending::person("Хаосов", &self.phone, &self.passport),
            ),
            Step::Apply => Pending::new(
                "apply",
                id,
                "/v1/me/applications".into(),
                "apply".into(),
                json!({"amount": "5000.00", "currency": "RUB", "term": 30, "product_id": "payday-30",
                       "cart": [{"name": "Смартфон", "quantity": 1, "price": "5000.00"}]}),
            ),
            Step::ChooseOffer => Pending::new(
                "offer",
                id,
                self.app_path("offer"),
                "offer".into(),
                json!({"offer_id": self.offer}),
            ),
            Step::RequestCode => Pending::new(
                "otp",
                id,
                self.app_path("otp"),
                format!("otp-{}", self.round),
                json!({}),
            ),
            Step::BindCard => Pending::new(
                "card",
                id,
                self.app_path("card"),
                "card".into(),
                json!({"provider": self.provider, "card_token": self.card_token, "masked_pan": "220220******1234"}),
            ),
            Step::OpenWallet => Pending::new(
                "open-wallet",
                id,
                format!("/v1/clients/{id}/wallets"),
                "wallet".into(),
                json!({"currency": "RUB"}),
            ),
            Step::TopUp => Pending::new(
                "top-up",
                id,
                format!(
                    "/v1/clients/{id}/wallets/{}/top-ups",
                    self.wallet.as_deref().unwrap_or_default()
                ),
                "loan-top-up".into(),
                json!({"amount": "3000.00", "currency": "RUB", "source": "card"}),
            ),
            Step::BindBankCard => Pending::new(
                "bank-card",
                id,
                format!("/v1/clients/{id}/cards"),
                "bank-card".into(),
                json!({"number": self.bank_card_number, "expiry": "12/30", "cvc": "123"}),
            ),
            Step::Repay if self.repaid >= 2 => Pending::new(
                "card-repayment",
                id,
                format!(
                    "/v1/clients/{id}/loans/{}/repayments",
                    self.loan.as_deref().unwrap_or_default()
                ),
                "repay-card".into(),
                json!({"card_id": self.bank_card, "amount": format!("{}.00", rng.between(200, 700))}),
            ),
            Step::SaveTemplate => Pending::new(
                "template",
                id,
                format!("/v1/clients/{id}/templates"),
                "template".into(),
                json!({"name": "Связь", "wallet_id": self.wallet, "service_id": "mobile",
                       "amount": "1.00", "currency": "RUB"}),
            ),
            Step::CreateAutopayment => Pending::new(
                "autopayment",
                id,
                format!("/v1/clients/{id}/autopayments"),
                "autopayment".into(),
                json!({"template_id": self.template, "every": {"unit": "second", "count": 5},
                       "max_failures": 3}),
            ),
            Step::CancelAutopayment => Pending::new(
                "autopayment-cancel",
                id,
                format!(
                    "/v1/clients/{id}/autopayments/{}/cancel",
                    self.autopayment.as_deref().unwrap_or_default()
                ),
                "autopayment-cancel".into(),
                json!({}),
            ),
            Step::Repay => Pending::new(
                "repayment",
                id,
                format!(
                    "/v1/clients/{id}/loans/{}/repayments",
                    self.loan.as_deref().unwrap_or_default()
                ),
                format!("repay-{}", self.repaid + 1),
                json!({"wallet_id": self.wallet, "amount": format!("{}.00", rng.between(200, 700))}),
            ),
            _ => return None,
        })
    }

    /// Moves on after `kind` was answered.
    fn answered(&mut self, kind: &str, answer: Result<Value, String>, tally: &mut Tally) {
        let abandon = |why: String, tally: &mut Tally| {
            *tally.loans_abandoned.entry(why.clone()).or_default() += 1;
            Step::Abandoned(why)
        };
        self.step = match (kind, answer) {
            ("register", Ok(_)) => Step::Apply,
            ("apply", Ok(v)) => {
                self.application = v["application_id"].as_str().map(str::to_owned);
                Step::AwaitApproval
            }
            ("offer", Ok(_)) => Step::AwaitContract,
            ("otp", Ok(_)) => Step::Sign,
            ("sign", Ok(_)) => Step::BindCard,
            ("sign", Err(code)) if self.round < 3 => {
                self.round += 1;
                let _ = code;
                Step::RequestCode
            }
            ("card", Ok(_)) => Step::AwaitDisbursal,
            ("open-wallet", Ok(v)) => {
                self.wallet = v["wallets"][0]["wallet_id"].as_str().map(str::to_owned);
                Step::TopUp
            }
            ("top-up", Ok(_)) => Step::BindBankCard,
            ("bank-card", Ok(v)) => {
                self.bank_card = v["card_id"].as_str().map(str::to_owned);
                Step::Repay
            }
            ("repayment", r) => {
                self.repaid += 1;
                if r.is_err() {
                    Step::Done
                } else {
                    Step::Repay
                }
            }
            ("card-repayment", _) => {
                self.repaid += 1;
                Step::SaveTemplate
            }
            ("template", Ok(v)) => {
                self.template = v["template_id"].as_str().map(str::to_owned);
                Step::CreateAutopayment
            }
            ("autopayment", Ok(v)) => {
                self.autopayment = v["autopayment_id"].as_str().map(str::to_owned);
                Step::Autopaying(Instant::now() + self.autopay_for)
            }
            ("autopayment-cancel", _) => Step::Done,
            (kind, Err(code)) => abandon(format!("{kind} refused: {code}"), tally),
            (kind, Ok(_)) => abandon(format!("{kind}: unexpected step"), tally),
        };
    }

    /// Looks at the application once; moves on when it is where the step waits for it.
    async fn look(&mut self, http: &reqwest::Client, shared: &Shared, tally: &mut Tally) {
        let response = http
            .get(format!(
                "{}{}",
                shared.api_for(self.round),
                self.app_path("")
            ))
            .bearer_auth(token(&self.id, TokenRole::Client))
            .send()
            .await;
        let Ok(response) = response else { return };
        if !response.status().is_success() {
            return;
        }
        let Ok(view) = response.json::<Value>().await else {
            return;
        };
        let status = view["status"].as_str().unwrap_or_default().to_owned();
        if matches!(
            status.as_str(),
            "declined" | "manual_review" | "failed" | "cancelled" | "expired"
        ) {
            *tally
                .loans_abandoned
                .entry(format!("application {status}"))
                .or_default() += 1;
            self.step = Step::Abandoned(status);
            return;
        }
        match (&self.step, status.as_str()) {
            (Step::AwaitApproval, "approved") => {
                self.offer = view["offers"][0]["offer_id"].as_str().map(str::to_owned);
                self.step = Step::ChooseOffer;
            }
            (Step::AwaitContract, "contract_generated") => self.step = Step::RequestCode,
            (Step::AwaitDisbursal, "disbursed") => {
                self.loan = view["loan_id"].as_str().map(str::to_owned);
                tally.loans_disbursed += 1;
                self.step = Step::OpenWallet;
            }
            _ => {}
        }
    }

    async fn last_code(&self, shared: &Shared) -> Option<String> {
        let text: Option<String> = sqlx::query_scalar(
            "SELECT text FROM simulator_sms WHERE phone = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(&self.phone)
        .fetch_optional(&shared.db)
        .await
        .ok()
        .flatten();
        text.and_then(|t| {
            t.split(|c: char| !c.is_ascii_digit())
                .rfind(|w| !w.is_empty())
                .map(str::to_owned)
        })
    }
}

pub async fn run_loan_client(
    mut c: LoanClient,
    shared: Arc<Shared>,
    mut rng: Rng,
) -> (Client, TaskReport) {
    let http = http_client();
    let mut report = TaskReport::default();
    loop {
        if c.pending.is_none() {
            let stopping = shared.stop.load(Ordering::Relaxed);
            if let Step::Autopaying(until) = c.step {
                // The autopayment is cancelled before the client leaves: nothing runs on
                // once the load has stopped.
                if stopping || Instant::now() >= until {
                    c.step = Step::CancelAutopayment;
                }
            }
            if (stopping && c.step != Step::CancelAutopayment) || !c.active() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(rng.between(80, 200))).await;
            match c.step {
                Step::Autopaying(_) => continue,
                Step::AwaitApproval | Step::AwaitContract | Step::AwaitDisbursal => {
                    c.look(&http, &shared, &mut report.tally).await;
                    continue;
                }
                Step::Sign => {
                    let Some(code) = c.last_code(&shared).await else {
                        continue;
                    };
                    c.pending = Some(Pending::new(
                        "sign",
                        &c.id,
                        c.app_path("sign"),
                        format!("sign-{}", c.round),
                        json!({"code": code}),
                    ));
                }
                _ => c.pending = c.command(&mut rng),
            }
        }
        let Some(mut p) = c.pending.take() else {
            continue;
        };
        if let Some(answer) = settle(&http, &shared, &mut rng, &mut p, &mut report).await {
            c.answered(p.kind, answer, &mut report.tally);
        }
    }
    (Client::Loan(c), report)
}

#[allow(clippy::large_enum_variant)] // one per client task, moved once when it ends
pub enum Client {
    Wallet(WalletClient),
    Loan(LoanClient),
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

/// Opens the wallet clients' wallets (before the first cycle, no fault running).
pub async fn open_wallets(site: &Site, n: usize, report: &mut TaskReport) -> Vec<WalletClient> {
    let http = http_client();
    let mut out = Vec::new();
    for _ in 0..n {
        let id = Uuid::new_v4().to_string();
        let mut p = Pending::new(
            "open-wallet",
            &id,
            format!("/v1/clients/{id}/wallets"),
            "w".into(),
            json!({"currency": "RUB"}),
        );
        p.attempts = 1;
        report.tally.requests += 1;
        report.tally.commands += 1;
        let v = match send(&http, &site.env.api(), &p).await {
            Answer::Accepted(v) => v,
            _ => panic!("opening a wallet failed before any fault"),
        };
        report.tally.accepted += 1;
        report.accepted.push((p.command_id.clone(), event_ids(&v)));
        out.push(WalletClient {
            wallet: v["wallets"][0]["wallet_id"]
                .as_str()
                .expect("wallet id")
                .to_owned(),
            id,
            n: 0,
            pending: None,
        });
    }
    out
}

// ---- the log --------------------------------------------------------------------------------

/// A record of the log, decoded.
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub raw: Vec<u8>,
    pub envelope: Envelope,
    pub event: Event,
}

/// Reads the whole topic from the private broker every time; a record already decoded at
/// the same position with the same bytes is not decoded again.
pub struct LogReader {
    cache: HashMap<(i32, i64), Arc<Record>>,
}

impl LogReader {
    pub fn new() -> LogReader {
        LogReader {
            cache: HashMap::new(),
        }
    }

    /// Every record of the topic in (partition, offset) order; a record whose bytes changed
    /// since the last read is a violation.
    pub async fn read(&mut self, site: &Site, violations: &mut Vec<String>) -> Vec<Arc<Record>> {
        use rdkafka::consumer::Consumer;
        use rdkafka::Message;
        let env = &site.env;
        let (consumer, highs) = etr_infra::kafka::reader_from_beginning(
            &site.broker.bootstrap(),
            &env.topic,
            env.partitions,
        )
        .expect("a reader of the private broker");
        let codec = env.codec();
        let mut left: BTreeMap<i32, i64> = highs
            .iter()
            .enumerate()
            .filter(|(_, h)| **h > 0)
            .map(|(p, h)| (p as i32, *h))
            .collect();
        let mut out = Vec::new();
        while !left.is_empty() {
            let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
                .await
                .expect("reading the log timed out (60 s)")
                .expect("a record");
            let (partition, offset) = (msg.partition(), msg.offset());
            let high = highs.get(partition as usize).copied().unwrap_or(0);
            if offset + 1 >= high {
                left.remove(&partition);
            }
            if offset < high {
                let raw = msg.payload().unwrap_or_default().to_vec();
                let record = match self.cache.get(&(partition, offset)) {
                    Some(r) if r.raw == raw => r.clone(),
                    cached => {
                        if cached.is_some() {
                            violations.push(format!(
                                "the record at partition {partition} offset {offset} changed"
                            ));
                        }
                        let (envelope, event) = codec
                            .decode(&raw)
                            .await
                            .expect("a record that decodes through the registry");
                        let r = Arc::new(Record {
                            partition,
                            offset,
                            raw,
                            envelope,
                            event,
                        });
                        self.cache.insert((partition, offset), r.clone());
                        r
                    }
                };
                out.push(record);
            }
        }
        consumer.unassign().ok();
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }
}

// ---- quiescence -----------------------------------------------------------------------------

/// The projections whose checkpoints must reach the partition heads before the checks: the
/// read models and the process managers' trackers.
pub fn consumers() -> Vec<&'static str> {
    use etr_projections::runtime::Projection;
    vec![
        etr_projections::wallets::Wallets { announce: false }.name(),
        etr_projections::lending::Lending.name(),
        etr_projections::timeline::Timeline.name(),
        etr_projections::credit_history::CreditHistory.name(),
        etr_sagas::payment_execution::PROCESS,
        etr_domain::conveyor::PROCESS,
        etr_domain::autopayment::PROCESS,
        etr_domain::merchant_order::PROCESS,
        etr_domain::card_repayment::PROCESS,
        etr_sagas::alerts::PROJECTION,
    ]
}

/// A process instance that still owes work: the payment processor's not finished, the
/// conveyor's performing, recording or expiring (waiting for the client or an operator is
/// not work the platform owes), a card repayment not done.
pub fn owes_work(process: &str, state: &Value) -> Option<String> {
    if process == etr_sagas::payment_execution::PROCESS
        || process == etr_domain::card_repayment::PROCESS
    {
        if state == "Finished" || state == "Done" {
            return None;
        }
        let name = state
            .as_object()
            .and_then(|m| m.keys().next().cloned())
            .unwrap_or_else(|| state.to_string());
        return Some(name);
    }
    if process == etr_domain::conveyor::PROCESS {
        let stage = state["stage"]["stage"]
            .as_str()
            .or_else(|| state["stage"].as_str())
            .unwrap_or("?");
        return matches!(stage, "perform" | "record" | "expiring" | "parked" | "?")
            .then(|| stage.to_owned());
    }
    None
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Progress {
    heads: BTreeMap<i32, i64>,
    unpublished: i64,
    behind: Vec<String>,
    open_payments: i64,
    working: Vec<String>,
    pending_alerts: i64,
}

impl Progress {
    fn quiet(&self) -> bool {
        self.unpublished == 0
            && self.behind.is_empty()
            && self.open_payments == 0
            && self.working.is_empty()
            && self.pending_alerts == 0
    }

    /// What is still outstanding, in words.
    fn outstanding(&self) -> String {
        let mut why = Vec::new();
        if self.unpublished > 0 {
            why.push(format!("{} events unpublished", self.unpublished));
        }
        why.extend(self.behind.iter().take(4).cloned());
        if self.open_payments > 0 {
            why.push(format!("{} payments not final", self.open_payments));
        }
        why.extend(self.working.iter().take(4).cloned());
        if self.pending_alerts > 0 {
            why.push(format!("{} alert deliveries pending", self.pending_alerts));
        }
        why.join("; ")
    }
}

async fn progress(pool: &sqlx::PgPool) -> Result<Progress, sqlx::Error> {
    let heads: Vec<(i32, i64)> =
        sqlx::query_as("SELECT partition, sequence FROM partition_heads ORDER BY partition")
            .fetch_all(pool)
            .await?;
    let heads: BTreeMap<i32, i64> = heads.into_iter().collect();
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(pool)
            .await?;
    let checkpoints: Vec<(String, i32, i64)> =
        sqlx::query_as("SELECT projection, partition, sequence FROM projection_checkpoints")
            .fetch_all(pool)
            .await?;
    let at: BTreeMap<(String, i32), i64> = checkpoints
        .into_iter()
        .map(|(name, p, s)| ((name, p), s))
        .collect();
    let mut behind = Vec::new();
    for name in consumers() {
        for (p, head) in &heads {
            let seen = at.get(&(name.to_owned(), *p)).copied().unwrap_or(0);
            if seen < *head {
                behind.push(format!("{name} at {seen} of {head} in partition {p}"));
            }
        }
    }
    let open_payments: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM snapshots WHERE aggregate_type = 'payment' AND state->'Payment'->>'status' NOT IN ('Succeeded', 'Failed', 'Cancelled')",
    )
    .fetch_one(pool)
    .await?;
    let instances: Vec<(String, Uuid, Value, Option<time::OffsetDateTime>)> =
        sqlx::query_as("SELECT process, instance_id, state, due_at FROM process_instances")
            .fetch_all(pool)
            .await?;
    let working = instances
        .iter()
        .filter_map(|(process, id, state, due)| {
            owes_work(process, state).map(|what| {
                let timer = due.map_or("no timer: stranded".to_owned(), |d| format!("due {d}"));
                format!("{process} {id} {what} ({timer})")
            })
        })
        .collect();
    let pending_alerts: i64 =
        sqlx::query_scalar("SELECT count(*) FROM alert_deliveries WHERE status = 'pending'")
            .fetch_one(pool)
            .await?;
    Ok(Progress {
        heads,
        unpublished,
        behind,
        open_payments,
        working,
        pending_alerts,
    })
}

/// Waits until the platform is quiet: every event published, every consumer at the heads,
/// every payment final, no process instance owing work, no alert delivery pending — twice in
/// a row with nothing changed. Returns what was still outstanding 5 s in (when it took that
/// long); after `within`, what is outstanding is the violation.
pub async fn wait_quiet(pool: &sqlx::PgPool, within: Duration) -> Result<Option<String>, String> {
    let started = Instant::now();
    let deadline = started + within;
    let mut last: Option<Progress> = None;
    let mut slow = None;
    loop {
        match progress(pool).await {
            Ok(now) => {
                if now.quiet() && last.as_ref() == Some(&now) {
                    return Ok(slow);
                }
                if slow.is_none() && started.elapsed() > Duration::from_secs(5) && !now.quiet() {
                    slow = Some(now.outstanding());
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "not quiet after {} s: {}",
                        within.as_secs(),
                        now.outstanding()
                    ));
                }
                last = Some(now);
            }
            Err(e) => {
                if Instant::now() > deadline {
                    return Err(format!("the database did not answer: {e}"));
                }
                last = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

// ---- the checks -----------------------------------------------------------------------------

/// The checks of one cycle, each counted; their findings are violations.
#[derive(Default)]
pub struct Checks {
    pub run: BTreeMap<&'static str, u64>,
    pub violations: Vec<String>,
}

impl Checks {
    pub fn check(&mut self, name: &'static str, ok: bool, finding: impl FnOnce() -> String) {
        *self.run.entry(name).or_default() += 1;
        if !ok {
            self.violations.push(format!("{name}: {}", finding()));
        }
    }
}

/// The log by position, one record each (a re-published copy must carry the same event).
pub fn by_position(
    records: &[Arc<Record>],
    checks: &mut Checks,
) -> BTreeMap<(i32, u64), Arc<Record>> {
    let mut out: BTreeMap<(i32, u64), Arc<Record>> = BTreeMap::new();
    let mut clashes = Vec::new();
    for r in records {
        if r.envelope.partition as i32 != r.partition {
            clashes.push(format!(
                "event {} names partition {} but sits in {}",
                r.envelope.event_id, r.envelope.partition, r.partition
            ));
        }
        match out.get(&(r.partition, r.envelope.sequence)) {
            Some(first) if first.envelope.event_id != r.envelope.event_id => clashes.push(format!(
                "two events at partition {} sequence {}: {} and {}",
                r.partition, r.envelope.sequence, first.envelope.event_id, r.envelope.event_id
            )),
            Some(_) => {}
            None => {
                out.insert((r.partition, r.envelope.sequence), r.clone());
            }
        }
    }
    checks.check("one event per position", clashes.is_empty(), || {
        clashes.join("; ")
    });
    out
}

/// The log holds exactly the accepted commands' events (clients' and the platform's own),
/// dense per partition, and the partition heads agree.
pub async fn check_log(
    pool: &sqlx::PgPool,
    log: &BTreeMap<(i32, u64), Arc<Record>>,
    accepted: &BTreeMap<String, Vec<String>>,
    checks: &mut Checks,
) {
    let platform = crate::support::platform_commands(pool).await;
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for (command, events) in accepted.iter().chain(platform.iter().map(|(c, e)| (c, e))) {
        for e in events {
            expected.insert(e.clone(), command.clone());
        }
    }
    let in_log: BTreeMap<String, String> = log
        .values()
        .map(|r| {
            (
                r.envelope.event_id.to_string(),
                r.envelope.command_id.clone(),
            )
        })
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|(e, _)| !in_log.contains_key(*e))
        .map(|(e, c)| format!("{e} of {c}"))
        .collect();
    let extra: Vec<String> = in_log
        .iter()
        .filter(|(e, _)| !expected.contains_key(*e))
        .map(|(e, c)| format!("{e} of {c}"))
        .collect();
    checks.check(
        "the log holds every accepted command's events",
        missing.is_empty(),
        || {
            format!(
                "{} missing: {}",
                missing.len(),
                missing[..missing.len().min(10)].join(", ")
            )
        },
    );
    checks.check(
        "the log holds nothing but accepted commands' events",
        extra.is_empty(),
        || {
            format!(
                "{} extra: {}",
                extra.len(),
                extra[..extra.len().min(10)].join(", ")
            )
        },
    );
    let heads: Vec<(i32, i64)> = sqlx::query_as("SELECT partition, sequence FROM partition_heads")
        .fetch_all(pool)
        .await
        .expect("partition heads");
    let mut gaps = Vec::new();
    for (p, head) in heads {
        let seqs: Vec<u64> = log.range((p, 0)..(p + 1, 0)).map(|(k, _)| k.1).collect();
        let dense = seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1);
        if !dense || seqs.len() as i64 != head {
            gaps.push(format!(
                "partition {p}: {} events up to {:?}, head {head}",
                seqs.len(),
                seqs.last()
            ));
        }
    }
    checks.check(
        "every partition dense (1..head, no gap)",
        gaps.is_empty(),
        || gaps.join("; "),
    );
}

/// Every client's events chain from the genesis hash, each hash recomputed (once per event:
/// `verified` keeps the events whose hash was recomputed in an earlier cycle; the links are
/// followed every time).
pub fn check_chains(
    log: &BTreeMap<(i32, u64), Arc<Record>>,
    verified: &mut BTreeSet<Uuid>,
    checks: &mut Checks,
) {
    let mut heads: BTreeMap<Uuid, String> = BTreeMap::new();
    let mut broken = Vec::new();
    for r in log.values() {
        let prev = heads
            .entry(r.envelope.client_id.0)
            .or_insert_with(|| GENESIS_HASH.to_owned());
        if &r.envelope.prev_hash != prev {
            broken.push(format!(
                "{} of client {}: prev_hash does not link",
                r.envelope.event_id, r.envelope.client_id
            ));
        }
        if !verified.contains(&r.envelope.event_id) {
            match etr_command_api::handler::chain_hash(&r.envelope, &r.event) {
                Ok(h) if h == r.envelope.hash => {
                    verified.insert(r.envelope.event_id);
                }
                _ => broken.push(format!("{}: hash does not recompute", r.envelope.event_id)),
            }
        }
        *prev = r.envelope.hash.clone();
    }
    checks.check(
        "every client's hash chain verifies",
        broken.is_empty(),
        || broken[..broken.len().min(10)].join("; "),
    );
}

/// A payout in a card provider's books: provider, key, amount, attempts, reference.
type PayoutRow = (String, Uuid, Option<Decimal>, i32, Option<String>);

fn sum<'a>(amounts: impl Iterator<Item = &'a Decimal>) -> Decimal {
    amounts.copied().sum()
}

/// Money and the process managers' steps, from the log, the read models and the simulators'
/// books.
///
/// The equation (every amount RUB, summed over the whole log):
///
/// ```text
/// Σ wallet balances = Σ WalletToppedUp + Σ TransferCredited + Σ TransferRefunded
///                   + Σ PaymentRefunded + Σ TransferReceived
///                   − Σ HoldCaptured − Σ TransferDebited − Σ TransferSent
///                   − Σ LoanRepaymentDebited
/// in transit        = Σ TransferDebited − Σ TransferCredited − Σ TransferRefunded  (= 0 when quiet)
/// so, quiet:  Σ balances = top-ups − captured payments − loan repayments from wallets
///                        + refunds of cancelled payments (+ own-wallet transfers, which net 0)
/// ```
///
/// and on the loans' side: Σ LoanRepaymentDebited = Σ RepaymentAllocated from a wallet
/// (pair by repayment id); each `CardRepaymentRequested` ends once, allocated at the amount
/// the bank simulator captured for it or declined with nothing captured; and the card
/// providers' books pay out Σ LoanIssued principal — one settled payout per issued loan, of
/// its principal, none for anything else; every verification hold released. A loan
/// disbursement goes to the client's card, not a wallet.
pub async fn check_money_and_steps(
    pool: &sqlx::PgPool,
    log: &BTreeMap<(i32, u64), Arc<Record>>,
    checks: &mut Checks,
) {
    let mut topped = Vec::new();
    let mut captured = Vec::new();
    let mut credited = Vec::new();
    let mut refunded = Vec::new();
    let mut debited = Vec::new();
    let mut repaid_from_wallets = Vec::new();
    let mut refunds = Vec::new();
    let mut own = (Decimal::ZERO, Decimal::ZERO);
    // Per payment: how it ended on the wallet (captured, released, debited as a transfer),
    // how many final statuses; per transfer: credited and refunded.
    let mut settled: BTreeMap<Uuid, Vec<&'static str>> = BTreeMap::new();
    let mut finals: BTreeMap<Uuid, u32> = BTreeMap::new();
    let mut initiated: BTreeSet<Uuid> = BTreeSet::new();
    let mut transfer_ends: BTreeMap<Uuid, Vec<&'static str>> = BTreeMap::new();
    let mut debits_by_repayment: BTreeMap<Uuid, Vec<Decimal>> = BTreeMap::new();
    let mut allocations_by_repayment: BTreeMap<Uuid, Vec<Decimal>> = BTreeMap::new();
    let mut issued: BTreeMap<Uuid, Vec<Decimal>> = BTreeMap::new();
    // Per card repayment: the amounts requested, and how it ended (allocated with its amount,
    // or declined).
    let mut card_requested: BTreeMap<Uuid, Vec<Decimal>> = BTreeMap::new();
    let mut card_ends: BTreeMap<Uuid, Vec<(&'static str, Decimal)>> = BTreeMap::new();
    for r in log.values() {
        match &r.event {
            Event::Wallet(e) => match e {
                wallet::Event::WalletToppedUp { amount, .. } => topped.push(amount.amount),
                wallet::Event::HoldCaptured { payment_id, amount } => {
                    captured.push(amount.amount);
                    settled.entry(*payment_id).or_default().push("captured");
                }
                wallet::Event::HoldReleased { payment_id, .. } => {
                    settled.entry(*payment_id).or_default().push("released");
                }
                wallet::Event::TransferDebited {
                    payment_id, amount, ..
                } => {
                    debited.push(amount.amount);
                    settled.entry(*payment_id).or_default().push("debited");
                    transfer_ends.entry(*payment_id).or_default();
                }
                wallet::Event::TransferCredited {
                    transfer_id,
                    amount,
                    ..
                } => {
                    credited.push(amount.amount);
                    transfer_ends
                        .entry(*transfer_id)
                        .or_default()
                        .push("credited");
                }
                wallet::Event::TransferRefunded {
                    payment_id, amount, ..
                } => {
                    refunded.push(amount.amount);
                    transfer_ends
                        .entry(*payment_id)
                        .or_default()
                        .push("refunded");
                }
                wallet::Event::PaymentRefunded { amount, .. } => refunds.push(amount.amount),
                wallet::Event::TransferSent { amount, .. } => own.0 += amount.amount,
                wallet::Event::TransferReceived { amount, .. } => own.1 += amount.amount,
                wallet::Event::LoanRepaymentDebited {
                    repayment_id,
                    amount,
                    ..
                } => {
                    repaid_from_wallets.push(amount.amount);
                    debits_by_repayment
                        .entry(*repayment_id)
                        .or_default()
                        .push(amount.amount);
                }
                _ => {}
            },
            Event::Payment(e) => match e {
                payment::Event::PaymentInitiated { .. } => {
                    initiated.insert(r.envelope.aggregate_id);
                }
                payment::Event::PaymentSucceeded
                | payment::Event::PaymentFailed { .. }
                | payment::Event::PaymentCancelled { .. } => {
                    *finals.entry(r.envelope.aggregate_id).or_default() += 1;
                }
                _ => {}
            },
            Event::Loan(e) => match e {
                loan::Event::LoanIssued {
                    application_id,
                    principal,
                    ..
                } => issued
                    .entry(*application_id)
                    .or_default()
                    .push(principal.amount),
                loan::Event::RepaymentAllocated {
                    repayment_id,
                    wallet_id: Some(_),
                    amount,
                    ..
                } => allocations_by_repayment
                    .entry(*repayment_id)
                    .or_default()
                    .push(amount.amount),
                loan::Event::RepaymentAllocated {
                    repayment_id,
                    card_id: Some(_),
                    amount,
                    ..
                } => card_ends
                    .entry(*repayment_id)
                    .or_default()
                    .push(("allocated", amount.amount)),
                loan::Event::CardRepaymentRequested {
                    repayment_id,
                    amount,
                    ..
                } => card_requested
                    .entry(*repayment_id)
                    .or_default()
                    .push(amount.amount),
                loan::Event::CardRepaymentDeclined { repayment_id, .. } => card_ends
                    .entry(*repayment_id)
                    .or_default()
                    .push(("declined", Decimal::ZERO)),
                _ => {}
            },
            _ => {}
        }
    }
    let (topped, captured, credited, refunded, debited) = (
        sum(topped.iter()),
        sum(captured.iter()),
        sum(credited.iter()),
        sum(refunded.iter()),
        sum(debited.iter()),
    );
    let repaid = sum(repaid_from_wallets.iter());
    let refunds = sum(refunds.iter());
    let (balances, held, negative): (Decimal, Decimal, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(balance), 0), COALESCE(sum(held), 0), count(*) FILTER (WHERE balance < 0 OR available < 0) FROM rm_wallets",
    )
    .fetch_one(pool)
    .await
    .expect("wallet sums");
    let folded =
        topped + credited + refunded + refunds + own.1 - captured - debited - own.0 - repaid;
    checks.check(
        "Σ wallet balances = the log's wallet movements",
        balances == folded,
        || format!("rm_wallets holds {balances}, the log folds to {folded}"),
    );
    let in_transit = debited - credited - refunded;
    checks.check("no transfer left in transit", in_transit.is_zero(), || {
        format!("{in_transit} debited and neither credited nor refunded")
    });
    let conserved = topped - captured - repaid + refunds + (own.1 - own.0);
    checks.check(
        "money is conserved: Σ balances = top-ups − captured − loan repayments + refunds",
        balances == conserved,
        || format!("balances {balances}, top-ups {topped} − captured {captured} − repaid {repaid} + refunds {refunds} = {conserved}"),
    );
    checks.check(
        "no hold left, no negative balance",
        held.is_zero() && negative == 0,
        || format!("held {held}, {negative} wallets negative"),
    );
    // Steps once: a payment's hold settled once, one final status, a transfer credited xor
    // refunded.
    let twice: Vec<String> = settled
        .iter()
        .filter(|(_, s)| s.len() != 1)
        .map(|(p, s)| format!("payment {p} settled {s:?}"))
        .chain(
            finals
                .iter()
                .filter(|(_, n)| **n != 1)
                .map(|(p, n)| format!("payment {p}: {n} final statuses")),
        )
        .chain(
            initiated
                .iter()
                .filter(|p| !finals.contains_key(p))
                .map(|p| format!("payment {p} never final")),
        )
        .chain(
            transfer_ends
                .iter()
                .filter(|(_, ends)| ends.len() != 1)
                .map(|(p, ends)| format!("transfer {p} ended {ends:?}")),
        )
        .collect();
    checks.check(
        "each payment settled once, each transfer credited xor refunded",
        twice.is_empty(),
        || twice[..twice.len().min(10)].join("; "),
    );
    let unpaired: Vec<String> = debits_by_repayment
        .keys()
        .chain(allocations_by_repayment.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|id| {
            let d = debits_by_repayment.get(id);
            let a = allocations_by_repayment.get(id);
            d.is_none_or(|d| d.len() != 1) || d != a
        })
        .map(|id| {
            format!(
                "repayment {id}: wallet {:?}, loan {:?}",
                debits_by_repayment.get(id),
                allocations_by_repayment.get(id)
            )
        })
        .collect();
    checks.check(
        "each loan repayment debited once from its wallet and allocated once to its loan",
        unpaired.is_empty(),
        || unpaired[..unpaired.len().min(10)].join("; "),
    );
    // Card repayments: each requested once and ended once — allocated at the amount the bank
    // captured, or declined with nothing captured; the bank captured nothing else for them.
    let ids: Vec<Uuid> = card_requested
        .keys()
        .chain(card_ends.keys())
        .copied()
        .collect();
    let bank_rows: Vec<(Uuid, String, Decimal)> = sqlx::query_as(
        "SELECT payment_id, status, amount FROM simulator_bank_operations WHERE payment_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await
    .expect("bank books");
    let bank_books: BTreeMap<Uuid, (String, Decimal)> = bank_rows
        .into_iter()
        .map(|(id, status, amount)| (id, (status, amount)))
        .collect();
    let card_wrong: Vec<String> = ids
        .iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter_map(|id| {
            let requested = card_requested.get(id).cloned().unwrap_or_default();
            let ends = card_ends.get(id).cloned().unwrap_or_default();
            let bank = bank_books.get(id);
            let captured = bank
                .filter(|(status, _)| status == "captured")
                .map(|(_, a)| *a);
            let fine = match (requested.as_slice(), ends.as_slice()) {
                ([asked], [("allocated", paid)]) => paid == asked && captured == Some(*asked),
                ([_], [("declined", _)]) => captured.is_none(),
                _ => false,
            };
            (!fine).then(|| {
                format!(
                    "card repayment {id}: requested {requested:?}, ended {ends:?}, bank {bank:?}"
                )
            })
        })
        .collect();
    checks.check(
        "each card repayment ended once: allocated at the amount the bank captured, or declined with nothing captured",
        card_wrong.is_empty(),
        || card_wrong[..card_wrong.len().min(10)].join("; "),
    );
    // The card providers' books: one payout per issued loan, of its principal.
    let payouts: Vec<PayoutRow> = sqlx::query_as(
        "SELECT provider, key, amount, attempts, reference FROM simulator_card_operations WHERE kind = 'payout'",
    )
    .fetch_all(pool)
    .await
    .expect("payout books");
    let mut paid: BTreeMap<Uuid, Vec<(String, Option<Decimal>)>> = BTreeMap::new();
    for (provider, key, amount, _, reference) in &payouts {
        if reference.is_some() {
            paid.entry(*key)
                .or_default()
                .push((provider.clone(), *amount));
        }
    }
    let mut wrong = Vec::new();
    for (app, principals) in &issued {
        let key = etr_domain::ids::derived_id(*app, "payout");
        let p = paid.remove(&key).unwrap_or_default();
        if principals.len() != 1 || p.len() != 1 || p[0].1 != Some(principals[0]) {
            wrong.push(format!(
                "application {app}: issued {principals:?}, paid out {p:?}"
            ));
        }
    }
    wrong.extend(
        paid.iter()
            .map(|(key, p)| format!("payout {key} paid {p:?} for no issued loan")),
    );
    checks.check(
        "the providers paid out each issued loan once, its principal, and nothing else",
        wrong.is_empty(),
        || wrong[..wrong.len().min(10)].join("; "),
    );
    let holds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM simulator_card_operations WHERE kind = 'hold' AND released_at IS NULL",
    )
    .fetch_one(pool)
    .await
    .expect("holds");
    checks.check("every card verification hold released", holds == 0, || {
        format!("{holds} holds not released")
    });
    let bank: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM simulator_bank_operations WHERE status = 'authorised'",
    )
    .fetch_one(pool)
    .await
    .expect("bank books");
    checks.check("no bank authorisation left open", bank == 0, || {
        format!("{bank} authorisations neither captured nor released")
    });
}

/// The autopayments (the borrowers run one each and cancel it before they leave): each run
/// recorded at most once, in increasing order, by its own payment (`run_payment_id`) with
/// that payment's outcome; no run's payment started after the autopayment's cancellation was
/// committed (the client's events and its payments share the client's partition, so log
/// order is commit order); and, quiet, every autopayment cancelled with its process idle.
pub async fn check_autopayments(
    pool: &sqlx::PgPool,
    log: &BTreeMap<(i32, u64), Arc<Record>>,
    checks: &mut Checks,
) {
    use etr_domain::autopayment::run_payment_id;
    use etr_domain::client::Event as C;
    // Run payments by id: (autopayment, run); the position of each payment's start and its
    // outcome; per autopayment its recorded runs and the position of its cancellation.
    let mut created: BTreeSet<Uuid> = BTreeSet::new();
    let mut recorded: BTreeMap<Uuid, Vec<(u32, Uuid, bool)>> = BTreeMap::new();
    let mut cancelled: BTreeMap<Uuid, Vec<(i32, u64)>> = BTreeMap::new();
    let mut started: BTreeMap<Uuid, (i32, u64)> = BTreeMap::new();
    let mut outcome: BTreeMap<Uuid, bool> = BTreeMap::new();
    for (position, r) in log {
        match &r.event {
            Event::Client(C::AutopaymentCreated { autopayment_id, .. }) => {
                created.insert(*autopayment_id);
            }
            Event::Client(C::AutopaymentRunRecorded {
                autopayment_id,
                run,
                payment_id,
                succeeded,
                ..
            }) => {
                recorded
                    .entry(*autopayment_id)
                    .or_default()
                    .push((*run, *payment_id, *succeeded))
            }
            Event::Client(C::AutopaymentCancelled { autopayment_id }) => {
                cancelled
                    .entry(*autopayment_id)
                    .or_default()
                    .push(*position);
            }
            Event::Payment(payment::Event::PaymentInitiated { .. }) => {
                started.insert(r.envelope.aggregate_id, *position);
            }
            Event::Payment(payment::Event::PaymentSucceeded) => {
                outcome.insert(r.envelope.aggregate_id, true);
            }
            Event::Payment(
                payment::Event::PaymentFailed { .. } | payment::Event::PaymentCancelled { .. },
            ) => {
                outcome.insert(r.envelope.aggregate_id, false);
            }
            _ => {}
        }
    }
    let mut wrong = Vec::new();
    let mut runs_started = 0;
    for autopayment in &created {
        let runs = recorded.get(autopayment).cloned().unwrap_or_default();
        if runs.windows(2).any(|w| w[0].0 >= w[1].0) {
            wrong.push(format!("autopayment {autopayment}: runs recorded {runs:?}"));
        }
        for (run, payment_id, succeeded) in &runs {
            let expected = run_payment_id(*autopayment, *run);
            let paid = outcome.get(payment_id).copied();
            // A run whose start was refused has no payment and failed.
            let agrees = *payment_id == expected
                && match (started.contains_key(payment_id), paid) {
                    (true, Some(ok)) => ok == *succeeded,
                    (false, None) => !*succeeded,
                    _ => false,
                };
            if !agrees {
                wrong.push(format!(
                    "autopayment {autopayment} run {run}: recorded payment {payment_id} succeeded={succeeded}, the log has started={}, outcome {paid:?}",
                    started.contains_key(payment_id)
                ));
            }
        }
        let cancels = cancelled.get(autopayment).cloned().unwrap_or_default();
        if cancels.len() != 1 {
            wrong.push(format!(
                "autopayment {autopayment}: cancelled {} times",
                cancels.len()
            ));
        }
        let last_run = runs.last().map_or(0, |r| r.0);
        for run in 0..=last_run.saturating_add(10) {
            let payment_id = run_payment_id(*autopayment, run);
            let Some(at) = started.get(&payment_id) else {
                continue;
            };
            runs_started += 1;
            // A run in flight when the autopayment was cancelled is recorded all the same.
            if !runs.iter().any(|r| r.0 == run) {
                wrong.push(format!(
                    "autopayment {autopayment} run {run}: its payment {payment_id} started at {at:?} and the run was never recorded"
                ));
            }
            if let Some(cancel) = cancels.first() {
                if cancel.0 == at.0 && cancel.1 < at.1 {
                    wrong.push(format!(
                        "autopayment {autopayment} run {run}: its payment {payment_id} started at {at:?}, after the cancellation at {cancel:?}"
                    ));
                }
            }
        }
    }
    let not_idle: Vec<(Uuid, Value)> = sqlx::query_as(
        "SELECT instance_id, state FROM process_instances WHERE process = $1 AND NOT (state ? 'Idle')",
    )
    .bind(etr_domain::autopayment::PROCESS)
    .fetch_all(pool)
    .await
    .expect("autopayment instances");
    wrong.extend(
        not_idle
            .iter()
            .map(|(id, state)| format!("autopayment {id}'s process is not idle: {state}")),
    );
    checks.check(
        "each autopayment run recorded once with its payment's outcome, every started run recorded, none started after the cancellation, every autopayment cancelled and idle",
        wrong.is_empty(),
        || format!("{} autopayments, {runs_started} run payments: {}", created.len(), wrong[..wrong.len().min(10)].join("; ")),
    );
}

/// No process instance stranded: every instance is finished, waiting for a person, or has a
/// timer (and none is overdue).
pub async fn check_instances(pool: &sqlx::PgPool, checks: &mut Checks) {
    let rows: Vec<(String, Uuid, Value, Option<time::OffsetDateTime>, bool)> = sqlx::query_as(
        "SELECT process, instance_id, state, due_at, COALESCE(due_at < clock_timestamp() - interval '10 seconds', false) FROM process_instances",
    )
    .fetch_all(pool)
    .await
    .expect("process instances");
    let stuck: Vec<String> = rows
        .iter()
        .filter_map(
            |(process, id, state, due, overdue)| match (owes_work(process, state), due) {
                (Some(what), None) => Some(format!("{process} {id} {what} with no timer")),
                (Some(what), Some(_)) => Some(format!("{process} {id} {what} still owes work")),
                (None, Some(d)) if *overdue => Some(format!("{process} {id} overdue since {d}")),
                _ => None,
            },
        )
        .collect();
    checks.check(
        "no payment or process instance stranded",
        stuck.is_empty(),
        || stuck[..stuck.len().min(10)].join("; "),
    );
}

/// The read models' tables: every table of every projection the platform runs.
pub fn read_model_tables() -> Vec<&'static str> {
    use etr_projections::runtime::Projection;
    let mut tables = Vec::new();
    tables.extend(etr_projections::wallets::Wallets { announce: false }.tables());
    tables.extend(etr_projections::lending::Lending.tables());
    tables.extend(etr_projections::timeline::Timeline.tables());
    tables.extend(etr_projections::credit_history::CreditHistory.tables());
    tables
}

/// A database the log is applied to, projection by projection, by the same code the
/// projectors run — but never killed: what a rebuild from the log gives.
pub struct Rebuild {
    pub pool: sqlx::PgPool,
    pub url: String,
    fed: BTreeMap<i32, u64>,
}

impl Rebuild {
    pub async fn new(site: &Site, name: &str) -> Rebuild {
        let url = site.pg.url(name);
        let pool = etr_infra::pg::connect_and_migrate(&url, 4)
            .await
            .expect("a rebuild database");
        Rebuild {
            pool,
            url,
            fed: BTreeMap::new(),
        }
    }

    /// Applies the log's events this rebuild has not applied yet.
    pub async fn feed(&mut self, log: &BTreeMap<(i32, u64), Arc<Record>>) {
        let events: Vec<(Envelope, Event)> = log
            .iter()
            .filter(|((p, s), _)| *s > self.fed.get(p).copied().unwrap_or(0))
            .map(|(_, r)| (r.envelope.clone(), r.event.clone()))
            .collect();
        // The projections touch only their own tables: applied side by side, each in its own
        // transactions, as the projectors run.
        for chunk in events.chunks(2_000) {
            use etr_projections::runtime::apply_batch;
            let pool = &self.pool;
            let (wallets, lending, timeline, credit) = tokio::join!(
                apply_batch(
                    pool,
                    &etr_projections::wallets::Wallets { announce: false },
                    chunk
                ),
                apply_batch(pool, &etr_projections::lending::Lending, chunk),
                apply_batch(pool, &etr_projections::timeline::Timeline, chunk),
                apply_batch(pool, &etr_projections::credit_history::CreditHistory, chunk),
            );
            wallets.expect("rebuild: wallets");
            lending.expect("rebuild: lending");
            timeline.expect("rebuild: timeline");
            credit.expect("rebuild: credit history");
        }
        for (p, s) in log.keys() {
            let fed = self.fed.entry(*p).or_default();
            *fed = (*fed).max(*s);
        }
    }
}

async fn table_digest(pool: &sqlx::PgPool, table: &str) -> (i64, String) {
    sqlx::query_as(&format!(
        "SELECT count(*), COALESCE(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {table} t"
    ))
    .fetch_one(pool)
    .await
    .unwrap_or_else(|e| panic!("digest of {table}: {e}"))
}

async fn table_rows(pool: &sqlx::PgPool, table: &str) -> BTreeSet<String> {
    sqlx::query_scalar::<_, String>(&format!("SELECT t::text FROM {table} t"))
        .fetch_all(pool)
        .await
        .unwrap_or_else(|e| panic!("rows of {table}: {e}"))
        .into_iter()
        .collect()
}

/// Every read-model table of the live platform equals the rebuild's, row for row.
pub async fn check_read_models(
    live: &sqlx::PgPool,
    rebuilt: &Rebuild,
    what: &'static str,
    checks: &mut Checks,
) {
    let mut findings = Vec::new();
    for table in read_model_tables() {
        let (a, b) = (
            table_digest(live, table).await,
            table_digest(&rebuilt.pool, table).await,
        );
        if a != b {
            let (live_rows, fresh_rows) = (
                table_rows(live, table).await,
                table_rows(&rebuilt.pool, table).await,
            );
            let only_live: Vec<&String> = live_rows.difference(&fresh_rows).take(3).collect();
            let only_fresh: Vec<&String> = fresh_rows.difference(&live_rows).take(3).collect();
            findings.push(format!(
                "{table}: {} rows live, {} rebuilt; only live: {only_live:?}; only rebuilt: {only_fresh:?}",
                a.0, b.0
            ));
        }
    }
    checks.check(what, findings.is_empty(), || findings.join("\n"));
}

// ---- alerts, the query API, the snapshots ---------------------------------------------------

/// The alert types the campaign's operator subscribes to, with the wallet event that raises
/// each: every such event of the log must reach the notification simulator exactly once.
pub const ALERTS: [(&str, &str); 3] = [
    ("wallet.topped_up", "WalletToppedUp"),
    ("transfer.sent", "TransferDebited"),
    ("transfer.received", "TransferCredited"),
];

/// Subscribes an operator to [`ALERTS`] by push (before any load). Returns the accepted
/// answer's command id and events, if the subscription is an event.
pub async fn subscribe_alerts(site: &Site) -> (String, Vec<String>) {
    let key = "chaos-alerts";
    let types: Vec<&str> = ALERTS.iter().map(|(t, _)| *t).collect();
    let response = http_client()
        .post(format!(
            "{}/v1/operator/alert-subscriptions",
            site.env.api()
        ))
        .bearer_auth(token("chaos-operator", TokenRole::Operator))
        .header("content-type", "application/json")
        .header("Idempotency-Key", key)
        .body(json!({"alert_types": types, "channels": ["push"]}).to_string())
        .send()
        .await
        .expect("the command API answers");
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 201, "subscribing to alerts: {body}");
    (format!("chaos-operator/{key}"), event_ids(&body))
}

/// Every subscribed alert of the log delivered once: one `sent` delivery per raising event
/// and type, booked once by the notification simulator; none for anything else.
pub async fn check_alerts(
    pool: &sqlx::PgPool,
    log: &BTreeMap<(i32, u64), Arc<Record>>,
    checks: &mut Checks,
) {
    let mut expected: BTreeSet<(Uuid, String)> = BTreeSet::new();
    for r in log.values() {
        for (alert, event) in ALERTS {
            if r.event.name() == event {
                expected.insert((r.envelope.event_id, alert.to_owned()));
            }
        }
    }
    let deliveries: Vec<(String, Option<Uuid>, String, String)> = sqlx::query_as(
        "SELECT dedup_key, event_id, alert_type, status FROM alert_deliveries WHERE recipient = 'chaos-operator'",
    )
    .fetch_all(pool)
    .await
    .expect("alert deliveries");
    let booked: BTreeSet<String> = sqlx::query_scalar(
        "SELECT dedup_key FROM simulator_alert_notifications WHERE recipient = 'chaos-operator'",
    )
    .fetch_all(pool)
    .await
    .expect("the notification simulator's books")
    .into_iter()
    .collect();
    let mut found: BTreeMap<(Uuid, String), u32> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (key, event, alert, status) in &deliveries {
        match event {
            Some(e) => *found.entry((*e, alert.clone())).or_default() += 1,
            None => wrong.push(format!("{key}: no event")),
        }
        if status != "sent" || !booked.contains(key) {
            wrong.push(format!("{key}: {status}, booked {}", booked.contains(key)));
        }
    }
    let keys: BTreeSet<&String> = deliveries.iter().map(|d| &d.0).collect();
    wrong.extend(
        booked
            .iter()
            .filter(|k| !keys.contains(k))
            .map(|k| format!("{k}: booked by the simulator, no delivery")),
    );
    wrong.extend(
        expected
            .iter()
            .filter(|e| found.get(*e) != Some(&1))
            .map(|(e, a)| {
                format!(
                    "{a} of {e}: {} deliveries",
                    found.get(&(*e, a.clone())).unwrap_or(&0)
                )
            }),
    );
    wrong.extend(
        found
            .keys()
            .filter(|f| !expected.contains(*f))
            .map(|(e, a)| format!("{a} of {e}: delivered for no such event")),
    );
    checks.check(
        "every subscribed alert delivered once (alert dispatcher and sender)",
        wrong.is_empty(),
        || wrong[..wrong.len().min(10)].join("; "),
    );
}

/// The query API answers wallets as the read model has them (a few clients, picked at
/// random each cycle).
pub async fn check_query_api(
    site: &Site,
    pool: &sqlx::PgPool,
    clients: &[(String, String)],
    rng: &mut Rng,
    checks: &mut Checks,
) {
    let http = http_client();
    let mut wrong = Vec::new();
    for _ in 0..4 {
        let (client, wallet) = rng.pick(clients);
        let stored: (Decimal, Decimal) =
            sqlx::query_as("SELECT balance, held FROM rm_wallets WHERE wallet_id = $1")
                .bind(Uuid::parse_str(wallet).expect("wallet id"))
                .fetch_one(pool)
                .await
                .expect("the wallet's row");
        let answer: Option<Value> = match http
            .post(format!("http://{}/graphql", site.env.query_addr))
            .bearer_auth(token(client, TokenRole::Client))
            .json(&json!({"query": "query($w: UUID!) { wallet(id: $w) { balance held } }", "variables": {"w": wallet}}))
            .send()
            .await
        {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        let amount = |v: &Value, field: &str| -> Option<Decimal> {
            v["data"]["wallet"][field].as_str()?.parse().ok()
        };
        let shown = answer
            .as_ref()
            .and_then(|v| Some((amount(v, "balance")?, amount(v, "held")?)));
        if shown != Some(stored) {
            wrong.push(format!(
                "wallet {wallet}: stored {stored:?}, GraphQL {answer:?}"
            ));
        }
    }
    checks.check(
        "the query API answers wallets as the read model has them",
        wrong.is_empty(),
        || wrong.join("; "),
    );
}

/// The snapshot table equals the fold of the log (what `etr rebuild-snapshots` checks).
pub async fn check_snapshots(site: &Site, pool: &sqlx::PgPool, checks: &mut Checks) {
    let env = &site.env;
    let settings = etr_infra::config::Settings {
        kafka_bootstrap: site.broker.bootstrap(),
        database_url: env.database_url.clone(),
        schema_registry_url: env.registry_url(),
        topic: env.topic.clone(),
        partitions: env.partitions,
        command_api_addr: env.api_addr.clone(),
        command_api_advertised_addr: env.api_addr.clone(),
        query_api_addr: env.query_addr.clone(),
        jwt_secret: crate::support::JWT_SECRET.into(),
        registry_addr: env.registry_addr.clone(),
        outbox_retention: Duration::from_secs(3600),
    };
    let rebuilt = etr_projections::log::rebuild_snapshots(pool, &settings, &env.codec(), false)
        .await
        .expect("folding the log into snapshots");
    checks.check(
        "the snapshot table equals the fold of the log (last cycle)",
        rebuilt.differing == 0,
        || {
            format!(
                "{} rows differ of {} aggregates",
                rebuilt.differing, rebuilt.aggregates
            )
        },
    );
}

/// Nothing dead-lettered: every record of the campaign's log is a good event and every
/// activity can succeed, so a dead letter or a parked process is a fault.
pub async fn check_dead_letters(pool: &sqlx::PgPool, checks: &mut Checks) {
    let records: Vec<(String, i32, i64, String)> = sqlx::query_as(
        "SELECT consumer, partition, record_offset, reason FROM dead_letters ORDER BY id LIMIT 10",
    )
    .fetch_all(pool)
    .await
    .expect("dead letters");
    let parked: Vec<(String, Uuid, String)> =
        sqlx::query_as("SELECT process, instance_id, reason FROM process_dead_letters LIMIT 10")
            .fetch_all(pool)
            .await
            .expect("parked processes");
    checks.check(
        "no record dead-lettered, no process parked",
        records.is_empty() && parked.is_empty(),
        || format!("dead letters {records:?}; parked {parked:?}"),
    );
}
