//! Placing blocks on A4 pages.
//!
//! All quantities are PDF points (1/72 inch), y growing downwards from the
//! top edge of the page.

use super::fonts::Fonts;
use super::markup::{Align, Block, Cell, Document, Inline, Table};

/// A4 width.
pub(crate) const PAGE_WIDTH: f32 = 595.28;
/// A4 height.
pub(crate) const PAGE_HEIGHT: f32 = 841.89;
const MARGIN_LEFT: f32 = 48.0;
const MARGIN_RIGHT: f32 = 42.0;
const MARGIN_TOP: f32 = 42.0;
const MARGIN_BOTTOM: f32 = 56.0;
const FOOTER_BASELINE: f32 = PAGE_HEIGHT - 30.0;

const BODY_SIZE: f32 = 9.0;
const SMALL_SIZE: f32 = 7.5;
const TABLE_SIZE: f32 = 8.5;
const H1_SIZE: f32 = 14.0;
const H2_SIZE: f32 = 11.0;
const H3_SIZE: f32 = 9.5;
/// Text in the framed boxes of the first page. Federal Law 353-FZ, art. 6
/// part 1, asks for the largest type used on that page: nothing on the page
/// is set larger than the main heading, and the frames use that size.
const FRAME_SIZE: f32 = H1_SIZE;
/// Side of a framed box. The same article asks for each frame to cover at
/// least 5 % of the first page: 5 % of A4 is 25 058 pt², a square of 158.3 pt.
const FRAME_MIN_SIDE: f32 = 160.0;
const FRAME_GAP: f32 = 8.0;
const FRAME_PADDING: f32 = 8.0;
const FRAME_STROKE: f32 = 1.5;
/// Narrowest column worth setting text in beside the frames.
const MIN_COLUMN: f32 = 72.0;

const LINE_FACTOR: f32 = 1.25;
/// Baseline below the top of a line box, as a fraction of the type size
/// (DejaVu Sans: ascender 0.928 em, descender 0.236 em, centred in the box).
const BASELINE_FACTOR: f32 = 0.97;
const CELL_PADDING: f32 = 3.0;
const CELL_STROKE: f32 = 0.5;

/// A drawing instruction on one page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    /// Text with its baseline starting at (`x`, `y`).
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        text: String,
    },
    /// Stroked rectangle.
    Rect {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
        stroke: f32,
    },
    /// Stroked line.
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        stroke: f32,
    },
}

/// One laid-out page.
pub(crate) type Page = Vec<Op>;

/// Lays `doc` out on as many pages as it needs (at least one).
pub(crate) fn layout(doc: &Document, fonts: &Fonts) -> Vec<Page> {
    let mut layout = Layout {
        fonts,
        pages: vec![Vec::new()],
        y: MARGIN_TOP,
    };
    layout.blocks(
        &doc.blocks,
        MARGIN_LEFT,
        PAGE_WIDTH - MARGIN_LEFT - MARGIN_RIGHT,
    );
    let mut pages = layout.pages;
    if let Some(footer) = &doc.footer {
        let count = pages.len();
        for (index, page) in pages.iter_mut().enumerate() {
            let content = page_footer(footer, index + 1, count);
            let width = PAGE_WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
            let lines = wrap(fonts, &content, SMALL_SIZE, width, false);
            let mut baseline = FOOTER_BASELINE;
            for line in lines.iter().take(2) {
                push_line(
                    page,
                    line,
                    MARGIN_LEFT,
                    width,
                    Align::Center,
                    baseline,
                    SMALL_SIZE,
                );
                baseline += SMALL_SIZE * LINE_FACTOR;
            }
        }
    }
    pages
}

fn page_footer(footer: &[Inline], page: usize, pages: usize) -> Vec<Inline> {
    footer
        .iter()
        .map(|item| match item {
            Inline::Text { text, bold } => Inline::Text {
                text: text
                    .replace("[page]", &page.to_string())
                    .replace("[pages]", &pages.to_string()),
                bold: *bold,
            },
            Inline::Break => Inline::Break,
        })
        .collect()
}

struct Layout<'f> {
    fonts: &'f Fonts,
    pages: Vec<Page>,
    /// Top of the free space on the current page.
    y: f32,
}

impl Layout<'_> {
    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN_TOP;
    }

    fn bottom() -> f32 {
        PAGE_HEIGHT - MARGIN_BOTTOM
    }

    fn at_page_top(&self) -> bool {
        self.y <= MARGIN_TOP
    }

    fn space(&mut self, points: f32) {
        if !self.at_page_top() {
            self.y += points;
        }
    }

    /// Starts a new page unless `height` more points fit on this one.
    fn keep(&mut self, height: f32) {
        if self.y + height > Self::bottom() && !self.at_page_top() {
            self.new_page();
        }
    }

    fn blocks(&mut self, blocks: &[Block], x: f32, width: f32) {
        for block in blocks {
            match block {
                Block::Heading { level, content } => self.heading(*level, content, x, width),
                Block::Paragraph {
                    align,
                    small,
                    content,
                } => {
                    let size = if *small { SMALL_SIZE } else { BODY_SIZE };
                    let lines = wrap(self.fonts, content, size, width, false);
                    self.lines(&lines, x, width, *align, size);
                    self.space(4.0);
                }
                Block::Table(table) => {
                    self.table(table, x, width);
                    self.space(8.0);
                }
                Block::Top { left, frames } => self.top(left, frames, x, width),
                Block::Keep(inner) => {
                    if let Some(height) = self.measure(inner, width) {
                        self.keep(height + H2_SIZE);
                    }
                    self.blocks(inner, x, width);
                }
                Block::Rule => {
                    self.space(4.0);
                    self.keep(8.0);
                    let y = self.y;
                    self.page().push(Op::Line {
                        x1: x,
                        y1: y,
                        x2: x + width,
                        y2: y,
                        stroke: CELL_STROKE,
                    });
                    self.y += 6.0;
                }
                Block::PageBreak => {
                    if !self.at_page_top() {
                        self.new_page();
                    }
                }
            }
        }
    }

    /// Height of `blocks` laid out from the top of a page, if they fit on one.
    fn measure(&self, blocks: &[Block], width: f32) -> Option<f32> {
        let mut probe = Layout {
            fonts: self.fonts,
            pages: vec![Vec::new()],
            y: MARGIN_TOP,
        };
        probe.blocks(blocks, MARGIN_LEFT, width);
        (probe.pages.len() == 1).then_some(probe.y - MARGIN_TOP)
    }

    fn heading(&mut self, level: u8, content: &[Inline], x: f32, width: f32) {
        let (size, align, before, after) = match level {
            1 => (H1_SIZE, Align::Center, 6.0, 8.0),
            2 => (H2_SIZE, Align::Left, 8.0, 4.0),
            _ => (H3_SIZE, Align::Left, 6.0, 3.0),
        };
        self.space(before);
        let lines = wrap(self.fonts, content, size, width, false);
        let height = lines.len() as f32 * size * LINE_FACTOR;
        // A heading stays with the first lines of what follows it.
        self.keep(height + 4.0 * BODY_SIZE * LINE_FACTOR);
        self.lines(&lines, x, width, align, size);
        self.y += after;
    }

    /// Places lines in the flow, continuing on a new page when one is full.
    fn lines(&mut self, lines: &[Line], x: f32, width: f32, align: Align, size: f32) {
        let height = size * LINE_FACTOR;
        for line in lines {
            self.keep(height);
            let baseline = self.y + size * BASELINE_FACTOR;
            push_line(self.page(), line, x, width, align, baseline, size);
            self.y += height;
        }
    }

    /// The head of the first page: framed boxes at the top-right, `left`
    /// laid out in the space beside them.
    fn top(&mut self, left: &[Block], frames: &[Vec<Inline>], x: f32, width: f32) {
        let frame_lines: Vec<Vec<Line>> = frames
            .iter()
            .map(|content| {
                wrap(
                    self.fonts,
                    content,
                    FRAME_SIZE,
                    FRAME_MIN_SIDE - 2.0 * FRAME_PADDING,
                    true,
                )
            })
            .collect();
        let line_height = FRAME_SIZE * LINE_FACTOR;
        let side = frame_lines
            .iter()
            .map(|lines| lines.len() as f32 * line_height + 2.0 * FRAME_PADDING)
            .fold(FRAME_MIN_SIDE, f32::max);
        let count = frames.len() as f32;
        let frames_width = if frames.is_empty() {
            0.0
        } else {
            count * side + (count - 1.0) * FRAME_GAP
        };
        self.keep(side);
        let top = self.y;
        let top_page = self.pages.len();
        let mut frame_x = x + width - frames_width;
        for lines in &frame_lines {
            self.page().push(Op::Rect {
                x: frame_x,
                y: top,
                width: side,
                height: side,
                stroke: FRAME_STROKE,
            });
            let text_height = lines.len() as f32 * line_height;
            let mut line_top = top + (side - text_height) / 2.0;
            for line in lines {
                let baseline = line_top + FRAME_SIZE * BASELINE_FACTOR;
                push_line(
                    self.page(),
                    line,
                    frame_x + FRAME_PADDING,
                    side - 2.0 * FRAME_PADDING,
                    Align::Center,
                    baseline,
                    FRAME_SIZE,
                );
                line_top += line_height;
            }
            frame_x += side + FRAME_GAP;
        }
        let left_width = if frames.is_empty() {
            width
        } else {
            width - frames_width - 2.0 * FRAME_GAP
        };
        if left_width >= MIN_COLUMN {
            self.blocks(left, x, left_width);
            if self.pages.len() == top_page {
                self.y = self.y.max(top + side);
            }
            self.y += 10.0;
        } else {
            // No room beside the frames: what was meant for the left follows them.
            self.y = top + side + 10.0;
            self.blocks(left, x, width);
        }
    }

    fn table(&mut self, table: &Table, x: f32, width: f32) {
        let columns = table
            .head
            .iter()
            .chain(&table.body)
            .map(|row| row.iter().map(|cell| cell.span).sum::<usize>())
            .max()
            .unwrap_or(0);
        if columns == 0 {
            return;
        }
        let weights: Vec<f32> = if table.widths.len() == columns {
            table.widths.clone()
        } else {
            vec![1.0; columns]
        };
        let total: f32 = weights.iter().sum();
        let mut edges = Vec::with_capacity(columns + 1);
        let mut edge = x;
        edges.push(edge);
        for weight in &weights {
            edge += width * weight / total;
            edges.push(edge);
        }
        let head: Vec<RowLayout> = table
            .head
            .iter()
            .map(|row| self.row_layout(row, &edges))
            .collect();
        let head_height: f32 = head.iter().map(|row| row.height).sum();
        let mut first = true;
        for row in &table.body {
            let row = self.row_layout(row, &edges);
            // The header and the first row start together; later rows move to
            // a new page, under a repeated header, when they do not fit.
            let needed = if first {
                head_height + row.height
            } else {
                row.height
            };
            if self.y + needed > Self::bottom() && !self.at_page_top() {
                self.new_page();
                self.place_rows(&head);
            } else if first {
                self.place_rows(&head);
            }
            first = false;
            self.place_rows(std::slice::from_ref(&row));
        }
        if first {
            self.keep(head_height);
            self.place_rows(&head);
        }
    }

    fn row_layout(&self, row: &[Cell], edges: &[f32]) -> RowLayout {
        let mut cells = Vec::with_capacity(row.len());
        let mut column = 0;
        for cell in row {
            let end = (column + cell.span).min(edges.len() - 1);
            if column >= end {
                break;
            }
            let x = edges[column];
            let width = edges[end] - x;
            let lines = wrap(
                self.fonts,
                &cell.content,
                TABLE_SIZE,
                width - 2.0 * CELL_PADDING,
                false,
            );
            cells.push(CellLayout {
                x,
                width,
                lines,
                align: cell.align,
            });
            column = end;
        }
        let line_count = cells
            .iter()
            .map(|cell| cell.lines.len())
            .max()
            .unwrap_or(0)
            .max(1);
        RowLayout {
            height: line_count as f32 * TABLE_SIZE * LINE_FACTOR + 2.0 * CELL_PADDING,
            cells,
        }
    }

    fn place_rows(&mut self, rows: &[RowLayout]) {
        for row in rows {
            let top = self.y;
            for cell in &row.cells {
                self.page().push(Op::Rect {
                    x: cell.x,
                    y: top,
                    width: cell.width,
                    height: row.height,
                    stroke: CELL_STROKE,
                });
                let mut baseline = top + CELL_PADDING + TABLE_SIZE * BASELINE_FACTOR;
                for line in &cell.lines {
                    push_line(
                        self.page(),
                        line,
                        cell.x + CELL_PADDING,
                        cell.width - 2.0 * CELL_PADDING,
                        cell.align,
                        baseline,
                        TABLE_SIZE,
                    );
                    baseline += TABLE_SIZE * LINE_FACTOR;
                }
            }
            self.y += row.height;
        }
    }
}

struct RowLayout {
    height: f32,
    cells: Vec<CellLayout>,
}

struct CellLayout {
    x: f32,
    width: f32,
    lines: Vec<Line>,
    align: Align,
}

/// A run of text in one face, `x` points from the start of its line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece {
    pub(crate) x: f32,
    pub(crate) bold: bool,
    pub(crate) text: String,
}

/// One line of text.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Line {
    pub(crate) pieces: Vec<Piece>,
    pub(crate) width: f32,
}

fn push_line(
    page: &mut Page,
    line: &Line,
    x: f32,
    width: f32,
    align: Align,
    baseline: f32,
    size: f32,
) {
    let offset = match align {
        Align::Left => 0.0,
        Align::Center => ((width - line.width) / 2.0).max(0.0),
        Align::Right => (width - line.width).max(0.0),
    };
    for piece in &line.pieces {
        page.push(Op::Text {
            x: x + offset + piece.x,
            y: baseline,
            size,
            bold: piece.bold,
            text: piece.text.clone(),
        });
    }
}

/// A word of inline content; `glued` when no space separates it from the
/// previous word (a change of face inside a word).
struct Word {
    text: String,
    bold: bool,
    glued: bool,
}

enum Token {
    Word(Word),
    Break,
}

/// Splits inline content into words, collapsing whitespace as HTML does.
/// A no-break space (U+00A0) or narrow no-break space (U+202F) joins words.
fn tokens(content: &[Inline], upper: bool) -> Vec<Token> {
    let mut out = Vec::new();
    let mut current: Option<Word> = None;
    let mut pending_space = false;
    for item in content {
        match item {
            Inline::Break => {
                if let Some(word) = current.take() {
                    out.push(Token::Word(word));
                }
                out.push(Token::Break);
                pending_space = false;
            }
            Inline::Text { text, bold } => {
                for ch in text.chars() {
                    if ch.is_whitespace() && ch != '\u{a0}' && ch != '\u{202f}' {
                        if let Some(word) = current.take() {
                            out.push(Token::Word(word));
                        }
                        pending_space = true;
                        continue;
                    }
                    let same_run = current
                        .as_ref()
                        .is_some_and(|word| word.bold == *bold && !pending_space);
                    if !same_run {
                        if let Some(word) = current.take() {
                            out.push(Token::Word(word));
                        }
                        let glued = !pending_space && matches!(out.last(), Some(Token::Word(_)));
                        current = Some(Word {
                            text: String::new(),
                            bold: *bold,
                            glued,
                        });
                    }
                    pending_space = false;
                    if let Some(word) = current.as_mut() {
                        if upper {
                            word.text.extend(ch.to_uppercase());
                        } else {
                            word.text.push(ch);
                        }
                    }
                }
            }
        }
    }
    if let Some(word) = current.take() {
        out.push(Token::Word(word));
    }
    out
}

/// Breaks inline content into lines no wider than `max_width` at `size`.
pub(crate) fn wrap(
    fonts: &Fonts,
    content: &[Inline],
    size: f32,
    max_width: f32,
    upper: bool,
) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut line = Line::default();
    for token in tokens(content, upper) {
        let word = match token {
            Token::Break => {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            Token::Word(word) => word,
        };
        let face = fonts.face(word.bold);
        let space = face.width(" ", size);
        let word_width = face.width(&word.text, size);
        let gap = if word.glued || line.pieces.is_empty() {
            0.0
        } else {
            space
        };
        if !line.pieces.is_empty() && line.width + gap + word_width > max_width {
            lines.push(std::mem::take(&mut line));
        }
        if line.pieces.is_empty() && word_width > max_width {
            // A word wider than the line is cut where it overflows.
            let mut chunk = String::new();
            for ch in word.text.chars() {
                let mut candidate = chunk.clone();
                candidate.push(ch);
                if !chunk.is_empty() && face.width(&candidate, size) > max_width {
                    let width = face.width(&chunk, size);
                    append(&mut line, std::mem::take(&mut chunk), word.bold, 0.0, width);
                    lines.push(std::mem::take(&mut line));
                    candidate = ch.to_string();
                }
                chunk = candidate;
            }
            if !chunk.is_empty() {
                let width = face.width(&chunk, size);
                append(&mut line, chunk, word.bold, 0.0, width);
            }
            continue;
        }
        let gap = if word.glued || line.pieces.is_empty() {
            0.0
        } else {
            space
        };
        append(&mut line, word.text, word.bold, gap, word_width);
    }
    if !line.pieces.is_empty() {
        lines.push(line);
    }
    lines
}

/// Appends a word to `line`, merging it into the last piece when the face
/// is the same so that a line is drawn in as few runs as possible.
fn append(line: &mut Line, text: String, bold: bool, gap: f32, width: f32) {
    match line.pieces.last_mut() {
        Some(last) if last.bold == bold => {
            if gap > 0.0 {
                last.text.push(' ');
            }
            last.text.push_str(&text);
        }
        _ => line.pieces.push(Piece {
            x: line.width + gap,
            bold,
            text,
        }),
    }
    line.width += gap + width;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Client, ContractParams, Lender, Offer, ScheduleRow};
    use crate::pdf::markup;

    fn params() -> ContractParams {
        let row = |number: u32, balance: &str| ScheduleRow {
            number,
            date: format!("2026-0{number}-10"),
            payment: "5\u{a0}400,00".to_owned(),
            principal: "5\u{a0}000,00".to_owned(),
            interest: "400,00".to_owned(),
            balance: balance.to_owned(),
        };
        ContractParams {
            contract_number: "7".to_owned(),
            contract_date: "2026-01-10".to_owned(),
            client: Client {
                full_name: "Петров Пётр Петрович".to_owned(),
                birth_date: "1985-02-03".to_owned(),
                passport: "40 01 000001".to_owned(),
                address: "г. Санкт-Петербург".to_owned(),
                phone: "+7 900 000-00-00".to_owned(),
            },
            lender: Lender {
                name: "ООО «Заём»".to_owned(),
                ogrn: "1000000000001".to_owned(),
                inn: "7800000001".to_owned(),
                address: "г. Санкт-Петербург".to_owned(),
            },
            offer: Offer {
                amount: "10\u{a0}000,00".to_owned(),
                currency: "руб.".to_owned(),
                term_days: 60,
                rate_text: "48,000 % годовых".to_owned(),
                psk_percent: "48,123".to_owned(),
                psk_money: "800,00".to_owned(),
                total_to_repay: "10\u{a0}800,00".to_owned(),
            },
            schedule: vec![row(1, "5\u{a0}000,00"), row(2, "0,00")],
        }
    }

    fn builtin_pages() -> Vec<Page> {
        let agreements = crate::Agreements::builtin().unwrap();
        let html = agreements
            .render_html(crate::LOAN_AGREEMENT, &params())
            .unwrap();
        let fonts = Fonts::load().unwrap();
        layout(&markup::parse(&html).unwrap(), &fonts)
    }

    #[test]
    fn full_cost_frames_sit_top_right_of_the_first_page() {
        let pages = builtin_pages();
        let first = &pages[0];
        let frames: Vec<(f32, f32, f32, f32)> = first
            .iter()
            .filter_map(|op| match op {
                Op::Rect {
                    x,
                    y,
                    width,
                    height,
                    stroke,
                } if *stroke == FRAME_STROKE => Some((*x, *y, *width, *height)),
                _ => None,
            })
            .collect();
        assert_eq!(frames.len(), 2, "one frame for percent, one for money");
        let page_area = PAGE_WIDTH * PAGE_HEIGHT;
        for (x, y, width, height) in &frames {
            assert_eq!(width, height, "square");
            assert!(
                width * height >= 0.05 * page_area,
                "at least 5 % of the page"
            );
            assert_eq!(*y, MARGIN_TOP, "at the top");
            assert!(*x > PAGE_WIDTH / 3.0, "on the right");
        }
        let (x, _, width, _) = frames[1];
        assert!((x + width - (PAGE_WIDTH - MARGIN_RIGHT)).abs() < 0.01);
        assert!(pages[1..].iter().flatten().all(|op| !matches!(
            op,
            Op::Rect { stroke, .. } if *stroke == FRAME_STROKE
        )));

        // Frame text: upper case, in the largest size used on the page.
        let text_in = |(fx, fy, fw, fh): (f32, f32, f32, f32)| -> (String, Vec<f32>) {
            let mut text = String::new();
            let mut sizes = Vec::new();
            for op in first {
                if let Op::Text {
                    x,
                    y,
                    size,
                    text: t,
                    ..
                } = op
                {
                    if *x >= fx && *x <= fx + fw && *y >= fy && *y <= fy + fh {
                        text.push_str(t);
                        text.push(' ');
                        sizes.push(*size);
                    }
                }
            }
            (text, sizes)
        };
        let largest = first
            .iter()
            .filter_map(|op| match op {
                Op::Text { size, .. } => Some(*size),
                _ => None,
            })
            .fold(0.0, f32::max);
        let (percent, percent_sizes) = text_in(frames[0]);
        let (money, money_sizes) = text_in(frames[1]);
        assert!(percent.contains("48,123"), "{percent}");
        assert!(percent.contains("ГОДОВЫХ"), "{percent}");
        assert!(money.contains("800,00\u{a0}РУБ."), "{money}");
        assert_eq!(percent, percent.to_uppercase());
        assert!(percent_sizes
            .iter()
            .chain(&money_sizes)
            .all(|size| *size == largest));
    }

    #[test]
    fn every_page_gets_the_footer_with_its_number() {
        let pages = builtin_pages();
        let count = pages.len();
        for (index, page) in pages.iter().enumerate() {
            let footer = format!("страница {} из {count}", index + 1);
            assert!(
                page.iter().any(|op| matches!(
                    op,
                    Op::Text { text, y, .. } if text.contains(&footer) && *y > PAGE_HEIGHT - MARGIN_BOTTOM
                )),
                "page {}",
                index + 1
            );
        }
    }

    fn text(value: &str) -> Inline {
        Inline::Text {
            text: value.to_owned(),
            bold: false,
        }
    }

    #[test]
    fn wrapping_collapses_whitespace_and_keeps_no_break_spaces() {
        let fonts = Fonts::load().unwrap();
        let lines = wrap(&fonts, &[text("  Сумма \n\t займа  ")], 9.0, 500.0, false);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].pieces[0].text, "Сумма займа");

        let amount = "120\u{a0}000,00";
        let content = [text(&format!("Итого {amount} руб."))];
        let one_line = fonts.face(false).width(&format!("Итого {amount}"), 9.0);
        let lines = wrap(&fonts, &content, 9.0, one_line - 1.0, false);
        assert_eq!(lines[0].pieces[0].text, "Итого");
        assert!(
            lines[1].pieces[0].text.starts_with(amount),
            "amount not split"
        );
    }

    #[test]
    fn faces_change_inside_a_word_without_a_gap() {
        let fonts = Fonts::load().unwrap();
        let content = [
            Inline::Text {
                text: "10".to_owned(),
                bold: true,
            },
            text("% годовых"),
        ];
        let lines = wrap(&fonts, &content, 9.0, 500.0, false);
        let pieces = &lines[0].pieces;
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[1].x, fonts.face(true).width("10", 9.0));
        assert_eq!(pieces[1].text, "% годовых");
    }

    #[test]
    fn words_wider_than_the_line_are_cut() {
        let fonts = Fonts::load().unwrap();
        let word = "ОченьДлинноеСловоБезПробелов".repeat(3);
        let lines = wrap(
            &fonts,
            &[text(&word), Inline::Break, text("дальше")],
            9.0,
            80.0,
            true,
        );
        assert!(lines.len() > 3);
        assert!(lines.iter().all(|line| line.width <= 80.0));
        let joined: String = lines[..lines.len() - 1]
            .iter()
            .flat_map(|line| line.pieces.iter().map(|piece| piece.text.as_str()))
            .collect();
        assert_eq!(joined, word.to_uppercase());
        assert_eq!(lines[lines.len() - 1].pieces[0].text, "ДАЛЬШЕ");
    }
}
