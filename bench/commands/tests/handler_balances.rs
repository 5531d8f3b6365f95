//! Handler mode against the real Postgres: two callers for about a second, then the wallets'
//! snapshots must hold exactly top-ups − payments, every payment executed (no hold left).
//! No time is asserted.

use etr_bench::handler::{balances, expected_total, measure, Scratch};
use etr_bench::workload::{PAYMENT, TOP_UP};
use rust_decimal::Decimal;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balances_in_the_snapshots_equal_top_ups_minus_payments() {
    let db = Scratch::create().await.expect("a fresh database");
    // Each caller pairs a top-up and a payment of one wallet, so payments come at once.
    let measured = measure(&db.pool, 4, 2, 10, Duration::from_secs(1)).await;
    let found = balances(&db.pool).await;
    db.drop().await;
    let figures = measured.expect("the run");
    let found = found.expect("the balances");

    assert_eq!(figures.callers, 2);
    assert_eq!(figures.wallets, 20);
    assert!(figures.payments > 0, "no payment was made: {figures:?}");
    assert_eq!(figures.payments, figures.payment_executions);
    assert_eq!(
        figures.commands,
        figures.top_ups + figures.payments + figures.payment_executions
    );
    assert_eq!(found.wallets, 20);
    assert_eq!(found.open_holds, 0);
    let by_hand = TOP_UP * Decimal::from(figures.top_ups)
        - PAYMENT * Decimal::from(figures.payment_executions);
    assert_eq!(
        expected_total(figures.top_ups, figures.payments, 0),
        by_hand
    );
    assert_eq!(found.total, by_hand, "{figures:?} left {found:?}");
}
