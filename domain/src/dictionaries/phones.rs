//! Phone-number capacity ranges («номерные ёмкости», spec §3.1, file dictionaries item 3):
//! ranges of numbers with the operator and the region they belong to, used to check a phone
//! number and to tell its operator before a mobile payment.
//!
//! A range holds full numbers with their country code (`79160000000`–`79169999999`), both
//! ends included, both ends of the same length (8–15 digits, E.164); ranges never overlap, so
//! a number has at most one operator and region ([`PhoneRanges::lookup`]).
//!
//! Besides the JSON document, ranges come as a `;`-separated UTF-8 text ([`parse_csv`]):
//!
//! - `from;to;operator;region` — full numbers, e.g.
//!   `79160000000;79169999999;МТС;Москва и Московская область`;
//! - or the numbering registry's layout `ABC/DEF;От;До;Емкость;Оператор;Регион[;ИНН]` — the
//!   three-digit code and seven-digit numbers of the Russian plan (+7), e.g.
//!   `916;0000000;9999999;10000000;ПАО "МТС";г. Москва и Московская область`; the capacity
//!   must equal the count of numbers in the range.
//!
//! A byte-order mark, a header line (a first line whose first field is not a number) and empty
//! lines are skipped; a field wrapped in double quotes loses them.

use super::document::PhoneRangeDocument;
use super::error::{DictionaryError, ItemRef};
use super::fields::text;
use crate::identity::PhoneE164;

/// A range of numbers of one operator in one region, both ends included.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhoneRange {
    /// The first number: country code and subscriber number as one integer, e.g.
    /// `79160000000`.
    pub from: u64,
    /// The last number, included.
    pub to: u64,
    pub operator: String,
    pub region: String,
}

impl PhoneRange {
    /// `from-to`, how refusals name a range.
    pub fn id(&self) -> String {
        format!("{}-{}", self.from, self.to)
    }

    /// How many numbers the range holds.
    pub fn capacity(&self) -> u64 {
        self.to - self.from + 1
    }
}

/// Capacity ranges sorted by their first number, never overlapping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PhoneRanges(Vec<PhoneRange>);

impl PhoneRanges {
    /// Parses the ranges of a document.
    ///
    /// Errors: [`DictionaryError::InvalidField`] (a number that is not 8–15 digits, ends of
    /// different lengths, `from` above `to`, an empty operator or region),
    /// [`DictionaryError::PhoneRangesOverlap`] naming both ranges.
    pub(crate) fn parse(docs: &[PhoneRangeDocument]) -> Result<PhoneRanges, DictionaryError> {
        let mut ranges = Vec::with_capacity(docs.len());
        for (i, doc) in docs.iter().enumerate() {
            let item = || {
                ItemRef::new(
                    "phone_ranges",
                    &format!("{}-{}", doc.from, doc.to),
                    format!("phone_ranges[{i}]"),
                )
            };
            ranges.push(parse_range(doc, item)?);
        }
        ranges.sort_by_key(|r| (r.from, r.to));
        for pair in ranges.windows(2) {
            let [previous, next] = pair else { continue };
            if next.from <= previous.to {
                return Err(DictionaryError::PhoneRangesOverlap {
                    item: ItemRef::new("phone_ranges", &next.id(), next.id()),
                    other: ItemRef::new("phone_ranges", &previous.id(), previous.id()),
                });
            }
        }
        Ok(PhoneRanges(ranges))
    }

    /// The range holding `phone`, if any.
    pub fn lookup(&self, phone: &PhoneE164) -> Option<&PhoneRange> {
        self.lookup_number(number(phone)?)
    }

    /// The range holding the full number `number` (country code first), if any.
    pub fn lookup_number(&self, number: u64) -> Option<&PhoneRange> {
        let after = self.0.partition_point(|r| r.from <= number);
        after
            .checked_sub(1)
            .and_then(|i| self.0.get(i))
            .filter(|r| number <= r.to)
    }

    pub fn as_slice(&self) -> &[PhoneRange] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A phone number as the integer of its digits (`+79161234567` → `79161234567`).
pub fn number(phone: &PhoneE164) -> Option<u64> {
    phone.as_str().trim_start_matches('+').parse().ok()
}

/// The digits of a range's end: 8–15 ASCII digits, a leading `+` allowed.
fn range_end(raw: &str) -> Result<(u64, usize), String> {
    let digits = raw.strip_prefix('+').unwrap_or(raw);
    if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{raw}` is not a full number of 8–15 digits with its country code, e.g. 79160000000"
        ));
    }
    if digits.starts_with('0') {
        return Err(format!("`{raw}` starts with 0: a country code never does"));
    }
    digits
        .parse::<u64>()
        .map(|n| (n, digits.len()))
        .map_err(|e| format!("`{raw}`: {e}"))
}

fn parse_range(
    doc: &PhoneRangeDocument,
    item: impl Fn() -> Box<ItemRef>,
) -> Result<PhoneRange, DictionaryError> {
    let at = |field: &'static str, reason: String| DictionaryError::InvalidField {
        item: item(),
        field,
        reason,
    };
    let (from, from_len) = range_end(&doc.from).map_err(|r| at("from", r))?;
    let (to, to_len) = range_end(&doc.to).map_err(|r| at("to", r))?;
    if from_len != to_len {
        return Err(at(
            "to",
            format!("`{}` and `{}` have different lengths", doc.from, doc.to),
        ));
    }
    if from > to {
        return Err(at("to", format!("{to} is below `from` {from}")));
    }
    Ok(PhoneRange {
        from,
        to,
        operator: text(&doc.operator, 200).map_err(|r| at("operator", r))?,
        region: text(&doc.region, 200).map_err(|r| at("region", r))?,
    })
}

/// Reads capacity ranges from `;`-separated text (the layouts of the module documentation),
/// each line checked as it is read.
///
/// Errors: [`DictionaryError::InvalidField`] naming the line (`line 7`): a line with
/// another count of fields, numbers that do not parse, a capacity that does not match.
pub fn parse_csv(input: &str) -> Result<Vec<PhoneRangeDocument>, DictionaryError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut out = Vec::new();
    let mut first = true;
    for (i, line) in input.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let owned: Vec<String> = line.split(';').map(unquote).collect();
        let fields: Vec<&str> = owned.iter().map(String::as_str).collect();
        let header = first
            && !fields.first().is_some_and(|f| {
                !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit() || b == b'+')
            });
        first = false;
        if header {
            continue;
        }
        let item = || ItemRef::new("phone_ranges", "", format!("line {line_no}"));
        let refuse = |reason: String| DictionaryError::InvalidField {
            item: item(),
            field: "line",
            reason,
        };
        let doc = match fields.as_slice() {
            [from, to, operator, region] => PhoneRangeDocument {
                from: (*from).to_owned(),
                to: (*to).to_owned(),
                operator: (*operator).to_owned(),
                region: (*region).to_owned(),
            },
            [code, from, to, capacity, operator, region] | [code, from, to, capacity, operator, region, _] => {
                let plain = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
                if !plain(code, 3) || !plain(from, 7) || !plain(to, 7) {
                    return Err(refuse(format!(
                        "`{code};{from};{to}` is not a three-digit code and two seven-digit numbers"
                    )));
                }
                let doc = PhoneRangeDocument {
                    from: format!("7{code}{from}"),
                    to: format!("7{code}{to}"),
                    operator: (*operator).to_owned(),
                    region: (*region).to_owned(),
                };
                let range = parse_range(&doc, item)?;
                let stated: u64 = capacity
                    .parse()
                    .map_err(|_| refuse(format!("capacity `{capacity}` is not a number")))?;
                if stated != range.capacity() {
                    return Err(refuse(format!(
                        "capacity {stated} does not match the {} numbers from {from} to {to}",
                        range.capacity()
                    )));
                }
                doc
            }
            other => {
                return Err(refuse(format!(
                    "{} fields; expected from;to;operator;region or ABC/DEF;От;До;Емкость;Оператор;Регион",
                    other.len()
                )))
            }
        };
        parse_range(&doc, item)?;
        out.push(doc);
    }
    Ok(out)
}

/// A field trimmed; one wrapped in double quotes loses them, its doubled quotes read as one.
fn unquote(field: &str) -> String {
    let f = field.trim();
    match f.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => f.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(from: &str, to: &str, operator: &str) -> PhoneRangeDocument {
        PhoneRangeDocument {
            from: from.into(),
            to: to.into(),
            operator: operator.into(),
            region: "Москва и Московская область".into(),
        }
    }

    fn phone(raw: &str) -> PhoneE164 {
        PhoneE164::parse(raw).unwrap()
    }

    #[test]
    fn given_ranges_when_a_number_is_looked_up_then_its_operator_and_region() {
        let ranges = PhoneRanges::parse(&[
            doc("79250000000", "79259999999", "МегаФон"),
            doc("+79160000000", "+79169999999", "МТС"),
            doc("79030000000", "79030999999", "Билайн"),
        ])
        .unwrap();
        assert_eq!(
            ranges.lookup(&phone("+79161234567")).unwrap().operator,
            "МТС"
        );
        assert_eq!(
            ranges.lookup(&phone("8 (916) 000-00-00")).unwrap().operator,
            "МТС"
        );
        assert_eq!(
            ranges.lookup(&phone("+79169999999")).unwrap().operator,
            "МТС"
        );
        assert_eq!(
            ranges.lookup(&phone("+79250000000")).unwrap().operator,
            "МегаФон"
        );
        assert_eq!(
            ranges.lookup(&phone("+79030000001")).unwrap().region,
            "Москва и Московская область"
        );
        // Between ranges, past the last, before the first, a shorter number: none.
        for none in [
            "+79031000000",
            "+79260000000",
            "+79000000000",
            "+7916123456",
        ] {
            assert!(ranges.lookup(&phone(none)).is_none(), "{none}");
        }
    }

    #[test]
    fn given_overlapping_ranges_then_they_are_refused_naming_both() {
        let e = PhoneRanges::parse(&[
            doc("79160000000", "79169999999", "МТС"),
            doc("79165000000", "79165999999", "Другой"),
        ])
        .unwrap_err();
        assert_eq!(e.code(), "phone_ranges_overlap");
        assert_eq!(e.item().unwrap().id, "79165000000-79165999999");
        assert!(e.to_string().contains("79160000000-79169999999"), "{e}");
        // Touching at one number overlaps too.
        let e = PhoneRanges::parse(&[
            doc("79160000000", "79160000010", "А"),
            doc("79160000010", "79160000020", "Б"),
        ])
        .unwrap_err();
        assert_eq!(e.code(), "phone_ranges_overlap");
    }

    #[test]
    fn given_a_malformed_range_then_it_is_refused_naming_it() {
        for (from, to) in [
            ("7916", "79169999999"),
            ("79169999999", "79160000000"),
            ("79160000000", "791699999990"),
            ("7916000000x", "79169999999"),
            ("09160000000", "09169999999"),
        ] {
            let e = PhoneRanges::parse(&[doc(from, to, "МТС")]).unwrap_err();
            assert_eq!(e.code(), "dictionary_invalid_field", "{from}-{to}");
            assert_eq!(e.item().unwrap().path, "phone_ranges[0]");
        }
        let e = PhoneRanges::parse(&[doc("79160000000", "79169999999", " ")]).unwrap_err();
        assert!(e.to_string().contains("`operator`"), "{e}");
    }

    #[test]
    fn capacity_files_in_both_layouts_are_read() {
        let text = "\u{feff}from;to;operator;region\r\n\
            79160000000;79169999999;МТС;Москва и Московская область\r\n\
            \r\n\
            925;0000000;9999999;10000000;ПАО \"МегаФон\";г. Москва и Московская область\n\
            900;0000000;0061999;62000;\"ООО \"\"Т2 Мобайл\"\"\";Краснодарский край;7743895280\n";
        let docs = parse_csv(text).unwrap();
        assert_eq!(docs.len(), 3, "{docs:?}");
        assert_eq!(docs[1].from, "79250000000");
        assert_eq!(docs[1].to, "79259999999");
        assert_eq!(docs[1].operator, "ПАО \"МегаФон\"");
        assert_eq!(docs[2].to, "79000061999");
        assert_eq!(docs[2].operator, "ООО \"Т2 Мобайл\"");
        let ranges = PhoneRanges::parse(&docs).unwrap();
        assert_eq!(
            ranges.lookup(&phone("+79000061999")).unwrap().region,
            "Краснодарский край"
        );
    }

    #[test]
    fn a_bad_line_is_refused_naming_it() {
        let e = parse_csv("79160000000;79169999999;МТС\n").unwrap_err();
        assert_eq!(e.item().unwrap().path, "line 1");
        let e = parse_csv("from;to;operator;region\n79160000000;79169999999;МТС;Москва\n925;0000000;9999999;1000;МегаФон;Москва\n")
            .unwrap_err();
        assert_eq!(e.item().unwrap().path, "line 3");
        assert!(e.to_string().contains("capacity 1000"), "{e}");
        let e = parse_csv("79160000000;7916999999;МТС;Москва\n").unwrap_err();
        assert_eq!(e.item().unwrap().path, "line 1");
    }
}
