//! Writing laid-out pages as PDF.

use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::Document;

use super::fonts::Fonts;
use super::layout::{Op, Page, PAGE_HEIGHT, PAGE_WIDTH};
use crate::Error;

/// Produces the PDF bytes. Nothing time- or randomness-dependent is written:
/// no creation or modification date, and the file identifier is a hash of
/// the content, so equal pages give equal bytes.
pub(crate) fn paint(
    pages: &[Page],
    fonts: &Fonts,
    title: Option<&str>,
    lang: Option<&str>,
) -> Result<Vec<u8>, Error> {
    let mut document = Document::new();
    let mut metadata = Metadata::new();
    if let Some(title) = title {
        metadata = metadata.title(title.to_owned());
    }
    if let Some(lang) = lang {
        metadata = metadata.language(lang.to_owned());
    }
    document.set_metadata(metadata);
    for ops in pages {
        let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
            .ok_or_else(|| Error::Pdf("invalid page size".to_owned()))?;
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, op, fonts)?;
        }
        surface.finish();
        page.finish();
    }
    document.finish().map_err(|err| Error::Pdf(err.to_string()))
}

fn draw(surface: &mut Surface<'_>, op: &Op, fonts: &Fonts) -> Result<(), Error> {
    match op {
        Op::Text {
            x,
            y,
            size,
            bold,
            text,
        } => {
            let face = fonts.face(*bold);
            let glyphs = face.shape(text);
            surface.set_stroke(None);
            surface.set_fill(Some(Fill::default()));
            surface.draw_glyphs(
                Point::from_xy(*x, *y),
                &glyphs,
                face.font.clone(),
                text,
                *size,
                false,
            );
        }
        Op::Rect {
            x,
            y,
            width,
            height,
            stroke,
        } => {
            let rect = Rect::from_xywh(*x, *y, *width, *height)
                .ok_or_else(|| Error::Pdf(format!("invalid rectangle at ({x}, {y})")))?;
            let mut path = PathBuilder::new();
            path.push_rect(rect);
            stroke_path(surface, path, *stroke)?;
        }
        Op::Line {
            x1,
            y1,
            x2,
            y2,
            stroke,
        } => {
            let mut path = PathBuilder::new();
            path.move_to(*x1, *y1);
            path.line_to(*x2, *y2);
            stroke_path(surface, path, *stroke)?;
        }
    }
    Ok(())
}

fn stroke_path(surface: &mut Surface<'_>, path: PathBuilder, width: f32) -> Result<(), Error> {
    let path = path
        .finish()
        .ok_or_else(|| Error::Pdf("empty path".to_owned()))?;
    surface.set_fill(None);
    surface.set_stroke(Some(Stroke {
        width,
        ..Stroke::default()
    }));
    surface.draw_path(&path);
    Ok(())
}
