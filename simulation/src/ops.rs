//! The operations a run is made of: what clients send, one request each, generated from the
//! seed. An operation carries its own schedule seed, which drives everything the simulator
//! does after it (writer batches, deliveries, the clock, faults), so that a run is a pure
//! function of its operation list and removing operations while shrinking leaves the
//! schedule of the others as it was.

use etr_domain::autopayment::Unit;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use std::fmt;

/// One client request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The client (0-based index) the request is sent for.
    pub client: u32,
    /// The request's `Idempotency-Key` is `k<key>`; a resend repeats an earlier key.
    pub key: u64,
    /// What the request asks.
    pub action: Action,
    /// Seeds the simulator's steps after this operation.
    pub schedule: u64,
    /// Whether this repeats an earlier operation's key (with the same or another body).
    pub resend: bool,
}

/// What a request asks. Amounts are in roubles, exact to the kopeck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open the client's wallet (in roubles).
    OpenWallet,
    /// Top the wallet up from a card.
    TopUp {
        /// Roubles.
        amount: Decimal,
    },
    /// Pay a service through the provider; `declined`: fraud control declined it;
    /// `commission`: charged on top of the amount.
    Pay {
        /// Roubles paid to the provider.
        amount: Decimal,
        /// Roubles the platform charges on top.
        commission: Option<Decimal>,
        /// Fraud control declines it (the payment is cancelled at once).
        declined: bool,
    },
    /// Register the client (its personal data sealed; needed to bind a card).
    Register,
    /// Bind the client's bank card (one per client; the bank's token derives from the
    /// client).
    BindCard,
    /// Pay a service from the bound card: the bank authorises, the provider executes, the
    /// bank captures (or releases).
    PayByCard {
        /// Roubles paid to the provider.
        amount: Decimal,
        /// Roubles the platform charges on top (authorised and captured with the amount).
        commission: Option<Decimal>,
    },
    /// Transfer to another client's wallet.
    Transfer {
        /// The recipient (client index).
        to: u32,
        /// Roubles.
        amount: Decimal,
    },
    /// Confirm (with the OTP) the payment started under key `payment_key`.
    Confirm {
        /// The key the payment was started under.
        payment_key: u64,
    },
    /// Ask to cancel (and refund) the successful payment started under key `payment_key`.
    RequestCancellation {
        /// The key the payment was started under.
        payment_key: u64,
    },
    /// Save the client's payment template number `template` (a service paid from the
    /// client's wallet); saving a number again changes the template, and an autopayment
    /// running it pays the new amount from its next run.
    SaveTemplate {
        /// The client's template number (its id derives from the client and the number).
        template: u32,
        /// `mobile` (no commission) or `internet` (the processing dictionary's 1 %).
        service: &'static str,
        /// Roubles each run pays.
        amount: Decimal,
    },
    /// Delete template number `template` (refused while a live autopayment runs it).
    DeleteTemplate {
        /// The client's template number.
        template: u32,
    },
    /// Run template number `template` as the client's autopayment number `autopayment`:
    /// every `count` `unit`s from `first_in` seconds after the request is sent, pausing
    /// after `max_failures` failed runs in a row.
    CreateAutopayment {
        /// The client's autopayment number (its id derives from the client and the number).
        autopayment: u32,
        /// The template it runs.
        template: u32,
        /// The period's unit (seconds or minutes: short runs in simulated time).
        unit: Unit,
        /// Units per period.
        count: u32,
        /// Seconds from the request to the first run.
        first_in: u32,
        /// Failed runs in a row after which it pauses.
        max_failures: u32,
    },
    /// Pause autopayment number `autopayment`.
    PauseAutopayment {
        /// The client's autopayment number.
        autopayment: u32,
    },
    /// Resume autopayment number `autopayment`.
    ResumeAutopayment {
        /// The client's autopayment number.
        autopayment: u32,
    },
    /// Cancel autopayment number `autopayment`.
    CancelAutopayment {
        /// The client's autopayment number.
        autopayment: u32,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::OpenWallet => write!(f, "OpenWallet RUB"),
            Action::TopUp { amount } => write!(f, "TopUp {amount} RUB"),
            Action::Pay {
                amount,
                commission,
                declined,
            } => {
                write!(f, "Pay {amount} RUB")?;
                if let Some(c) = commission {
                    write!(f, " + commission {c}")?;
                }
                if *declined {
                    write!(f, " (fraud control declines)")?;
                }
                Ok(())
            }
            Action::Register => write!(f, "Register"),
            Action::BindCard => write!(f, "BindCard"),
            Action::PayByCard { amount, commission } => {
                write!(f, "PayByCard {amount} RUB")?;
                if let Some(c) = commission {
                    write!(f, " + commission {c}")?;
                }
                Ok(())
            }
            Action::Transfer { to, amount } => write!(f, "Transfer {amount} RUB to c{to}"),
            Action::Confirm { payment_key } => write!(f, "Confirm payment k{payment_key}"),
            Action::RequestCancellation { payment_key } => {
                write!(f, "RequestCancellation of payment k{payment_key}")
            }
            Action::SaveTemplate {
                template,
                service,
                amount,
            } => write!(f, "SaveTemplate t{template}: {service} {amount} RUB"),
            Action::DeleteTemplate { template } => write!(f, "DeleteTemplate t{template}"),
            Action::CreateAutopayment {
                autopayment,
                template,
                unit,
                count,
                first_in,
                max_failures,
            } => write!(
                f,
                "CreateAutopayment a{autopayment} of t{template}: every {count} {unit:?} from +{first_in}s, pausing after {max_failures} failures"
            ),
            Action::PauseAutopayment { autopayment } => write!(f, "PauseAutopayment a{autopayment}"),
            Action::ResumeAutopayment { autopayment } => {
                write!(f, "ResumeAutopayment a{autopayment}")
            }
            Action::CancelAutopayment { autopayment } => {
                write!(f, "CancelAutopayment a{autopayment}")
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c{} k{} {}{} [schedule {:016x}]",
            self.client,
            self.key,
            self.action,
            if self.resend { " (resend)" } else { "" },
            self.schedule
        )
    }
}

/// Kopecks between `low` and `high` roubles, as an exact amount.
fn amount(rng: &mut ChaCha8Rng, low: i64, high: i64) -> Decimal {
    Decimal::new(rng.random_range(low * 100..=high * 100), 2)
}

/// Operations (per mille of the non-resend ones) about templates and autopayments.
const AUTOPAYMENT_PER_MILLE: u32 = 15;

/// A template or autopayment request of a client with `templates` templates and
/// `autopayments` autopayments asked for so far (both counts move on when one is created).
fn autopayment_op(rng: &mut ChaCha8Rng, templates: &mut u32, autopayments: &mut u32) -> Action {
    let kind = rng.random_range(0..100u32);
    let save = |rng: &mut ChaCha8Rng, template: u32| Action::SaveTemplate {
        template,
        service: if rng.random_range(0..3) == 0 {
            "internet"
        } else {
            "mobile"
        },
        amount: if rng.random_range(0..15) == 0 {
            // Above the warning threshold: the run's payment waits for an OTP nobody sends.
            amount(rng, 5_000, 6_000)
        } else {
            amount(rng, 10, 800)
        },
    };
    if *templates == 0 || (kind < 20 && *templates < 4) {
        *templates += 1;
        return save(rng, *templates - 1);
    }
    let template = rng.random_range(0..*templates);
    if kind < 30 {
        return save(rng, template);
    }
    if kind < 55 || *autopayments == 0 {
        *autopayments += 1;
        let (unit, count) = match rng.random_range(0..100u32) {
            // Runs more often than every 5 seconds are refused.
            0..3 => (Unit::Second, rng.random_range(1..5)),
            3..30 => (Unit::Second, rng.random_range(5..=60)),
            _ => (Unit::Minute, rng.random_range(1..=10)),
        };
        return Action::CreateAutopayment {
            autopayment: *autopayments - 1,
            template,
            unit,
            count,
            first_in: rng.random_range(0..=120),
            max_failures: if rng.random_range(0..10) == 0 {
                10
            } else {
                rng.random_range(1..=5)
            },
        };
    }
    let autopayment = rng.random_range(0..*autopayments);
    match kind {
        55..72 => Action::PauseAutopayment { autopayment },
        72..86 => Action::ResumeAutopayment { autopayment },
        86..94 => Action::CancelAutopayment { autopayment },
        _ => Action::DeleteTemplate { template },
    }
}

/// Generates `count` operations over `clients` clients from `seed` (ChaCha8). Clients mostly
/// open their wallet first; the rest is a mix of top-ups, payments (some above the warning
/// threshold, some declined by fraud control, some with a commission), card bindings and
/// payments from the bound card, transfers, OTP confirmations, cancellation requests,
/// payment templates (saved, changed, deleted) and autopayments running them (created with
/// periods of seconds or minutes, paused, resumed, cancelled), and resends of a recent
/// request of the same client (70 % the same body, 30 % another).
pub fn generate(seed: u64, count: usize, clients: u32) -> Vec<Op> {
    let clients = clients.max(2);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut opened = vec![false; clients as usize];
    let mut registered = vec![false; clients as usize];
    let mut bound = vec![false; clients as usize];
    // The recent requests and payments of each client.
    let mut recent: Vec<Vec<(u64, Action)>> = vec![Vec::new(); clients as usize];
    let mut payments: Vec<Vec<u64>> = vec![Vec::new(); clients as usize];
    // How many templates and autopayments each client has asked for.
    let mut templates = vec![0u32; clients as usize];
    let mut autopayments = vec![0u32; clients as usize];
    let mut ops = Vec::with_capacity(count);
    for index in 0..count {
        let client = rng.random_range(0..clients);
        let c = client as usize;
        let key = index as u64;
        let schedule = rng.next_u64();
        let roll = rng.random_range(0..100u32);
        let (key, action, resend) = if !opened[c] && roll < 80 {
            opened[c] = true;
            (key, Action::OpenWallet, false)
        } else if roll < 12 && !recent[c].is_empty() {
            let (old_key, old) = recent[c][rng.random_range(0..recent[c].len())].clone();
            let action = if rng.random_range(0..10) < 7 {
                old
            } else {
                match old {
                    Action::TopUp { amount } => Action::TopUp {
                        amount: amount + Decimal::new(1, 2),
                    },
                    Action::Pay {
                        amount,
                        commission,
                        declined,
                    } => Action::Pay {
                        amount: amount + Decimal::new(1, 2),
                        commission,
                        declined,
                    },
                    Action::Transfer { to, amount } => Action::Transfer {
                        to,
                        amount: amount + Decimal::new(1, 2),
                    },
                    _ => Action::TopUp {
                        amount: Decimal::new(100, 2),
                    },
                }
            };
            (old_key, action, true)
        } else {
            let pick = rng.random_range(0..100u32);
            let card = rng.random_range(0..100u32);
            let auto = rng.random_range(0..1000u32);
            let action = if auto < AUTOPAYMENT_PER_MILLE {
                autopayment_op(&mut rng, &mut templates[c], &mut autopayments[c])
            } else if card < 2 && !registered[c] {
                registered[c] = true;
                Action::Register
            } else if card < 2 {
                bound[c] = true;
                Action::BindCard
            } else if card < 10 && bound[c] {
                Action::PayByCard {
                    amount: amount(&mut rng, 1, 3_000),
                    commission: (rng.random_range(0..3) == 0)
                        .then(|| Decimal::new(rng.random_range(1..=300), 2)),
                }
            } else if pick < 26 {
                Action::TopUp {
                    amount: amount(&mut rng, 10, 5_000),
                }
            } else if pick < 54 {
                let big = rng.random_range(0..10) == 0;
                Action::Pay {
                    amount: if big {
                        amount(&mut rng, 5_000, 9_000)
                    } else {
                        amount(&mut rng, 1, 3_000)
                    },
                    commission: (rng.random_range(0..3) == 0)
                        .then(|| Decimal::new(rng.random_range(1..=300), 2)),
                    declined: rng.random_range(0..30) == 0,
                }
            } else if pick < 80 {
                let mut to = rng.random_range(0..clients);
                if to == client {
                    to = (to + 1) % clients;
                }
                let big = rng.random_range(0..12) == 0;
                Action::Transfer {
                    to,
                    amount: if big {
                        amount(&mut rng, 5_000, 8_000)
                    } else {
                        amount(&mut rng, 1, 4_000)
                    },
                }
            } else if pick < 89 && !payments[c].is_empty() {
                Action::Confirm {
                    payment_key: payments[c][rng.random_range(0..payments[c].len())],
                }
            } else if pick < 96 && !payments[c].is_empty() {
                Action::RequestCancellation {
                    payment_key: payments[c][rng.random_range(0..payments[c].len())],
                }
            } else {
                opened[c] = true;
                Action::OpenWallet
            };
            (key, action, false)
        };
        if !resend {
            if matches!(
                action,
                Action::Pay { .. } | Action::PayByCard { .. } | Action::Transfer { .. }
            ) {
                payments[c].push(key);
                if payments[c].len() > 6 {
                    payments[c].remove(0);
                }
            }
            recent[c].push((key, action.clone()));
            if recent[c].len() > 8 {
                recent[c].remove(0);
            }
        }
        ops.push(Op {
            client,
            key,
            action,
            schedule,
            resend,
        });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_generates_the_same_operations() {
        assert_eq!(generate(7, 500, 10), generate(7, 500, 10));
        assert_ne!(generate(7, 500, 10), generate(8, 500, 10));
        let ops = generate(7, 2_000, 10);
        assert!(ops.iter().any(|o| o.resend));
        assert!(ops
            .iter()
            .any(|o| matches!(o.action, Action::Confirm { .. })));
        assert!(ops
            .iter()
            .all(|o| !matches!(o.action, Action::Transfer { to, .. } if to == o.client)));
        let ops = generate(7, 20_000, 10);
        let count = |f: fn(&Action) -> bool| ops.iter().filter(|o| f(&o.action)).count();
        assert!(count(|a| matches!(a, Action::SaveTemplate { .. })) > 10);
        assert!(count(|a| matches!(a, Action::CreateAutopayment { .. })) > 10);
        assert!(count(|a| matches!(a, Action::PauseAutopayment { .. })) > 2);
        assert!(count(|a| matches!(a, Action::ResumeAutopayment { .. })) > 2);
        assert!(count(|a| matches!(a, Action::CancelAutopayment { .. })) > 2);
    }
}
