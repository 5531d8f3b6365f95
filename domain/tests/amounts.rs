//! Amounts as text (issue 7, fault 9): a zero is never written `-0` / `-0.00` — not by the
//! formatters, not by `Money`, not by a wallet or a loan folded from events — and amounts read
//! back from events lose the sign of a zero.

use etr_domain::loan;
use etr_domain::money::{
    amount_str, format_amount, format_fixed, normalized, round_minor, Currency, Money,
};
use etr_domain::wallet::{self, Limits};
use etr_domain::ClientId;
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::de::value::{Error as ValueError, MapDeserializer, StrDeserializer};
use serde::Deserialize;
use std::str::FromStr;
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(9));
const WALLET: Uuid = Uuid::from_u128(90);
const PAYMENT: Uuid = Uuid::from_u128(91);

/// `-0`, `-0.00`, `-.0`…: a zero written with a sign.
fn is_negative_zero_text(text: &str) -> bool {
    text.strip_prefix('-')
        .is_some_and(|rest| rest.chars().all(|c| c == '0' || c == '.'))
}

/// A `Money` built by hand (as a test or a careless caller might), bypassing `Money::new`.
fn raw(amount: Decimal) -> Money {
    Money {
        amount,
        currency: Currency::Rub,
    }
}

fn rub(amount: &str) -> Money {
    Money::parse_positive(amount, "RUB").unwrap_or_else(|e| panic!("{amount}: {e}"))
}

fn opened() -> wallet::Wallet {
    wallet::evolve(
        wallet::Wallet::default(),
        &wallet::Event::WalletOpened {
            wallet_id: WALLET,
            client_id: CLIENT,
            currency: Currency::Rub,
            limits: Limits::registered(),
        },
    )
}

fn fold(state: wallet::Wallet, events: &[wallet::Event]) -> wallet::Wallet {
    events.iter().fold(state, wallet::evolve)
}

#[test]
fn a_wallet_emptied_by_a_payment_or_a_transfer_shows_zero_without_a_sign() {
    // Given a wallet topped up with 100.00,
    let given = fold(
        opened(),
        &[wallet::Event::WalletToppedUp {
            operation_id: Uuid::from_u128(1),
            amount: rub("100.00"),
            source: "card".into(),
        }],
    );
    // when the whole of it is captured by a payment,
    let paid = fold(
        given.clone(),
        &[
            wallet::Event::FundsHeld {
                payment_id: PAYMENT,
                amount: rub("100"),
            },
            wallet::Event::HoldCaptured {
                payment_id: PAYMENT,
                amount: rub("100"),
            },
        ],
    );
    // or sent to another wallet,
    let sent = fold(
        given,
        &[wallet::Event::TransferSent {
            transfer_id: Uuid::from_u128(2),
            to_wallet_id: Uuid::from_u128(3),
            amount: rub("100.00"),
        }],
    );
    // then balance, held and available are written "0.00".
    for w in [paid, sent] {
        assert_eq!(format_amount(w.balance), "0.00");
        assert_eq!(format_amount(w.held()), "0.00");
        assert_eq!(format_amount(w.available()), "0.00");
        assert_eq!(w.balance.to_string(), "0.00");
        assert!(!w.available().is_sign_negative());
    }
}

#[test]
fn a_negative_zero_in_an_event_does_not_reach_the_wallet_state() {
    // Given an opened wallet (balance 0.00), when events carry a hand-built `-0.00`
    // (rust_decimal: 0.00 + -0.00 = -0.00, and Σ of one -0.00 hold is -0.00),
    let w = fold(
        opened(),
        &[
            wallet::Event::WalletToppedUp {
                operation_id: Uuid::from_u128(1),
                amount: raw(-dec!(0.00)),
                source: "card".into(),
            },
            wallet::Event::FundsHeld {
                payment_id: PAYMENT,
                amount: raw(-dec!(0.00)),
            },
        ],
    );
    // then nothing of the wallet is negative zero.
    for amount in [w.balance, w.held(), w.available()] {
        assert!(!amount.is_sign_negative(), "{amount:?}");
        assert!(!is_negative_zero_text(&amount.to_string()));
    }
    assert_eq!(w.balance.to_string(), "0.00");
    assert_eq!(w.available().to_string(), "0.00");
}

#[test]
fn a_loan_repaid_in_full_owes_zero_without_a_sign() {
    // Given a loan of 100.00, when 40.00 and then 60.00 are repaid,
    let loan = [
        loan::Event::LoanIssued {
            loan_id: Uuid::from_u128(5),
            application_id: Uuid::from_u128(6),
            principal: rub("100.00"),
            term_days: 30,
            daily_rate_percent: "0.8".into(),
            terms: None,
        },
        loan::Event::RepaymentAccepted {
            repayment_id: Uuid::from_u128(7),
            amount: rub("40"),
        },
        loan::Event::RepaymentAccepted {
            repayment_id: Uuid::from_u128(8),
            amount: rub("60.00"),
        },
    ]
    .iter()
    .fold(loan::Loan::default(), |l, e| loan::evolve(l, CLIENT, e));
    // then the outstanding amount is "0.00".
    assert_eq!(loan.outstanding.to_string(), "0.00");
    assert!(!loan.outstanding.is_sign_negative());
}

#[test]
fn amounts_read_from_events_lose_the_sign_of_a_zero() {
    // Given the text of an amount as an older writer might have put it on the log,
    for text in ["-0", "-0.00", "0.00", "12.50"] {
        // when it is read with the serde form of amounts,
        let read = amount_str::deserialize(StrDeserializer::<ValueError>::new(text));
        // then a zero is unsigned and everything else is exact.
        let read = read.unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(!is_negative_zero_text(&read.to_string()), "{text} → {read}");
        assert_eq!(Some(read), Decimal::from_str(text).ok());
    }
    // And a whole Money read from an event.
    let money = Money::deserialize(MapDeserializer::<_, ValueError>::new(
        [("amount", "-0.00"), ("currency", "RUB")].into_iter(),
    ));
    assert_eq!(money.map(|m| m.to_string()), Ok("0.00 RUB".to_owned()));
}

// ---- properties ------------------------------------------------------------------------

/// Ways a `Decimal` comes about in money code, negative zeros among them.
#[derive(Debug, Clone)]
enum Step {
    Neg,
    Ceil,
    Trunc,
    RoundMinor,
    Rescale(u32),
    SubSelf,
    MulBy(i64),
    AddTo(Decimal),
    SubFrom(Decimal),
}

fn decimal() -> impl Strategy<Value = Decimal> {
    prop_oneof![
        (any::<i64>(), 0u32..=28).prop_map(|(m, s)| Decimal::new(m, s)),
        // Near zero, either side: what rounding turns into a (negative) zero.
        (-10_000i64..=10_000, 0u32..=6).prop_map(|(m, s)| Decimal::new(m, s)),
        (0u32..=28).prop_map(|s| -Decimal::new(0, s)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Neg),
        Just(Step::Ceil),
        Just(Step::Trunc),
        Just(Step::RoundMinor),
        (0u32..=6).prop_map(Step::Rescale),
        Just(Step::SubSelf),
        (-3i64..=3).prop_map(Step::MulBy),
        decimal().prop_map(Step::AddTo),
        decimal().prop_map(Step::SubFrom),
    ]
}

fn apply(value: Decimal, step: &Step) -> Option<Decimal> {
    Some(match step {
        Step::Neg => -value,
        Step::Ceil => value.ceil(),
        Step::Trunc => value.trunc(),
        Step::RoundMinor => round_minor(value, Currency::Rub),
        Step::Rescale(scale) => {
            let mut v = value;
            v.rescale(*scale);
            v
        }
        Step::SubSelf => value.checked_sub(value)?,
        Step::MulBy(k) => value.checked_mul(Decimal::from(*k))?,
        Step::AddTo(other) => other.checked_add(value)?,
        Step::SubFrom(other) => other.checked_sub(value)?,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Whatever arithmetic produced an amount, no formatter writes it as a negative zero
    /// (a leading `-0` only ever starts a non-zero amount such as `-0.50`), the exact forms
    /// keep the value, and the fixed form is negative exactly when its rounded value is.
    #[test]
    fn formatting_never_yields_a_negative_zero(
        start in decimal(),
        steps in prop::collection::vec(step(), 0..6),
    ) {
        let mut value = start;
        for s in &steps {
            if let Some(next) = apply(value, s) {
                value = next;
            }
        }
        let exact = format_amount(value);
        prop_assert!(!is_negative_zero_text(&exact), "{value:?} → {exact}");
        prop_assert_eq!(Decimal::from_str(&exact).ok(), Some(value));

        let fixed = format_fixed(value, 2);
        prop_assert!(!is_negative_zero_text(&fixed), "{value:?} → {fixed}");
        let rounded = round_minor(value, Currency::Rub);
        prop_assert_eq!(fixed.starts_with('-'), rounded < Decimal::ZERO, "{:?} → {}", value, fixed);
        prop_assert_eq!(rounded.to_string(), fixed);

        let money = Money::new(value, Currency::Usd).to_string();
        prop_assert!(!is_negative_zero_text(money.trim_end_matches(" USD")), "{value:?} → {money}");
        prop_assert_eq!(raw(value).to_string(), format!("{exact} RUB"));

        let n = normalized(value);
        prop_assert_eq!(n, value);
        prop_assert_eq!(n.scale(), value.scale());
        prop_assert_eq!(n.is_sign_negative(), value < Decimal::ZERO);
    }
}
