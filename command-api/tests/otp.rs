//! One-time passwords on the real Postgres server, sent through the SMS simulator: the code
//! read from the simulator verifies once; wrong codes lock the challenge; resends are
//! throttled; concurrent wrong attempts are each counted; a refused SMS stores nothing.

use etr_command_api::otp::Otp;
use etr_domain::identity::PhoneE164;
use etr_domain::otp::{Policy, Verification};
use etr_domain::ClientId;
use etr_sagas::simulators::SmsSimulator;
use std::sync::Arc;
use time::macros::datetime;
use time::Duration;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_sent_checked_counted_and_throttled() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_otp")
        .await
        .expect("a fresh database on the local Postgres server");
    let sms = Arc::new(SmsSimulator::default());
    let otp = Arc::new(Otp::new(pool.clone(), Policy::default(), sms.clone()));
    let client = ClientId(Uuid::new_v4());
    let phone = PhoneE164::parse("+79161234567").unwrap();
    let now = datetime!(2026-11-30 12:00 UTC);

    otp.send(client, "sign-contract", &phone, now)
        .await
        .unwrap();
    let code = sms.last_code(phone.as_str()).expect("a code was sent");
    assert_eq!(code.len(), 6);
    // Only a salted hash is stored.
    let stored: String = sqlx::query_scalar("SELECT challenge::text FROM otp_challenges")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!stored.contains(&code), "{stored}");
    // Another purpose has nothing to verify.
    let err = otp
        .verify(client, "payment", &code, "cmd-1", now)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "otp_not_sent");
    // A resend within 60 s is refused.
    let err = otp
        .send(client, "sign-contract", &phone, now + Duration::seconds(10))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "otp_resend_too_soon");

    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        otp.verify(client, "sign-contract", wrong, "cmd-1", now)
            .await
            .unwrap(),
        Verification::Wrong { attempts_left: 2 }
    );
    assert_eq!(
        otp.verify(
            client,
            "sign-contract",
            &code,
            "cmd-1",
            now + Duration::seconds(20)
        )
        .await
        .unwrap(),
        Verification::Verified
    );
    assert_eq!(
        otp.verify(
            client,
            "sign-contract",
            &code,
            "cmd-2",
            now + Duration::seconds(21)
        )
        .await
        .unwrap(),
        Verification::AlreadyUsed
    );
    // The command that spent it, sent again, verifies again (its commit may have been lost).
    assert_eq!(
        otp.verify(
            client,
            "sign-contract",
            &code,
            "cmd-1",
            now + Duration::seconds(22)
        )
        .await
        .unwrap(),
        Verification::Verified
    );

    // A new code after 60 s; three concurrent wrong attempts are each counted: two wrong,
    // one locks, and then the right code no longer verifies.
    let later = now + Duration::seconds(61);
    otp.send(client, "sign-contract", &phone, later)
        .await
        .unwrap();
    let code = sms.last_code(phone.as_str()).unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let attempts = futures::future::join_all((0..3).map(|_| {
        let otp = otp.clone();
        async move {
            otp.verify(client, "sign-contract", wrong, "cmd-1", later)
                .await
                .unwrap()
        }
    }))
    .await;
    let locked = attempts
        .iter()
        .filter(|v| matches!(v, Verification::LockedOut { .. }))
        .count();
    let left: Vec<u32> = attempts
        .iter()
        .filter_map(|v| match v {
            Verification::Wrong { attempts_left } => Some(*attempts_left),
            _ => None,
        })
        .collect();
    assert_eq!(locked, 1, "{attempts:?}");
    let mut left = left;
    left.sort_unstable();
    assert_eq!(left, vec![1, 2], "{attempts:?}");
    assert!(matches!(
        otp.verify(client, "sign-contract", &code, "cmd-1", later)
            .await
            .unwrap(),
        Verification::LockedOut { .. }
    ));

    // A number the gateway refuses: an error, and nothing stored for that client.
    let other = ClientId(Uuid::new_v4());
    let refused = PhoneE164::parse("+79160000000").unwrap();
    let err = otp
        .send(other, "sign-contract", &refused, now)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sms_failed");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM otp_challenges WHERE client_id = $1")
            .bind(other.0)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, 0);

    pool.close().await;
    etr_infra::pg::drop_database(&url)
        .await
        .expect("dropping the test database");
}
