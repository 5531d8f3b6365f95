//! One-time passwords: issue, verify, attempts, lockout, expiry, resend throttling.

use etr_domain::otp::{code_from, hash, issue, verify, Policy, Verification};
use proptest::prelude::*;
use time::macros::datetime;
use time::Duration;

fn policy() -> Policy {
    Policy::default()
}

#[test]
fn the_right_code_verifies_once() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let c = issue(&policy(), None, "123456", "salt-1", now).unwrap();
    assert_ne!(c.code_hash, "123456");
    assert_eq!(c.code_hash, hash("123456", "salt-1"));
    let (c, v) = verify(&policy(), c, "123456", "cmd-1", now + Duration::seconds(30));
    assert_eq!(v, Verification::Verified);
    let (_, v) = verify(&policy(), c, "123456", "cmd-2", now + Duration::seconds(31));
    assert_eq!(v, Verification::AlreadyUsed);
}

/// The command that spent the code, sent again (its answer or its commit was lost), verifies
/// again with the same code; no other command and no other code does.
#[test]
fn a_spent_code_verifies_again_only_for_the_command_that_spent_it() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let c = issue(&policy(), None, "123456", "s", now).unwrap();
    let (c, v) = verify(&policy(), c, "123456", "client/sign-1", now);
    assert_eq!(v, Verification::Verified);
    assert_eq!(c.used_by.as_deref(), Some("client/sign-1"));
    let (c, v) = verify(
        &policy(),
        c,
        "123456",
        "client/sign-1",
        now + Duration::seconds(40),
    );
    assert_eq!(v, Verification::Verified);
    let (c, v) = verify(
        &policy(),
        c,
        "654321",
        "client/sign-1",
        now + Duration::seconds(41),
    );
    assert_eq!(v, Verification::AlreadyUsed);
    let (c, v) = verify(
        &policy(),
        c,
        "123456",
        "client/sign-2",
        now + Duration::seconds(42),
    );
    assert_eq!(v, Verification::AlreadyUsed);
    assert_eq!(c.attempts, 0, "a used code counts no attempts");
}

#[test]
fn wrong_codes_count_and_the_last_one_locks() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let c = issue(&policy(), None, "123456", "s", now).unwrap();
    let (c, v) = verify(&policy(), c, "000000", "cmd-1", now);
    assert_eq!(v, Verification::Wrong { attempts_left: 2 });
    let (c, v) = verify(&policy(), c, "111111", "cmd-1", now);
    assert_eq!(v, Verification::Wrong { attempts_left: 1 });
    let (c, v) = verify(&policy(), c, "222222", "cmd-1", now);
    let until = now + Duration::minutes(15);
    assert_eq!(v, Verification::LockedOut { until });
    // Locked: even the right code does nothing, and no new code can be sent.
    let (c, v) = verify(&policy(), c, "123456", "cmd-1", now + Duration::minutes(1));
    assert_eq!(v, Verification::LockedOut { until });
    assert_eq!(
        issue(
            &policy(),
            Some(&c),
            "654321",
            "s2",
            now + Duration::minutes(14)
        )
        .map_err(|e| e.code()),
        Err("otp_locked_out")
    );
    assert!(issue(&policy(), Some(&c), "654321", "s2", until).is_ok());
}

#[test]
fn codes_expire_and_resends_are_throttled() {
    let now = datetime!(2026-11-30 12:00 UTC);
    let c = issue(&policy(), None, "123456", "s", now).unwrap();
    let (_, v) = verify(
        &policy(),
        c.clone(),
        "123456",
        "cmd-1",
        now + Duration::minutes(5),
    );
    assert_eq!(v, Verification::Expired);
    assert_eq!(
        issue(
            &policy(),
            Some(&c),
            "654321",
            "s2",
            now + Duration::seconds(59)
        )
        .map_err(|e| e.code()),
        Err("otp_resend_too_soon")
    );
    assert!(issue(
        &policy(),
        Some(&c),
        "654321",
        "s2",
        now + Duration::seconds(60)
    )
    .is_ok());
}

#[test]
fn codes_have_the_configured_length() {
    let p = Policy {
        length: 4,
        ..policy()
    };
    // 0x0007 → 7, 0x000d = 13 → 3, 0xffff = 65535 → 5, 0x0100 = 256 → 6.
    assert_eq!(
        code_from(&p, &[0, 7, 0, 13, 255, 255, 1, 0]).unwrap(),
        "7356"
    );
    assert_eq!(
        code_from(&p, &[1, 2, 3]).map_err(|e| e.code()),
        Err("otp_policy")
    );
    let p = Policy {
        length: 9,
        ..policy()
    };
    assert_eq!(
        code_from(&p, &[0; 18]).map_err(|e| e.code()),
        Err("otp_policy")
    );
}

proptest! {
    /// Whatever is entered, at most `max_attempts` wrong codes are ever judged, and only the
    /// issued code verifies.
    #[test]
    fn only_the_code_verifies_and_attempts_are_bounded(
        random in prop::collection::vec(any::<u8>(), 12),
        entered in prop::collection::vec("[0-9]{6}", 1..10),
    ) {
        let p = policy();
        let code = code_from(&p, &random).unwrap();
        prop_assert_eq!(code.len(), 6);
        let now = datetime!(2026-11-30 12:00 UTC);
        let mut c = issue(&p, None, &code, "salt", now).unwrap();
        let mut wrong = 0;
        for e in &entered {
            let (next, v) = verify(&p, c, e, "cmd-1", now);
            c = next;
            match v {
                Verification::Verified => prop_assert_eq!(e, &code),
                Verification::Wrong { .. } => { wrong += 1; prop_assert_ne!(e, &code) }
                Verification::LockedOut { .. } => {}
                Verification::AlreadyUsed => prop_assert!(c.used),
                Verification::Expired => prop_assert!(false, "not expired yet"),
            }
        }
        prop_assert!(wrong < p.max_attempts);
    }
}
