//! Process managers and the simulators of the external systems they call.
//!
//! A process manager consumes `etr.events` like a projection (its instances change in the
//! same transaction as its checkpoint, so an event moves it exactly once), keeps durable
//! timers, calls external systems through ports outside any transaction, and issues
//! follow-up commands with deterministic ids in the platform's namespace
//! ([`etr_domain::ids::platform_command_id`]) through the [`runtime::Commands`] port.
//! Its decisions are a pure `step` function in the domain; this crate performs them.
//!
//! Running today: [`payment_execution`] (statuses 3 → 4 → 6 / 8 of a wallet payment) and
//! [`conveyor`] (a loan application from submission to disbursement: identification, legal
//! checks, scoring, the contract, card binding, the payout).

pub mod alerts;
pub mod autopayments;
pub mod bki;
pub mod card_repayment;
pub mod checkout;
pub mod conveyor;
pub mod day_close;
pub mod error;
pub mod lending_simulators;
pub mod payment_execution;
pub mod processing_centre;
pub mod runtime;
pub mod simulators;

pub use error::Error;
