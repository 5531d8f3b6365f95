//! Commission profiles (spec §1.3, item 2; §3.1): the commission charged to the client for an
//! operation, by the operation's amount and its payment source.
//!
//! A profile holds rules; a rule applies to operations paid from one payment source whose
//! amount is in its range [`from`, `to`) (`to` absent: no upper bound). The commission of an
//! amount `a` under the rule is
//!
//! ```text
//! clamp(fixed + a × percent / 100, min, max)
//! ```
//!
//! rounded to the currency's minor unit (kopecks) with banker's rounding, half to even
//! ([`crate::money::round_minor`]): `250.50 × 1 % = 2.505 → 2.50`. Every figure of a rule is
//! non-negative and `min ≤ max`, so a commission is never negative and always within the
//! rule's bounds; within one rule it never decreases as the amount grows (monotone), while
//! the next range may charge less (a profile may lower the percent for larger amounts).
//!
//! The rules of one source may not overlap and may leave no gap between their ranges, so
//! every amount from the lowest `from` of a source to its highest `to` has exactly one rule;
//! an amount outside that span has none and is refused ([`DictionaryError::NoRule`]). A
//! source without rules is not available for the operations the profile applies to
//! ([`DictionaryError::SourceNotAvailable`]).

use rust_decimal::Decimal;
use std::collections::BTreeSet;

use super::document::{CommissionProfileDocument, CommissionRuleDocument};
use super::error::{DictionaryError, ItemRef};
use super::fields::{decimal, text, ProfileId, SourceId};
use crate::money::{round_minor, Currency, Money, MAX_AMOUNT};

/// The most digits after the point a percent may have (`1.2345` %).
pub const PERCENT_SCALE: u32 = 4;

/// A commission profile, parsed: its rules sorted by source and amount.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommissionProfile {
    pub id: ProfileId,
    pub name: String,
    /// The currency of its amounts and of the operations it applies to.
    pub currency: Currency,
    /// Sorted by source, then by `from`; per source contiguous and not overlapping.
    pub rules: Vec<CommissionRule>,
}

/// One rule of a profile. Amounts in the profile's currency at its minor-unit scale.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommissionRule {
    /// Its position in the document's `rules` (0-based), to name it.
    pub index: usize,
    pub source: SourceId,
    /// The lowest amount the rule applies to, included.
    pub from: Decimal,
    /// The amount from which it no longer applies; none: no upper bound.
    pub to: Option<Decimal>,
    pub fixed: Decimal,
    /// Percent of the amount, 0–100, at most [`PERCENT_SCALE`] places.
    pub percent: Decimal,
    pub min: Decimal,
    pub max: Option<Decimal>,
}

impl CommissionRule {
    /// Whether `amount` is in [`from`, `to`).
    pub fn covers(&self, amount: Decimal) -> bool {
        amount >= self.from && self.to.is_none_or(|to| amount < to)
    }

    /// `[from, to)` for messages.
    pub fn range(&self) -> String {
        match self.to {
            Some(to) => format!("[{}, {})", self.from, to),
            None => format!("[{}, ∞)", self.from),
        }
    }

    /// The commission of `amount` under this rule, before it is known the rule covers it:
    /// `clamp(fixed + amount × percent / 100, min, max)` rounded half to even to the minor
    /// unit of `currency`. `None` when the arithmetic overflows (an amount far above
    /// [`MAX_AMOUNT`]).
    fn charge(&self, amount: Decimal, currency: Currency) -> Option<Decimal> {
        let share = amount
            .checked_mul(self.percent)?
            .checked_div(Decimal::ONE_HUNDRED)?;
        let mut raw = self.fixed.checked_add(share)?;
        if raw < self.min {
            raw = self.min;
        }
        if let Some(max) = self.max {
            if raw > max {
                raw = max;
            }
        }
        Some(round_minor(raw, currency))
    }
}

impl CommissionProfile {
    /// Parses a profile and checks its rules: amounts at most two places and at most
    /// [`MAX_AMOUNT`], `from < to`, a percent of 0–100 with at most four places, `min ≤ max`,
    /// every source among `sources`, and per source no overlap and no gap between ranges.
    ///
    /// Errors: [`DictionaryError::InvalidField`], [`DictionaryError::CommissionRule`],
    /// [`DictionaryError::UnknownPaymentSource`], [`DictionaryError::RangesOverlap`],
    /// [`DictionaryError::RangesGap`], each naming the rule (`<profile>/rules[i]`).
    pub(crate) fn parse(
        doc: &CommissionProfileDocument,
        index: usize,
        sources: &BTreeSet<SourceId>,
    ) -> Result<CommissionProfile, DictionaryError> {
        let at = |field: &'static str, reason: String| DictionaryError::InvalidField {
            item: ItemRef::new(
                "commission_profiles",
                &doc.id,
                format!("commission_profiles[{index}]"),
            ),
            field,
            reason,
        };
        let id = ProfileId::parse(&doc.id).map_err(|e| at("id", e.to_string()))?;
        let name = text(&doc.name, 200).map_err(|r| at("name", r))?;
        let currency = doc
            .currency
            .parse::<Currency>()
            .map_err(|e| at("currency", e.to_string()))?;
        let mut rules = Vec::with_capacity(doc.rules.len());
        for (i, rule) in doc.rules.iter().enumerate() {
            rules.push(parse_rule(&id, i, rule, currency, sources)?);
        }
        rules.sort_by(|a, b| (&a.source, a.from).cmp(&(&b.source, b.from)));
        for pair in rules.windows(2) {
            let [previous, next] = pair else { continue };
            if previous.source != next.source {
                continue;
            }
            let item = rule_ref(&id, next.index);
            match previous.to {
                Some(to) if to == next.from => {}
                Some(to) if to < next.from => {
                    return Err(DictionaryError::RangesGap {
                        item,
                        previous: rule_ref(&id, previous.index),
                        payment_source: next.source.to_string(),
                        gap_from: to,
                        gap_to: next.from,
                    })
                }
                _ => {
                    return Err(DictionaryError::RangesOverlap {
                        item,
                        range: next.range(),
                        other: rule_ref(&id, previous.index),
                        other_range: previous.range(),
                        payment_source: next.source.to_string(),
                    })
                }
            }
        }
        Ok(CommissionProfile {
            id,
            name,
            currency,
            rules,
        })
    }

    /// The sources the profile has rules for.
    pub fn sources(&self) -> BTreeSet<&SourceId> {
        self.rules.iter().map(|r| &r.source).collect()
    }

    /// The rule of `source` whose range covers `amount`, if any.
    pub fn rule_for(&self, amount: Decimal, source: &SourceId) -> Option<&CommissionRule> {
        self.rules
            .iter()
            .find(|r| &r.source == source && r.covers(amount))
    }
}

fn rule_ref(profile: &ProfileId, index: usize) -> Box<ItemRef> {
    ItemRef::new(
        "commission_profiles",
        profile.as_str(),
        format!("{profile}/rules[{index}]"),
    )
}

fn parse_rule(
    profile: &ProfileId,
    index: usize,
    doc: &CommissionRuleDocument,
    currency: Currency,
    sources: &BTreeSet<SourceId>,
) -> Result<CommissionRule, DictionaryError> {
    let at = |field: &'static str, reason: String| DictionaryError::InvalidField {
        item: rule_ref(profile, index),
        field,
        reason,
    };
    let minor = currency.minor_digits();
    let amount = |field: &'static str, raw: &str| -> Result<Decimal, DictionaryError> {
        let value = decimal(raw, false, minor).map_err(|r| at(field, r))?;
        if value > MAX_AMOUNT {
            return Err(at(field, format!("{value} is above {MAX_AMOUNT}")));
        }
        Ok(round_minor(value, currency))
    };
    let optional = |field: &'static str, raw: &Option<String>| {
        raw.as_deref().map(|r| amount(field, r)).transpose()
    };
    let source = SourceId::parse(&doc.source).map_err(|e| at("source", e.to_string()))?;
    if !sources.contains(&source) {
        return Err(DictionaryError::UnknownPaymentSource {
            item: rule_ref(profile, index),
            payment_source: source.to_string(),
        });
    }
    let from = amount("from", &doc.from)?;
    let to = optional("to", &doc.to)?;
    let fixed =
        optional("fixed", &doc.fixed)?.unwrap_or_else(|| round_minor(Decimal::ZERO, currency));
    let percent = match doc.percent.as_deref() {
        Some(raw) => decimal(raw, false, PERCENT_SCALE).map_err(|r| at("percent", r))?,
        None => Decimal::ZERO,
    };
    let min = optional("min", &doc.min)?.unwrap_or_else(|| round_minor(Decimal::ZERO, currency));
    let max = optional("max", &doc.max)?;
    let refuse = |reason: String| DictionaryError::CommissionRule {
        item: rule_ref(profile, index),
        reason,
    };
    if let Some(to) = to {
        if to <= from {
            return Err(refuse(format!(
                "the range [{from}, {to}) is empty: `to` must be above `from`"
            )));
        }
    }
    if percent > Decimal::ONE_HUNDRED {
        return Err(refuse(format!("a percent of {percent} is above 100")));
    }
    if let Some(max) = max {
        if min > max {
            return Err(refuse(format!(
                "the minimum commission {min} is above the maximum {max}"
            )));
        }
    }
    Ok(CommissionRule {
        index,
        source,
        from,
        to,
        fixed,
        percent,
        min,
        max,
    })
}

/// The commission of an operation of `amount` paid from `source` under `profile`, in the
/// profile's currency at its minor-unit scale (kopecks), rounded half to even:
/// `clamp(fixed + amount × percent / 100, min, max)` of the rule of `source` whose range
/// [`from`, `to`) covers the amount (spec §1.3, item 2: the commission charged to the client).
///
/// Errors: [`DictionaryError::AmountOutOfRange`] (not positive, or above [`MAX_AMOUNT`]);
/// [`DictionaryError::CurrencyMismatch`]; [`DictionaryError::SourceNotAvailable`] (no rule
/// for the source); [`DictionaryError::NoRule`] (the source's rules do not cover the amount).
pub fn commission(
    profile: &CommissionProfile,
    amount: Money,
    source: &SourceId,
) -> Result<Money, DictionaryError> {
    if amount.amount <= Decimal::ZERO || amount.amount > MAX_AMOUNT {
        return Err(DictionaryError::AmountOutOfRange(amount.amount));
    }
    if amount.currency != profile.currency {
        return Err(DictionaryError::CurrencyMismatch {
            profile: profile.id.to_string(),
            expected: profile.currency,
            actual: amount.currency,
        });
    }
    if !profile.rules.iter().any(|r| &r.source == source) {
        return Err(DictionaryError::SourceNotAvailable {
            profile: profile.id.to_string(),
            payment_source: source.to_string(),
        });
    }
    let no_rule = || DictionaryError::NoRule {
        profile: profile.id.to_string(),
        payment_source: source.to_string(),
        amount: amount.amount,
        currency: amount.currency,
    };
    let rule = profile
        .rule_for(amount.amount, source)
        .ok_or_else(no_rule)?;
    let charged = rule
        .charge(amount.amount, profile.currency)
        .ok_or_else(no_rule)?;
    Ok(Money::new(charged, profile.currency))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    fn sources() -> BTreeSet<SourceId> {
        ["wallet", "card"]
            .into_iter()
            .map(|s| SourceId::parse(s).unwrap())
            .collect()
    }

    fn rule(source: &str, from: &str, to: Option<&str>) -> CommissionRuleDocument {
        CommissionRuleDocument {
            source: source.into(),
            from: from.into(),
            to: to.map(Into::into),
            fixed: None,
            percent: None,
            min: None,
            max: None,
        }
    }

    fn profile(rules: Vec<CommissionRuleDocument>) -> Result<CommissionProfile, DictionaryError> {
        CommissionProfile::parse(
            &CommissionProfileDocument {
                id: "utilities".into(),
                name: "Коммунальные услуги".into(),
                currency: "RUB".into(),
                rules,
            },
            0,
            &sources(),
        )
    }

    fn rub(amount: &str) -> Money {
        Money::parse_positive(amount, "RUB").unwrap()
    }

    fn wallet() -> SourceId {
        SourceId::parse("wallet").unwrap()
    }

    /// The profile of the examples: from the wallet 1 % (at least 5.00) up to 5,000.00,
    /// 0.8 % up to 15,000.00, then 0.5 % at most 150.00; from a card 15.00 + 1.2 %, at most
    /// 500.00.
    fn utilities() -> CommissionProfile {
        let mut r = vec![
            rule("wallet", "0.00", Some("5000.00")),
            rule("wallet", "5000.00", Some("15000.00")),
            rule("wallet", "15000.00", None),
            rule("card", "0.00", None),
        ];
        r[0].percent = Some("1".into());
        r[0].min = Some("5.00".into());
        r[1].percent = Some("0.8".into());
        r[2].percent = Some("0.5".into());
        r[2].max = Some("150.00".into());
        r[3].fixed = Some("15.00".into());
        r[3].percent = Some("1.2".into());
        r[3].max = Some("500.00".into());
        profile(r).unwrap()
    }

    #[test]
    fn given_the_utilities_profile_when_amounts_are_paid_then_the_commissions_are_exact() {
        let p = utilities();
        let card = SourceId::parse("card").unwrap();
        for (amount, source, expected) in [
            // 1 % of 100.00 = 1.00, raised to the minimum 5.00
            ("100.00", &wallet(), "5.00"),
            // 1 % of 1,234.56 = 12.3456 → 12.35
            ("1234.56", &wallet(), "12.35"),
            // 1 % of 4,999.99 = 49.9999 → 50.00, the last amount of the first range
            ("4999.99", &wallet(), "50.00"),
            // the next range starts at its `from`: 0.8 % of 5,000.00
            ("5000.00", &wallet(), "40.00"),
            // 0.5 % of 40,000.00 = 200.00, capped at 150.00
            ("40000.00", &wallet(), "150.00"),
            ("20000.00", &wallet(), "100.00"),
            // 15.00 + 1.2 % of 1,000.00 = 27.00
            ("1000.00", &card, "27.00"),
            // 15.00 + 1.2 % of 100,000.00 = 1,215.00, capped at 500.00
            ("100000.00", &card, "500.00"),
        ] {
            let got = commission(&p, rub(amount), source).unwrap();
            assert_eq!(got.amount.to_string(), expected, "{amount} from {source}");
            assert_eq!(got.currency, Currency::Rub);
        }
    }

    #[test]
    fn halves_are_rounded_to_the_even_kopeck() {
        let mut r = rule("wallet", "0.00", None);
        r.percent = Some("1".into());
        let p = profile(vec![r]).unwrap();
        // 1 % of 250.50 = 2.505 → 2.50 (half to even), not 2.51
        assert_eq!(
            commission(&p, rub("250.50"), &wallet()).unwrap().amount,
            dec!(2.50)
        );
        // 1 % of 251.50 = 2.515 → 2.52
        assert_eq!(
            commission(&p, rub("251.50"), &wallet()).unwrap().amount,
            dec!(2.52)
        );
        // 1 % of 0.01 = 0.0001 → 0.00: no commission, never negative
        assert_eq!(
            commission(&p, rub("0.01"), &wallet())
                .unwrap()
                .amount
                .to_string(),
            "0.00"
        );
    }

    #[test]
    fn given_no_rule_for_the_source_or_the_amount_then_the_quote_is_refused() {
        let p = profile(vec![rule("wallet", "10.00", Some("15000.00"))]).unwrap();
        let card = SourceId::parse("card").unwrap();
        assert_eq!(
            commission(&p, rub("100.00"), &card).unwrap_err().code(),
            "source_not_available"
        );
        assert_eq!(
            commission(&p, rub("9.99"), &wallet()).unwrap_err().code(),
            "commission_no_rule"
        );
        assert_eq!(
            commission(&p, rub("15000.00"), &wallet())
                .unwrap_err()
                .code(),
            "commission_no_rule"
        );
        assert_eq!(
            commission(&p, Money::parse_positive("100", "USD").unwrap(), &wallet())
                .unwrap_err()
                .code(),
            "commission_currency_mismatch"
        );
        assert_eq!(
            commission(&p, Money::new(dec!(-1), Currency::Rub), &wallet())
                .unwrap_err()
                .code(),
            "commission_amount_out_of_range"
        );
    }

    #[test]
    fn given_overlapping_ranges_then_the_profile_is_refused_naming_the_rule() {
        let e = profile(vec![
            rule("wallet", "0.00", Some("1000.00")),
            rule("card", "0.00", None),
            rule("wallet", "999.99", None),
        ])
        .unwrap_err();
        assert_eq!(e.code(), "commission_ranges_overlap");
        assert_eq!(e.item().unwrap().path, "utilities/rules[2]");
        assert!(e.to_string().contains("utilities/rules[0]"), "{e}");
        // An open-ended range followed by another of the same source overlaps it.
        let e = profile(vec![
            rule("wallet", "0.00", None),
            rule("wallet", "500.00", Some("600.00")),
        ])
        .unwrap_err();
        assert_eq!(e.code(), "commission_ranges_overlap");
        // The same range twice.
        let e = profile(vec![
            rule("wallet", "0.00", Some("10.00")),
            rule("wallet", "0.00", Some("10.00")),
        ])
        .unwrap_err();
        assert_eq!(e.code(), "commission_ranges_overlap");
    }

    #[test]
    fn given_a_gap_between_ranges_then_the_profile_is_refused_naming_the_rule() {
        let e = profile(vec![
            rule("wallet", "1000.00", None),
            rule("wallet", "0.00", Some("999.99")),
        ])
        .unwrap_err();
        assert_eq!(e.code(), "commission_ranges_gap");
        assert_eq!(e.item().unwrap().path, "utilities/rules[0]");
        assert!(e.to_string().contains("999.99 up to 1000.00"), "{e}");
    }

    #[test]
    fn given_a_malformed_rule_then_the_profile_is_refused_naming_it() {
        let mut r = rule("wallet", "10.00", Some("10.00"));
        assert_eq!(
            profile(vec![r.clone()]).unwrap_err().code(),
            "commission_rule_invalid"
        );
        r.to = None;
        r.percent = Some("100.01".into());
        assert_eq!(
            profile(vec![r.clone()]).unwrap_err().code(),
            "commission_rule_invalid"
        );
        r.percent = Some("1.23456".into());
        assert_eq!(
            profile(vec![r.clone()]).unwrap_err().code(),
            "dictionary_invalid_field"
        );
        r.percent = None;
        r.min = Some("10.00".into());
        r.max = Some("9.99".into());
        assert_eq!(
            profile(vec![r.clone()]).unwrap_err().code(),
            "commission_rule_invalid"
        );
        r.max = None;
        r.fixed = Some("-1.00".into());
        let e = profile(vec![r.clone()]).unwrap_err();
        assert_eq!(e.code(), "dictionary_invalid_field");
        assert!(e.to_string().contains("`fixed`"), "{e}");
        r.fixed = Some("1.001".into());
        assert_eq!(
            profile(vec![r.clone()]).unwrap_err().code(),
            "dictionary_invalid_field"
        );
        r.fixed = Some("2000000000.00".into());
        assert_eq!(
            profile(vec![r.clone()]).unwrap_err().code(),
            "dictionary_invalid_field"
        );
        r.fixed = None;
        r.source = "sbp".into();
        let e = profile(vec![r]).unwrap_err();
        assert_eq!(e.code(), "unknown_payment_source");
        assert_eq!(e.item().unwrap().path, "utilities/rules[0]");
    }

    /// A random rule's figures: fixed, percent, min, max (max ≥ min when present).
    fn figures() -> impl Strategy<Value = (i64, i64, i64, Option<i64>)> {
        (
            0i64..100_000,
            0i64..1_000_000,
            0i64..100_000,
            proptest::option::of(0i64..1_000_000),
        )
            .prop_map(|(fixed, percent, min, max)| (fixed, percent, min, max.map(|m| m.max(min))))
    }

    fn random_profile(
        bounds: Vec<i64>,
        rules: Vec<(i64, i64, i64, Option<i64>)>,
    ) -> CommissionProfile {
        // Contiguous ranges between sorted distinct bounds, the last open-ended.
        let mut cuts: Vec<i64> = bounds;
        cuts.push(0);
        cuts.sort_unstable();
        cuts.dedup();
        let docs = cuts
            .iter()
            .enumerate()
            .map(|(i, from)| {
                let (fixed, percent, min, max) = rules[i % rules.len()];
                CommissionRuleDocument {
                    source: "wallet".into(),
                    from: Decimal::new(*from, 2).to_string(),
                    to: cuts.get(i + 1).map(|to| Decimal::new(*to, 2).to_string()),
                    fixed: Some(Decimal::new(fixed, 2).to_string()),
                    percent: Some(Decimal::new(percent, 4).to_string()),
                    min: Some(Decimal::new(min, 2).to_string()),
                    max: max.map(|m| Decimal::new(m, 2).to_string()),
                }
            })
            .collect();
        profile(docs).expect("a well-formed random profile")
    }

    proptest! {
        #[test]
        fn a_commission_is_exact_never_negative_and_within_its_rules_bounds(
            bounds in proptest::collection::vec(1i64..100_000_000_000, 0..6),
            rules in proptest::collection::vec(figures(), 1..4),
            amount in 1i64..100_000_000_000,
        ) {
            let p = random_profile(bounds, rules);
            let amount = Money::new(Decimal::new(amount, 2), Currency::Rub);
            let got = commission(&p, amount, &wallet()).unwrap();
            let rule = p.rule_for(amount.amount, &wallet()).unwrap();
            prop_assert!(got.amount >= Decimal::ZERO);
            prop_assert!(!got.amount.is_sign_negative());
            prop_assert_eq!(got.amount.scale(), 2);
            prop_assert!(got.amount >= rule.min);
            if let Some(max) = rule.max {
                prop_assert!(got.amount <= max);
            }
            // Exact: the formula in decimals, rounded once, half to even.
            let raw = rule.fixed + amount.amount * rule.percent / dec!(100);
            let clamped = rule.max.map_or(raw.max(rule.min), |m| raw.max(rule.min).min(m));
            prop_assert_eq!(got.amount, round_minor(clamped, Currency::Rub));
        }

        #[test]
        fn within_one_rule_a_larger_amount_never_costs_less(
            bounds in proptest::collection::vec(1i64..100_000_000_000, 0..6),
            rules in proptest::collection::vec(figures(), 1..4),
            a in 1i64..100_000_000_000,
            b in 1i64..100_000_000_000,
        ) {
            let p = random_profile(bounds, rules);
            let (low, high) = (Decimal::new(a.min(b), 2), Decimal::new(a.max(b), 2));
            let same_rule = p.rule_for(low, &wallet()).map(|r| r.index)
                == p.rule_for(high, &wallet()).map(|r| r.index);
            prop_assume!(same_rule);
            let c_low = commission(&p, Money::new(low, Currency::Rub), &wallet()).unwrap();
            let c_high = commission(&p, Money::new(high, Currency::Rub), &wallet()).unwrap();
            prop_assert!(c_low.amount <= c_high.amount);
        }

        #[test]
        fn every_amount_from_zero_has_exactly_one_rule(
            bounds in proptest::collection::vec(1i64..100_000_000_000, 0..6),
            rules in proptest::collection::vec(figures(), 1..4),
            amount in 1i64..100_000_000_000,
        ) {
            let p = random_profile(bounds, rules);
            let amount = Decimal::new(amount, 2);
            let covering = p.rules.iter().filter(|r| r.covers(amount)).count();
            prop_assert_eq!(covering, 1);
        }
    }
}
