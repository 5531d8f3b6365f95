//! Fraud monitoring rules (e-wallet spec §8.3): limits on the number of API requests in a
//! period, at two levels — requests without a valid bearer token (`unauthenticated`) and
//! with one (`authenticated`) — by the interface the request comes from, the caller's IP
//! address or the client.
//!
//! A [`Rule`] says which requests it counts (level, optionally an interface type, a route
//! prefix and one client) and what it counts them by ([`Key`]: the peer address, the token's
//! subject, or the interface type), and how many it admits ([`Rule::limit`]) per
//! [`Rule::period_secs`]. This module only parses rules and says which apply to a request and
//! under which counter; the counting itself (with its clock) is the API edge's.
//!
//! Every refusal has a stable code ([`RuleError::code`]).

use std::fmt;
use std::net::IpAddr;

/// The most requests a rule may admit per period.
pub const MAX_LIMIT: u32 = 1_000_000;
/// The longest period of a rule: one day, in seconds.
pub const MAX_PERIOD_SECS: u32 = 86_400;
/// The longest route prefix, in bytes.
pub const MAX_ROUTE_PREFIX: usize = 200;
/// The longest client a rule may name, in bytes.
pub const MAX_CLIENT: usize = 200;

/// Why a rule or a request's interface type was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// `invalid_fraud_rule_id`
    #[error("rule id `{0}` must be 1–40 characters of a-z, 0-9, _ and -")]
    Id(String),
    /// `invalid_level`
    #[error("level `{0}` must be `unauthenticated` or `authenticated`")]
    Level(String),
    /// `invalid_interface_type`
    #[error("interface type `{0}` must be one of web, android, ios, terminal, partner-api, other")]
    InterfaceType(String),
    /// `invalid_key`
    #[error("key `{0}` must be `ip`, `client` or `interface`")]
    Key(String),
    /// `invalid_limit`
    #[error("limit {0} must be between 1 and {MAX_LIMIT} requests")]
    Limit(i64),
    /// `invalid_period`
    #[error("period {0} must be between 1 and {MAX_PERIOD_SECS} seconds")]
    Period(i64),
    /// `invalid_route_prefix`
    #[error("route prefix `{0}` must start with `/` and hold at most {MAX_ROUTE_PREFIX} visible ASCII characters, without `?` or `#`")]
    RoutePrefix(String),
    /// `invalid_client_filter`
    #[error("client `{0}` must be 1–{MAX_CLIENT} visible ASCII characters")]
    Client(String),
    /// `client_key_needs_authentication`
    #[error("a rule counting by client applies to authenticated requests only: unauthenticated requests have no client")]
    ClientKeyUnauthenticated,
    /// `client_filter_needs_authentication`
    #[error("a rule for one client applies to authenticated requests only: unauthenticated requests have no client")]
    ClientFilterUnauthenticated,
}

impl RuleError {
    /// The stable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::Id(_) => "invalid_fraud_rule_id",
            RuleError::Level(_) => "invalid_level",
            RuleError::InterfaceType(_) => "invalid_interface_type",
            RuleError::Key(_) => "invalid_key",
            RuleError::Limit(_) => "invalid_limit",
            RuleError::Period(_) => "invalid_period",
            RuleError::RoutePrefix(_) => "invalid_route_prefix",
            RuleError::Client(_) => "invalid_client_filter",
            RuleError::ClientKeyUnauthenticated => "client_key_needs_authentication",
            RuleError::ClientFilterUnauthenticated => "client_filter_needs_authentication",
        }
    }

    /// Whether the rule's fields are each well formed but do not go together (a client key
    /// or client filter on the unauthenticated level).
    pub fn is_inconsistent(&self) -> bool {
        matches!(
            self,
            RuleError::ClientKeyUnauthenticated | RuleError::ClientFilterUnauthenticated
        )
    }
}

/// A rule's id: 1–40 characters of `a-z`, `0-9`, `_` and `-`. It is also the reason a
/// refused request is given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(String);

impl RuleId {
    /// Errors: [`RuleError::Id`].
    pub fn parse(raw: &str) -> Result<RuleId, RuleError> {
        let ok = !raw.is_empty()
            && raw.len() <= 40
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(RuleError::Id(raw.to_owned()));
        }
        Ok(RuleId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The two levels of fraud monitoring (§8.3): requests without a valid bearer token, and
/// requests with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Unauthenticated,
    Authenticated,
}

impl Level {
    pub const ALL: [Level; 2] = [Level::Unauthenticated, Level::Authenticated];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Unauthenticated => "unauthenticated",
            Level::Authenticated => "authenticated",
        }
    }

    /// Errors: [`RuleError::Level`].
    pub fn parse(raw: &str) -> Result<Level, RuleError> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str() == raw)
            .ok_or_else(|| RuleError::Level(raw.to_owned()))
    }
}

/// The kind of application a request comes from, as the `X-Interface-Type` header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InterfaceType {
    Web,
    Android,
    Ios,
    Terminal,
    PartnerApi,
    /// Anything else, and every request without the header.
    Other,
}

impl InterfaceType {
    pub const ALL: [InterfaceType; 6] = [
        InterfaceType::Web,
        InterfaceType::Android,
        InterfaceType::Ios,
        InterfaceType::Terminal,
        InterfaceType::PartnerApi,
        InterfaceType::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceType::Web => "web",
            InterfaceType::Android => "android",
            InterfaceType::Ios => "ios",
            InterfaceType::Terminal => "terminal",
            InterfaceType::PartnerApi => "partner-api",
            InterfaceType::Other => "other",
        }
    }

    /// One of `web`, `android`, `ios`, `terminal`, `partner-api`, `other` (ASCII case is
    /// ignored, surrounding spaces too).
    ///
    /// Errors: [`RuleError::InterfaceType`].
    pub fn parse(raw: &str) -> Result<InterfaceType, RuleError> {
        let value = raw.trim();
        InterfaceType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| RuleError::InterfaceType(raw.to_owned()))
    }

    /// The interface type of a request from its `X-Interface-Type` header: `other` when the
    /// header is absent.
    ///
    /// Errors: [`RuleError::InterfaceType`] for a value that is not one of the types.
    pub fn from_header(header: Option<&str>) -> Result<InterfaceType, RuleError> {
        header.map_or(Ok(InterfaceType::Other), InterfaceType::parse)
    }
}

/// What a rule counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// The address the request came from (the connection's peer).
    Ip,
    /// The bearer token's subject: the client id of a client token, the partner's or
    /// employee's id otherwise. Authenticated rules only.
    Client,
    /// The interface type: every request from, say, Android together.
    Interface,
}

impl Key {
    pub const ALL: [Key; 3] = [Key::Ip, Key::Client, Key::Interface];

    pub fn as_str(self) -> &'static str {
        match self {
            Key::Ip => "ip",
            Key::Client => "client",
            Key::Interface => "interface",
        }
    }

    /// Errors: [`RuleError::Key`].
    pub fn parse(raw: &str) -> Result<Key, RuleError> {
        Key::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .ok_or_else(|| RuleError::Key(raw.to_owned()))
    }
}

/// A route prefix a rule is limited to: starts with `/`, at most [`MAX_ROUTE_PREFIX`]
/// visible ASCII characters, no query (`?`) or fragment (`#`). Compared with the request's
/// path byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RoutePrefix(String);

impl RoutePrefix {
    /// Errors: [`RuleError::RoutePrefix`].
    pub fn parse(raw: &str) -> Result<RoutePrefix, RuleError> {
        let ok = raw.starts_with('/')
            && raw.len() <= MAX_ROUTE_PREFIX
            && raw
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#');
        if !ok {
            return Err(RuleError::RoutePrefix(raw.to_owned()));
        }
        Ok(RoutePrefix(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One fraud-monitoring rule: requests it applies to beyond `limit` in `period_secs` are
/// refused (HTTP 429, the rule's id as the reason).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    pub id: RuleId,
    pub level: Level,
    /// Only requests from this interface type; every type when `None`.
    pub interface: Option<InterfaceType>,
    pub key: Key,
    /// Requests admitted per period and counter, 1 to [`MAX_LIMIT`].
    pub limit: u32,
    /// The period, in seconds, 1 to [`MAX_PERIOD_SECS`] (one day).
    pub period_secs: u32,
    /// Only requests whose path starts with this prefix; every path when `None`.
    pub route_prefix: Option<RoutePrefix>,
    /// Only requests of this client (the token's subject); authenticated rules only.
    pub client: Option<String>,
    /// An inactive rule is kept but applies to nothing.
    pub active: bool,
}

/// A request as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    pub level: Level,
    pub interface: InterfaceType,
    /// The connection's peer address, when known.
    pub ip: Option<IpAddr>,
    /// The bearer token's subject (authenticated requests only).
    pub subject: Option<&'a str>,
    /// The request's path (without the query).
    pub path: &'a str,
}

/// The counter of a rule a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Requests from one address (`None`: from an address the edge could not learn, all
    /// counted together).
    Ip(Option<IpAddr>),
    /// Requests with one token subject.
    Client(String),
    /// Requests from one interface type.
    Interface(InterfaceType),
}

impl Rule {
    /// Checks the rule's numbers and that its fields go together.
    ///
    /// Errors: [`RuleError::Limit`] (1 to [`MAX_LIMIT`]), [`RuleError::Period`] (1 to
    /// [`MAX_PERIOD_SECS`]), [`RuleError::Client`] (1–[`MAX_CLIENT`] visible ASCII
    /// characters), [`RuleError::ClientKeyUnauthenticated`] and
    /// [`RuleError::ClientFilterUnauthenticated`] (an unauthenticated request has no client).
    pub fn validate(&self) -> Result<(), RuleError> {
        if self.limit == 0 || self.limit > MAX_LIMIT {
            return Err(RuleError::Limit(i64::from(self.limit)));
        }
        if self.period_secs == 0 || self.period_secs > MAX_PERIOD_SECS {
            return Err(RuleError::Period(i64::from(self.period_secs)));
        }
        if let Some(client) = &self.client {
            let ok = !client.is_empty()
                && client.len() <= MAX_CLIENT
                && client.bytes().all(|b| b.is_ascii_graphic());
            if !ok {
                return Err(RuleError::Client(client.clone()));
            }
        }
        if self.level == Level::Unauthenticated {
            if self.key == Key::Client {
                return Err(RuleError::ClientKeyUnauthenticated);
            }
            if self.client.is_some() {
                return Err(RuleError::ClientFilterUnauthenticated);
            }
        }
        Ok(())
    }

    /// Whether the rule counts `request`: it is active, of the request's level, and its
    /// interface type, route prefix and client (those it names) match.
    pub fn applies_to(&self, request: &Request<'_>) -> bool {
        self.active
            && self.level == request.level
            && self.interface.is_none_or(|i| i == request.interface)
            && self
                .route_prefix
                .as_ref()
                .is_none_or(|p| request.path.starts_with(p.as_str()))
            && self
                .client
                .as_deref()
                .is_none_or(|c| request.subject == Some(c))
            && (self.key != Key::Client || request.subject.is_some())
    }

    /// The counter `request` counts against under this rule, or `None` when the rule does
    /// not apply to it ([`Rule::applies_to`]).
    pub fn counter(&self, request: &Request<'_>) -> Option<Counter> {
        if !self.applies_to(request) {
            return None;
        }
        Some(match self.key {
            Key::Ip => Counter::Ip(request.ip),
            Key::Client => Counter::Client(request.subject?.to_owned()),
            Key::Interface => Counter::Interface(request.interface),
        })
    }
}

/// The rules in force while none is stored:
///
/// - `ip_unauthenticated`: requests without a valid token, 600 per 60 s from one address;
/// - `client_authenticated`: requests with a valid token, 6,000 per 60 s per token subject.
///
/// Both are generous: they stop a flood, not a busy application.
pub fn defaults() -> Vec<Rule> {
    vec![
        Rule {
            id: RuleId("ip_unauthenticated".into()),
            level: Level::Unauthenticated,
            interface: None,
            key: Key::Ip,
            limit: 600,
            period_secs: 60,
            route_prefix: None,
            client: None,
            active: true,
        },
        Rule {
            id: RuleId("client_authenticated".into()),
            level: Level::Authenticated,
            interface: None,
            key: Key::Client,
            limit: 6_000,
            period_secs: 60,
            route_prefix: None,
            client: None,
            active: true,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(level: Level, key: Key) -> Rule {
        Rule {
            id: RuleId::parse("r1").unwrap(),
            level,
            interface: None,
            key,
            limit: 3,
            period_secs: 60,
            route_prefix: None,
            client: None,
            active: true,
        }
    }

    fn request<'a>(level: Level, subject: Option<&'a str>, path: &'a str) -> Request<'a> {
        Request {
            level,
            interface: InterfaceType::Other,
            ip: Some("10.1.2.3".parse().unwrap()),
            subject,
            path,
        }
    }

    #[test]
    fn interface_types_parse_from_the_header_and_a_missing_header_is_other() {
        assert_eq!(InterfaceType::from_header(None), Ok(InterfaceType::Other));
        assert_eq!(
            InterfaceType::from_header(Some("Android")),
            Ok(InterfaceType::Android)
        );
        assert_eq!(
            InterfaceType::from_header(Some(" partner-api ")),
            Ok(InterfaceType::PartnerApi)
        );
        for t in InterfaceType::ALL {
            assert_eq!(InterfaceType::parse(t.as_str()), Ok(t));
        }
        let refused = InterfaceType::from_header(Some("smart-fridge")).unwrap_err();
        assert_eq!(refused.code(), "invalid_interface_type");
        assert_eq!(
            InterfaceType::from_header(Some("")).unwrap_err().code(),
            "invalid_interface_type"
        );
    }

    #[test]
    fn ids_levels_keys_and_prefixes_parse_strictly() {
        assert!(RuleId::parse("anon_per-ip2").is_ok());
        for bad in ["", "Upper", "with space", &"x".repeat(41)] {
            assert_eq!(
                RuleId::parse(bad).unwrap_err().code(),
                "invalid_fraud_rule_id"
            );
        }
        assert_eq!(Level::parse("authenticated"), Ok(Level::Authenticated));
        assert_eq!(
            Level::parse("Authenticated").unwrap_err().code(),
            "invalid_level"
        );
        for k in Key::ALL {
            assert_eq!(Key::parse(k.as_str()), Ok(k));
        }
        assert_eq!(Key::parse("token").unwrap_err().code(), "invalid_key");
        assert!(RoutePrefix::parse("/v1/clients/").is_ok());
        for bad in ["v1", "/a b", "/a?x=1", "/a#b", "/ы"] {
            assert_eq!(
                RoutePrefix::parse(bad).unwrap_err().code(),
                "invalid_route_prefix",
                "{bad}"
            );
        }
    }

    #[test]
    fn a_rule_keeps_its_numbers_in_range_and_a_client_only_on_the_authenticated_level() {
        assert_eq!(rule(Level::Authenticated, Key::Client).validate(), Ok(()));
        let mut r = rule(Level::Authenticated, Key::Ip);
        r.limit = 0;
        assert_eq!(r.validate().unwrap_err().code(), "invalid_limit");
        r.limit = MAX_LIMIT + 1;
        assert_eq!(r.validate().unwrap_err().code(), "invalid_limit");
        r.limit = MAX_LIMIT;
        r.period_secs = 0;
        assert_eq!(r.validate().unwrap_err().code(), "invalid_period");
        r.period_secs = MAX_PERIOD_SECS + 1;
        assert_eq!(r.validate().unwrap_err().code(), "invalid_period");
        r.period_secs = MAX_PERIOD_SECS;
        assert_eq!(r.validate(), Ok(()));
        r.client = Some(String::new());
        assert_eq!(r.validate().unwrap_err().code(), "invalid_client_filter");

        let err = rule(Level::Unauthenticated, Key::Client)
            .validate()
            .unwrap_err();
        assert_eq!(err.code(), "client_key_needs_authentication");
        assert!(err.is_inconsistent());
        let mut r = rule(Level::Unauthenticated, Key::Ip);
        r.client = Some("c1".into());
        assert_eq!(
            r.validate().unwrap_err().code(),
            "client_filter_needs_authentication"
        );
    }

    #[test]
    fn a_rule_applies_to_requests_of_its_level_interface_prefix_and_client() {
        let mut r = rule(Level::Authenticated, Key::Client);
        r.route_prefix = Some(RoutePrefix::parse("/v1/clients/").unwrap());
        let top_up = request(
            Level::Authenticated,
            Some("c1"),
            "/v1/clients/c1/wallets/w/top-ups",
        );
        assert_eq!(r.counter(&top_up), Some(Counter::Client("c1".into())));
        // Another path, another level: not counted.
        assert!(!r.applies_to(&request(Level::Authenticated, Some("c1"), "/graphql")));
        assert!(!r.applies_to(&request(
            Level::Unauthenticated,
            None,
            "/v1/clients/c1/wallets"
        )));

        // An interface type narrows it.
        r.interface = Some(InterfaceType::Android);
        assert!(!r.applies_to(&top_up));
        let android = Request {
            interface: InterfaceType::Android,
            ..top_up
        };
        assert!(r.applies_to(&android));

        // One client only.
        r.client = Some("c2".into());
        assert!(!r.applies_to(&android));
        assert!(r.applies_to(&Request {
            subject: Some("c2"),
            ..android
        }));

        // Inactive: nothing.
        r.active = false;
        assert!(!r.applies_to(&Request {
            subject: Some("c2"),
            ..android
        }));
    }

    #[test]
    fn counters_are_by_address_subject_or_interface() {
        let anon = request(Level::Unauthenticated, None, "/graphql");
        assert_eq!(
            rule(Level::Unauthenticated, Key::Ip).counter(&anon),
            Some(Counter::Ip(Some("10.1.2.3".parse().unwrap())))
        );
        assert_eq!(
            rule(Level::Unauthenticated, Key::Interface).counter(&anon),
            Some(Counter::Interface(InterfaceType::Other))
        );
        // A client-keyed rule never counts a request without a subject.
        assert_eq!(
            rule(Level::Authenticated, Key::Client).counter(&Request {
                subject: None,
                level: Level::Authenticated,
                ..anon
            }),
            None
        );
    }

    #[test]
    fn the_defaults_are_valid_and_cover_both_levels() {
        let defaults = defaults();
        for r in &defaults {
            assert_eq!(r.validate(), Ok(()), "{}", r.id);
        }
        let anon = request(Level::Unauthenticated, None, "/graphql");
        let known = request(Level::Authenticated, Some("c1"), "/graphql");
        assert_eq!(defaults.iter().filter(|r| r.applies_to(&anon)).count(), 1);
        assert_eq!(defaults.iter().filter(|r| r.applies_to(&known)).count(), 1);
    }
}
