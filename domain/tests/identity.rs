//! Client identifiers parsed at the edge (seed 000, 6.2.1). Valid vectors are published
//! numbers: INN 7707083893 (Sberbank) and 7736207543 (Yandex LLC) from the Federal Tax
//! Service's public register, 500100732259 (the 12-digit example of the FNS control-number
//! description); SNILS 112-233-445 95 (the example of the Pension Fund's check-number rule).

use etr_domain::identity::{Email, IdentityError, Inn, PassportNumber, PhoneE164, Snils};
use proptest::prelude::*;

#[test]
fn inn_valid_and_refused() {
    for ok in ["7707083893", "7736207543", "500100732259", " 7707083893 "] {
        let inn = Inn::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(inn.as_str(), ok.trim());
    }
    assert!(Inn::parse("500100732259").unwrap().is_personal());
    assert!(!Inn::parse("7707083893").unwrap().is_personal());
    for (bad, code) in [
        ("7707083894", "inn_checksum"),
        ("500100732258", "inn_checksum"),
        ("500100732269", "inn_checksum"),
        ("770708389", "inn_format"),
        ("77070838931", "inn_format"),
        ("7707-083893", "inn_format"),
        ("770708389O", "inn_format"),
        ("７７０７０８３８９３", "inn_format"),
        ("", "inn_format"),
    ] {
        assert_eq!(Inn::parse(bad).map_err(|e| e.code()), Err(code), "{bad}");
    }
}

#[test]
fn snils_valid_and_refused() {
    let a = Snils::parse("112-233-445 95").unwrap();
    let b = Snils::parse("11223344595").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.as_str(), "11223344595");
    // Numbers up to 001-001-998 predate the check number and are taken as they are.
    assert!(Snils::parse("001-001-998 00").is_ok());
    assert_eq!(
        Snils::parse("112-233-445 96").map_err(|e| e.code()),
        Err("snils_checksum")
    );
    for bad in ["112-233-445", "112-233-445 9", "112_233_445 95", "abc", ""] {
        assert_eq!(
            Snils::parse(bad).map_err(|e| e.code()),
            Err("snils_format"),
            "{bad}"
        );
    }
}

#[test]
fn passport_series_and_number() {
    let p = PassportNumber::parse("4510 123456").unwrap();
    assert_eq!((p.series(), p.number()), ("4510", "123456"));
    assert_eq!(p, PassportNumber::parse("4510123456").unwrap());
    for bad in ["4599 12345", "45-10 123456", "4510 12345a"] {
        assert_eq!(
            PassportNumber::parse(bad).map_err(|e| e.code()),
            Err("passport_format"),
            "{bad}"
        );
    }
    for never_issued in ["0000 123456", "4510 000000"] {
        assert_eq!(
            PassportNumber::parse(never_issued).map_err(|e| e.code()),
            Err("passport_not_issued"),
            "{never_issued}"
        );
    }
}

#[test]
fn phones_become_e164() {
    for (input, e164) in [
        ("+79161234567", "+79161234567"),
        ("+7 (916) 123-45-67", "+79161234567"),
        ("89161234567", "+79161234567"),
        ("8 916 123 45 67", "+79161234567"),
        ("+442071838750", "+442071838750"),
    ] {
        assert_eq!(PhoneE164::parse(input).unwrap().as_str(), e164, "{input}");
    }
    for bad in [
        "79161234567",
        "9161234567",
        "+0161234567",
        "+7916",
        "+7916123456789012",
        "+7916-ABC-4567",
        "++79161234567",
        "",
    ] {
        assert_eq!(
            PhoneE164::parse(bad).map_err(|e| e.code()),
            Err("phone_format"),
            "{bad}"
        );
    }
}

#[test]
fn emails() {
    assert_eq!(
        Email::parse("Ivan.Petrov@Example.RU").unwrap().as_str(),
        "Ivan.Petrov@example.ru"
    );
    for bad in [
        "ivan",
        "ivan@",
        "@example.ru",
        "ivan@example",
        "ivan@@example.ru",
        "iv an@example.ru",
        "ivan@example..ru",
        "ivan@-example.ru",
        "",
    ] {
        assert_eq!(
            Email::parse(bad).map_err(|e| e.code()),
            Err("email_format"),
            "{bad}"
        );
    }
}

#[test]
fn identifiers_deserialize_only_when_valid() {
    let inn: Inn = serde_json::from_str("\"7707083893\"").unwrap();
    assert_eq!(serde_json::to_string(&inn).unwrap(), "\"7707083893\"");
    assert!(serde_json::from_str::<Inn>("\"7707083894\"").is_err());
    assert!(serde_json::from_str::<PhoneE164>("\"12\"").is_err());
}

/// The INN check digits of `prefix` (9 or 11 digits), by the FNS algorithm.
fn with_inn_check(prefix: &[u32]) -> String {
    let check = |d: &[u32], w: &[u32]| d.iter().zip(w).map(|(a, b)| a * b).sum::<u32>() % 11 % 10;
    let mut d = prefix.to_vec();
    if d.len() == 9 {
        d.push(check(&d, &[2, 4, 10, 3, 5, 9, 4, 6, 8]));
    } else {
        d.push(check(&d, &[7, 2, 4, 10, 3, 5, 9, 4, 6, 8]));
        d.push(check(&d, &[3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]));
    }
    d.iter()
        .map(|x| char::from_digit(*x, 10).unwrap())
        .collect()
}

proptest! {
    #[test]
    fn every_inn_with_its_check_digits_parses_and_a_wrong_last_digit_does_not(
        prefix in prop::collection::vec(0u32..10, 9..=10),
        wrong in 1u32..10,
    ) {
        let prefix = if prefix.len() == 10 { prefix } else { prefix[..9].to_vec() };
        let valid = with_inn_check(&prefix);
        let parsed = Inn::parse(&valid).unwrap();
        prop_assert_eq!(parsed.as_str(), valid.as_str());
        let mut digits: Vec<u32> = valid.chars().map(|c| c.to_digit(10).unwrap()).collect();
        let last = digits.len() - 1;
        digits[last] = (digits[last] + wrong) % 10;
        let broken: String = digits.iter().map(|x| char::from_digit(*x, 10).unwrap()).collect();
        prop_assert_eq!(Inn::parse(&broken), Err(IdentityError::InnChecksum));
    }

    #[test]
    fn a_snils_parses_the_same_with_or_without_separators(nine in 1_002_000u32..999_999_999) {
        let d: Vec<u32> = format!("{nine:09}").chars().map(|c| c.to_digit(10).unwrap()).collect();
        let sum: u32 = d.iter().zip([9, 8, 7, 6, 5, 4, 3, 2, 1]).map(|(a, b)| a * b).sum();
        let check = if sum % 101 == 100 { 0 } else { sum % 101 };
        let plain = format!("{nine:09}{check:02}");
        let written = format!("{}-{}-{} {check:02}", &plain[..3], &plain[3..6], &plain[6..9]);
        prop_assert_eq!(Snils::parse(&written).unwrap(), Snils::parse(&plain).unwrap());
        let off = format!("{nine:09}{:02}", (check + 1) % 101 % 100);
        prop_assert!(Snils::parse(&off).is_err());
    }

    #[test]
    fn parsing_a_canonical_phone_gives_it_back(digits in "[1-9][0-9]{7,14}") {
        let e164 = format!("+{digits}");
        let parsed = PhoneE164::parse(&e164).unwrap();
        prop_assert_eq!(parsed.as_str(), e164.as_str());
        prop_assert_eq!(PhoneE164::parse(parsed.as_str()).unwrap(), parsed);
    }
}

/// A refusal is answered to callers and may be logged: it names the rule, never the refused
/// text, which is personal data even when it is wrong.
#[test]
fn a_refusal_never_repeats_the_refused_identifier() {
    let refusals: Vec<(&str, IdentityError)> = vec![
        ("500100732250", Inn::parse("500100732250").unwrap_err()),
        ("5001007322", Inn::parse("5001007322").unwrap_err()),
        ("50010073225", Inn::parse("50010073225").unwrap_err()),
        (
            "112-233-445 96",
            Snils::parse("112-233-445 96").unwrap_err(),
        ),
        ("112-233-44", Snils::parse("112-233-44").unwrap_err()),
        (
            "4599 12345",
            PassportNumber::parse("4599 12345").unwrap_err(),
        ),
        (
            "0000 123456",
            PassportNumber::parse("0000 123456").unwrap_err(),
        ),
        ("+7905555", PhoneE164::parse("+7905555").unwrap_err()),
        (
            "ivan.petrov@example",
            Email::parse("ivan.petrov@example").unwrap_err(),
        ),
    ];
    for (text, refusal) in refusals {
        let shown = format!("{refusal} {refusal:?}");
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        assert!(!shown.contains(text), "{shown}");
        assert!(digits.len() < 4 || !shown.contains(&digits), "{shown}");
        assert!(!shown.contains("ivan"), "{shown}");
    }
}
