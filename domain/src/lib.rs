//! The business core of ETR: aggregates, their commands and events, and money math.
//!
//! Every aggregate is a pair of pure functions: `decide(&state, &command, &context) ->
//! Result<Vec<Event>, Error>` and `evolve(state, &event) -> state`. Nothing in this crate
//! performs I/O, reads a clock or spawns tasks: business time arrives in [`Context`] (for
//! commands) or in the event envelope (for replays), so replaying the log is deterministic.
//!
//! Aggregates: [`client`] (the customer registry), [`wallet`] (wallet accounts), [`payment`] (wallet operations with the
//! 0–9 lifecycle), [`application`] (loan applications) and [`loan`] (issued loans).
//! [`command`] is the single entry point the command handler uses; [`partition`] is the
//! partition writer's decision of a whole batch over it (ordering, idempotent replay,
//! sequence numbers, hash chains), shared by the command API and the simulator. [`dictionaries`] holds the
//! processing centre's dictionaries and the commission of an operation.

pub mod advertising;
pub mod alerts;
pub mod application;
pub mod autopayment;
pub mod bki_upload;
pub mod caps;
pub mod card;
pub mod card_repayment;
pub mod client;
pub mod command;
pub mod conveyor;
pub mod credit_history;
pub mod dictionaries;
pub mod documents;
pub mod envelope;
pub mod error;
pub mod fraud;
pub mod identification;
pub mod identity;
pub mod ids;
pub mod legal;
pub mod limits;
pub mod loan;
pub mod merchant_order;
pub mod money;
pub mod otp;
pub mod partition;
pub mod payment;
pub mod payment_execution;
pub mod pdn;
pub mod personal;
pub mod ports;
pub mod product;
pub mod psk;
pub mod receipt;
pub mod retry;
pub mod schedule;
pub mod servicing;
pub mod time_serde;
pub mod wallet;

pub use command::{decide, evolve, AggregateKind, AggregateRef, Command, Context, Event, State};
pub use envelope::{Actor, Envelope};
pub use error::Error;
pub use ids::ClientId;
pub use money::{Currency, Money, MoneyError};
