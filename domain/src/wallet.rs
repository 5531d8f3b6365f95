//! Wallet accounts (e-wallet spec §2): a balance in one currency, holds for payments in
//! flight, under the limits of the client's group ([`crate::limits`]).
//!
//! Invariants kept by [`decide`]: `available = balance − Σ holds` is never negative, the
//! balance never exceeds the group's `max_balance`, every operation amount lies within the
//! group's `[min_operation, max_operation]`, and every amount is in the wallet's currency. The
//! group's limits are the ones current when the operation is decided; the limits recorded
//! when the wallet was opened are kept for the record only.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::client::{self, Client};
use crate::command::{AggregateRef, Context, State, States};
use crate::error::Error;
use crate::ids::ClientId;
use crate::limits::CurrencyLimits;
use crate::money::{normalized, round_minor, Currency, Money};

/// The client group's limits (spec §2, items 1–2) as they were when the wallet was opened,
/// recorded with `WalletOpened`. Amounts in the wallet's currency, serialised as decimal
/// strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    #[serde(with = "crate::money::amount_str")]
    pub min_operation: Decimal,
    #[serde(with = "crate::money::amount_str")]
    pub max_operation: Decimal,
    #[serde(with = "crate::money::amount_str")]
    pub max_balance: Decimal,
}

impl Limits {
    /// The limits of the default `identified` group.
    pub fn registered() -> Self {
        Limits {
            min_operation: dec!(1.00),
            max_operation: dec!(100000.00),
            max_balance: dec!(600000.00),
        }
    }

    /// What a wallet records of its group's limits in its currency.
    pub fn recorded(limits: &CurrencyLimits) -> Self {
        Limits {
            min_operation: limits.min_operation,
            max_operation: limits.max_operation,
            max_balance: limits.max_balance,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    NotOpened,
    Open,
    Closed,
}

/// The state of one wallet account. `balance`, [`Wallet::held`] and [`Wallet::available`] are
/// exact amounts in the wallet's currency at its minor-unit scale, a zero never negative
/// (every change goes through [`normalized`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Wallet {
    pub status: Status,
    pub id: Uuid,
    pub client_id: Option<ClientId>,
    pub currency: Option<Currency>,
    #[serde(with = "crate::money::amount_str")]
    pub balance: Decimal,
    /// Open holds by payment id.
    pub holds: BTreeMap<Uuid, Money>,
    pub limits: Option<Limits>,
}

impl Wallet {
    /// The sum of the open holds, at the currency's scale once the wallet is opened (`0.00`
    /// rather than `0` when there are none).
    pub fn held(&self) -> Decimal {
        self.at_scale(self.holds.values().map(|m| m.amount).sum())
    }

    /// `balance − held`: what a payment or transfer may take now, at the currency's scale.
    pub fn available(&self) -> Decimal {
        self.at_scale(self.balance - self.held())
    }

    /// An exact amount of this wallet at its currency's scale (amounts here are already at
    /// most that precise, so nothing is rounded), a zero never negative.
    fn at_scale(&self, amount: Decimal) -> Decimal {
        match self.currency {
            Some(currency) => round_minor(amount, currency),
            None => normalized(amount),
        }
    }

    fn open(&self) -> Result<Currency, Error> {
        match (self.status, self.currency) {
            (Status::Open, Some(c)) => Ok(c),
            (Status::Closed, _) => Err(Error::WalletClosed(self.id)),
            _ => Err(Error::WalletNotFound(self.id)),
        }
    }

    pub(crate) fn owned_open(&self, client: ClientId) -> Result<Currency, Error> {
        let open = self.open()?;
        if self.client_id != Some(client) {
            // Not revealing another client's wallet: it does not exist for this client.
            return Err(Error::WalletNotFound(self.id));
        }
        Ok(open)
    }

    fn check_credit(&self, amount: Money, limits: &CurrencyLimits) -> Result<(), Error> {
        let balance = self.balance + amount.amount;
        if balance > limits.max_balance {
            return Err(Error::MaxBalanceExceeded {
                balance,
                max: limits.max_balance,
                currency: amount.currency,
            });
        }
        Ok(())
    }

    fn check_debit(&self, amount: Money) -> Result<(), Error> {
        if amount.amount > self.available() {
            return Err(Error::InsufficientFunds {
                available: self.available(),
                requested: amount.amount,
            });
        }
        Ok(())
    }
}

/// Commands of one wallet account. The wallet and its client travel with the command
/// ([`crate::Command::Wallet`]); a transfer also names the wallet it credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Opens the wallet in `currency`, which the client's group must have limits for.
    OpenWallet { currency: Currency },
    /// Opens the account of the client's approved wallet registration at its first login
    /// (spec §2), in the currency applied for; the registration is completed in the same
    /// command.
    OpenAtFirstLogin,
    /// Credits `amount` from an outside `source` (card, cash, bank transfer).
    TopUp {
        operation_id: Uuid,
        amount: Money,
        source: String,
    },
    /// Closes an empty wallet without open holds.
    CloseWallet,
    /// Moves `amount` to another wallet of the same client, both sides in one commit.
    Transfer {
        to_wallet_id: Uuid,
        transfer_id: Uuid,
        amount: Money,
    },
    /// Credits a transfer from another client's wallet (the payment `transfer_id`, already
    /// debited from the sender): the credit step of the transfer process, decided on this
    /// wallet's client's partition. Refused when the wallet is not this client's open wallet,
    /// the client is blocked, the currency differs or the balance would pass the group's
    /// maximum — the sender is then refunded.
    CreditTransfer {
        transfer_id: Uuid,
        from_client_id: ClientId,
        from_wallet_id: Uuid,
        amount: Money,
        /// The merchant order the transfer pays: the credit also records the order paid, and
        /// is refused when the order cannot be paid (`merchant_order::accept_wallet_payment`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        order_id: Option<Uuid>,
    },
}

impl Command {
    /// The command's name, as recorded with its command record.
    pub fn name(&self) -> &'static str {
        match self {
            Command::OpenWallet { .. } => "OpenWallet",
            Command::OpenAtFirstLogin => "OpenWalletAtFirstLogin",
            Command::TopUp { .. } => "TopUpWallet",
            Command::CloseWallet => "CloseWallet",
            Command::Transfer { .. } => "TransferBetweenWallets",
            Command::CreditTransfer { .. } => "CreditTransfer",
        }
    }

    /// The aggregates the command reads and writes besides its own wallet.
    pub fn other_targets(&self) -> Vec<AggregateRef> {
        match self {
            Command::Transfer { to_wallet_id, .. } => vec![AggregateRef::wallet(*to_wallet_id)],
            Command::CreditTransfer {
                order_id: Some(order),
                ..
            } => vec![AggregateRef::merchant_order(*order)],
            _ => vec![],
        }
    }
}

/// Events of a wallet account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    WalletOpened {
        wallet_id: Uuid,
        client_id: ClientId,
        currency: Currency,
        limits: Limits,
    },
    WalletToppedUp {
        operation_id: Uuid,
        amount: Money,
        source: String,
    },
    FundsHeld {
        payment_id: Uuid,
        amount: Money,
    },
    HoldCaptured {
        payment_id: Uuid,
        amount: Money,
    },
    HoldReleased {
        payment_id: Uuid,
        amount: Money,
    },
    TransferSent {
        transfer_id: Uuid,
        to_wallet_id: Uuid,
        amount: Money,
    },
    TransferReceived {
        transfer_id: Uuid,
        from_wallet_id: Uuid,
        amount: Money,
    },
    /// A transfer to another client's wallet left this wallet: its hold is removed and the
    /// balance decreases; the amount is in transit until the recipient's wallet is credited
    /// (`TransferCredited` there) or this wallet is refunded (`TransferRefunded`).
    TransferDebited {
        payment_id: Uuid,
        to_client_id: ClientId,
        to_wallet_id: Uuid,
        amount: Money,
    },
    /// A transfer from another client's wallet arrived.
    TransferCredited {
        transfer_id: Uuid,
        from_client_id: ClientId,
        from_wallet_id: Uuid,
        amount: Money,
    },
    /// The recipient's wallet refused a transfer this wallet was debited for: the amount
    /// comes back. Never refused by the maximum balance (the money was this wallet's).
    TransferRefunded {
        payment_id: Uuid,
        amount: Money,
        reason: String,
    },
    /// A successful payment was cancelled at the processing centre (spec §3.4): its amount
    /// is credited back. A refund is never refused by the maximum balance.
    PaymentRefunded {
        payment_id: Uuid,
        request_id: Uuid,
        amount: Money,
    },
    /// A loan repayment was paid from this wallet: the balance decreases.
    LoanRepaymentDebited {
        loan_id: Uuid,
        repayment_id: Uuid,
        amount: Money,
    },
    WalletClosed {
        reason: String,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::WalletOpened { .. } => "WalletOpened",
            Event::WalletToppedUp { .. } => "WalletToppedUp",
            Event::FundsHeld { .. } => "FundsHeld",
            Event::HoldCaptured { .. } => "HoldCaptured",
            Event::HoldReleased { .. } => "HoldReleased",
            Event::TransferSent { .. } => "TransferSent",
            Event::TransferReceived { .. } => "TransferReceived",
            Event::TransferDebited { .. } => "TransferDebited",
            Event::TransferCredited { .. } => "TransferCredited",
            Event::TransferRefunded { .. } => "TransferRefunded",
            Event::PaymentRefunded { .. } => "PaymentRefunded",
            Event::LoanRepaymentDebited { .. } => "LoanRepaymentDebited",
            Event::WalletClosed { .. } => "WalletClosed",
        }
    }
}

/// Decides a command of wallet `wallet_id` of `client` against the states it targets (a
/// missing state is a wallet with no events yet) and the group catalogue of `context`.
///
/// Errors: the wallet's refusals ([`Error::WalletNotFound`], [`Error::ClientBlocked`], the
/// group's limits, [`Error::CurrencyNotAllowed`], insufficient funds, …).
pub fn decide(
    states: &States,
    client: ClientId,
    wallet_id: Uuid,
    command: &Command,
    context: &Context,
) -> Result<Vec<(AggregateRef, crate::Event)>, Error> {
    let this = wallet_of(states, wallet_id);
    let owner = client_of(states, client);
    let group = context.groups.group_of(owner.group.as_ref())?;
    let on = |id: Uuid, events: Vec<Event>| {
        events
            .into_iter()
            .map(move |e| (AggregateRef::wallet(id), crate::Event::Wallet(e)))
            .collect::<Vec<_>>()
    };
    let state = &this;
    match command {
        Command::OpenWallet { currency } => {
            if state.status != Status::NotOpened {
                return Err(Error::WalletAlreadyOpened(wallet_id));
            }
            ensure_not_blocked(&owner)?;
            let limits = group.limits_in(*currency)?;
            Ok(on(
                wallet_id,
                vec![Event::WalletOpened {
                    wallet_id,
                    client_id: client,
                    currency: *currency,
                    limits: Limits::recorded(limits),
                }],
            ))
        }
        Command::OpenAtFirstLogin => {
            let registration = owner
                .wallet_registration
                .as_ref()
                .filter(|r| r.wallet_id == wallet_id)
                .ok_or(Error::WalletNotFound(wallet_id))?;
            if registration.status != client::RequestStatus::Approved {
                return Err(Error::InvalidTransition {
                    aggregate: "wallet registration",
                    id: client.0,
                    action: "open its account",
                    status: registration.status.label().into(),
                });
            }
            if state.status != Status::NotOpened {
                return Err(Error::WalletAlreadyOpened(wallet_id));
            }
            ensure_not_blocked(&owner)?;
            let currency = registration.currency;
            let limits = group.limits_in(currency)?;
            let mut events = on(
                wallet_id,
                vec![Event::WalletOpened {
                    wallet_id,
                    client_id: client,
                    currency,
                    limits: Limits::recorded(limits),
                }],
            );
            events.push((
                AggregateRef::client(client),
                crate::Event::Client(client::Event::WalletRegistrationCompleted { wallet_id }),
            ));
            Ok(events)
        }
        Command::TopUp {
            operation_id,
            amount,
            source,
        } => {
            let currency = state.owned_open(client)?;
            ensure_not_blocked(&owner)?;
            amount.ensure_currency(currency)?;
            let limits = group.limits_in(currency)?;
            limits.check_operation(*amount)?;
            state.check_credit(*amount, limits)?;
            if source.trim().is_empty() {
                return Err(Error::Invalid("top-up source must not be empty".into()));
            }
            Ok(on(
                wallet_id,
                vec![Event::WalletToppedUp {
                    operation_id: *operation_id,
                    amount: *amount,
                    source: source.clone(),
                }],
            ))
        }
        Command::CloseWallet => {
            state.owned_open(client)?;
            if state.balance != Decimal::ZERO || !state.holds.is_empty() {
                return Err(Error::Invalid(
                    "a wallet with a balance or open holds cannot be closed".into(),
                ));
            }
            Ok(on(
                wallet_id,
                vec![Event::WalletClosed {
                    reason: "closed by client".into(),
                }],
            ))
        }
        Command::Transfer {
            to_wallet_id,
            transfer_id,
            amount,
        } => {
            let to = wallet_of(states, *to_wallet_id);
            ensure_not_blocked(&owner)?;
            let limits = group.limits_in(amount.currency)?;
            let (sent, received) =
                decide_transfer(state, &to, client, *transfer_id, *amount, limits)?;
            let mut events = on(wallet_id, vec![sent]);
            events.extend(on(*to_wallet_id, vec![received]));
            Ok(events)
        }
        Command::CreditTransfer {
            transfer_id,
            from_client_id,
            from_wallet_id,
            amount,
            order_id,
        } => {
            let currency = state.owned_open(client)?;
            ensure_not_blocked(&owner)?;
            amount.ensure_currency(currency)?;
            if order_id.is_none() {
                // A merchant's settlement wallet is a legal entity's account: the balance
                // limits of a person's e-wallet (161-FZ art. 10) do not apply to it.
                state.check_credit(*amount, group.limits_in(currency)?)?;
            }
            let mut events = on(
                wallet_id,
                vec![Event::TransferCredited {
                    transfer_id: *transfer_id,
                    from_client_id: *from_client_id,
                    from_wallet_id: *from_wallet_id,
                    amount: *amount,
                }],
            );
            if let Some(order_id) = order_id {
                events.push(crate::merchant_order::accept_wallet_payment(
                    states,
                    client,
                    *order_id,
                    *transfer_id,
                    *from_client_id,
                    *amount,
                    context.now,
                )?);
            }
            Ok(events)
        }
    }
}

/// The wallet's state in `states` (a wallet with no events when missing).
pub fn wallet_of(states: &States, id: Uuid) -> Wallet {
    match states.get(&AggregateRef::wallet(id)) {
        Some(State::Wallet(w)) => w.clone(),
        _ => Wallet {
            id,
            ..Wallet::default()
        },
    }
}

/// The client's state in `states` (a client with no events when missing).
pub fn client_of(states: &States, id: ClientId) -> Client {
    match states.get(&AggregateRef::client(id)) {
        Some(State::Client(c)) => (**c).clone(),
        _ => Client {
            id: id.0,
            ..Client::default()
        },
    }
}

/// Refuses operations of a blocked client (spec §2: a blocked client's wallet is frozen).
///
/// Errors: [`Error::ClientBlocked`].
pub fn ensure_not_blocked(client: &Client) -> Result<(), Error> {
    if client.status == client::Status::Blocked {
        return Err(Error::ClientBlocked(client.id));
    }
    Ok(())
}

/// Checks that `amount` may be held on `wallet` for a payment of `client` under `limits`
/// (the client group's limits in the amount's currency).
///
/// Errors: [`Error::WalletNotFound`], [`Error::WalletClosed`], currency mismatch, the
/// operation's bounds, [`Error::InsufficientFunds`].
pub fn check_hold(
    wallet: &Wallet,
    client: ClientId,
    amount: Money,
    limits: &CurrencyLimits,
) -> Result<(), Error> {
    let currency = wallet.owned_open(client)?;
    amount.ensure_currency(currency)?;
    limits.check_operation(amount)?;
    wallet.check_debit(amount)
}

/// Decides a transfer between two wallets of one client under the group's `limits` in the
/// amount's currency: both events, or a refusal. A transfer between one's own wallets spends
/// nothing against the spend limits.
/// The debit of `client`'s wallet `from` for a loan repayment (the loan and the wallet are in
/// the client's partition, so both change in one commit).
///
/// Errors: [`Error::WalletNotFound`] (none, or another client's), [`Error::WalletClosed`],
/// a currency mismatch, [`Error::InsufficientFunds`] above the available balance.
pub fn debit_for_loan(
    from: &Wallet,
    client: ClientId,
    loan_id: Uuid,
    repayment_id: Uuid,
    amount: Money,
) -> Result<Event, Error> {
    let currency = from.owned_open(client)?;
    amount.ensure_currency(currency)?;
    from.check_debit(amount)?;
    Ok(Event::LoanRepaymentDebited {
        loan_id,
        repayment_id,
        amount,
    })
}

pub fn decide_transfer(
    from: &Wallet,
    to: &Wallet,
    client: ClientId,
    transfer_id: Uuid,
    amount: Money,
    limits: &CurrencyLimits,
) -> Result<(Event, Event), Error> {
    if from.id == to.id {
        return Err(Error::TransferToSameWallet);
    }
    let currency = from.owned_open(client)?;
    let to_currency = to.owned_open(client)?;
    amount.ensure_currency(currency)?;
    amount.ensure_currency(to_currency)?;
    limits.check_operation(amount)?;
    from.check_debit(amount)?;
    to.check_credit(amount, limits)?;
    Ok((
        Event::TransferSent {
            transfer_id,
            to_wallet_id: to.id,
            amount,
        },
        Event::TransferReceived {
            transfer_id,
            from_wallet_id: from.id,
            amount,
        },
    ))
}

/// Applies one event. Total: an event that does not fit the state (which the log never
/// contains) leaves the state unchanged rather than panicking.
pub fn evolve(mut state: Wallet, event: &Event) -> Wallet {
    match event {
        Event::WalletOpened {
            wallet_id,
            client_id,
            currency,
            limits,
        } => {
            state.status = Status::Open;
            state.id = *wallet_id;
            state.client_id = Some(*client_id);
            state.currency = Some(*currency);
            state.balance = round_minor(Decimal::ZERO, *currency);
            state.limits = Some(limits.clone());
        }
        Event::WalletToppedUp { amount, .. }
        | Event::TransferReceived { amount, .. }
        | Event::TransferCredited { amount, .. }
        | Event::TransferRefunded { amount, .. }
        | Event::PaymentRefunded { amount, .. } => {
            state.balance = normalized(state.balance + amount.amount);
        }
        Event::FundsHeld { payment_id, amount } => {
            state.holds.insert(*payment_id, *amount);
        }
        Event::HoldCaptured { payment_id, amount }
        | Event::TransferDebited {
            payment_id, amount, ..
        } => {
            state.holds.remove(payment_id);
            state.balance = normalized(state.balance - amount.amount);
        }
        Event::HoldReleased { payment_id, .. } => {
            state.holds.remove(payment_id);
        }
        Event::TransferSent { amount, .. } | Event::LoanRepaymentDebited { amount, .. } => {
            state.balance = normalized(state.balance - amount.amount);
        }
        Event::WalletClosed { .. } => state.status = Status::Closed,
    }
    state
}
