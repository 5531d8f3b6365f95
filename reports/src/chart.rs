//! The balance-change chart (seed 003, «ОТЧЕТНОСТЬ», module of graphical reports: «Отчет по
//! изменению баланса» — points joined by a line, by day or by month-end), drawn with
//! `plotters` as PNG (bitmap backend, encoded with `png`) or SVG.
//!
//! Text is set in DejaVu Sans, embedded in the binary (plotters' `ab_glyph` font backend), so
//! the chart renders the same on a machine without system fonts. Amounts become `f64` only
//! as plot coordinates (where a pixel is far coarser than a kopeck); the axis labels are
//! written from those coordinates with two places, and the exact figures are in the tabular
//! reports.

// Plot coordinates and axis ranges are f64 by nature; no amount is computed here.
#![allow(clippy::float_arithmetic)]

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::sync::OnceLock;
use time::Date;

use crate::export::period_title;
use crate::period::Period;
use crate::sheet::{ChartBy, Series};
use crate::Error;

/// DejaVu Sans (its licence is `documents/fonts/LICENSE`).
static FONT: &[u8] = include_bytes!("../../documents/fonts/DejaVuSans.ttf");

/// The font family name the chart's text uses.
const FAMILY: &str = "sans-serif";

/// Width and height of a chart in pixels (PNG) or user units (SVG).
pub const SIZE: (u32, u32) = (1200, 640);

/// An image format of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// `png` or `svg`.
    ///
    /// Errors: [`Error::Invalid`] for anything else.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "png" => Ok(Self::Png),
            "svg" => Ok(Self::Svg),
            other => Err(Error::Invalid(format!(
                "`{other}`: a chart is drawn as `png` or `svg`"
            ))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Svg => "svg",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Svg => "image/svg+xml",
        }
    }
}

fn font_registered() -> Result<(), Error> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT).is_ok());
    if ok {
        Ok(())
    } else {
        Err(Error::Chart("the embedded font could not be read".into()))
    }
}

/// What the chart shows: the period, how it is sampled, whose balance (printed under the
/// title, e.g. `кошелёк 0b6c…` or `все кошельки`) and the lines.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    pub period: Period,
    pub by: ChartBy,
    pub scope: &'a str,
    pub series: &'a [Series],
}

/// The chart as PNG bytes.
///
/// Errors: [`Error::Chart`] (drawing or encoding).
pub fn png(chart: &Chart<'_>) -> Result<Vec<u8>, Error> {
    font_registered()?;
    let (w, h) = SIZE;
    let mut pixels = vec![0u8; usize::try_from(w * h * 3).unwrap_or(0)];
    {
        let area = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
        draw(&area, chart)?;
        area.present().map_err(chart_error)?;
    }
    let mut out = Vec::new();
    {
        let mut encoder = ::png::Encoder::new(&mut out, w, h);
        encoder.set_color(::png::ColorType::Rgb);
        encoder.set_depth(::png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(chart_error)?;
        writer.write_image_data(&pixels).map_err(chart_error)?;
        writer.finish().map_err(chart_error)?;
    }
    Ok(out)
}

/// The chart as an SVG document.
///
/// Errors: [`Error::Chart`].
pub fn svg(chart: &Chart<'_>) -> Result<Vec<u8>, Error> {
    font_registered()?;
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        draw(&area, chart)?;
        area.present().map_err(chart_error)?;
    }
    Ok(text.into_bytes())
}

/// The chart in `format`.
///
/// Errors: [`Error::Chart`].
pub fn render(chart: &Chart<'_>, format: ImageFormat) -> Result<Vec<u8>, Error> {
    match format {
        ImageFormat::Png => png(chart),
        ImageFormat::Svg => svg(chart),
    }
}

fn chart_error(e: impl std::fmt::Display) -> Error {
    Error::Chart(e.to_string())
}

/// The sampled days of the chart: every day, or every month-end (and the period's last day).
fn sampled_days(period: &Period, by: ChartBy) -> Vec<Date> {
    period
        .each_day()
        .filter(|d| match by {
            ChartBy::Day => true,
            ChartBy::Month => *d == crate::period::month_end(*d) || *d == period.to(),
        })
        .collect()
}

/// An amount as an axis label: two places, thin groups of thousands (`1 234 567.50`).
fn axis_amount(v: f64) -> String {
    let text = format!("{v:.2}");
    let (sign, digits) = text
        .strip_prefix('-')
        .map_or(("", text.as_str()), |d| ("-", d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    if grouped.chars().all(|c| c == '0' || c == ' ') && frac == "00" {
        return "0.00".into();
    }
    format!("{sign}{grouped}.{frac}")
}

fn plot_value(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn draw<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, chart: &Chart<'_>) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(chart_error)?;
    let days = sampled_days(&chart.period, chart.by);
    let title = match chart.by {
        ChartBy::Day => "Изменение баланса по дням",
        ChartBy::Month => "Изменение баланса на конец месяца",
    };
    let (area_title, plot) = area.split_vertically(70);
    area_title
        .draw_text(
            &format!("{title}, {}", period_title(&chart.period)),
            &(FAMILY, 24).into_font().color(&BLACK),
            (20, 12),
        )
        .map_err(chart_error)?;
    area_title
        .draw_text(
            chart.scope,
            &(FAMILY, 16).into_font().color(&RGBColor(80, 80, 80)),
            (20, 44),
        )
        .map_err(chart_error)?;
    if chart.series.is_empty() {
        panel(&plot, chart.by, &days, None, 0)?;
        plot.draw_text(
            "нет счетов за период",
            &(FAMILY, 18).into_font().color(&RGBColor(120, 120, 120)),
            (200, 200),
        )
        .map_err(chart_error)?;
        return Ok(());
    }
    // One panel per currency, each with its own amount axis: amounts of different currencies
    // are never drawn against one scale.
    let panels = plot.split_evenly((chart.series.len(), 1));
    for (n, (area, series)) in panels.iter().zip(chart.series).enumerate() {
        panel(area, chart.by, &days, Some(series), n)?;
    }
    Ok(())
}

/// One currency's balance line (points joined by a line) with its axes.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    by: ChartBy,
    days: &[Date],
    series: Option<&Series>,
    n: usize,
) -> Result<(), Error>
where
    DB::ErrorType: 'static,
{
    let label_format = match by {
        ChartBy::Day => time::macros::format_description!("[day].[month].[year]"),
        ChartBy::Month => time::macros::format_description!("[month].[year]"),
    };
    let label = |i: i64| {
        usize::try_from(i)
            .ok()
            .and_then(|i| days.get(i))
            .and_then(|d| d.format(&label_format).ok())
            .unwrap_or_default()
    };
    let points: Vec<(f64, f64)> = series
        .map(|s| {
            s.points
                .iter()
                .filter_map(|(d, v)| {
                    days.iter()
                        .position(|x| x == d)
                        .and_then(|i| u32::try_from(i).ok())
                        .map(|i| (f64::from(i), plot_value(*v)))
                })
                .collect()
        })
        .unwrap_or_default();
    let (mut low, mut high) = points.iter().fold((0.0f64, 0.0f64), |(lo, hi), (_, v)| {
        (lo.min(*v), hi.max(*v))
    });
    if high <= low {
        high = low + 100.0;
    }
    let pad = (high - low) / 10.0;
    high += pad;
    if low < 0.0 {
        low -= pad;
    }
    let last = f64::from(u32::try_from(days.len()).unwrap_or(u32::MAX).max(1) - 1);
    let mut ctx = ChartBuilder::on(area)
        .margin(20)
        .margin_right(60)
        .x_label_area_size(55)
        .y_label_area_size(130)
        .build_cartesian_2d(-0.5f64..(last + 0.5), low..high)
        .map_err(chart_error)?;
    let y_desc = series.map_or_else(
        || "Баланс".to_owned(),
        |s| format!("Баланс, {}", s.currency),
    );
    ctx.configure_mesh()
        .x_labels(days.len().clamp(1, 12))
        .x_label_formatter(&|x: &f64| {
            if (x - x.round()).abs() > 1e-6 {
                return String::new();
            }
            #[allow(clippy::cast_possible_truncation)]
            label(x.round() as i64)
        })
        .y_labels(8)
        .y_label_formatter(&|y: &f64| axis_amount(*y))
        .x_desc(if by == ChartBy::Day {
            "Дата"
        } else {
            "Месяц"
        })
        .y_desc(y_desc)
        .label_style((FAMILY, 15))
        .axis_desc_style((FAMILY, 17))
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(chart_error)?;
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    let color = colors[n % colors.len()];
    ctx.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
        .map_err(chart_error)?;
    let radius = if points.len() > 120 { 2 } else { 4 };
    ctx.draw_series(
        points
            .iter()
            .map(|p| Circle::new(*p, radius, color.filled())),
    )
    .map_err(chart_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_amounts_are_grouped_with_two_places() {
        assert_eq!(axis_amount(1234567.5), "1 234 567.50");
        assert_eq!(axis_amount(-250.25), "-250.25");
        assert_eq!(axis_amount(0.0), "0.00");
        assert_eq!(axis_amount(-0.001), "0.00");
        assert_eq!(axis_amount(999.0), "999.00");
    }
}
