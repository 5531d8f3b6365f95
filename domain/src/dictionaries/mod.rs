//! Processing dictionaries (e-wallet spec §1.3, §3.1). The wallet neither creates nor
//! configures services, providers or directions: the processing centre (Pay-logic) hands it
//! these dictionaries, and the wallet keeps them, shows them to client apps and computes
//! commissions from them:
//!
//! 1. services — the providers in whose favour operations are accepted, each with its receipt
//!    template and logo ([`Service`]);
//! 2. commission profiles — the rules of the commission charged to the client, by amount range
//!    and payment source ([`CommissionProfile`], [`commission`]);
//! 3. payment sources — what the commission is broken down by ([`PaymentSource`]);
//! 4. the menu profile — which services are offered for payments, top-ups and transfers,
//!    where, and with which commission profile ([`Menu`]);
//! 5. currency rates — on a date, for reference only ([`CurrencyRate`]);
//! 6. map points ([`MapPoint`]);
//!
//! and, of the file dictionaries of §3.1, the phone-number capacity ranges ([`PhoneRanges`])
//! and the receipt templates ([`ReceiptTemplates`], the default `default.check-render` always
//! among them).
//!
//! They arrive as one [`Document`] — from the processing centre through the
//! [`ProcessingCentre`] port, or from a file an operator imports — and are parsed once, as a
//! whole, by [`Dictionaries::parse`]: a document that breaks any rule is refused with a
//! [`DictionaryError`] whose [`DictionaryError::item`] names the item (menu items by their path
//! of ids from the root), and nothing of it is taken. The interlinked part — services, sources,
//! profiles, menu and templates — is the [`Catalogue`], which quotes an operation's commission
//! before the client confirms it ([`Catalogue::quote`]).
//!
//! Amounts are `Decimal` in the profile's currency at its minor-unit scale; a commission is
//! rounded once to kopecks, half to even.

mod commission;
mod document;
mod error;
mod fields;
mod menu;
mod phones;
mod reference;

pub use commission::{commission, CommissionProfile, CommissionRule, PERCENT_SCALE};
pub use document::{
    CommissionProfileDocument, CommissionRuleDocument, CurrencyRateDocument, Document,
    MapPointDocument, MenuItemDocument, PaymentSourceDocument, PhoneRangeDocument,
    ReceiptTemplateDocument, ServiceDocument,
};
pub use error::{DictionaryError, ItemRef};
pub use fields::{
    IdError, MenuItemId, PointId, ProfileId, ServiceId, SourceId, TemplateName, DEFAULT_TEMPLATE,
};
pub use menu::{Menu, MenuEntry, MenuItem, OperationType, Placed, MAX_DEPTH};
pub use phones::{
    number as phone_number, parse_csv as parse_phone_ranges_csv, PhoneRange, PhoneRanges,
};
pub use reference::{
    CurrencyCode, CurrencyRate, MapPoint, PaymentSource, PointKind, ReceiptTemplates, Service,
    MAX_TEMPLATE_BYTES,
};

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::money::Money;
use crate::ports::BoxFuture;

/// The processing centre (spec §1.2, item 4: its gateway synchronises the menu, services,
/// commissions, payment sources, geographical dictionaries and others into the wallet).
pub trait ProcessingCentre: Send + Sync {
    /// Every dictionary as the processing centre has it now; `Err` with the reason when it
    /// could not be reached or did not answer.
    fn dictionaries(&self) -> BoxFuture<'_, Result<Document, String>>;
}

/// The interlinked dictionaries: what a commission quote and a client app's menu need.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Catalogue {
    pub services: BTreeMap<ServiceId, Service>,
    pub payment_sources: BTreeMap<SourceId, PaymentSource>,
    pub commission_profiles: BTreeMap<ProfileId, CommissionProfile>,
    pub menu: Menu,
    pub receipt_templates: ReceiptTemplates,
    /// The order the document gave services, sources and profiles in (what lists show).
    pub order: Order,
}

/// Document order of the dictionaries kept in maps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Order {
    pub services: Vec<ServiceId>,
    pub payment_sources: Vec<SourceId>,
    pub commission_profiles: Vec<ProfileId>,
}

/// Every dictionary of one version.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Dictionaries {
    pub catalogue: Catalogue,
    pub currency_rates: Vec<CurrencyRate>,
    pub map_points: Vec<MapPoint>,
    pub phone_ranges: PhoneRanges,
}

/// How many items each dictionary of a version holds (what an import records).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Counts {
    pub services: usize,
    pub payment_sources: usize,
    pub commission_profiles: usize,
    pub commission_rules: usize,
    pub menu_items: usize,
    pub currency_rates: usize,
    pub map_points: usize,
    pub phone_ranges: usize,
    pub receipt_templates: usize,
}

impl Catalogue {
    /// Parses the interlinked dictionaries of `doc` (its rates, points and ranges are not
    /// looked at), in the order each depends on the others: receipt templates, payment
    /// sources, services, commission profiles, the menu.
    ///
    /// Errors: the first rule broken, naming its item (see [`DictionaryError`]).
    pub fn parse(doc: &Document) -> Result<Catalogue, DictionaryError> {
        let receipt_templates = ReceiptTemplates::parse(&doc.receipt_templates)?;
        let sources = reference::parse_unique(
            &doc.payment_sources,
            "payment_sources",
            PaymentSource::parse,
            |s| s.id.clone(),
        )?;
        let services = reference::parse_unique(
            &doc.services,
            "services",
            |d, i| Service::parse(d, i, &receipt_templates),
            |s| s.id.clone(),
        )?;
        let source_ids: BTreeSet<SourceId> = sources.iter().map(|s| s.id.clone()).collect();
        let profiles = reference::parse_unique(
            &doc.commission_profiles,
            "commission_profiles",
            |d, i| CommissionProfile::parse(d, i, &source_ids),
            |p| p.id.clone(),
        )?;
        let menu = Menu::parse(
            &doc.menu,
            &services.iter().map(|s| &s.id).collect(),
            &profiles.iter().map(|p| &p.id).collect(),
        )?;
        let order = Order {
            services: services.iter().map(|s| s.id.clone()).collect(),
            payment_sources: sources.iter().map(|s| s.id.clone()).collect(),
            commission_profiles: profiles.iter().map(|p| p.id.clone()).collect(),
        };
        Ok(Catalogue {
            services: services.into_iter().map(|s| (s.id.clone(), s)).collect(),
            payment_sources: sources.into_iter().map(|s| (s.id.clone(), s)).collect(),
            commission_profiles: profiles.into_iter().map(|p| (p.id.clone(), p)).collect(),
            menu,
            receipt_templates,
            order,
        })
    }

    /// Services in document order.
    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.order
            .services
            .iter()
            .filter_map(|id| self.services.get(id))
    }

    /// Payment sources in document order.
    pub fn payment_sources(&self) -> impl Iterator<Item = &PaymentSource> {
        self.order
            .payment_sources
            .iter()
            .filter_map(|id| self.payment_sources.get(id))
    }

    /// Commission profiles in document order.
    pub fn commission_profiles(&self) -> impl Iterator<Item = &CommissionProfile> {
        self.order
            .commission_profiles
            .iter()
            .filter_map(|id| self.commission_profiles.get(id))
    }

    /// The receipt template of `service` (its own, else the default) and its text.
    pub fn receipt_template(&self, service: &ServiceId) -> Option<(TemplateName, &str)> {
        let name = self.services.get(service)?.receipt_template_name();
        let body = self.receipt_templates.get(&name)?;
        Some((name, body))
    }

    /// The commission of an operation before the client confirms it (spec §1.3, item 2;
    /// §3.1): the menu item the operation goes through — `request.menu_item` when given, else
    /// the first service item of the operation's root for the service — its commission
    /// profile, and [`commission`] of the amount from the payment source; `total` is the
    /// amount plus the commission. Amounts in the profile's currency, at kopecks.
    ///
    /// Errors: [`DictionaryError::ServiceNotInMenu`], [`DictionaryError::MenuItemNotFound`],
    /// [`DictionaryError::UnknownPaymentSource`] (the source is not in the dictionary), and
    /// those of [`commission`].
    pub fn quote(&self, request: &QuoteRequest<'_>) -> Result<Quote, DictionaryError> {
        let item = self
            .menu
            .service_item(request.operation, request.service, request.menu_item)
            .ok_or_else(|| match request.menu_item {
                Some(wanted) => DictionaryError::MenuItemNotFound {
                    item: wanted.to_string(),
                    service: request.service.to_string(),
                    operation: request.operation,
                },
                None => DictionaryError::ServiceNotInMenu {
                    service: request.service.to_string(),
                    operation: request.operation,
                },
            })?;
        let not_in_menu = || DictionaryError::ServiceNotInMenu {
            service: request.service.to_string(),
            operation: request.operation,
        };
        let (service_id, profile_id) = item.service().ok_or_else(not_in_menu)?;
        let service = self.services.get(service_id).ok_or_else(not_in_menu)?;
        let profile = self
            .commission_profiles
            .get(profile_id)
            .ok_or_else(not_in_menu)?;
        if !self.payment_sources.contains_key(request.source) {
            return Err(DictionaryError::UnknownPaymentSource {
                item: ItemRef::new(
                    "payment_sources",
                    request.source.as_str(),
                    request.source.to_string(),
                ),
                payment_source: request.source.to_string(),
            });
        }
        let charged = commission(profile, request.amount, request.source)?;
        let total = Money::new(request.amount.amount + charged.amount, charged.currency);
        Ok(Quote {
            operation: request.operation,
            menu_item: item.id.clone(),
            menu_path: item.path.clone(),
            menu_name: item.name.clone(),
            service: service.id.clone(),
            service_name: service.name.clone(),
            commission_profile: profile.id.clone(),
            source: request.source.clone(),
            amount: request.amount,
            commission: charged,
            total,
        })
    }

    /// The commission a payment of `amount` to `service` from `source` (the dictionary's
    /// payment source `wallet` or `card`) is charged: the quote's commission through the
    /// service's first menu item under Payment; `None` when the service is not in the menu
    /// (or the source is not in the dictionary), or the commission is zero.
    ///
    /// Errors: those of [`commission`] (no rule of the profile holds the amount).
    pub fn payment_commission(
        &self,
        service: &str,
        amount: Money,
        source: crate::limits::Source,
    ) -> Result<Option<Money>, DictionaryError> {
        let (Ok(service), Ok(source)) =
            (ServiceId::parse(service), SourceId::parse(source.label()))
        else {
            return Ok(None);
        };
        match self.quote(&QuoteRequest {
            operation: OperationType::Payment,
            service: &service,
            menu_item: None,
            amount,
            source: &source,
        }) {
            Ok(q) => Ok(Some(q.commission).filter(|c| !c.amount.is_zero())),
            Err(
                DictionaryError::ServiceNotInMenu { .. }
                | DictionaryError::UnknownPaymentSource { .. },
            ) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// What a commission quote is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteRequest<'a> {
    pub operation: OperationType,
    pub service: &'a ServiceId,
    /// The menu item the client chose, when a service is in more than one.
    pub menu_item: Option<&'a MenuItemId>,
    /// The operation's amount, positive, at most [`crate::money::MAX_AMOUNT`].
    pub amount: Money,
    pub source: &'a SourceId,
}

/// A commission quote: what the client sees before confirming an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub operation: OperationType,
    pub menu_item: MenuItemId,
    /// The menu item's path of ids from its root.
    pub menu_path: String,
    pub menu_name: String,
    pub service: ServiceId,
    pub service_name: String,
    pub commission_profile: ProfileId,
    pub source: SourceId,
    /// The operation's amount.
    pub amount: Money,
    /// The commission charged to the client, at kopecks, half to even.
    pub commission: Money,
    /// `amount + commission`: what leaves the payment source.
    pub total: Money,
}

impl Dictionaries {
    /// Parses a whole document: the [`Catalogue`], then currency rates (one per currency,
    /// base and date), map points (unique ids) and capacity ranges (no overlaps).
    ///
    /// Errors: the first rule broken, naming its item (see [`DictionaryError`]).
    pub fn parse(doc: &Document) -> Result<Dictionaries, DictionaryError> {
        let catalogue = Catalogue::parse(doc)?;
        let currency_rates = reference::parse_unique(
            &doc.currency_rates,
            "currency_rates",
            CurrencyRate::parse,
            |r| format!("{}/{}@{}", r.currency, r.base, r.date),
        )?;
        let map_points =
            reference::parse_unique(&doc.map_points, "map_points", MapPoint::parse, |p| {
                p.id.clone()
            })?;
        let phone_ranges = PhoneRanges::parse(&doc.phone_ranges)?;
        Ok(Dictionaries {
            catalogue,
            currency_rates,
            map_points,
            phone_ranges,
        })
    }

    /// How many items each dictionary holds.
    pub fn counts(&self) -> Counts {
        let c = &self.catalogue;
        Counts {
            services: c.services.len(),
            payment_sources: c.payment_sources.len(),
            commission_profiles: c.commission_profiles.len(),
            commission_rules: c.commission_profiles.values().map(|p| p.rules.len()).sum(),
            menu_items: c.menu.walk().len(),
            currency_rates: self.currency_rates.len(),
            map_points: self.map_points.len(),
            phone_ranges: self.phone_ranges.len(),
            receipt_templates: c.receipt_templates.len(),
        }
    }
}

#[cfg(test)]
mod tests;
