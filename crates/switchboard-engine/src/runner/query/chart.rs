//! Drawing a query's series as a PNG with plotters: an 800×400 line chart
//! with a title, a time axis in UTC over the requested range, the unit on
//! the y axis and a legend beside the plot when there is more than one
//! series. Text is set here with the built-in DejaVu Sans, so the chart
//! looks the same on every machine.
//!
//! Not here: where the numbers come from and what the lines are called
//! (the query runner), and any other kind of chart.

use std::ops::Range;
use std::sync::OnceLock;
use std::time::Duration;

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::{human, humanize, shorten_middle, truncate};

/// Chart size in pixels.
pub const WIDTH: u32 = 800;
pub const HEIGHT: u32 = 400;
/// Longest legend entry, title and unit, in characters.
const LEGEND_CHARS: usize = 25;
const TITLE_CHARS: usize = 70;
const UNIT_CHARS: usize = 30;
/// The font every text of the chart is drawn with (DejaVu Sans; its license
/// is `assets/DejaVuSans-LICENSE.txt`).
static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
/// The family name the font is registered under: plotters' default.
const FAMILY: &str = "sans-serif";

/// What a chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub title: String,
    /// The unit of the y axis (may be empty).
    pub unit: String,
    /// The time range shown, in unix seconds.
    pub start: i64,
    pub end: i64,
    /// The query's step: a larger gap between two points breaks the line.
    pub step: Duration,
    pub series: Vec<ChartSeries>,
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    pub label: String,
    /// `(unix seconds, value)`; a value that is not finite breaks the line.
    pub points: Vec<(f64, f64)>,
}

/// Distinct, colour-blind-friendlier line colours (Tableau 10).
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0x79, 0x70, 0x6c),
];
const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);

/// The font, parsed once.
fn font() -> Result<&'static FontRef<'static>, String> {
    static PARSED: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    PARSED
        .get_or_init(|| FontRef::try_from_slice(FONT).ok())
        .as_ref()
        .ok_or_else(|| "the built-in font cannot be read".to_owned())
}

/// Registers the font with plotters too, so that anything plotters lays
/// out itself finds it.
fn register_font() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
                .map_err(|_| "the built-in font cannot be read".to_owned())
        })
        .clone()
}

/// Draws the chart as an 800×400 PNG: title, time axis in UTC over the
/// requested range, the unit on the y axis, a legend beside the plot when
/// there is more than one series. Without any finite value it still draws
/// the axes, saying "no data for this range".
pub fn render_png(chart: &ChartData) -> Result<Vec<u8>, String> {
    register_font()?;
    let font = font()?;
    let mut pixels = vec![0u8; usize::try_from(WIDTH * HEIGHT * 3).unwrap_or(0)];
    {
        let backend = Typeset {
            inner: BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)),
            font,
        };
        let root = backend.into_drawing_area();
        draw(&root, chart).map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&pixels)
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, String> {
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(png)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    chart: &ChartData,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let title_style = TextStyle::from((FAMILY, 20).into_font()).color(&TEXT);
    let root = root.titled(&truncate(&chart.title, TITLE_CHARS), title_style)?;
    let legend = chart.series.len() > 1;
    let (plot_area, legend_area) = if legend {
        let (p, l) = root.split_horizontally(WIDTH - 215);
        (p, Some(l))
    } else {
        (root.clone(), None)
    };

    let start = chart.start as f64;
    let end = chart.end.max(chart.start.saturating_add(1)) as f64;
    let (y_axis, has_data) = y_range(chart);
    let axis = TimeAxis::new(start, end);
    let label_style = TextStyle::from((FAMILY, 13).into_font()).color(&TEXT);
    let desc_style = TextStyle::from((FAMILY, 13).into_font()).color(&MUTED);

    let mut ctx = ChartBuilder::on(&plot_area)
        .margin_left(8)
        .margin_right(if legend { 8 } else { 24 })
        .margin_top(6)
        .margin_bottom(4)
        .x_label_area_size(44)
        .y_label_area_size(if chart.unit.is_empty() { 52 } else { 70 })
        .build_cartesian_2d(axis, y_axis)?;
    let mut mesh = ctx.configure_mesh();
    mesh.x_labels(8)
        .y_labels(6)
        .max_light_lines(0)
        .bold_line_style(RGBColor(0xdd, 0xdd, 0xdd))
        .axis_style(RGBColor(0x99, 0x99, 0x99))
        .label_style(label_style)
        .axis_desc_style(desc_style)
        .x_desc(format!(
            "time (UTC), last {}",
            humanize(Duration::from_secs(
                chart.end.saturating_sub(chart.start).max(0).unsigned_abs()
            ))
        ));
    if !chart.unit.is_empty() {
        mesh.y_desc(truncate(&chart.unit, UNIT_CHARS));
    }
    mesh.draw()?;

    if !has_data {
        let area = ctx.plotting_area();
        let (w, h) = area.dim_in_pixel();
        let style = TextStyle::from((FAMILY, 18).into_font())
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let at = (
            i32::try_from(w / 2).unwrap_or(0),
            i32::try_from(h / 2).unwrap_or(0),
        );
        area.strip_coord_spec()
            .draw_text("no data for this range", &style, at)?;
    }

    let gap = chart.step.as_secs_f64().max(1.0) * 1.5;
    for (i, s) in chart.series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        for segment in segments(&s.points, gap, start, end) {
            if segment.len() == 1 {
                ctx.draw_series(std::iter::once(Circle::new(segment[0], 2, colour.filled())))?;
            } else {
                ctx.draw_series(LineSeries::new(segment, Color::stroke_width(&colour, 2)))?;
            }
        }
    }

    if let Some(area) = legend_area {
        let style = TextStyle::from((FAMILY, 13).into_font())
            .color(&TEXT)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let top = 16;
        for (i, s) in chart.series.iter().enumerate() {
            let y = top + i32::try_from(i).unwrap_or(0) * 22;
            let colour = PALETTE[i % PALETTE.len()];
            area.draw(&Rectangle::new([(6, y - 2), (24, y + 2)], colour.filled()))?;
            area.draw_text(&shorten_middle(&s.label, LEGEND_CHARS), &style, (30, y))?;
        }
    }
    Ok(())
}

/// The bitmap backend with its text set here: plotters' own `ab_glyph`
/// text places every glyph by its own outline, so `.` and `,` float at
/// mid-height; here all glyphs of a text sit on one baseline.
struct Typeset<'a> {
    inner: BitMapBackend<'a>,
    font: &'static FontRef<'static>,
}

type BackendResult<'a> =
    Result<(), DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>>;

impl Typeset<'_> {
    /// The glyphs of `text` on a baseline at the font's ascent, and the
    /// width and height of the line.
    fn layout(&self, text: &str, size: f64) -> (Vec<ab_glyph::Glyph>, f32, f32) {
        let scaled = self.font.as_scaled(PxScale::from(size as f32));
        let mut glyphs = Vec::with_capacity(text.len());
        let mut caret = 0.0f32;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = previous {
                caret += scaled.kern(p, id);
            }
            glyphs.push(
                id.with_scale_and_position(scaled.scale(), ab_glyph::point(caret, scaled.ascent())),
            );
            caret += scaled.h_advance(id);
            previous = Some(id);
        }
        (glyphs, caret, scaled.ascent() - scaled.descent())
    }
}

impl<'a> DrawingBackend for Typeset<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> BackendResult<'a> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> BackendResult<'a> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> BackendResult<'a> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> BackendResult<'a> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> BackendResult<'a> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> BackendResult<'a> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> BackendResult<'a> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> BackendResult<'a> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> BackendResult<'a> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<TStyle: BackendTextStyle>(
        &self,
        text: &str,
        style: &TStyle,
    ) -> Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (_, width, height) = self.layout(text, style.size());
        Ok((width.ceil() as u32, height.ceil() as u32))
    }

    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> BackendResult<'a> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (glyphs, width, height) = self.layout(text, style.size());
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Center => -width / 2.0,
            HPos::Right => -width,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0.0,
            VPos::Center => -height / 2.0,
            VPos::Bottom => -height,
        };
        let transform = style.transform();
        let scaled = self.font.as_scaled(PxScale::from(style.size() as f32));
        let mut pixels: Vec<(BackendCoord, f32)> = Vec::new();
        for glyph in glyphs {
            let Some(outline) = scaled.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|x, y, coverage| {
                let px = (bounds.min.x + x as f32 + dx).round() as i32;
                let py = (bounds.min.y + y as f32 + dy).round() as i32;
                let (tx, ty) = transform.transform(px, py);
                pixels.push(((pos.0 + tx, pos.1 + ty), coverage));
            });
        }
        for (point, coverage) in pixels {
            if coverage > 0.0 {
                let alpha = color.alpha * f64::from(coverage.min(1.0));
                self.inner.draw_pixel(
                    point,
                    BackendColor {
                        alpha,
                        rgb: color.rgb,
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// Values beyond this are drawn at it: a chart of them means nothing, and
/// it keeps every span and margin finite.
const VALUE_LIMIT: f64 = 1e300;

/// A value as drawn: finite ones within [`VALUE_LIMIT`].
fn drawn(v: f64) -> Option<f64> {
    v.is_finite().then(|| v.clamp(-VALUE_LIMIT, VALUE_LIMIT))
}

/// The y axis: the finite values with a margin; from zero when all are
/// positive and zero is near. `false` when there is no finite value.
fn y_range(chart: &ChartData) -> (ValueAxis, bool) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().filter_map(|p| drawn(p.1)))
    {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (ValueAxis { lo: 0.0, hi: 1.0 }, false);
    }
    let span = hi - lo;
    let magnitude = lo.abs().max(hi.abs());
    // Values that differ in less than their ninth digit are drawn flat:
    // ticks finer than that are below what a float tells apart.
    let pad = if span > magnitude * 1e-9 {
        span * 0.08
    } else {
        (magnitude * 0.1).max(1.0)
    };
    let mut y_lo = lo - pad;
    let y_hi = hi + pad;
    if lo >= 0.0 && (y_lo < 0.0 || lo <= span) {
        y_lo = 0.0;
    }
    (ValueAxis { lo: y_lo, hi: y_hi }, true)
}

/// The runs of finite points inside `[start, end]`, split where a value is
/// not finite or two points are further apart than `gap` seconds.
pub(super) fn segments(
    points: &[(f64, f64)],
    gap: f64,
    start: f64,
    end: f64,
) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for &(t, v) in points {
        let value = drawn(v);
        let inside = value.is_some() && t >= start && t <= end;
        let far = current.last().is_some_and(|&(last, _)| t - last > gap);
        if (!inside || far) && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if let Some(v) = value.filter(|_| inside) {
            current.push((t, v));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// A value axis whose ticks fall on 1, 2 or 5 times a power of ten,
/// labelled with [`human`]. Its own ticks, so that no range, however large
/// or narrow, makes tick finding loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ValueAxis {
    pub(super) lo: f64,
    pub(super) hi: f64,
}

impl Ranged for ValueAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        let share = if span > 0.0 {
            (value - self.lo) / span
        } else {
            0.5
        };
        let pixels = f64::from(limit.1) - f64::from(limit.0);
        (f64::from(limit.0) + share * pixels).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let max = hint.max_num_points();
        let span = self.hi - self.lo;
        if max == 0 || !span.is_finite() || span <= 0.0 {
            return Vec::new();
        }
        let raw = span / max as f64;
        let power = 10f64.powf(raw.log10().floor());
        let Some(step) = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * power)
            .find(|s| *s >= raw)
            .filter(|s| s.is_finite() && *s > 0.0)
        else {
            return Vec::new();
        };
        // Tick `i` is `i * step`; a hair of tolerance keeps `-0.3` from
        // rounding out of `-0.3..`.
        let first = (self.lo / step - 1e-9).ceil();
        let mut out: Vec<f64> = Vec::new();
        for k in 0..max {
            let i = first + k as f64;
            let v = if i == 0.0 { 0.0 } else { i * step };
            if v > self.hi + step * 1e-9 {
                break;
            }
            // Below float precision, steps stop moving: stop too.
            if out.last().is_some_and(|last| v <= *last) {
                break;
            }
            out.push(v);
        }
        out
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for ValueAxis {
    fn format(value: &f64) -> String {
        human(*value)
    }
}

/// A time axis in unix seconds whose ticks fall on whole UTC seconds,
/// minutes, hours or days, labelled `HH:MM` (`HH:MM:SS` when ticks are less
/// than a minute apart, with the date when the range is longer than a day).
#[derive(Debug, Clone)]
pub(super) struct TimeAxis {
    start: f64,
    end: f64,
}

/// Tick intervals to choose from, in seconds.
const TICKS: [i64; 22] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
    172_800, 604_800, 1_209_600, 2_592_000,
];

impl TimeAxis {
    pub(super) fn new(start: f64, end: f64) -> Self {
        Self { start, end }
    }

    fn interval(&self, max_ticks: usize) -> i64 {
        let span = self.end - self.start;
        let max = max_ticks.max(2) as f64;
        TICKS
            .iter()
            .copied()
            .find(|t| span / *t as f64 <= max)
            .unwrap_or(2_592_000)
    }
}

impl Ranged for TimeAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = (self.end - self.start).max(1.0);
        let share = (value - self.start) / span;
        let pixels = f64::from(limit.1 - limit.0);
        (f64::from(limit.0) + share * pixels).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let max = hint.max_num_points();
        if max == 0 {
            return Vec::new();
        }
        let interval = self.interval(max.min(8));
        let start = self.start as i64;
        let mut t = start.saturating_sub(start.rem_euclid(interval));
        if (t as f64) < self.start {
            t = t.saturating_add(interval);
        }
        let mut out = Vec::new();
        while (t as f64) <= self.end && out.len() < max {
            out.push(t as f64);
            match t.checked_add(interval) {
                Some(next) => t = next,
                None => break,
            }
        }
        out
    }

    fn range(&self) -> Range<f64> {
        self.start..self.end
    }
}

impl ValueFormatter<f64> for TimeAxis {
    fn format(value: &f64) -> String {
        clock(*value as i64)
    }

    fn format_ext(&self, value: &f64) -> String {
        let t = *value as i64;
        if self.interval(8) < 60 {
            let secs = t.rem_euclid(60);
            format!("{}:{secs:02}", clock(t))
        } else if self.end - self.start <= 86_400.0 {
            clock(t)
        } else if self.interval(8) >= 86_400 {
            date(t)
        } else {
            format!("{} {}", date(t), clock(t))
        }
    }
}

/// `HH:MM` of a unix time, in UTC.
pub(super) fn clock(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// `MM-DD` of a unix time, in UTC.
pub(super) fn date(t: i64) -> String {
    let (_, month, day) = switchboard_core::ids::civil_from_days(t.div_euclid(86_400));
    format!("{month:02}-{day:02}")
}
