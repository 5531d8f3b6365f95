//! The embedded typeface (DejaVu Sans) and the glyph metrics used for layout.

use krilla::text::{Font, GlyphId, KrillaGlyph};
use skrifa::instance::{LocationRef, Size};
use skrifa::metrics::GlyphMetrics;
use skrifa::raw::TableProvider;
use skrifa::{FontRef, MetadataProvider};

use crate::Error;

const REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// One face: the font handed to the PDF writer and its metrics.
pub(crate) struct Face {
    pub(crate) font: Font,
    charmap: skrifa::charmap::Charmap<'static>,
    metrics: GlyphMetrics<'static>,
    units_per_em: f32,
}

impl Face {
    fn load(data: &'static [u8], name: &str) -> Result<Self, Error> {
        let font_ref = FontRef::new(data)
            .map_err(|err| Error::Pdf(format!("font {name} cannot be read: {err}")))?;
        let units_per_em = font_ref
            .head()
            .map_err(|err| Error::Pdf(format!("font {name} has no head table: {err}")))?
            .units_per_em();
        let font = Font::new(data.into(), 0)
            .ok_or_else(|| Error::Pdf(format!("font {name} cannot be embedded")))?;
        Ok(Self {
            font,
            charmap: font_ref.charmap(),
            metrics: font_ref.glyph_metrics(Size::unscaled(), LocationRef::default()),
            units_per_em: f32::from(units_per_em),
        })
    }

    /// Glyphs of `text`, one per character, advances normalised to the em.
    ///
    /// Contract text is Cyrillic and Latin without ligatures or combining
    /// marks, for which a one-to-one mapping is exact; a character the face
    /// lacks is drawn as the face's missing-glyph box.
    pub(crate) fn shape(&self, text: &str) -> Vec<KrillaGlyph> {
        text.char_indices()
            .map(|(start, ch)| {
                let glyph = self.charmap.map(ch).unwrap_or_default();
                let advance = self.metrics.advance_width(glyph).unwrap_or_default();
                KrillaGlyph::new(
                    GlyphId::new(glyph.to_u32()),
                    advance / self.units_per_em,
                    0.0,
                    0.0,
                    0.0,
                    start..start + ch.len_utf8(),
                    None,
                )
            })
            .collect()
    }

    /// Width of `text` at `size` points.
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        let units: f32 = text
            .chars()
            .map(|ch| {
                let glyph = self.charmap.map(ch).unwrap_or_default();
                self.metrics.advance_width(glyph).unwrap_or_default()
            })
            .sum();
        units * size / self.units_per_em
    }
}

/// Regular and bold faces.
pub(crate) struct Fonts {
    regular: Face,
    bold: Face,
}

impl Fonts {
    /// Loads the embedded faces.
    pub(crate) fn load() -> Result<Self, Error> {
        Ok(Self {
            regular: Face::load(REGULAR, "DejaVuSans")?,
            bold: Face::load(BOLD, "DejaVuSans-Bold")?,
        })
    }

    /// The face for bold or regular text.
    pub(crate) fn face(&self, bold: bool) -> &Face {
        if bold {
            &self.bold
        } else {
            &self.regular
        }
    }
}
