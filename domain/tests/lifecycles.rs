//! Lifecycle state machines of loan applications and loans.

use etr_domain::application::{self, Contract, Identification, Offer, Scoring, Verdict};
use etr_domain::client;
use etr_domain::loan;
use etr_domain::personal::Sealed;
use etr_domain::{
    decide, evolve, Actor, AggregateKind, AggregateRef, ClientId, Command, Context, Currency,
    Money, State,
};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use time::macros::{date, datetime};
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(7));
const APP: Uuid = Uuid::from_u128(70);
const LOAN: Uuid = Uuid::from_u128(71);
const OFFER: Uuid = Uuid::from_u128(72);
const BINDING: Uuid = Uuid::from_u128(73);

fn ctx() -> Context {
    Context::new(datetime!(2026-11-24 09:00 UTC), Actor::system("test"))
}

fn run(
    states: &mut BTreeMap<AggregateRef, State>,
    command: Command,
) -> Result<Vec<&'static str>, String> {
    let events = decide(states, &command, &ctx()).map_err(|e| e.code().to_owned())?;
    for (t, e) in &events {
        let s = states.remove(t).unwrap_or_else(|| State::initial(*t));
        states.insert(*t, evolve(s, CLIENT, e));
    }
    Ok(events.iter().map(|(_, e)| e.name()).collect())
}

fn app(command: application::Command) -> Command {
    Command::Application {
        client_id: CLIENT,
        application_id: APP,
        command,
    }
}

fn status(states: &BTreeMap<AggregateRef, State>) -> application::Status {
    match states.get(&AggregateRef {
        kind: AggregateKind::Application,
        id: APP,
    }) {
        Some(State::Application(a)) => a.status,
        _ => application::Status::New,
    }
}

fn rub(n: i64) -> Money {
    Money::new(Decimal::new(n * 100, 2), Currency::Rub)
}

fn client(command: client::Command) -> Command {
    Command::Client {
        client_id: CLIENT,
        command,
    }
}

fn sealed() -> Sealed {
    Sealed {
        key_version: 1,
        nonce: "00".repeat(24),
        ciphertext: "ab".repeat(16),
    }
}

fn registered() -> BTreeMap<AggregateRef, State> {
    let mut s = BTreeMap::new();
    run(
        &mut s,
        client(client::Command::RegisterClient {
            personal: sealed(),
            registered_by: "shop-1".into(),
        }),
    )
    .unwrap();
    s
}

fn create(submit: bool) -> Command {
    app(application::Command::CreateApplication {
        product_id: Some("payday-30".into()),
        requested: rub(10_000),
        term: 30,
        partner_id: Some("shop-1".into()),
        channel: "partner".into(),
        cart: vec![],
        submit,
    })
}

fn offer() -> Offer {
    let product = etr_domain::product::Product {
        id: "payday-30".into(),
        name: "До зарплаты".into(),
        min_amount: Decimal::from(1_000),
        max_amount: Decimal::from(30_000),
        pricing: etr_domain::product::Pricing::Daily {
            daily_rate: Decimal::new(8, 3),
            min_days: 7,
            max_days: 30,
        },
        penalty_rate: rust_decimal::Decimal::new(20, 2),
        prolongation_fee: rust_decimal::Decimal::ZERO,
    };
    let o = etr_domain::product::offer(&product, Decimal::from(10_000), 30, date!(2026 - 11 - 24))
        .unwrap();
    Offer {
        offer_id: OFFER,
        product_id: o.product_id,
        amount: rub(10_000),
        term: o.term,
        term_unit: "days".into(),
        contract_date: o.contract_date,
        schedule: o.instalments,
        charges: o.charges,
        psk_percent: o.psk.percent,
        psk_money: o.psk.money,
        servicing: Some(product.servicing()),
    }
}

fn client_state(states: &BTreeMap<AggregateRef, State>) -> client::Client {
    match states.get(&AggregateRef::client(CLIENT)) {
        Some(State::Client(c)) => (**c).clone(),
        _ => client::Client::default(),
    }
}

/// Runs an application from creation to `ContractGenerated`.
fn contract_generated() -> BTreeMap<AggregateRef, State> {
    let mut s = registered();
    run(&mut s, create(true)).unwrap();
    run(
        &mut s,
        app(application::Command::RecordIdentification {
            outcome: Identification::Identified {
                method: "snils".into(),
            },
        }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::RecordLegalChecks {
            outcome: Verdict::Passed,
        }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::RecordScoring {
            outcome: Scoring::Approved {
                offers: vec![offer()],
                score: 720,
                pdn_percent: Some(Decimal::new(251, 1)),
                expires_at: datetime!(2026-11-27 09:00 UTC),
            },
        }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::ChooseOffer { offer_id: OFFER }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::RecordContract {
            contract: Contract {
                contract_id: Uuid::from_u128(80),
                document_sha256: "ab".repeat(32),
                location: "agreements/70/ab.pdf".into(),
                template: "loan_agreement".into(),
            },
        }),
    )
    .unwrap();
    s
}

/// Runs an application from creation to `Signed`.
fn signed() -> BTreeMap<AggregateRef, State> {
    let mut s = contract_generated();
    run(
        &mut s,
        app(application::Command::SignContract {
            document_sha256: "AB".repeat(32),
            otp_purpose: "sign".into(),
        }),
    )
    .unwrap();
    s
}

#[test]
fn application_goes_from_creation_to_a_disbursed_loan_with_its_schedule_and_psk() {
    // Given a signed contract
    let mut s = signed();
    assert_eq!(status(&s), application::Status::Signed);
    // When a card is bound and the payout is recorded
    run(
        &mut s,
        app(application::Command::BindCard {
            binding_id: BINDING,
            provider: "sbc".into(),
            card_token: "tok-1".into(),
            masked_pan: "220220******1234".into(),
        }),
    )
    .unwrap();
    let bound = run(
        &mut s,
        app(application::Command::RecordCardBinding {
            binding_id: BINDING,
            failure: None,
        }),
    )
    .unwrap();
    assert_eq!(bound, vec!["CardBound", "ApplicationCardBound"]);
    let disbursed = run(
        &mut s,
        app(application::Command::RecordDisbursement {
            loan_id: LOAN,
            payout_reference: "sbc-payout-1".into(),
        }),
    )
    .unwrap();
    // Then the loan is issued with the offer's schedule and PSK, and the client may apply again
    assert_eq!(
        disbursed,
        vec!["LoanIssued", "LoanDisbursed", "ApplicationClosed"]
    );
    assert_eq!(status(&s), application::Status::Disbursed);
    let Some(State::Loan(loan)) = s.get(&AggregateRef::loan(LOAN)) else {
        panic!("no loan")
    };
    let terms = loan.terms.clone().unwrap();
    assert_eq!(terms.schedule, offer().schedule);
    assert_eq!(terms.psk_percent, offer().psk_percent);
    assert_eq!(loan.outstanding, Decimal::from(10_000));
    let c = client_state(&s);
    assert_eq!(c.open_application, None);
    assert_eq!(c.loans_disbursed, 1);
    assert_eq!(c.cards.len(), 1);
}

#[test]
fn a_client_has_one_open_application_at_a_time() {
    let mut s = registered();
    run(&mut s, create(false)).unwrap();
    let other = Command::Application {
        client_id: CLIENT,
        application_id: Uuid::from_u128(99),
        command: match create(false) {
            Command::Application { command, .. } => command,
            _ => unreachable!(),
        },
    };
    assert_eq!(
        run(&mut s, other.clone()),
        Err("application_already_open".into())
    );
    run(
        &mut s,
        app(application::Command::CancelApplication {
            reason: "changed my mind".into(),
        }),
    )
    .unwrap();
    assert_eq!(client_state(&s).open_application, None);
    run(&mut s, other).unwrap();
}

#[test]
fn an_unknown_or_blocked_client_cannot_apply() {
    let mut s = BTreeMap::new();
    assert_eq!(run(&mut s, create(true)), Err("client_not_found".into()));
    let mut s = registered();
    run(
        &mut s,
        client(client::Command::BlockClient {
            reason: "fraud".into(),
        }),
    )
    .unwrap();
    assert_eq!(run(&mut s, create(true)), Err("client_blocked".into()));
    assert!(!s.contains_key(&AggregateRef::application(APP)));
}

#[test]
fn a_signature_over_another_document_is_refused() {
    let mut t = contract_generated();
    assert_eq!(
        run(
            &mut t,
            app(application::Command::SignContract {
                document_sha256: "cd".repeat(32),
                otp_purpose: "sign".into(),
            })
        ),
        Err("contract_hash_mismatch".into())
    );
}

#[test]
fn failed_identification_declines_and_closes_the_application() {
    let mut s = registered();
    run(&mut s, create(true)).unwrap();
    let events = run(
        &mut s,
        app(application::Command::RecordIdentification {
            outcome: Identification::Failed {
                reasons: vec!["passport 4510 123456 is on the MVD invalid list".into()],
            },
        }),
    )
    .unwrap();
    assert_eq!(events, vec!["IdentificationFailed", "ApplicationClosed"]);
    assert_eq!(status(&s), application::Status::Declined);
    assert_eq!(
        run(
            &mut s,
            app(application::Command::CancelApplication {
                reason: "late".into()
            })
        ),
        Err("invalid_transition".into())
    );
}

#[test]
fn a_referred_application_resumes_after_the_operator_clears_it() {
    let mut s = registered();
    run(&mut s, create(true)).unwrap();
    run(
        &mut s,
        app(application::Command::RecordIdentification {
            outcome: Identification::Identified {
                method: "snils".into(),
            },
        }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::RecordLegalChecks {
            outcome: Verdict::ManualReview {
                reasons: vec!["block list `stop`: entry 7".into()],
            },
        }),
    )
    .unwrap();
    assert_eq!(status(&s), application::Status::ManualReview);
    run(
        &mut s,
        app(application::Command::ResolveReview {
            approve: true,
            reason: "namesake".into(),
        }),
    )
    .unwrap();
    assert_eq!(status(&s), application::Status::Checked);
}

#[test]
fn an_approval_expires_only_after_its_deadline() {
    let mut s = registered();
    run(&mut s, create(true)).unwrap();
    for command in [
        application::Command::RecordIdentification {
            outcome: Identification::Identified {
                method: "snils".into(),
            },
        },
        application::Command::RecordLegalChecks {
            outcome: Verdict::Passed,
        },
        application::Command::RecordScoring {
            outcome: Scoring::Approved {
                offers: vec![offer()],
                score: 720,
                pdn_percent: None,
                expires_at: datetime!(2026-11-24 09:00 UTC),
            },
        },
    ] {
        run(&mut s, app(command)).unwrap();
    }
    let early = Context::new(datetime!(2026-11-24 08:59:59 UTC), Actor::system("test"));
    assert_eq!(
        decide(&s, &app(application::Command::ExpireApplication), &early).map_err(|e| e.code()),
        Err("not_yet_due")
    );
    let events = run(&mut s, app(application::Command::ExpireApplication)).unwrap();
    assert_eq!(events, vec!["ApplicationExpired", "ApplicationClosed"]);
}

#[test]
fn a_payout_in_progress_cannot_be_cancelled_and_a_failed_payout_annuls_the_contract() {
    let mut s = signed();
    run(
        &mut s,
        app(application::Command::BindCard {
            binding_id: BINDING,
            provider: "sbc".into(),
            card_token: "tok-1".into(),
            masked_pan: "220220******1234".into(),
        }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::RecordCardBinding {
            binding_id: BINDING,
            failure: None,
        }),
    )
    .unwrap();
    assert_eq!(
        run(
            &mut s,
            app(application::Command::CancelApplication {
                reason: "too late".into()
            })
        ),
        Err("invalid_transition".into())
    );
    let events = run(
        &mut s,
        app(application::Command::RecordPayoutFailure {
            reason: "provider refused".into(),
        }),
    )
    .unwrap();
    assert_eq!(events, vec!["DisbursementFailed", "ApplicationClosed"]);
    assert_eq!(status(&s), application::Status::Failed);
    assert!(!s.contains_key(&AggregateRef::loan(LOAN)));
}

#[test]
fn loan_is_repaid_when_nothing_is_owed() {
    let mut s = BTreeMap::new();
    let l = |command| Command::Loan {
        client_id: CLIENT,
        loan_id: LOAN,
        command,
    };
    assert_eq!(
        run(
            &mut s,
            l(loan::Command::AcceptRepayment {
                repayment_id: Uuid::from_u128(1),
                amount: rub(1)
            })
        ),
        Err("loan_not_found".into())
    );
    run(
        &mut s,
        l(loan::Command::IssueLoan {
            application_id: APP,
            principal: rub(10_000),
            term_days: 30,
            daily_rate_percent: "0.8".into(),
            terms: None,
        }),
    )
    .unwrap();
    run(
        &mut s,
        l(loan::Command::ProlongLoan {
            days: 10,
            fee: rub(500),
        }),
    )
    .unwrap();
    assert_eq!(
        run(
            &mut s,
            l(loan::Command::AcceptRepayment {
                repayment_id: Uuid::from_u128(2),
                amount: rub(10_501)
            })
        ),
        Err("invalid_command".into())
    );
    run(&mut s, l(loan::Command::MarkOverdue)).unwrap();
    assert_eq!(
        run(
            &mut s,
            l(loan::Command::ProlongLoan {
                days: 10,
                fee: rub(1)
            })
        ),
        Err("invalid_transition".into())
    );
    assert_eq!(
        run(
            &mut s,
            l(loan::Command::AcceptRepayment {
                repayment_id: Uuid::from_u128(3),
                amount: rub(10_500)
            })
        ),
        Ok(vec!["RepaymentAccepted", "LoanRepaid"])
    );
    match s.get(&AggregateRef {
        kind: AggregateKind::Loan,
        id: LOAN,
    }) {
        Some(State::Loan(loan)) => {
            assert_eq!(loan.status, loan::Status::Repaid);
            assert_eq!(loan.outstanding, Decimal::ZERO);
        }
        other => panic!("unexpected {other:?}"),
    }
}
