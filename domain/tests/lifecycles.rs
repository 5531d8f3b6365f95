//! Lifecycle state machines of loan applications and loans.

use etr_domain::application::{self, Offer};
use etr_domain::loan;
use etr_domain::{
    decide, evolve, Actor, AggregateKind, AggregateRef, ClientId, Command, Context, Currency,
    Money, State,
};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use time::macros::datetime;
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(7));
const APP: Uuid = Uuid::from_u128(70);
const LOAN: Uuid = Uuid::from_u128(71);

fn ctx() -> Context {
    Context {
        now: datetime!(2026-11-24 09:00 UTC),
        actor: Actor::system("test"),
    }
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

#[test]
fn application_goes_from_submission_to_disbursement() {
    let mut s = BTreeMap::new();
    let offer = Offer {
        offer_id: Uuid::from_u128(5),
        amount: rub(10_000),
        term_days: 30,
        daily_rate_percent: "0.8".into(),
    };
    assert_eq!(
        run(
            &mut s,
            app(application::Command::SubmitApplication {
                client_id: CLIENT,
                requested: rub(10_000),
                term_days: 30,
                partner_id: Some("shop-1".into())
            })
        ),
        Ok(vec!["ApplicationSubmitted"])
    );
    // Scoring before identification is out of order.
    assert_eq!(
        run(
            &mut s,
            app(application::Command::RecordScoring {
                offers: vec![offer.clone()],
                decline_reason: None
            })
        ),
        Err("invalid_transition".into())
    );
    run(
        &mut s,
        app(application::Command::RecordIdentification {
            passed: true,
            reason: None,
        }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::RecordScoring {
            offers: vec![offer.clone()],
            decline_reason: None,
        }),
    )
    .unwrap();
    assert_eq!(status(&s), application::Status::Approved);
    assert_eq!(
        run(
            &mut s,
            app(application::Command::ChooseOffer {
                offer_id: Uuid::from_u128(6)
            })
        ),
        Err("invalid_command".into())
    );
    run(
        &mut s,
        app(application::Command::ChooseOffer {
            offer_id: offer.offer_id,
        }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::SignContract {
            contract_id: Uuid::from_u128(8),
        }),
    )
    .unwrap();
    run(
        &mut s,
        app(application::Command::RecordDisbursement { loan_id: LOAN }),
    )
    .unwrap();
    assert_eq!(status(&s), application::Status::Disbursed);
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
fn failed_identification_declines_and_is_final() {
    let mut s = BTreeMap::new();
    run(
        &mut s,
        app(application::Command::SubmitApplication {
            client_id: CLIENT,
            requested: rub(5_000),
            term_days: 14,
            partner_id: None,
        }),
    )
    .unwrap();
    assert_eq!(
        run(
            &mut s,
            app(application::Command::RecordIdentification {
                passed: false,
                reason: Some("passport invalid".into())
            })
        ),
        Ok(vec!["IdentificationFailed"])
    );
    assert_eq!(status(&s), application::Status::Declined);
    assert_eq!(
        run(
            &mut s,
            app(application::Command::CancelApplication { reason: "x".into() })
        ),
        Err("invalid_transition".into())
    );
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
        Err("invalid_transition".into())
    );
    run(
        &mut s,
        l(loan::Command::IssueLoan {
            application_id: APP,
            principal: rub(10_000),
            term_days: 30,
            daily_rate_percent: "0.8".into(),
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
