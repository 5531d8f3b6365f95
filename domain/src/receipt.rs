//! Receipts rendered from the processing centre's receipt templates (e-wallet spec §3.1,
//! item 4, and §6 for the banner) into safe HTML.
//!
//! The templates are Apache Velocity text; this renderer reads exactly the subset the
//! processing centre's templates use, and refuses anything else ([`TemplateError`], with a
//! code and the line). Templates are checked when the dictionaries are imported
//! ([`Template::parse`] from `dictionaries::ReceiptTemplates::parse`), so a receipt never
//! fails on a template that was accepted.
//!
//! The subset, line by line:
//!
//! - `## text` — the receipt's heading, rendered `<h2>text</h2>` (not Velocity's line
//!   comment: the processing centre's templates use it as the title);
//! - `#foreach($x in $operation.attributes.entrySet())` … `#end`, each on a line of its own:
//!   the lines between are rendered once per attribute of the operation, in the attributes'
//!   name order, with `$x.key` and `$x.value` (any loop variable name; no nesting);
//! - `$adv.getBannerHtml($operation, 'PLACE')` on a line of its own: the banner of the
//!   advertising place `PLACE` (spec §6; its markup from
//!   [`crate::advertising::banner_html`]), or nothing without a banner; at most one per
//!   template ([`Template::banner_place`] says which place to ask);
//! - any other line: a paragraph `<p>…</p>` (blank lines are dropped), in which references
//!   are replaced by their values: `$operation.id`, `$operation.date`, `$operation.amount`,
//!   `$operation.commission`, `$operation.total`, `$operation.currency`,
//!   `$operation.attributes.NAME` (empty when the operation has no such attribute),
//!   `$service.name`, `$receipt.agent`; a `$` not followed by a letter is text.
//!
//! Refused: any other reference (`unknown_reference`), quiet or formal references `$!a`,
//! `${a}` (`unsupported_reference`), any other directive — `#if`, `#set`, `#macro`,
//! `#parse`, `#include`, `#*…*#`, … — (`unsupported_directive`), a `#foreach` over anything
//! else or not alone on its line (`unsupported_foreach`), a nested `#foreach`
//! (`nested_foreach`), an `#end` without `#foreach` or a `#foreach` without `#end`
//! (`unbalanced_foreach`), a banner call of another form or not alone on its line
//! (`unsupported_banner_call`), a second banner call (`multiple_banners`).
//!
//! Every value is HTML-escaped; the only markup in the output is the renderer's own and the
//! banner's fixed markup. Money arrives formatted ([`ReceiptData`]): this module does no
//! arithmetic.

use std::collections::BTreeMap;

use crate::advertising::{banner_html, escape_html, Banner, PlaceId};

/// What a receipt shows, formatted by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptData {
    /// `$operation.id`
    pub operation_id: String,
    /// `$operation.date`: the operation's date and time as the receipt shows it.
    pub date: String,
    /// `$service.name`
    pub service_name: String,
    /// `$operation.amount`: exact, two digits after the point (`100.00`).
    pub amount: String,
    /// `$operation.commission`: exact, two digits after the point.
    pub commission: String,
    /// `$operation.total`: amount + commission, two digits after the point.
    pub total: String,
    /// `$operation.currency`: ISO code.
    pub currency: String,
    /// `$operation.attributes.NAME` and the `#foreach` over them.
    pub attributes: BTreeMap<String, String>,
    /// `$receipt.agent`: the payment agent's name.
    pub agent: String,
}

/// Why a template is refused: a stable code, the line (1-based) and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TemplateError {
    /// `unknown_reference`, `unsupported_reference`, `unsupported_directive`,
    /// `unsupported_foreach`, `nested_foreach`, `unbalanced_foreach`,
    /// `unsupported_banner_call`, `multiple_banners`.
    pub code: &'static str,
    pub line: usize,
    pub message: String,
}

impl TemplateError {
    pub fn code(&self) -> &'static str {
        self.code
    }
}

fn refuse(code: &'static str, line: usize, message: impl Into<String>) -> TemplateError {
    TemplateError {
        code,
        line,
        message: message.into(),
    }
}

/// A value a reference stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    OperationId,
    Date,
    Amount,
    Commission,
    Total,
    Currency,
    Attribute(String),
    ServiceName,
    Agent,
    EntryName,
    EntryText,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(Value),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Heading(Vec<Piece>),
    Paragraph(Vec<Piece>),
    Foreach(Vec<Line>),
    Banner,
}

/// A parsed template: render it as often as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    lines: Vec<Line>,
    banner_place: Option<PlaceId>,
}

const BANNER_CALL: &str = "$adv.getBannerHtml(";

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Reads a dotted reference after a `$` at `rest`; returns the path and the rest.
fn dotted(rest: &str) -> (Vec<&str>, &str) {
    let mut parts = Vec::new();
    let mut s = rest;
    loop {
        let end = s
            .char_indices()
            .find(|&(_, c)| !is_ident(c))
            .map_or(s.len(), |(i, _)| i);
        parts.push(&s[..end]);
        s = &s[end..];
        // A dot continues the reference only when an identifier follows ("$a.b." ends a
        // sentence).
        match s.strip_prefix('.') {
            Some(after) if after.chars().next().is_some_and(is_ident_start) => s = after,
            _ => return (parts, s),
        }
    }
}

fn resolve(path: &[&str], loop_var: Option<&str>, line: usize) -> Result<Value, TemplateError> {
    let value = match path {
        ["operation", "id"] => Value::OperationId,
        ["operation", "date"] => Value::Date,
        ["operation", "amount"] => Value::Amount,
        ["operation", "commission"] => Value::Commission,
        ["operation", "total"] => Value::Total,
        ["operation", "currency"] => Value::Currency,
        ["operation", "attributes", name] => Value::Attribute((*name).to_owned()),
        ["service", "name"] => Value::ServiceName,
        ["receipt", "agent"] => Value::Agent,
        [var, "key"] if Some(*var) == loop_var => Value::EntryName,
        [var, "value"] if Some(*var) == loop_var => Value::EntryText,
        _ => {
            return Err(refuse(
                "unknown_reference",
                line,
                format!("`${}` is not a value a receipt has", path.join(".")),
            ))
        }
    };
    Ok(value)
}

/// A directive starts here: `#` then a letter, `{`, `*` or `#` (the heading is handled
/// before).
fn directive_at(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next() == Some('#')
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '{' | '*' | '#' | '['))
}

fn pieces(text: &str, loop_var: Option<&str>, line: usize) -> Result<Vec<Piece>, TemplateError> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if directive_at(rest) {
            return Err(refuse(
                "unsupported_directive",
                line,
                format!(
                    "`{}` is not supported (only #foreach over the attributes and #end)",
                    rest.chars().take(12).collect::<String>()
                ),
            ));
        }
        if c == '$' {
            let after = &rest[1..];
            match after.chars().next() {
                Some('!') | Some('{') => {
                    return Err(refuse(
                        "unsupported_reference",
                        line,
                        "quiet ($!a) and formal (${a}) references are not supported",
                    ))
                }
                Some(n) if is_ident_start(n) => {
                    let (path, remaining) = dotted(after);
                    if path.first() == Some(&"adv") {
                        return Err(refuse(
                            "unsupported_banner_call",
                            line,
                            "a banner is placed by `$adv.getBannerHtml($operation, 'place')` alone on its line",
                        ));
                    }
                    if remaining.starts_with('(') {
                        return Err(refuse(
                            "unknown_reference",
                            line,
                            format!("`${}(…)`: method calls are not supported", path.join(".")),
                        ));
                    }
                    if !literal.is_empty() {
                        out.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    out.push(Piece::Value(resolve(&path, loop_var, line)?));
                    rest = remaining;
                    continue;
                }
                _ => {}
            }
        }
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !literal.is_empty() {
        out.push(Piece::Text(literal));
    }
    Ok(out)
}

/// `#foreach($x in $operation.attributes.entrySet())` → `x`.
fn foreach_var(line: &str, number: usize) -> Result<String, TemplateError> {
    let bad = || {
        refuse(
            "unsupported_foreach",
            number,
            "only `#foreach($x in $operation.attributes.entrySet())` alone on its line is supported",
        )
    };
    let inner = line
        .trim()
        .strip_prefix("#foreach")
        .map(str::trim_start)
        .and_then(|s| s.strip_prefix('('))
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(bad)?;
    let mut words = inner.split_whitespace();
    let (Some(var), Some("in"), Some("$operation.attributes.entrySet()"), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad());
    };
    let name = var.strip_prefix('$').ok_or_else(bad)?;
    if name.is_empty() || !name.starts_with(is_ident_start) || !name.chars().all(is_ident) {
        return Err(bad());
    }
    if matches!(name, "operation" | "service" | "receipt" | "adv") {
        return Err(bad());
    }
    Ok(name.to_owned())
}

/// `$adv.getBannerHtml($operation, 'content')` → `content`.
fn banner_call(line: &str, number: usize) -> Result<PlaceId, TemplateError> {
    let bad = || {
        refuse(
            "unsupported_banner_call",
            number,
            "a banner is placed by `$adv.getBannerHtml($operation, 'place')` alone on its line, the place an advertising place's id",
        )
    };
    let args = line
        .trim()
        .strip_prefix(BANNER_CALL)
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (operation, place) = args.split_once(',').ok_or_else(bad)?;
    if operation.trim() != "$operation" {
        return Err(bad());
    }
    let place = place.trim();
    let name = place
        .strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .or_else(|| place.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
        .ok_or_else(bad)?;
    PlaceId::parse(name).map_err(|_| bad())
}

impl Template {
    /// Parses a template of the subset in the module's documentation. Errors: a
    /// [`TemplateError`] with its code and line.
    pub fn parse(body: &str) -> Result<Template, TemplateError> {
        let mut top: Vec<Line> = Vec::new();
        // The open #foreach: its variable, its line and the lines read so far.
        let mut open: Option<(String, usize, Vec<Line>)> = None;
        let mut banner_place: Option<PlaceId> = None;
        for (i, raw) in body.lines().enumerate() {
            let number = i + 1;
            let trimmed = raw.trim();
            let line = if trimmed.starts_with("#foreach") {
                if open.is_some() {
                    return Err(refuse(
                        "nested_foreach",
                        number,
                        "a #foreach inside a #foreach is not supported",
                    ));
                }
                open = Some((foreach_var(trimmed, number)?, number, Vec::new()));
                continue;
            } else if trimmed == "#end" || trimmed == "#{end}" {
                let Some((_, _, lines)) = open.take() else {
                    return Err(refuse(
                        "unbalanced_foreach",
                        number,
                        "#end without a #foreach",
                    ));
                };
                Line::Foreach(lines)
            } else if trimmed.contains(BANNER_CALL) {
                if !trimmed.starts_with(BANNER_CALL) {
                    return Err(refuse(
                        "unsupported_banner_call",
                        number,
                        "the banner call must stand alone on its line",
                    ));
                }
                let place = banner_call(trimmed, number)?;
                if banner_place.is_some() {
                    return Err(refuse(
                        "multiple_banners",
                        number,
                        "a template places at most one banner",
                    ));
                }
                banner_place = Some(place);
                Line::Banner
            } else if let Some(heading) = trimmed.strip_prefix("## ") {
                let var = open.as_ref().map(|(v, _, _)| v.as_str());
                Line::Heading(pieces(heading, var, number)?)
            } else if trimmed.is_empty() {
                continue;
            } else {
                let var = open.as_ref().map(|(v, _, _)| v.as_str());
                Line::Paragraph(pieces(trimmed, var, number)?)
            };
            match (&mut open, line) {
                (Some((_, _, lines)), Line::Banner) => {
                    lines.push(Line::Banner);
                    return Err(refuse(
                        "unsupported_banner_call",
                        number,
                        "the banner call cannot stand inside a #foreach",
                    ));
                }
                (Some((_, _, lines)), line) => lines.push(line),
                (None, line) => top.push(line),
            }
        }
        if let Some((_, line, _)) = open {
            return Err(refuse(
                "unbalanced_foreach",
                line,
                "#foreach without its #end",
            ));
        }
        Ok(Template {
            lines: top,
            banner_place,
        })
    }

    /// The advertising place the template shows a banner of, if it has a banner call.
    pub fn banner_place(&self) -> Option<&PlaceId> {
        self.banner_place.as_ref()
    }

    /// The receipt as HTML: a heading line as `<h2>`, every other line a `<p>`, each on its
    /// own output line, every value escaped; the banner call replaced by
    /// [`banner_html`] of `banner`, or by nothing.
    pub fn render(&self, data: &ReceiptData, banner: Option<&Banner>) -> String {
        let mut out = String::new();
        render_lines(&self.lines, data, None, banner, &mut out);
        out
    }
}

fn value<'a>(v: &'a Value, data: &'a ReceiptData, entry: Option<(&'a str, &'a str)>) -> &'a str {
    match v {
        Value::OperationId => &data.operation_id,
        Value::Date => &data.date,
        Value::Amount => &data.amount,
        Value::Commission => &data.commission,
        Value::Total => &data.total,
        Value::Currency => &data.currency,
        Value::Attribute(name) => data.attributes.get(name).map_or("", String::as_str),
        Value::ServiceName => &data.service_name,
        Value::Agent => &data.agent,
        Value::EntryName => entry.map_or("", |(k, _)| k),
        Value::EntryText => entry.map_or("", |(_, v)| v),
    }
}

fn text(pieces: &[Piece], data: &ReceiptData, entry: Option<(&str, &str)>) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => escape_html(t),
            Piece::Value(v) => escape_html(value(v, data, entry)),
        })
        .collect()
}

fn render_lines(
    lines: &[Line],
    data: &ReceiptData,
    entry: Option<(&str, &str)>,
    banner: Option<&Banner>,
    out: &mut String,
) {
    for line in lines {
        match line {
            Line::Heading(p) => {
                out.push_str(&format!("<h2>{}</h2>\n", text(p, data, entry)));
            }
            Line::Paragraph(p) => {
                out.push_str(&format!("<p>{}</p>\n", text(p, data, entry)));
            }
            Line::Foreach(body) => {
                for (k, v) in &data.attributes {
                    render_lines(body, data, Some((k, v)), banner, out);
                }
            }
            Line::Banner => {
                if let Some(b) = banner {
                    out.push_str(&banner_html(b));
                    out.push('\n');
                }
            }
        }
    }
}

/// Parses `template_body` and renders it ([`Template::parse`], [`Template::render`]).
pub fn render_receipt(
    template_body: &str,
    data: &ReceiptData,
    banner: Option<&Banner>,
) -> Result<String, TemplateError> {
    Ok(Template::parse(template_body)?.render(data, banner))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::advertising::{BannerId, CampaignId, Conditions, Content, Weight};

    const DEFAULT: &str = "## Чек (шаблон по умолчанию)\n$receipt.agent\nЧек № $operation.id от $operation.date\nУслуга: $service.name\n#foreach($attribute in $operation.attributes.entrySet())\n$attribute.key: $attribute.value\n#end\nСумма: $operation.amount $operation.currency\nКомиссия: $operation.commission $operation.currency\nИтого: $operation.total $operation.currency\n$adv.getBannerHtml($operation, 'content')\n";

    fn data() -> ReceiptData {
        ReceiptData {
            operation_id: "op-1".into(),
            date: "04.12.2026 12:00".into(),
            service_name: "МТС".into(),
            amount: "100.00".into(),
            commission: "1.50".into(),
            total: "101.50".into(),
            currency: "RUB".into(),
            attributes: BTreeMap::from([
                ("phone".into(), "79001234567".into()),
                ("account".into(), "<script>alert(1)</script>".into()),
            ]),
            agent: "ООО «Агент» & Co".into(),
        }
    }

    fn banner() -> Banner {
        Banner {
            id: BannerId::parse("winter").unwrap(),
            campaign: CampaignId::parse("c").unwrap(),
            place: PlaceId::parse("content").unwrap(),
            content: Content::parse("Скидка <10%>", "", "/offers", None).unwrap(),
            weight: Weight::parse(1).unwrap(),
            conditions: Conditions::default(),
        }
    }

    #[test]
    fn given_the_default_template_when_rendered_then_every_line_is_html_and_values_are_escaped() {
        let html = render_receipt(DEFAULT, &data(), Some(&banner())).unwrap();
        let lines: Vec<&str> = html.lines().collect();
        assert_eq!(lines[0], "<h2>Чек (шаблон по умолчанию)</h2>");
        assert_eq!(lines[1], "<p>ООО «Агент» &amp; Co</p>");
        assert_eq!(lines[2], "<p>Чек № op-1 от 04.12.2026 12:00</p>");
        assert_eq!(lines[3], "<p>Услуга: МТС</p>");
        // The attributes in name order, the script escaped.
        assert_eq!(
            lines[4],
            "<p>account: &lt;script&gt;alert(1)&lt;/script&gt;</p>"
        );
        assert_eq!(lines[5], "<p>phone: 79001234567</p>");
        assert_eq!(lines[6], "<p>Сумма: 100.00 RUB</p>");
        assert_eq!(lines[8], "<p>Итого: 101.50 RUB</p>");
        assert!(lines[9].starts_with(r#"<aside class="etr-banner" data-banner="winter">"#));
        assert!(lines[9].contains("Скидка &lt;10%&gt;"), "{}", lines[9]);
        assert_eq!(lines.len(), 10);
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn given_no_banner_when_rendered_then_the_slot_is_empty() {
        let t = Template::parse(DEFAULT).unwrap();
        assert_eq!(t.banner_place().map(PlaceId::as_str), Some("content"));
        let html = t.render(&data(), None);
        assert!(!html.contains("aside"), "{html}");
        assert!(html.ends_with("<p>Итого: 101.50 RUB</p>\n"), "{html}");
    }

    #[test]
    fn given_an_attribute_reference_when_the_attribute_is_missing_then_it_is_empty() {
        let html = render_receipt(
            "Телефон: $operation.attributes.phone; счёт: $operation.attributes.nothing.",
            &data(),
            None,
        )
        .unwrap();
        assert_eq!(html, "<p>Телефон: 79001234567; счёт: .</p>\n");
        let html = render_receipt("Цена $ 5 и $5", &data(), None).unwrap();
        assert_eq!(html, "<p>Цена $ 5 и $5</p>\n");
    }

    #[test]
    fn the_processing_centre_s_templates_are_accepted() {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../sagas/data/processing_centre.json")).unwrap();
        let templates = doc["receipt_templates"].as_array().unwrap();
        assert!(templates.len() >= 3);
        for t in templates {
            let body = t["body"].as_str().unwrap();
            let parsed = Template::parse(body).unwrap_or_else(|e| panic!("{}: {e}", t["name"]));
            assert_eq!(parsed.banner_place().map(PlaceId::as_str), Some("content"));
        }
    }

    #[test]
    fn anything_outside_the_subset_is_refused_with_its_code_and_line() {
        for (body, code, line) in [
            ("ok\n$operation.secret", "unknown_reference", 2),
            ("$attribute.key", "unknown_reference", 1),
            ("$service.name()", "unknown_reference", 1),
            ("$!operation.id", "unsupported_reference", 1),
            ("${operation.id}", "unsupported_reference", 1),
            ("#if($operation.id)\nx\n#end", "unsupported_directive", 1),
            ("#set($a = 1)", "unsupported_directive", 1),
            ("a #parse('x')", "unsupported_directive", 1),
            ("#* comment *#", "unsupported_directive", 1),
            ("#foreach($a in $list)\n#end", "unsupported_foreach", 1),
            (
                "#foreach($a in $operation.attributes.entrySet()) $a.key\n#end",
                "unsupported_foreach",
                1,
            ),
            (
                "#foreach($a in $operation.attributes.entrySet())\n#foreach($b in $operation.attributes.entrySet())\n#end\n#end",
                "nested_foreach",
                2,
            ),
            ("#end", "unbalanced_foreach", 1),
            (
                "x\n#foreach($a in $operation.attributes.entrySet())\n$a.key",
                "unbalanced_foreach",
                2,
            ),
            ("Реклама: $adv.getBannerHtml($operation, 'content')", "unsupported_banner_call", 1),
            ("$adv.getBannerHtml($other, 'content')", "unsupported_banner_call", 1),
            ("$adv.getBannerHtml($operation, content)", "unsupported_banner_call", 1),
            ("$adv.getBannerHtml($operation, 'Bad Place')", "unsupported_banner_call", 1),
            ("$adv.other()", "unsupported_banner_call", 1),
            (
                "$adv.getBannerHtml($operation, 'a')\n$adv.getBannerHtml($operation, 'b')",
                "multiple_banners",
                2,
            ),
            (
                "#foreach($a in $operation.attributes.entrySet())\n$adv.getBannerHtml($operation, 'a')\n#end",
                "unsupported_banner_call",
                2,
            ),
        ] {
            let e = Template::parse(body).unwrap_err();
            assert_eq!((e.code(), e.line), (code, line), "{body}: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
}
