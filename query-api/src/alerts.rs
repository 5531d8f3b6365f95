//! The alert system for operators (e-wallet spec §4):
//!
//! - `alertCatalogue` — every alert type: its code, what it says, where it is raised (`LOG`
//!   or `EDGE`), its channels and its attributes with their kinds;
//! - `alertSubscriptions` — the operators' subscriptions;
//! - `alertDeliveries(first, after, type, clientId, status)` — the notifications queued for
//!   delivery and their outcome, newest first, paged by an opaque cursor (`endCursor` →
//!   `after`), filtered by alert type code, client and status.
//!
//! Operators only: any other token gets `FORBIDDEN`, none `UNAUTHENTICATED`. Refusals:
//! `UNKNOWN_ALERT_TYPE`, `BAD_USER_INPUT` (a cursor or status that is not one),
//! `UNAVAILABLE`.

use async_graphql::{Context, Enum, Object, SimpleObject, ID};
use etr_domain::alerts::{AlertType, Kind, Origin};
use etr_domain::ClientId;
use etr_infra::alerts::{self as store, DeliveryFilter};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{error, viewer, Role};
use crate::pool;

/// The most deliveries one page holds.
pub const MAX_PAGE: i32 = 500;

/// Where alerts of a type are raised.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AlertOrigin {
    /// From an event on the log.
    Log,
    /// At the API edge (no event: a failed login, a limit's refusal).
    Edge,
}

/// The kind of an attribute's value.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttributeKind {
    /// An amount with its currency, as `100.50 RUB`.
    Money,
    Text,
    Id,
    Number,
}

/// One attribute of an alert type.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlertAttributeSpec {
    pub name: String,
    pub kind: AttributeKind,
}

/// An alert type of the catalogue.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlertTypeInfo {
    /// The stable machine code, e.g. `client.blocked`.
    pub code: String,
    pub description: String,
    pub origin: AlertOrigin,
    /// `sms`, `email`, `push`, `web`: those it may be delivered through.
    pub channels: Vec<String>,
    pub attributes: Vec<AlertAttributeSpec>,
}

fn type_info(t: AlertType) -> AlertTypeInfo {
    AlertTypeInfo {
        code: t.code().to_owned(),
        description: t.description().to_owned(),
        origin: match t.origin() {
            Origin::Log => AlertOrigin::Log,
            Origin::Edge => AlertOrigin::Edge,
        },
        channels: t.channels().iter().map(|c| c.as_str().to_owned()).collect(),
        attributes: t
            .attributes()
            .into_iter()
            .map(|a| AlertAttributeSpec {
                name: a.name.to_owned(),
                kind: match a.kind {
                    Kind::Money => AttributeKind::Money,
                    Kind::Text => AttributeKind::Text,
                    Kind::Id => AttributeKind::Id,
                    Kind::Number => AttributeKind::Number,
                },
            })
            .collect(),
    }
}

/// An operator's subscription.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlertSubscription {
    pub id: ID,
    pub operator: String,
    pub alert_types: Vec<String>,
    pub channels: Vec<String>,
    /// Only alerts about this client; null: every client.
    pub client_id: Option<ID>,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One attribute of a delivered alert.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlertAttribute {
    pub name: String,
    pub value: String,
}

/// Where a delivery stands.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Queued, or failed and waiting for its next attempt.
    Pending,
    Sent,
    /// Given up after the sender's last attempt.
    Failed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> async_graphql::Result<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Sent,
            DeliveryStatus::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
        .ok_or_else(|| error("UNAVAILABLE", format!("unknown delivery status `{raw}`")))
    }
}

/// A notification of one alert to one subscriber through one channel.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlertDelivery {
    pub id: ID,
    /// The delivery's idempotency key.
    pub key: String,
    pub alert_type: String,
    pub channel: String,
    pub recipient: String,
    pub subscription_id: ID,
    pub client_id: Option<ID>,
    /// The alert's attributes, values as text, in the catalogue's order.
    pub attributes: Vec<AlertAttribute>,
    /// The text delivered.
    pub text: String,
    /// The event that raised it; null for an alert raised at the edge.
    pub event_id: Option<ID>,
    pub occurred_at: OffsetDateTime,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub queued_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

/// A page of deliveries, newest first.
#[derive(SimpleObject, Debug, Clone)]
pub struct AlertDeliveryPage {
    pub nodes: Vec<AlertDelivery>,
    /// Pass as `after` for the next page; null on an empty page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

fn delivery(d: store::Delivery) -> async_graphql::Result<AlertDelivery> {
    let order: Vec<&str> = AlertType::parse(&d.alert_type)
        .map(|t| t.attributes().into_iter().map(|a| a.name).collect())
        .unwrap_or_default();
    let mut attributes: Vec<AlertAttribute> = d
        .attributes
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(name, value)| AlertAttribute {
                    name: name.clone(),
                    value: value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    attributes.sort_by_key(|a| {
        order
            .iter()
            .position(|n| *n == a.name)
            .unwrap_or(usize::MAX)
    });
    Ok(AlertDelivery {
        id: ID(d.delivery_id.to_string()),
        key: d.dedup_key,
        alert_type: d.alert_type,
        channel: d.channel,
        recipient: d.recipient,
        subscription_id: ID(d.subscription_id.to_string()),
        client_id: d.client_id.map(|c| ID(c.to_string())),
        attributes,
        text: d.body,
        event_id: d.event_id.map(|e| ID(e.to_string())),
        occurred_at: d.occurred_at,
        status: DeliveryStatus::parse(&d.status)?,
        attempts: d.attempts,
        last_error: d.last_error,
        queued_at: d.queued_at,
        sent_at: d.sent_at,
    })
}

/// Operators only.
fn operator(ctx: &Context<'_>) -> async_graphql::Result<()> {
    if viewer(ctx)?.role != Role::Operator {
        return Err(error("FORBIDDEN", "alerts are for operators"));
    }
    Ok(())
}

fn unavailable(e: etr_infra::Error) -> async_graphql::Error {
    error("UNAVAILABLE", format!("alerts unavailable: {e}"))
}

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// Every alert type with its attributes and channels.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn alert_catalogue(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<AlertTypeInfo>> {
        operator(ctx)?;
        Ok(AlertType::ALL.iter().copied().map(type_info).collect())
    }

    /// The operators' subscriptions, oldest first.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn alert_subscriptions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<AlertSubscription>> {
        operator(ctx)?;
        let stored = store::list(pool(ctx)?).await.map_err(unavailable)?;
        Ok(stored
            .into_iter()
            .map(|s| AlertSubscription {
                id: ID(s.id.to_string()),
                operator: s.operator,
                alert_types: s
                    .subscription
                    .types
                    .iter()
                    .map(|t| t.code().to_owned())
                    .collect(),
                channels: s
                    .subscription
                    .channels
                    .iter()
                    .map(|c| c.as_str().to_owned())
                    .collect(),
                client_id: s.subscription.client.map(|c| ID(c.to_string())),
                version: s.version,
                created_at: s.created_at,
                updated_at: s.updated_at,
            })
            .collect())
    }

    /// The queued and sent notifications, newest first: at most `first` (1–500) after the
    /// cursor `after`, of alert type code `type`, about client `clientId`, in `status`.
    #[graphql(complexity = "crate::page_cost(Some(first), 50, MAX_PAGE, child_complexity)")]
    async fn alert_deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        #[graphql(name = "type")] alert_type: Option<String>,
        client_id: Option<ID>,
        status: Option<DeliveryStatus>,
    ) -> async_graphql::Result<AlertDeliveryPage> {
        operator(ctx)?;
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(error(
                "BAD_USER_INPUT",
                format!("first must be 1–{MAX_PAGE}"),
            ));
        }
        let before = after
            .map(|c| {
                c.parse::<i64>()
                    .map_err(|_| error("BAD_USER_INPUT", format!("`{c}` is not a cursor")))
            })
            .transpose()?;
        let alert_type = alert_type
            .map(|t| {
                AlertType::parse(&t)
                    .ok_or_else(|| error("UNKNOWN_ALERT_TYPE", format!("no alert type `{t}`")))
            })
            .transpose()?;
        let client = client_id
            .map(|c| {
                Uuid::parse_str(&c)
                    .map(ClientId)
                    .map_err(|_| error("BAD_USER_INPUT", format!("`{}` is not a client id", *c)))
            })
            .transpose()?;
        let filter = DeliveryFilter {
            alert_type,
            client,
            status: status.map(|s| s.as_str().to_owned()),
        };
        let mut rows = store::deliveries(pool(ctx)?, &filter, before, i64::from(first) + 1)
            .await
            .map_err(unavailable)?;
        let has_next_page = rows.len() > first as usize;
        rows.truncate(first as usize);
        let end_cursor = rows.last().map(|d| d.delivery_id.to_string());
        Ok(AlertDeliveryPage {
            nodes: rows
                .into_iter()
                .map(delivery)
                .collect::<async_graphql::Result<_>>()?,
            end_cursor,
            has_next_page,
        })
    }
}
