//! Reading the rendered HTML into the blocks the PDF layout places.

use roxmltree::{Node, ParsingOptions};

use crate::Error;

/// Horizontal alignment of a line within its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Center,
    Right,
}

/// A piece of inline content.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Inline {
    /// Text as written (whitespace is collapsed when lines are built).
    Text { text: String, bold: bool },
    /// Forced line break.
    Break,
}

/// A table cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cell {
    pub(crate) content: Vec<Inline>,
    pub(crate) align: Align,
    pub(crate) span: usize,
}

/// A table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    /// Relative column widths from `data-widths`, if given.
    pub(crate) widths: Vec<f32>,
    /// Header rows, repeated at the top of every page the table continues on.
    pub(crate) head: Vec<Vec<Cell>>,
    pub(crate) body: Vec<Vec<Cell>>,
}

/// A block of the document flow.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    Heading {
        level: u8,
        content: Vec<Inline>,
    },
    Paragraph {
        align: Align,
        small: bool,
        content: Vec<Inline>,
    },
    Table(Table),
    /// The head of the first page: blocks on the left, framed boxes on the right.
    Top {
        left: Vec<Block>,
        frames: Vec<Vec<Inline>>,
    },
    /// Blocks kept on one page when they fit on one.
    Keep(Vec<Block>),
    Rule,
    PageBreak,
}

/// The document as the layout sees it.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Document {
    pub(crate) title: Option<String>,
    pub(crate) lang: Option<String>,
    pub(crate) blocks: Vec<Block>,
    /// Running footer; `[page]` and `[pages]` are replaced per page.
    pub(crate) footer: Option<Vec<Inline>>,
}

/// Parses rendered HTML (well-formed, XHTML style) into blocks.
pub(crate) fn parse(html: &str) -> Result<Document, Error> {
    let options = ParsingOptions {
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    let tree = roxmltree::Document::parse_with_options(html, options)
        .map_err(|err| Error::Markup(err.to_string()))?;
    let root = tree.root_element();
    let mut doc = Document {
        lang: root.attribute("lang").map(str::to_owned),
        ..Document::default()
    };
    doc.title = root
        .descendants()
        .find(|node| node.has_tag_name("title"))
        .map(|title| collapse(&text_of(title)))
        .filter(|title| !title.is_empty());
    let mut blocks = Vec::new();
    collect_nodes(std::iter::once(root), &mut blocks, &mut doc.footer);
    doc.blocks = blocks;
    Ok(doc)
}

fn tag(node: Node<'_, '_>) -> String {
    node.tag_name().name().to_ascii_lowercase()
}

fn has_class(node: Node<'_, '_>, class: &str) -> bool {
    node.attribute("class")
        .is_some_and(|classes| classes.split_ascii_whitespace().any(|c| c == class))
}

fn align_of(node: Node<'_, '_>, default: Align) -> Align {
    if has_class(node, "center") {
        Align::Center
    } else if has_class(node, "right") || has_class(node, "num") {
        Align::Right
    } else if has_class(node, "left") {
        Align::Left
    } else {
        default
    }
}

fn text_of(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

fn collapse(text: &str) -> String {
    text.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// Elements that start a block of their own.
fn is_block(name: &str) -> bool {
    matches!(
        name,
        "html"
            | "body"
            | "main"
            | "article"
            | "section"
            | "header"
            | "footer"
            | "nav"
            | "aside"
            | "div"
            | "p"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "table"
            | "hr"
            | "ul"
            | "ol"
            | "li"
            | "dl"
            | "dt"
            | "dd"
            | "blockquote"
            | "address"
            | "figure"
            | "tr"
            | "thead"
            | "tbody"
            | "tfoot"
    )
}

/// Elements that print nothing.
fn is_hidden(name: &str) -> bool {
    matches!(
        name,
        "head" | "title" | "style" | "script" | "meta" | "link" | "template"
    )
}

fn collect_blocks(parent: Node<'_, '_>, out: &mut Vec<Block>, footer: &mut Option<Vec<Inline>>) {
    collect_nodes(parent.children(), out, footer);
}

fn collect_nodes<'a, 'i: 'a>(
    nodes: impl Iterator<Item = Node<'a, 'i>>,
    out: &mut Vec<Block>,
    footer: &mut Option<Vec<Inline>>,
) {
    // Inline content met directly between blocks forms an anonymous paragraph.
    let mut loose: Vec<Inline> = Vec::new();
    let flush = |loose: &mut Vec<Inline>, out: &mut Vec<Block>| {
        if has_text(loose) {
            out.push(Block::Paragraph {
                align: Align::Left,
                small: false,
                content: std::mem::take(loose),
            });
        }
        loose.clear();
    };
    let mut list_number = 0usize;
    for child in nodes {
        if child.is_text() {
            if let Some(text) = child.text() {
                loose.push(Inline::Text {
                    text: text.to_owned(),
                    bold: false,
                });
            }
            continue;
        }
        if !child.is_element() {
            continue;
        }
        let name = tag(child);
        if is_hidden(&name) {
            continue;
        }
        if !is_block(&name) {
            collect_inline_node(child, false, &mut loose);
            continue;
        }
        flush(&mut loose, out);
        match name.as_str() {
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                let level = name[1..].parse().unwrap_or(3);
                out.push(Block::Heading {
                    level,
                    content: inline_of(child, true),
                });
            }
            "p" | "address" | "dt" | "dd" => out.push(Block::Paragraph {
                align: align_of(child, Align::Left),
                small: has_class(child, "small"),
                content: inline_of(child, name == "dt"),
            }),
            "li" => {
                list_number += 1;
                let marker = if tag_of_parent(child) == "ol" {
                    format!("{list_number}. ")
                } else {
                    "• ".to_owned()
                };
                let mut content = vec![Inline::Text {
                    text: marker,
                    bold: false,
                }];
                content.extend(inline_of(child, false));
                out.push(Block::Paragraph {
                    align: Align::Left,
                    small: has_class(child, "small"),
                    content,
                });
            }
            "hr" => out.push(Block::Rule),
            "table" => out.push(Block::Table(table(child))),
            "footer" if footer.is_none() => *footer = Some(inline_of(child, false)),
            _ if has_class(child, "page-break") => out.push(Block::PageBreak),
            _ if has_class(child, "top") => out.push(top(child, footer)),
            _ if has_class(child, "keep") => {
                let mut inner = Vec::new();
                collect_blocks(child, &mut inner, footer);
                out.push(Block::Keep(inner));
            }
            _ => collect_blocks(child, out, footer),
        }
    }
    flush(&mut loose, out);
}

fn tag_of_parent(node: Node<'_, '_>) -> String {
    node.parent_element().map(tag).unwrap_or_default()
}

fn top(node: Node<'_, '_>, footer: &mut Option<Vec<Inline>>) -> Block {
    let mut left = Vec::new();
    let mut frames = Vec::new();
    for child in node.children().filter(Node::is_element) {
        if has_class(child, "psk") {
            frames.extend(
                child
                    .children()
                    .filter(Node::is_element)
                    .map(|frame| inline_of(frame, false)),
            );
        } else {
            collect_nodes(std::iter::once(child), &mut left, footer);
        }
    }
    Block::Top { left, frames }
}

fn has_text(content: &[Inline]) -> bool {
    content.iter().any(|item| match item {
        Inline::Text { text, .. } => !text.trim_ascii().is_empty(),
        Inline::Break => false,
    })
}

/// The inline content of `node`.
pub(crate) fn inline_of(node: Node<'_, '_>, bold: bool) -> Vec<Inline> {
    let mut out = Vec::new();
    for child in node.children() {
        collect_inline_node(child, bold, &mut out);
    }
    while matches!(out.last(), Some(Inline::Break)) {
        out.pop();
    }
    out
}

fn collect_inline_node(node: Node<'_, '_>, bold: bool, out: &mut Vec<Inline>) {
    if node.is_text() {
        if let Some(text) = node.text() {
            out.push(Inline::Text {
                text: text.to_owned(),
                bold,
            });
        }
        return;
    }
    if !node.is_element() {
        return;
    }
    let name = tag(node);
    if is_hidden(&name) {
        return;
    }
    if name == "br" {
        out.push(Inline::Break);
        return;
    }
    let bold = bold || matches!(name.as_str(), "b" | "strong" | "th");
    let block = is_block(&name);
    if block && has_text(out) && !matches!(out.last(), Some(Inline::Break)) {
        out.push(Inline::Break);
    }
    for child in node.children() {
        collect_inline_node(child, bold, out);
    }
    if block && has_text(out) && !matches!(out.last(), Some(Inline::Break)) {
        out.push(Inline::Break);
    }
}

fn table(node: Node<'_, '_>) -> Table {
    let widths = node
        .attribute("data-widths")
        .map(|spec| {
            spec.split(',')
                .map(|w| w.trim().parse::<f32>().unwrap_or(0.0))
                .collect::<Vec<_>>()
        })
        .filter(|widths| widths.iter().all(|w| w.is_finite() && *w > 0.0))
        .unwrap_or_default();
    let mut head = Vec::new();
    let mut body = Vec::new();
    let mut foot = Vec::new();
    for child in node.children().filter(Node::is_element) {
        match tag(child).as_str() {
            "thead" => head.extend(rows(child)),
            "tbody" => body.extend(rows(child)),
            "tfoot" => foot.extend(rows(child)),
            "tr" => body.push(row(child)),
            _ => {}
        }
    }
    body.extend(foot);
    Table { widths, head, body }
}

fn rows(section: Node<'_, '_>) -> Vec<Vec<Cell>> {
    section
        .children()
        .filter(|n| n.has_tag_name("tr"))
        .map(row)
        .collect()
}

fn row(tr: Node<'_, '_>) -> Vec<Cell> {
    tr.children()
        .filter(|n| n.has_tag_name("td") || n.has_tag_name("th"))
        .map(|cell| {
            let header = cell.has_tag_name("th");
            Cell {
                content: inline_of(cell, header),
                align: align_of(cell, if header { Align::Center } else { Align::Left }),
                span: cell
                    .attribute("colspan")
                    .and_then(|span| span.trim().parse().ok())
                    .filter(|span| *span > 0)
                    .unwrap_or(1),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(content: &[Inline]) -> String {
        content
            .iter()
            .map(|item| match item {
                Inline::Text { text, .. } => collapse(text),
                Inline::Break => "|".to_owned(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn reads_the_supported_subset() {
        let html = r#"<!DOCTYPE html>
<html lang="ru"><head><title> Договор  № 1 </title><style>p { color: red }</style></head>
<body>
  <div class="top">
    <div><p><b>ООО «Заём»</b></p><p>ОГРН 1</p></div>
    <div class="psk"><div>ПСК<br/><b>10,000&#160;%</b></div><div>ПСК &amp; деньги</div></div>
  </div>
  <h1>Заголовок</h1>
  <p class="center small">Мелкий текст</p>
  <table data-widths="1,3">
    <thead><tr><th>№</th><th>Условие</th></tr></thead>
    <tbody><tr><td class="num">1</td><td>Сумма</td></tr></tbody>
    <tfoot><tr><td colspan="2">Итого</td></tr></tfoot>
  </table>
  <ol><li>первый</li><li>второй</li></ol>
  <div class="keep"><h2>Подпись</h2><p>АСП</p></div>
  <hr/>
  <div class="page-break"></div>
  свободный текст
  <footer>стр. [page] из [pages]</footer>
</body></html>"#;
        let doc = parse(html).unwrap();
        assert_eq!(doc.title.as_deref(), Some("Договор № 1"));
        assert_eq!(doc.lang.as_deref(), Some("ru"));
        assert_eq!(
            doc.footer.as_deref().map(plain).as_deref(),
            Some("стр. [page] из [pages]")
        );
        let blocks = &doc.blocks;
        assert_eq!(blocks.len(), 10, "{blocks:#?}");
        match &blocks[0] {
            Block::Top { left, frames } => {
                assert_eq!(left.len(), 2);
                assert_eq!(frames.len(), 2);
                assert_eq!(plain(&frames[0]), "ПСК | 10,000\u{a0}%");
                assert!(matches!(&frames[0][2], Inline::Text { bold: true, .. }));
                assert_eq!(plain(&frames[1]), "ПСК & деньги");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&blocks[1], Block::Heading { level: 1, .. }));
        assert!(matches!(
            &blocks[2],
            Block::Paragraph {
                align: Align::Center,
                small: true,
                ..
            }
        ));
        match &blocks[3] {
            Block::Table(table) => {
                assert_eq!(table.widths, vec![1.0, 3.0]);
                assert_eq!(table.head.len(), 1);
                assert_eq!(table.body.len(), 2, "tfoot rows follow the body");
                assert_eq!(table.body[0][0].align, Align::Right);
                assert_eq!(table.head[0][0].align, Align::Center);
                assert_eq!(table.body[1][0].span, 2);
            }
            other => panic!("{other:?}"),
        }
        match &blocks[4] {
            Block::Paragraph { content, .. } => assert_eq!(plain(content), "1. первый"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(&blocks[6], Block::Keep(inner) if inner.len() == 2));
        assert!(matches!(&blocks[7], Block::Rule));
        assert!(matches!(&blocks[8], Block::PageBreak));
        match &blocks[9] {
            Block::Paragraph { content, .. } => {
                assert_eq!(plain(content).trim(), "свободный текст")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn named_html_entities_are_refused_with_their_position() {
        let err = parse("<html><body><p>a&nbsp;b</p></body></html>").unwrap_err();
        assert!(matches!(err, Error::Markup(message) if message.contains("1:")));
    }
}
