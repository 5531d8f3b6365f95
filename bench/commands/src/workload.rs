//! The wallet workload as platform commands: the one place that builds the domain's
//! commands, so a change of their shape touches only this file.
//!
//! Every wallet belongs to its own client (one stream per wallet; the client id spreads the
//! wallets over the partitions). A caller's measured commands go round-robin over its
//! wallets; even rounds top up [`TOP_UP`], odd rounds pay [`PAYMENT`] — the peer's plan
//! (`etr_peer_bench`). A payment is the platform's two commands: `StartPayment` (fraud
//! verdict Approved: statuses 0–3, the amount held on the wallet) and, right after it, the
//! `ExecutePayment` (Succeeded: 4 → 5 → 6, the hold captured) that the payment processor
//! issues in the running platform.

use etr_domain::ids::{client_command_id, ClientId};
use etr_domain::limits::Catalogue;
use etr_domain::money::{Currency, Money};
use etr_domain::payment::{self, Execution, FraudVerdict};
use etr_domain::wallet;
use etr_domain::{payment_execution, Actor, Command};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::BTreeMap;
use uuid::Uuid;

use etr_command_api::handler::Meta;

pub use etr_peer_bench::{PAYMENT, TOP_UP};

/// The amount of every pre-loading top-up of the stream-length check, in roubles.
pub const PRELOAD_TOP_UP: Decimal = dec!(1.00);

/// The currency of every wallet.
pub const CURRENCY: Currency = Currency::Rub;

/// The client groups of the benchmark: the default group's limits are high enough that no
/// command meets them (the identified group's 600,000.00 balance cap would refuse the top-ups
/// of a long run: a wallet gains 90.00 per top-up and payment).
pub fn groups() -> Catalogue {
    let mut catalogue = Catalogue::default();
    for group in catalogue.groups.values_mut() {
        for limits in group.limits.values_mut() {
            limits.min_operation = dec!(0.01);
            limits.max_operation = dec!(1000000.00);
            limits.max_balance = dec!(999999999.00);
            limits.all_sources = Default::default();
            limits.wallet_source = Default::default();
            limits.warning_threshold = None;
        }
    }
    catalogue
}

/// One wallet of a caller: its client and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletRef {
    pub client: ClientId,
    pub wallet: Uuid,
}

impl WalletRef {
    pub fn random() -> WalletRef {
        WalletRef {
            client: ClientId(Uuid::new_v4()),
            wallet: Uuid::new_v4(),
        }
    }
}

/// What a measured operation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    TopUp,
    Payment,
}

/// The `i`-th operation of a caller with `wallets` wallets: pairs of a top-up and a payment
/// of the same wallet, the pairs round-robin over the wallets (pair `p` on wallet `p mod W`),
/// so payments are half the operations from the first second whatever the number of wallets,
/// and every payment follows a top-up of its wallet.
pub fn plan(i: u64, wallets: usize) -> (usize, Operation) {
    let wallets = wallets.max(1) as u64;
    let wallet = usize::try_from((i / 2) % wallets).unwrap_or(0);
    let operation = if i.is_multiple_of(2) {
        Operation::TopUp
    } else {
        Operation::Payment
    };
    (wallet, operation)
}

/// The metadata of a client's command with idempotency key `key`.
pub fn client_meta(client: ClientId, key: &str) -> Meta {
    let command_id = client_command_id(client, key);
    Meta {
        request_hash: command_id.clone(),
        correlation_id: command_id.clone(),
        command_id,
        actor: Actor::client(client),
    }
}

/// The metadata of the execution step the payment processor issues for `payment`.
pub fn execution_meta(payment: Uuid, correlation_id: String) -> Meta {
    let command_id = payment_execution::execute_command_id(payment);
    Meta {
        request_hash: command_id.clone(),
        command_id,
        correlation_id,
        actor: Actor::system(payment_execution::PROCESS),
    }
}

pub fn open(w: WalletRef) -> Command {
    Command::Wallet {
        client_id: w.client,
        wallet_id: w.wallet,
        command: wallet::Command::OpenWallet { currency: CURRENCY },
    }
}

pub fn top_up(w: WalletRef, amount: Decimal) -> Command {
    Command::Wallet {
        client_id: w.client,
        wallet_id: w.wallet,
        command: wallet::Command::TopUp {
            operation_id: Uuid::new_v4(),
            amount: Money::new(amount, CURRENCY),
            source: "card".to_owned(),
        },
    }
}

/// A payment of [`PAYMENT`] that fraud control approved.
pub fn start_payment(w: WalletRef, payment_id: Uuid) -> Command {
    Command::Payment {
        client_id: w.client,
        wallet_id: w.wallet,
        payment_id,
        command: payment::Command::Start {
            commission: None,
            amount: Money::new(PAYMENT, CURRENCY),
            service_id: "mobile".to_owned(),
            attributes: BTreeMap::new(),
            fraud: FraudVerdict::Approved,
            autopayment_run: None,
        },
    }
}

/// The provider's success for `payment`: the hold is captured.
pub fn execute_payment(w: WalletRef, payment_id: Uuid) -> Command {
    Command::Payment {
        client_id: w.client,
        wallet_id: w.wallet,
        payment_id,
        command: payment::Command::Execute {
            outcome: Execution::Succeeded {
                provider_reference: format!("bench-{payment_id}"),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payment_follows_a_top_up_of_its_wallet() {
        let wallets = 5;
        let mut balance = vec![Decimal::ZERO; wallets];
        for i in 0..(wallets as u64 * 9) {
            if i < 2 {
                assert_eq!(plan(i, wallets).0, 0, "a pair is on one wallet");
            }
            match plan(i, wallets) {
                (w, Operation::TopUp) => balance[w] += TOP_UP,
                (w, Operation::Payment) => {
                    assert!(balance[w] >= PAYMENT, "payment {i} would be refused");
                    balance[w] -= PAYMENT;
                }
            }
        }
        // 45 operations: 22 pairs round-robin (five on wallets 0 and 1, four on the others),
        // then the top-up of pair 22 on wallet 2.
        let expected: Vec<Decimal> = (0..wallets)
            .map(|w| {
                let pairs = Decimal::from(if w <= 1 { 5 } else { 4 });
                let extra = if w == 2 { TOP_UP } else { Decimal::ZERO };
                (TOP_UP - PAYMENT) * pairs + extra
            })
            .collect();
        assert_eq!(balance, expected);
    }

    #[test]
    fn platform_and_client_ids_never_meet() {
        let w = WalletRef::random();
        let payment = Uuid::new_v4();
        let start = client_meta(w.client, &payment.to_string());
        let execute = execution_meta(payment, start.correlation_id.clone());
        assert_ne!(start.command_id, execute.command_id);
        assert!(execute.command_id.starts_with("platform:"));
    }
}
