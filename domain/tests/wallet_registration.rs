//! Wallet registration and personal-data change requests (e-wallet spec §2): given/when/then
//! tests of the client aggregate and the account opening at the first login.

use etr_domain::client::{self, Approval, RequestStatus};
use etr_domain::command::States;
use etr_domain::personal::Sealed;
use etr_domain::{
    decide, evolve, wallet, Actor, ClientId, Command, Context, Currency, Error, Event, State,
};
use std::collections::BTreeMap;
use time::macros::datetime;
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(1));
const ACCOUNT: Uuid = Uuid::from_u128(2);

fn sealed(n: u8) -> Sealed {
    Sealed {
        key_version: 1,
        nonce: format!("{n:02x}"),
        ciphertext: format!("data-{n}"),
    }
}

struct World {
    states: States,
}

impl World {
    fn new() -> World {
        World {
            states: BTreeMap::new(),
        }
    }

    fn when(&mut self, command: client::Command) -> Result<Vec<&'static str>, Error> {
        self.run(Command::Client {
            client_id: CLIENT,
            command,
        })
    }

    fn login(&mut self) -> Result<Vec<&'static str>, Error> {
        self.run(Command::Wallet {
            client_id: CLIENT,
            wallet_id: ACCOUNT,
            command: wallet::Command::OpenAtFirstLogin,
        })
    }

    fn run(&mut self, command: Command) -> Result<Vec<&'static str>, Error> {
        let context = Context::new(datetime!(2026-12-01 10:00 UTC), Actor::client(CLIENT));
        let events = decide(&self.states, &command, &context)?;
        for (target, event) in &events {
            let state = self
                .states
                .remove(target)
                .unwrap_or_else(|| State::initial(*target));
            self.states.insert(*target, evolve(state, CLIENT, event));
        }
        Ok(events.iter().map(|(_, e)| Event::name(e)).collect())
    }

    fn client(&self) -> client::Client {
        wallet::client_of(&self.states, CLIENT)
    }
}

fn apply(approval: Approval) -> client::Command {
    client::Command::ApplyForWallet {
        personal: sealed(1),
        currency: Currency::Rub,
        wallet_id: ACCOUNT,
        approval,
    }
}

fn review(approve: bool) -> client::Command {
    client::Command::ReviewWalletRegistration {
        approve,
        reason: if approve {
            "documents checked"
        } else {
            "duplicate"
        }
        .into(),
    }
}

#[test]
fn a_manual_registration_waits_for_the_operator_and_the_account_opens_at_the_first_login() {
    let mut w = World::new();
    // When the client applies under manual approval, the application is only submitted …
    assert_eq!(
        w.when(apply(Approval::Manual)).unwrap(),
        ["WalletRegistrationSubmitted"]
    );
    assert_eq!(w.client().status, client::Status::New);
    // … no account opens before the approval, and it cannot be applied for twice.
    assert_eq!(w.login().unwrap_err().code(), "invalid_transition");
    assert_eq!(
        w.when(apply(Approval::Manual)).unwrap_err().code(),
        "invalid_transition"
    );
    // When the operator approves, the client joins the registry with the data it applied with.
    assert_eq!(
        w.when(review(true)).unwrap(),
        ["WalletRegistrationApproved", "ClientRegistered"]
    );
    assert_eq!(w.client().status, client::Status::Active);
    assert_eq!(w.client().personal, Some(sealed(1)));
    // Then the first login opens the account in the currency applied for, once.
    assert_eq!(
        w.login().unwrap(),
        ["WalletOpened", "WalletRegistrationCompleted"]
    );
    let account = wallet::wallet_of(&w.states, ACCOUNT);
    assert_eq!(account.currency, Some(Currency::Rub));
    assert_eq!(account.client_id, Some(CLIENT));
    assert_eq!(
        w.client().wallet_registration.map(|r| r.status),
        Some(RequestStatus::Completed)
    );
    assert!(w.login().is_err());
    assert_eq!(
        w.when(review(true)).unwrap_err().code(),
        "invalid_transition"
    );
}

#[test]
fn automatic_approval_registers_at_once_and_a_rejected_client_may_apply_again() {
    let mut w = World::new();
    assert_eq!(
        w.when(apply(Approval::Automatic)).unwrap(),
        [
            "WalletRegistrationSubmitted",
            "WalletRegistrationApproved",
            "ClientRegistered"
        ]
    );

    let mut r = World::new();
    r.when(apply(Approval::Manual)).unwrap();
    assert_eq!(
        r.when(review(false)).unwrap(),
        ["WalletRegistrationRejected"]
    );
    assert_eq!(r.client().status, client::Status::New);
    assert_eq!(r.login().unwrap_err().code(), "invalid_transition");
    // A reason is required for a review.
    assert!(r
        .when(client::Command::ReviewWalletRegistration {
            approve: true,
            reason: " ".into()
        })
        .is_err());
    assert_eq!(
        r.when(apply(Approval::Automatic)).unwrap()[0],
        "WalletRegistrationSubmitted"
    );
}

#[test]
fn a_blocked_client_cannot_apply_and_its_approved_account_does_not_open() {
    let mut w = World::new();
    w.when(apply(Approval::Automatic)).unwrap();
    w.when(client::Command::BlockClient {
        reason: "fraud".into(),
    })
    .unwrap();
    assert_eq!(w.login().unwrap_err().code(), "client_blocked");

    let mut blocked = World::new();
    blocked.when(apply(Approval::Manual)).unwrap();
    blocked.when(review(false)).unwrap();
    // Not yet in the registry: it cannot be blocked, so it may apply again.
    assert!(blocked
        .when(client::Command::BlockClient {
            reason: "fraud".into()
        })
        .is_err());
}

#[test]
fn personal_data_change_requests_are_approved_automatically_or_by_an_operator_one_at_a_time() {
    let mut w = World::new();
    w.when(apply(Approval::Automatic)).unwrap();
    // Automatic: requested, approved and changed in one command.
    assert_eq!(
        w.when(client::Command::RequestPersonalDataChange {
            request_id: Uuid::from_u128(10),
            personal: sealed(2),
            approval: Approval::Automatic,
        })
        .unwrap(),
        [
            "PersonalDataChangeRequested",
            "PersonalDataChangeApproved",
            "PersonalDataChanged"
        ]
    );
    assert_eq!(w.client().personal, Some(sealed(2)));
    // Manual: the data stays until an operator approves; no second request meanwhile.
    w.when(client::Command::RequestPersonalDataChange {
        request_id: Uuid::from_u128(11),
        personal: sealed(3),
        approval: Approval::Manual,
    })
    .unwrap();
    assert_eq!(w.client().personal, Some(sealed(2)));
    assert!(w
        .when(client::Command::RequestPersonalDataChange {
            request_id: Uuid::from_u128(12),
            personal: sealed(4),
            approval: Approval::Manual,
        })
        .is_err());
    assert_eq!(
        w.when(client::Command::ReviewPersonalDataChange {
            request_id: Uuid::from_u128(11),
            approve: true,
            reason: "passport checked".into(),
        })
        .unwrap(),
        ["PersonalDataChangeApproved", "PersonalDataChanged"]
    );
    assert_eq!(w.client().personal, Some(sealed(3)));
    // A rejected request changes nothing.
    w.when(client::Command::RequestPersonalDataChange {
        request_id: Uuid::from_u128(13),
        personal: sealed(5),
        approval: Approval::Manual,
    })
    .unwrap();
    assert_eq!(
        w.when(client::Command::ReviewPersonalDataChange {
            request_id: Uuid::from_u128(13),
            approve: false,
            reason: "the passport does not match".into(),
        })
        .unwrap(),
        ["PersonalDataChangeRejected"]
    );
    assert_eq!(w.client().personal, Some(sealed(3)));
    let statuses: Vec<RequestStatus> = w.client().data_changes.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [
            RequestStatus::Approved,
            RequestStatus::Approved,
            RequestStatus::Rejected
        ]
    );
    // A client that never registered has no data to change.
    let mut unknown = World::new();
    assert_eq!(
        unknown
            .when(client::Command::RequestPersonalDataChange {
                request_id: Uuid::from_u128(14),
                personal: sealed(6),
                approval: Approval::Automatic,
            })
            .unwrap_err()
            .code(),
        "client_not_found"
    );
}
