//! The processing dictionaries (e-wallet spec §1.3, §3.1) as client apps read them, from the
//! current version (`dictionary_*` tables, [`etr_infra::dictionaries`]): the menu profile —
//! per operation type the items of its root, the root itself being a service folder apps do
//! not show — services, payment sources, commission profiles, currency rates, map points, a
//! phone number's operator and region, and the commission of a payment before the client
//! confirms it (`commissionQuote`, computed by [`etr_domain::dictionaries::Catalogue::quote`]).
//!
//! Any authenticated role may read them. Refusals carry `extensions.code`: the domain's code
//! upper-cased (`SERVICE_NOT_IN_MENU`, `COMMISSION_NO_RULE`, `AMOUNT_TOO_PRECISE`,
//! `PHONE_FORMAT`, …), `BAD_USER_INPUT` for an id that does not parse,
//! `DICTIONARIES_NOT_LOADED` before the first import, `UNAVAILABLE`. Amounts are exact decimal
//! strings.

use async_graphql::{Context, Enum, ErrorExtensions, Object, SimpleObject};
use etr_domain::dictionaries::{
    phone_number, Catalogue, CommissionProfile, DictionaryError, MenuItem, MenuItemId,
    OperationType, QuoteRequest, Service, ServiceId, SourceId,
};
use etr_domain::identity::PhoneE164;
use etr_domain::money::format_amount;
use etr_domain::Money;
use etr_infra::dictionaries::{self as store, Catalogues, Current};
use std::sync::Arc;

use crate::auth::{error, viewer};
use crate::pool;

/// An error with `code` upper-cased in `extensions.code` (and the item a refusal names).
fn coded(code: &str, message: String, item: Option<serde_json::Value>) -> async_graphql::Error {
    let code = code.to_uppercase();
    async_graphql::Error::new(message).extend_with(move |_, e| {
        e.set("code", code.clone());
        if let Some(item) = &item {
            if let Ok(value) = async_graphql::Value::from_json(item.clone()) {
                e.set("item", value);
            }
        }
    })
}

fn refused(e: &DictionaryError) -> async_graphql::Error {
    coded(
        e.code(),
        e.to_string(),
        e.item().and_then(|i| serde_json::to_value(i).ok()),
    )
}

fn unavailable(e: etr_infra::Error) -> async_graphql::Error {
    tracing::warn!(error = %e, "dictionaries unavailable");
    error("UNAVAILABLE", "the dictionaries are unavailable")
}

async fn current(ctx: &Context<'_>) -> async_graphql::Result<Option<Arc<Current>>> {
    viewer(ctx)?;
    ctx.data::<Catalogues>()?
        .current(pool(ctx)?)
        .await
        .map_err(unavailable)
}

async fn required(ctx: &Context<'_>) -> async_graphql::Result<Arc<Current>> {
    current(ctx).await?.ok_or_else(|| {
        error(
            "DICTIONARIES_NOT_LOADED",
            "no dictionaries are stored yet: sync them from the processing centre or import a file",
        )
    })
}

/// The operation type of a menu item.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "OperationType")]
pub enum OperationKind {
    Payment,
    TopUp,
    Transfer,
}

impl From<OperationType> for OperationKind {
    fn from(o: OperationType) -> Self {
        match o {
            OperationType::Payment => OperationKind::Payment,
            OperationType::TopUp => OperationKind::TopUp,
            OperationType::Transfer => OperationKind::Transfer,
        }
    }
}

impl From<OperationKind> for OperationType {
    fn from(o: OperationKind) -> Self {
        match o {
            OperationKind::Payment => OperationType::Payment,
            OperationKind::TopUp => OperationType::TopUp,
            OperationKind::Transfer => OperationType::Transfer,
        }
    }
}

/// The version of the dictionaries being read.
#[derive(SimpleObject)]
pub struct DictionaryVersion {
    pub version: i64,
    /// `processing-centre`, `rest`, `file:<name>`.
    pub source: String,
    pub imported_by: String,
    pub imported_at: time::OffsetDateTime,
    pub services: i32,
    pub menu_items: i32,
    pub commission_profiles: i32,
    pub phone_ranges: i32,
}

/// A provider in whose favour operations are accepted.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Service")]
pub struct ServiceView {
    pub id: String,
    pub name: String,
    /// The receipt template its receipts are rendered with (its own, else
    /// `default.check-render`).
    pub receipt_template: String,
    pub logo: Option<String>,
}

impl From<&Service> for ServiceView {
    fn from(s: &Service) -> Self {
        ServiceView {
            id: s.id.to_string(),
            name: s.name.clone(),
            receipt_template: s.receipt_template_name().to_string(),
            logo: s.logo.clone(),
        }
    }
}

/// A payment source.
#[derive(SimpleObject)]
#[graphql(name = "PaymentSource")]
pub struct PaymentSourceView {
    pub id: String,
    pub name: String,
}

/// A rule of a commission profile: from `source`, amounts in [`from`, `to`) pay `fixed` +
/// `percent` % of the amount, at least `min`, at most `max`; decimal strings.
#[derive(SimpleObject)]
#[graphql(name = "CommissionRule")]
pub struct CommissionRuleView {
    pub source: String,
    pub from: String,
    /// Null: no upper bound.
    pub to: Option<String>,
    pub fixed: String,
    pub percent: String,
    pub min: String,
    pub max: Option<String>,
}

/// A commission profile.
#[derive(SimpleObject)]
#[graphql(name = "CommissionProfile")]
pub struct CommissionProfileView {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub rules: Vec<CommissionRuleView>,
}

impl From<&CommissionProfile> for CommissionProfileView {
    fn from(p: &CommissionProfile) -> Self {
        CommissionProfileView {
            id: p.id.to_string(),
            name: p.name.clone(),
            currency: p.currency.code().to_owned(),
            rules: p
                .rules
                .iter()
                .map(|r| CommissionRuleView {
                    source: r.source.to_string(),
                    from: format_amount(r.from),
                    to: r.to.map(format_amount),
                    fixed: format_amount(r.fixed),
                    percent: format_amount(r.percent.normalize()),
                    min: format_amount(r.min),
                    max: r.max.map(format_amount),
                })
                .collect(),
        }
    }
}

/// An item of the menu: a folder (its `items`) or a service (its `service` and
/// `commissionProfile`).
#[derive(SimpleObject)]
#[graphql(name = "MenuItem")]
pub struct MenuItemView {
    pub id: String,
    pub name: String,
    /// The ids from the root down to the item, joined by `/`.
    pub path: String,
    pub operation: OperationKind,
    pub service: Option<ServiceView>,
    pub commission_profile: Option<String>,
    pub items: Vec<MenuItemView>,
}

impl MenuItemView {
    fn new(item: &MenuItem, catalogue: &Catalogue) -> MenuItemView {
        let (service, commission_profile) = match item.service() {
            Some((s, p)) => (
                catalogue.services.get(s).map(ServiceView::from),
                Some(p.to_string()),
            ),
            None => (None, None),
        };
        MenuItemView {
            id: item.id.to_string(),
            name: item.name.clone(),
            path: item.path.clone(),
            operation: item.operation.into(),
            service,
            commission_profile,
            items: item
                .items()
                .iter()
                .map(|i| MenuItemView::new(i, catalogue))
                .collect(),
        }
    }
}

/// The menu of one operation type: the items of its root (the root is not shown).
#[derive(SimpleObject)]
pub struct MenuSection {
    pub operation: OperationKind,
    /// The root folder's id.
    pub root_id: String,
    pub items: Vec<MenuItemView>,
}

/// A currency's rate on a date, for reference only: the rate of an operation may differ.
#[derive(SimpleObject)]
#[graphql(name = "CurrencyRate")]
pub struct CurrencyRateView {
    pub currency: String,
    pub base: String,
    pub date: time::Date,
    /// Units of `base` for one unit of `currency`, exact as published.
    pub rate: String,
}

/// What a map point is.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum MapPointKind {
    Terminal,
    Office,
    Atm,
    Agent,
}

impl MapPointKind {
    fn code(self) -> &'static str {
        match self {
            MapPointKind::Terminal => "terminal",
            MapPointKind::Office => "office",
            MapPointKind::Atm => "atm",
            MapPointKind::Agent => "agent",
        }
    }

    fn parse(raw: &str) -> Option<MapPointKind> {
        [
            MapPointKind::Terminal,
            MapPointKind::Office,
            MapPointKind::Atm,
            MapPointKind::Agent,
        ]
        .into_iter()
        .find(|k| k.code() == raw)
    }
}

/// A point on the map; coordinates in decimal degrees as exact strings.
#[derive(SimpleObject)]
#[graphql(name = "MapPoint")]
pub struct MapPointView {
    pub id: String,
    pub name: String,
    pub address: String,
    pub latitude: String,
    pub longitude: String,
    pub kind: MapPointKind,
}

/// A phone number's operator and region by the capacity ranges.
#[derive(SimpleObject)]
pub struct PhoneNumberInfo {
    /// The number in E.164 form.
    pub number: String,
    pub operator: String,
    pub region: String,
    /// The capacity range it belongs to: its first and last numbers.
    pub range_from: String,
    pub range_to: String,
}

/// The menu item a quoted payment goes through.
#[derive(SimpleObject)]
pub struct QuotedMenuItem {
    pub id: String,
    pub path: String,
    pub name: String,
}

/// A payment's commission before the client confirms it: `total = amount + commission`, the
/// commission rounded to kopecks half to even; exact decimal strings in `currency`.
#[derive(SimpleObject)]
pub struct CommissionQuote {
    pub service: ServiceView,
    pub menu_item: QuotedMenuItem,
    pub commission_profile: String,
    pub source: String,
    pub amount: String,
    pub commission: String,
    pub total: String,
    pub currency: String,
    pub dictionaries_version: i64,
}

fn id<T>(
    field: &str,
    parsed: Result<T, etr_domain::dictionaries::IdError>,
) -> async_graphql::Result<T> {
    parsed.map_err(|e| error("BAD_USER_INPUT", format!("{field}: {e}")))
}

#[derive(Default)]
pub struct DictionaryQuery;

#[Object]
impl DictionaryQuery {
    /// The current version of the processing dictionaries (null before the first import).
    async fn dictionary_version(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<DictionaryVersion>> {
        let Some(current) = current(ctx).await? else {
            return Ok(None);
        };
        let Some(v) = store::version(pool(ctx)?, current.version)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let n = |count: usize| i32::try_from(count).unwrap_or(i32::MAX);
        Ok(Some(DictionaryVersion {
            version: v.version,
            source: v.source,
            imported_by: v.imported_by,
            imported_at: v.imported_at,
            services: n(v.counts.services),
            menu_items: n(v.counts.menu_items),
            commission_profiles: n(v.counts.commission_profiles),
            phone_ranges: n(v.counts.phone_ranges),
        }))
    }

    /// The menu profile: per operation type (or only `operation`), the items of its root in
    /// the processing centre's order.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn menu(
        &self,
        ctx: &Context<'_>,
        operation: Option<OperationKind>,
    ) -> async_graphql::Result<Vec<MenuSection>> {
        let Some(current) = current(ctx).await? else {
            return Ok(Vec::new());
        };
        let c = &current.catalogue;
        Ok(c.menu
            .roots
            .iter()
            .filter(|r| operation.is_none_or(|o| OperationType::from(o) == r.operation))
            .map(|root| MenuSection {
                operation: root.operation.into(),
                root_id: root.id.to_string(),
                items: root
                    .items()
                    .iter()
                    .map(|i| MenuItemView::new(i, c))
                    .collect(),
            })
            .collect())
    }

    /// Every service.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn services(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<ServiceView>> {
        Ok(current(ctx)
            .await?
            .map(|c| c.catalogue.services().map(ServiceView::from).collect())
            .unwrap_or_default())
    }

    /// Every payment source.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn payment_sources(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<PaymentSourceView>> {
        Ok(current(ctx)
            .await?
            .map(|c| {
                c.catalogue
                    .payment_sources()
                    .map(|s| PaymentSourceView {
                        id: s.id.to_string(),
                        name: s.name.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every commission profile with its rules.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn commission_profiles(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<CommissionProfileView>> {
        Ok(current(ctx)
            .await?
            .map(|c| {
                c.catalogue
                    .commission_profiles()
                    .map(CommissionProfileView::from)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Currency rates (reference only), only of `currency` (an ISO code) when given.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn currency_rates(
        &self,
        ctx: &Context<'_>,
        currency: Option<String>,
    ) -> async_graphql::Result<Vec<CurrencyRateView>> {
        let Some(current) = current(ctx).await? else {
            return Ok(Vec::new());
        };
        let rows = store::rates(pool(ctx)?, current.version, currency.as_deref())
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|r| CurrencyRateView {
                currency: r.currency,
                base: r.base,
                date: r.rate_date,
                rate: format_amount(r.rate),
            })
            .collect())
    }

    /// Map points, only of `kind` when given.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn map_points(
        &self,
        ctx: &Context<'_>,
        kind: Option<MapPointKind>,
    ) -> async_graphql::Result<Vec<MapPointView>> {
        let Some(current) = current(ctx).await? else {
            return Ok(Vec::new());
        };
        let rows = store::map_points(pool(ctx)?, current.version, kind.map(MapPointKind::code))
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .filter_map(|p| {
                Some(MapPointView {
                    kind: MapPointKind::parse(&p.kind)?,
                    id: p.point_id,
                    name: p.name,
                    address: p.address,
                    latitude: format_amount(p.latitude),
                    longitude: format_amount(p.longitude),
                })
            })
            .collect())
    }

    /// The operator and region of a phone number (`+79161234567`, or `8 916 …`) by the
    /// capacity ranges; null when no range holds it. `PHONE_FORMAT` for a number that is not
    /// one.
    async fn phone_number_info(
        &self,
        ctx: &Context<'_>,
        number: String,
    ) -> async_graphql::Result<Option<PhoneNumberInfo>> {
        let phone = PhoneE164::parse(&number).map_err(|e| coded(e.code(), e.to_string(), None))?;
        let Some(current) = current(ctx).await? else {
            return Ok(None);
        };
        let Some(digits) = phone_number(&phone) else {
            return Ok(None);
        };
        let range = store::phone_range(pool(ctx)?, current.version, digits)
            .await
            .map_err(unavailable)?;
        Ok(range.map(|r| PhoneNumberInfo {
            number: phone.as_str().to_owned(),
            operator: r.operator,
            region: r.region,
            range_from: r.number_from.to_string(),
            range_to: r.number_to.to_string(),
        }))
    }

    /// The commission of a payment of `amount` (a decimal string in `currency`, default RUB)
    /// for `service` from `source` (`wallet`, `card`, …), shown before the client confirms it:
    /// the first menu item of the service under the Payment root (or `menuItem`), its
    /// commission profile's rule for the amount and source.
    async fn commission_quote(
        &self,
        ctx: &Context<'_>,
        service: String,
        amount: String,
        source: String,
        #[graphql(default = "RUB")] currency: String,
        menu_item: Option<String>,
    ) -> async_graphql::Result<CommissionQuote> {
        let service = id("service", ServiceId::parse(&service))?;
        let source = id("source", SourceId::parse(&source))?;
        let menu_item = menu_item
            .as_deref()
            .map(|m| id("menuItem", MenuItemId::parse(m)))
            .transpose()?;
        let amount = Money::parse_positive(&amount, &currency)
            .map_err(|e| coded(e.code(), e.to_string(), None))?;
        let current = required(ctx).await?;
        let c = &current.catalogue;
        let q = c
            .quote(&QuoteRequest {
                operation: OperationType::Payment,
                service: &service,
                menu_item: menu_item.as_ref(),
                amount,
                source: &source,
            })
            .map_err(|e| refused(&e))?;
        let service_view = c
            .services
            .get(&q.service)
            .map(ServiceView::from)
            .ok_or_else(|| error("UNAVAILABLE", "the quoted service vanished"))?;
        Ok(CommissionQuote {
            service: service_view,
            menu_item: QuotedMenuItem {
                id: q.menu_item.to_string(),
                path: q.menu_path,
                name: q.menu_name,
            },
            commission_profile: q.commission_profile.to_string(),
            source: q.source.to_string(),
            amount: format_amount(q.amount.amount),
            commission: format_amount(q.commission.amount),
            total: format_amount(q.total.amount),
            currency: q.amount.currency.code().to_owned(),
            dictionaries_version: current.version,
        })
    }
}
