//! Process managers (identification, scoring, card binding, disbursement, wallet operation
//! lifecycle) and the simulators of the external systems they call.
//!
//! Today this crate holds the simulators behind the domain's ports; the sagas that consume
//! `etr.events` and drive the loan conveyor arrive with the loan-flow work.

pub mod simulators;
