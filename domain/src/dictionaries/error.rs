//! Why dictionaries are refused, and why a commission cannot be quoted.

use rust_decimal::Decimal;
use serde::Serialize;
use std::fmt;

use super::menu::OperationType;
use crate::money::Currency;

/// Names the item of a document a refusal is about: the dictionary, the item's id as
/// written and where it is (`payment/payment-mobile/payment-mobile-mts` for a menu item, its
/// ids from the root; `services[3]` for an item whose id does not parse; `mobile/rules[2]` for
/// a commission rule; `line 7` for a line of a capacity file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemRef {
    /// `services`, `payment_sources`, `commission_profiles`, `menu`, `currency_rates`,
    /// `map_points`, `phone_ranges` or `receipt_templates`.
    pub dictionary: &'static str,
    pub id: String,
    pub path: String,
}

impl ItemRef {
    pub(crate) fn new(dictionary: &'static str, id: &str, path: impl Into<String>) -> Box<ItemRef> {
        Box::new(ItemRef {
            dictionary,
            id: id.to_owned(),
            path: path.into(),
        })
    }
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.dictionary, self.path)
    }
}

/// Why a document of dictionaries is refused (nothing of it is taken), or why a quote is
/// refused. [`DictionaryError::code`] gives each a stable machine-readable code and
/// [`DictionaryError::item`] the item it names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DictionaryError {
    /// `dictionary_invalid_field`: a value that does not parse (an id, a name, a decimal, a
    /// date, a number).
    #[error("{item}: `{field}` {reason}")]
    InvalidField {
        item: Box<ItemRef>,
        field: &'static str,
        reason: String,
    },
    /// `dictionary_duplicate`: an id given twice in one dictionary.
    #[error("{item}: `{}` is given twice", .item.id)]
    Duplicate { item: Box<ItemRef> },
    /// `default_receipt_template_missing` (spec §3.1: the default template must exist).
    #[error("receipt_templates: the default receipt template `default.check-render` is missing")]
    DefaultTemplateMissing,
    /// `unknown_receipt_template`: a service names a template the document does not hold.
    #[error("{item}: receipt template `{template}` is not among the receipt templates")]
    UnknownReceiptTemplate {
        item: Box<ItemRef>,
        template: String,
    },
    /// `receipt_template_invalid`: a receipt template outside the Velocity subset receipts
    /// are rendered with ([`crate::receipt`]); `template_code` is the renderer's code
    /// (`unknown_reference`, `unsupported_directive`, …).
    #[error("{item}: line {line}: {reason} ({template_code})")]
    ReceiptTemplate {
        item: Box<ItemRef>,
        template_code: &'static str,
        line: usize,
        reason: String,
    },
    /// `unknown_payment_source`: a commission rule names a source the document does not
    /// hold, or a quote asks for one.
    #[error("{item}: payment source `{payment_source}` is not among the payment sources")]
    UnknownPaymentSource {
        item: Box<ItemRef>,
        payment_source: String,
    },
    /// `commission_rule_invalid`: a rule whose range is empty, whose minimum is above its
    /// maximum, or whose percent is above 100.
    #[error("{item}: {reason}")]
    CommissionRule { item: Box<ItemRef>, reason: String },
    /// `commission_ranges_overlap`: two rules of one source whose amount ranges overlap.
    #[error("{item}: its amounts {range} for source `{payment_source}` overlap those of {other} ({other_range})")]
    RangesOverlap {
        item: Box<ItemRef>,
        range: String,
        other: Box<ItemRef>,
        other_range: String,
        payment_source: String,
    },
    /// `commission_ranges_gap`: the rules of one source leave amounts between two ranges
    /// without a rule.
    #[error("{item}: for source `{payment_source}` no rule covers the amounts from {gap_from} up to {gap_to} (after {previous})")]
    RangesGap {
        item: Box<ItemRef>,
        previous: Box<ItemRef>,
        payment_source: String,
        gap_from: Decimal,
        gap_to: Decimal,
    },
    /// `menu_too_many_roots` (spec §1.3, rule 1: at most three roots).
    #[error("{item}: the menu has {count} roots; at most three (payment, top-up, transfer)")]
    TooManyRoots { item: Box<ItemRef>, count: usize },
    /// `menu_root_duplicate`: two roots of one operation type.
    #[error("{item}: a second root for {operation} operations")]
    DuplicateRoot {
        item: Box<ItemRef>,
        operation: OperationType,
    },
    /// `menu_root_not_folder` (spec §1.3, rule 1: a root is a service folder).
    #[error("{item}: a root is a folder for its operation type, not a service")]
    RootNotFolder { item: Box<ItemRef> },
    /// `menu_operation_missing` (spec §1.3, rule 3: every item has an operation type).
    #[error("{item}: the item has no operation type (payment, top_up or transfer)")]
    OperationMissing { item: Box<ItemRef> },
    /// `menu_operation_unknown`
    #[error("{item}: `{value}` is not an operation type (payment, top_up or transfer)")]
    OperationUnknown { item: Box<ItemRef>, value: String },
    /// `menu_operation_mismatch` (spec §1.3, rule 2: a root holds only items of its type).
    #[error("{item}: a {operation} item under the {root} root")]
    OperationMismatch {
        item: Box<ItemRef>,
        operation: OperationType,
        root: OperationType,
    },
    /// `menu_unknown_service`: a service item names a service the document does not hold.
    #[error("{item}: service `{service}` is not among the services")]
    UnknownService { item: Box<ItemRef>, service: String },
    /// `menu_unknown_commission_profile`: a service item naming a commission profile the
    /// document does not hold.
    #[error("{item}: commission profile `{profile}` is not among the commission profiles")]
    UnknownProfile { item: Box<ItemRef>, profile: String },
    /// `menu_commission_profile_missing`: a service item without a commission profile.
    #[error("{item}: a service item needs a commission profile")]
    ProfileMissing { item: Box<ItemRef> },
    /// `menu_item_invalid`: a service with nested items, a folder with a commission profile,
    /// a menu deeper than [`super::menu::MAX_DEPTH`] levels.
    #[error("{item}: {reason}")]
    MenuItem { item: Box<ItemRef>, reason: String },
    /// `phone_ranges_overlap`: two capacity ranges share numbers.
    #[error("{item}: the range overlaps {other}")]
    PhoneRangesOverlap {
        item: Box<ItemRef>,
        other: Box<ItemRef>,
    },
    /// `service_not_in_menu`: a quote for a service the menu does not offer for the operation.
    #[error("service `{service}` is not in the menu for {operation} operations")]
    ServiceNotInMenu {
        service: String,
        operation: OperationType,
    },
    /// `menu_item_not_found`: a quote naming a menu item that is not a service item of the
    /// operation's root for the service.
    #[error("menu item `{item}` is not an item of service `{service}` for {operation} operations")]
    MenuItemNotFound {
        item: String,
        service: String,
        operation: OperationType,
    },
    /// `source_not_available`: the commission profile has no rule for the payment source,
    /// so the service cannot be paid from it (spec §3.1).
    #[error(
        "payment source `{payment_source}` is not available with commission profile `{profile}`"
    )]
    SourceNotAvailable {
        profile: String,
        payment_source: String,
    },
    /// `commission_no_rule`: no rule of the source covers the amount.
    #[error("commission profile `{profile}` has no rule for {amount} {currency} from source `{payment_source}`")]
    NoRule {
        profile: String,
        payment_source: String,
        amount: Decimal,
        currency: Currency,
    },
    /// `commission_currency_mismatch`
    #[error("commission profile `{profile}` is in {expected}; the amount is in {actual}")]
    CurrencyMismatch {
        profile: String,
        expected: Currency,
        actual: Currency,
    },
    /// `commission_amount_out_of_range`: an amount that is not positive or is above
    /// [`crate::money::MAX_AMOUNT`].
    #[error("{0} is not an operation amount (positive, at most 1000000000)")]
    AmountOutOfRange(Decimal),
}

impl DictionaryError {
    /// Stable machine-readable code (the REST API answers 422 with it; GraphQL gives it
    /// upper-cased in `extensions.code`).
    pub fn code(&self) -> &'static str {
        match self {
            DictionaryError::InvalidField { .. } => "dictionary_invalid_field",
            DictionaryError::Duplicate { .. } => "dictionary_duplicate",
            DictionaryError::DefaultTemplateMissing => "default_receipt_template_missing",
            DictionaryError::UnknownReceiptTemplate { .. } => "unknown_receipt_template",
            DictionaryError::ReceiptTemplate { .. } => "receipt_template_invalid",
            DictionaryError::UnknownPaymentSource { .. } => "unknown_payment_source",
            DictionaryError::CommissionRule { .. } => "commission_rule_invalid",
            DictionaryError::RangesOverlap { .. } => "commission_ranges_overlap",
            DictionaryError::RangesGap { .. } => "commission_ranges_gap",
            DictionaryError::TooManyRoots { .. } => "menu_too_many_roots",
            DictionaryError::DuplicateRoot { .. } => "menu_root_duplicate",
            DictionaryError::RootNotFolder { .. } => "menu_root_not_folder",
            DictionaryError::OperationMissing { .. } => "menu_operation_missing",
            DictionaryError::OperationUnknown { .. } => "menu_operation_unknown",
            DictionaryError::OperationMismatch { .. } => "menu_operation_mismatch",
            DictionaryError::UnknownService { .. } => "menu_unknown_service",
            DictionaryError::UnknownProfile { .. } => "menu_unknown_commission_profile",
            DictionaryError::ProfileMissing { .. } => "menu_commission_profile_missing",
            DictionaryError::MenuItem { .. } => "menu_item_invalid",
            DictionaryError::PhoneRangesOverlap { .. } => "phone_ranges_overlap",
            DictionaryError::ServiceNotInMenu { .. } => "service_not_in_menu",
            DictionaryError::MenuItemNotFound { .. } => "menu_item_not_found",
            DictionaryError::SourceNotAvailable { .. } => "source_not_available",
            DictionaryError::NoRule { .. } => "commission_no_rule",
            DictionaryError::CurrencyMismatch { .. } => "commission_currency_mismatch",
            DictionaryError::AmountOutOfRange(_) => "commission_amount_out_of_range",
        }
    }

    /// The item of the document the refusal names (none for the refusals of a quote and
    /// for the missing default template).
    pub fn item(&self) -> Option<&ItemRef> {
        let item = match self {
            DictionaryError::InvalidField { item, .. }
            | DictionaryError::Duplicate { item }
            | DictionaryError::UnknownReceiptTemplate { item, .. }
            | DictionaryError::ReceiptTemplate { item, .. }
            | DictionaryError::UnknownPaymentSource { item, .. }
            | DictionaryError::CommissionRule { item, .. }
            | DictionaryError::RangesOverlap { item, .. }
            | DictionaryError::RangesGap { item, .. }
            | DictionaryError::TooManyRoots { item, .. }
            | DictionaryError::DuplicateRoot { item, .. }
            | DictionaryError::RootNotFolder { item }
            | DictionaryError::OperationMissing { item }
            | DictionaryError::OperationUnknown { item, .. }
            | DictionaryError::OperationMismatch { item, .. }
            | DictionaryError::UnknownService { item, .. }
            | DictionaryError::UnknownProfile { item, .. }
            | DictionaryError::ProfileMissing { item }
            | DictionaryError::MenuItem { item, .. }
            | DictionaryError::PhoneRangesOverlap { item, .. } => item,
            DictionaryError::DefaultTemplateMissing
            | DictionaryError::ServiceNotInMenu { .. }
            | DictionaryError::MenuItemNotFound { .. }
            | DictionaryError::SourceNotAvailable { .. }
            | DictionaryError::NoRule { .. }
            | DictionaryError::CurrencyMismatch { .. }
            | DictionaryError::AmountOutOfRange(_) => return None,
        };
        Some(item)
    }
}
