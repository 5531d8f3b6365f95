//! Fraud monitoring at the API edge (e-wallet spec §8.3), shared by the command API and the
//! query API: one axum middleware ([`Monitor::protect`]) that counts every request against
//! the rules in force and refuses those beyond a rule's limit, and the request statistics
//! operators read ([`stats`]).
//!
//! For each request the middleware learns, before anything else runs:
//!
//! - the level: `authenticated` when the `Authorization` header carries a bearer token that
//!   verifies ([`crate::auth::Keys`]), `unauthenticated` otherwise (none, malformed, expired,
//!   wrong signature); the token's subject is the request's client;
//! - the interface type from `X-Interface-Type` (`web`, `android`, `ios`, `terminal`,
//!   `partner-api`, `other`; absent: `other`). Any other value is answered 400
//!   `invalid_interface_type` — after the request was counted against the rules as `other`,
//!   so a bad header is no way around a limit;
//! - the peer address of the connection (the server must be started with
//!   `into_make_service_with_connect_info::<SocketAddr>()`; without it every request counts
//!   under one unknown address). `X-Forwarded-For` is not read: a client can write it;
//! - the route template (`MatchedPath`), `(no route)` for a path no route serves.
//!
//! The rules ([`etr_domain::fraud::Rule`]) are checked in id order; the first whose counter
//! has no request left refuses the request with HTTP 429, `Retry-After` in whole seconds
//! (at least 1), and the rule's id as the reason: a REST body `{"error": {"code":
//! "rate_limited", "reason", "message", "retry_after"}}`, or for `POST /graphql` a GraphQL
//! body `{"errors": [{"message", "extensions": {"code": "RATE_LIMITED", "reason",
//! "retryAfter"}}]}`. Nothing behind the middleware runs for a refused request: a refused
//! command writes nothing.
//!
//! Counting uses the `governor` crate: each rule has its own keyed GCRA limiter (keys are
//! [`etr_domain::fraud::Counter`]s) with a burst of `limit` requests and one request given
//! back every `period / limit`, so a counter idle for a whole period has its full `limit`
//! again and a steady caller gets `limit` requests per period. Refused requests use up
//! nothing. Counters live in the process: with several processes behind a balancer each
//! counts what it receives.
//!
//! The rules are reloaded from Postgres every second ([`Monitor::start`]); a limiter whose
//! rule did not change keeps its counts. `/health`, `/metrics` and the static files under
//! `/assets/` are neither limited nor counted.

pub mod stats;
pub mod store;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use etr_domain::fraud::{self, Counter, InterfaceType, Level, Rule, RuleError, RuleId};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use time::OffsetDateTime;

use crate::auth::Keys;
use crate::error::Error;
use stats::{Sample, Stats, NO_ROUTE};

/// The request header naming the interface type.
pub const INTERFACE_HEADER: &str = "x-interface-type";

/// Which API a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Api {
    /// The REST command API.
    Command,
    /// The GraphQL query API.
    Query,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Command => "command",
            Api::Query => "query",
        }
    }
}

/// A request a rule refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The rule that refused it (also the reason answered).
    pub rule: RuleId,
    /// Whole seconds until the rule admits a request of the same counter again, at least 1.
    pub retry_after: u64,
}

/// How the background tasks of [`Monitor::start`] run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How often the rules are read again (default 1 s).
    pub reload_every: Duration,
    /// How often the statistics are flushed (default 1 s).
    pub flush_every: Duration,
    /// How long hourly statistics are kept (default 90 days).
    pub retention: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reload_every: Duration::from_secs(1),
            flush_every: Duration::from_secs(1),
            retention: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

struct Gate {
    rule: Rule,
    limiter: DefaultKeyedRateLimiter<Counter>,
}

impl Gate {
    /// The rule's limiter: a burst of `limit`, one request back every `period / limit`.
    fn new(rule: Rule) -> Option<Gate> {
        let burst = NonZeroU32::new(rule.limit)?;
        let every = Duration::from_secs(u64::from(rule.period_secs)).checked_div(rule.limit)?;
        let quota = Quota::with_period(every)?.allow_burst(burst);
        Some(Gate {
            rule,
            limiter: RateLimiter::keyed(quota),
        })
    }
}

struct Inner {
    api: Api,
    keys: Keys,
    gates: RwLock<Arc<Vec<Arc<Gate>>>>,
    stats: Stats,
}

/// The fraud monitor of one API in one process: the rules in force with their counters, and
/// the request statistics not yet flushed. Cloning shares it.
#[derive(Clone)]
pub struct Monitor(Arc<Inner>);

impl Monitor {
    /// A monitor of `api` with the built-in rules ([`fraud::defaults`]) in force; tokens
    /// are verified with `keys`.
    pub fn new(api: Api, keys: Keys) -> Monitor {
        let monitor = Monitor(Arc::new(Inner {
            api,
            keys,
            gates: RwLock::new(Arc::new(Vec::new())),
            stats: Stats::default(),
        }));
        monitor.set_rules(fraud::defaults());
        monitor
    }

    /// Loads the rules from `pool`, then keeps them current and flushes the statistics in
    /// background tasks (every `options.reload_every` / `options.flush_every`; statistics
    /// older than `options.retention` are deleted once an hour). The tasks stop once every
    /// clone of the monitor is dropped; a failed reload keeps the rules in force, a failed
    /// flush keeps the counts for the next one (both logged).
    ///
    /// Errors: the first load (Postgres; a stored rule that does not parse).
    pub async fn start(
        api: Api,
        keys: Keys,
        pool: PgPool,
        options: Options,
    ) -> Result<Monitor, Error> {
        let monitor = Monitor::new(api, keys);
        monitor.reload(&pool).await?;
        let weak = Arc::downgrade(&monitor.0);
        tokio::spawn(reload_loop(weak.clone(), pool.clone(), options));
        tokio::spawn(flush_loop(weak, pool, options));
        Ok(monitor)
    }

    /// Reads the rules in force from `pool` ([`store::in_force`]) and applies them.
    ///
    /// Errors: Postgres; a stored rule that does not parse.
    pub async fn reload(&self, pool: &PgPool) -> Result<(), Error> {
        self.set_rules(store::in_force(pool).await?);
        Ok(())
    }

    /// Puts `rules` in force. A rule equal to one already in force keeps its counters; a
    /// changed rule starts counting afresh.
    pub fn set_rules(&self, mut rules: Vec<Rule>) {
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        let current = self.gates();
        if current.len() == rules.len() && current.iter().zip(&rules).all(|(g, r)| g.rule == *r) {
            return;
        }
        let gates: Vec<Arc<Gate>> = rules
            .into_iter()
            .filter_map(|rule| {
                if let Some(kept) = current.iter().find(|g| g.rule == rule) {
                    return Some(kept.clone());
                }
                let id = rule.id.clone();
                let gate = Gate::new(rule).map(Arc::new);
                if gate.is_none() {
                    tracing::warn!(rule = %id, "fraud rule with a zero limit or period ignored");
                }
                gate
            })
            .collect();
        let mut slot = match self.0.gates.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        *slot = Arc::new(gates);
    }

    fn gates(&self) -> Arc<Vec<Arc<Gate>>> {
        match self.0.gates.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The rules in force, by id.
    pub fn rules(&self) -> Vec<Rule> {
        self.gates().iter().map(|g| g.rule.clone()).collect()
    }

    /// The statistics not yet flushed.
    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// Counts `request` against every rule that applies to it, in id order, up to the
    /// first that has no request left for its counter.
    ///
    /// Errors: the [`Refusal`] of that rule.
    pub fn check(&self, request: &fraud::Request<'_>) -> Result<(), Refusal> {
        for gate in self.gates().iter() {
            let Some(counter) = gate.rule.counter(request) else {
                continue;
            };
            if let Err(not_until) = gate.limiter.check_key(&counter) {
                let wait = not_until.wait_time_from(gate.limiter.clock().now());
                return Err(Refusal {
                    rule: gate.rule.id.clone(),
                    retry_after: whole_seconds(wait),
                });
            }
        }
        Ok(())
    }

    /// Forgets counters that are back to their full limit (memory only: they behave the same).
    fn forget_idle(&self) {
        for gate in self.gates().iter() {
            gate.limiter.retain_recent();
            gate.limiter.shrink_to_fit();
        }
    }

    /// `router` with this monitor in front of every route and the fallback (layer it last,
    /// so it runs first).
    pub fn protect(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), enforce))
    }
}

/// Whole seconds of `wait`, rounded up, at least 1.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

async fn reload_loop(monitor: Weak<Inner>, pool: PgPool, options: Options) {
    let mut ticks: u64 = 0;
    loop {
        tokio::time::sleep(options.reload_every).await;
        let Some(inner) = monitor.upgrade() else {
            return;
        };
        let monitor = Monitor(inner);
        if let Err(e) = monitor.reload(&pool).await {
            tracing::warn!(api = monitor.0.api.as_str(), error = %e, "fraud rules not reloaded");
        }
        ticks += 1;
        if ticks.is_multiple_of(30) {
            monitor.forget_idle();
        }
    }
}

async fn flush_loop(monitor: Weak<Inner>, pool: PgPool, options: Options) {
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(options.flush_every).await;
        let Some(inner) = monitor.upgrade() else {
            return;
        };
        if let Err(e) = inner.stats.flush(&pool).await {
            tracing::warn!(api = inner.api.as_str(), error = %e, "request statistics not flushed");
        }
        if last_prune.is_none_or(|at| at.elapsed() >= Duration::from_secs(3600)) {
            last_prune = Some(tokio::time::Instant::now());
            if let Err(e) = stats::prune(&pool, options.retention).await {
                tracing::warn!(error = %e, "old request statistics not pruned");
            }
        }
    }
}

/// Paths neither limited nor counted: health, metrics, static files.
fn exempt(path: &str) -> bool {
    path == "/health" || path == "/metrics" || path.starts_with("/assets/")
}

async fn enforce(State(monitor): State<Monitor>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if exempt(&path) {
        return next.run(request).await;
    }
    let at = OffsetDateTime::now_utc();
    let graphql = request.method() == Method::POST && path == "/graphql";
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(NO_ROUTE, MatchedPath::as_str)
        .to_owned();
    let headers = request.headers();
    let subject = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| monitor.0.keys.verify_header(Some(v)).ok())
        .map(|viewer| viewer.sub);
    let level = if subject.is_some() {
        Level::Authenticated
    } else {
        Level::Unauthenticated
    };
    let interface = match headers.get(INTERFACE_HEADER) {
        None => Ok(InterfaceType::Other),
        Some(v) => v.to_str().map_or_else(
            |_| Err(RuleError::InterfaceType("(not text)".into())),
            InterfaceType::parse,
        ),
    };
    let facts = fraud::Request {
        level,
        interface: *interface.as_ref().unwrap_or(&InterfaceType::Other),
        ip,
        subject: subject.as_deref(),
        path: &path,
    };
    let checked = monitor.check(&facts);
    let interface_type = facts.interface;
    let count = |status: StatusCode, refused: bool, client: Option<String>| {
        monitor.0.stats.count(Sample {
            at,
            api: monitor.0.api,
            interface: interface_type,
            level,
            ip,
            client,
            route: route.clone(),
            status: status.as_u16(),
            refused,
        });
    };
    if let Err(refusal) = checked {
        count(StatusCode::TOO_MANY_REQUESTS, true, subject);
        return rate_limited(graphql, &refusal);
    }
    if let Err(e) = interface {
        count(StatusCode::BAD_REQUEST, false, subject);
        return refused_input(graphql, &e);
    }
    let response = next.run(request).await;
    count(response.status(), false, subject);
    response
}

/// HTTP 429 for `refusal`, with `Retry-After`.
fn rate_limited(graphql: bool, refusal: &Refusal) -> Response {
    let message = format!("too many requests; retry after {} s", refusal.retry_after);
    let body = if graphql {
        serde_json::json!({"errors": [{
            "message": message,
            "extensions": {
                "code": "RATE_LIMITED",
                "reason": refusal.rule.as_str(),
                "retryAfter": refusal.retry_after,
            },
        }]})
    } else {
        serde_json::json!({"error": {
            "code": "rate_limited",
            "reason": refusal.rule.as_str(),
            "message": message,
            "retry_after": refusal.retry_after,
        }})
    };
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(refusal.retry_after));
    response
}

/// HTTP 400 for an `X-Interface-Type` that is not one of the types.
fn refused_input(graphql: bool, e: &RuleError) -> Response {
    let body = if graphql {
        serde_json::json!({"errors": [{
            "message": e.to_string(),
            "extensions": {"code": "BAD_USER_INPUT", "reason": e.code()},
        }]})
    } else {
        serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}})
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use etr_domain::fraud::{Key, RoutePrefix};

    fn rule(id: &str, level: Level, key: Key, limit: u32, period_secs: u32) -> Rule {
        Rule {
            id: RuleId::parse(id).unwrap(),
            level,
            interface: None,
            key,
            limit,
            period_secs,
            route_prefix: None,
            client: None,
            active: true,
        }
    }

    fn monitor() -> Monitor {
        Monitor::new(Api::Command, Keys::from_secret(b"test"))
    }

    fn request<'a>(subject: Option<&'a str>, path: &'a str) -> fraud::Request<'a> {
        fraud::Request {
            level: if subject.is_some() {
                Level::Authenticated
            } else {
                Level::Unauthenticated
            },
            interface: InterfaceType::Other,
            ip: Some("192.0.2.7".parse().unwrap()),
            subject,
            path,
        }
    }

    #[test]
    fn a_counter_admits_its_limit_then_refuses_with_the_time_until_one_comes_back() {
        let m = monitor();
        // 3 a day: no request comes back while the test runs.
        let mut tight = rule("tight", Level::Authenticated, Key::Client, 3, 86_400);
        tight.route_prefix = Some(RoutePrefix::parse("/v1/clients/").unwrap());
        m.set_rules(vec![tight]);
        let a = request(Some("a"), "/v1/clients/a/wallets");
        for _ in 0..3 {
            assert_eq!(m.check(&a), Ok(()));
        }
        let refusal = m.check(&a).unwrap_err();
        assert_eq!(refusal.rule.as_str(), "tight");
        // One request back every 8 hours.
        assert!(
            (28_790..=28_800).contains(&refusal.retry_after),
            "{refusal:?}"
        );
        // Refused requests use nothing up; another client, another path are not affected.
        assert!(m.check(&a).is_err());
        assert_eq!(
            m.check(&request(Some("b"), "/v1/clients/b/wallets")),
            Ok(())
        );
        assert_eq!(m.check(&request(Some("a"), "/graphql")), Ok(()));
    }

    #[test]
    fn the_first_rule_without_room_refuses_and_an_unchanged_rule_keeps_its_counts() {
        let m = monitor();
        let per_ip = rule("a_ip", Level::Unauthenticated, Key::Ip, 2, 86_400);
        let per_interface = rule("b_iface", Level::Unauthenticated, Key::Interface, 5, 86_400);
        m.set_rules(vec![per_interface.clone(), per_ip.clone()]);
        let anon = request(None, "/graphql");
        assert_eq!(m.check(&anon), Ok(()));
        assert_eq!(m.check(&anon), Ok(()));
        assert_eq!(m.check(&anon).unwrap_err().rule.as_str(), "a_ip");
        // Reloading the same rules keeps the counts.
        m.set_rules(vec![per_ip.clone(), per_interface.clone()]);
        assert_eq!(m.check(&anon).unwrap_err().rule.as_str(), "a_ip");
        // Another address has its own counter under `a_ip`, but shares the interface's.
        let other = fraud::Request {
            ip: Some("192.0.2.8".parse().unwrap()),
            ..anon
        };
        assert_eq!(m.check(&other), Ok(()));
        assert_eq!(m.check(&other), Ok(()));
        assert_eq!(m.check(&other).unwrap_err().rule.as_str(), "a_ip");
        let third = fraud::Request {
            ip: Some("192.0.2.9".parse().unwrap()),
            ..anon
        };
        assert_eq!(m.check(&third), Ok(()));
        assert_eq!(m.check(&third).unwrap_err().rule.as_str(), "b_iface");
        // A changed rule counts afresh.
        let mut wider = per_ip;
        wider.limit = 10;
        m.set_rules(vec![wider, per_interface]);
        assert_eq!(m.rules().len(), 2);
        assert_eq!(m.check(&anon).unwrap_err().rule.as_str(), "b_iface");
    }

    #[test]
    fn the_defaults_are_in_force_until_rules_are_set() {
        let m = monitor();
        let ids: Vec<String> = m.rules().iter().map(|r| r.id.to_string()).collect();
        assert_eq!(ids, ["client_authenticated", "ip_unauthenticated"]);
        m.set_rules(Vec::new());
        assert!(m.rules().is_empty());
        let anon = request(None, "/graphql");
        for _ in 0..1_000 {
            assert_eq!(m.check(&anon), Ok(()));
        }
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(19_001)), 20);
        assert_eq!(whole_seconds(Duration::from_secs(20)), 20);
    }

    #[test]
    fn health_metrics_and_assets_are_exempt() {
        assert!(exempt("/health"));
        assert!(exempt("/metrics"));
        assert!(exempt("/assets/vendor/x.js"));
        assert!(!exempt("/graphql"));
        assert!(!exempt("/v1/clients/x/wallets"));
    }
}
