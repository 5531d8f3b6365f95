//! Laying the rendered agreement out as a PDF.
//!
//! The PDF is built from the same HTML the template produced, so an
//! operator's edit of a template changes both. The layout reads a small,
//! well-formed (XHTML-style: every element closed, `<br/>`, `<meta ... />`,
//! character references such as `&#160;` instead of named entities other
//! than the five XML ones) subset of HTML:
//!
//! * `h1`–`h3`: headings (`h1` centred, 14 pt, the largest size used);
//! * `p`, `address`, `li`: paragraphs; class `center` or `right` aligns,
//!   class `small` sets small print;
//! * `b`, `strong`: bold; `br`: line break; other inline elements print their
//!   text;
//! * `table` with `thead`/`tbody`/`tfoot`, `tr`, `th`, `td`: bordered tables;
//!   `data-widths="8,42,50"` on the table sets relative column widths,
//!   `colspan` spans columns, class `num` or `right` on a cell aligns it
//!   right; header rows repeat on every page the table continues on;
//! * an element of class `top` is the head of the first page: its child of
//!   class `psk` holds the framed boxes (one per child element) drawn in the
//!   top-right corner, square, at least 5 % of the page each, upper-case, in
//!   the largest type size on the page, as Federal Law 353-FZ art. 6 part 1
//!   asks for the full cost of credit; its other children are laid out to
//!   the left of the frames;
//! * `hr`: a rule; an element of class `page-break`: a new page; an element
//!   of class `keep`: its content is kept on one page when it fits on one;
//! * `footer`: printed at the bottom of every page, `[page]` and `[pages]`
//!   replaced by the page number and count;
//! * `head`, `style`, `script` print nothing (the `title` becomes the PDF's
//!   title, the `lang` of the root element its language); CSS is not read.
//!
//! Text is set in DejaVu Sans, embedded (subset) in the file, so Cyrillic
//! shows on any reader and can be copied out.

// Page geometry in points; no amount of money is computed here.
#![allow(clippy::float_arithmetic)]

mod fonts;
mod layout;
mod markup;
mod paint;

pub(crate) use fonts::Fonts;

use crate::Error;

/// Lays `html` out and writes the PDF.
pub(crate) fn html_to_pdf(html: &str, fonts: &Fonts) -> Result<Vec<u8>, Error> {
    let doc = markup::parse(html)?;
    let pages = layout::layout(&doc, fonts);
    paint::paint(&pages, fonts, doc.title.as_deref(), doc.lang.as_deref())
}
