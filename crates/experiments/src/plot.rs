//! Line and scatter charts as SVG and PNG, with an embedded font (DejaVu Sans) so
//! text renders on machines without system fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::{ExperimentError, Result};

static FONT: Once = Once::new();

/// Registers the embedded font once (text draws on machines without system fonts).
pub(crate) fn register_font() {
    FONT.call_once(|| {
        // A failure here only means text falls back to nothing; charts still draw.
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A polyline.
    Line,
    /// A thick polyline (highlighted path).
    ThickLine,
    /// Circles at the points.
    Points,
    /// A translucent filled region: the points run along the lower edge and back along
    /// the upper one ([`band`] builds them). Drawn under the lines; listed in the legend
    /// only when labelled.
    Band,
}

/// The points of a [`Mark::Band`] between `lower` and `upper` over the same `x`.
pub fn band(x: &[f64], lower: &[f64], upper: &[f64]) -> Vec<(f64, f64)> {
    let forward = x.iter().zip(lower).map(|(&x, &y)| (x, y));
    let back = x.iter().zip(upper).rev().map(|(&x, &y)| (x, y));
    forward.chain(back).collect()
}

/// One named series of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
    /// How to draw it.
    pub mark: Mark,
    /// Index into the palette, or [`GUIDE_COLOR`] for reference lines.
    pub color: usize,
}

/// The colour of reference lines (bands, targets): dark grey, distinct from every series.
pub const GUIDE_COLOR: usize = usize::MAX;

/// A chart: title, axis labels and series.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title line (include machine, backend and data where it matters).
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The series.
    pub series: Vec<Series>,
}

const SIZE: (u32, u32) = (900, 640);

/// `((x0, x1), (y0, y1))` of a chart.
type Bounds = ((f64, f64), (f64, f64));

fn bounds(series: &[Series]) -> std::result::Result<Bounds, String> {
    let pts = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|(x, y)| x.is_finite() && y.is_finite());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    let mut any = false;
    for &(x, y) in pts {
        any = true;
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !any {
        return Err(String::from("nothing to plot: no finite points"));
    }
    let pad = |a: f64, b: f64| {
        let w = (b - a).abs().max(1e-9 * a.abs().max(1.0));
        (a - 0.05 * w, b + 0.05 * w)
    };
    Ok((pad(x0, x1), pad(y0, y1)))
}

/// A corner of the plotting area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Corner {
    UpperRight,
    UpperLeft,
    LowerRight,
    LowerLeft,
}

/// The corner where the legend covers the fewest data: the one whose box (the outer 40% of
/// the width and 35% of the height) holds the fewest points, lines counted at their points
/// and at the midpoints of their segments; upper right on a tie.
fn legend_corner(series: &[Series], ((x0, x1), (y0, y1)): Bounds) -> Corner {
    let (w, h) = ((x1 - x0).max(1e-300), (y1 - y0).max(1e-300));
    let mut counts = [0usize; 4];
    let corners = [
        Corner::UpperRight,
        Corner::UpperLeft,
        Corner::LowerRight,
        Corner::LowerLeft,
    ];
    let mut count = |x: f64, y: f64| {
        let (u, v) = ((x - x0) / w, (y - y0) / h);
        for (k, c) in corners.iter().enumerate() {
            let right = matches!(c, Corner::UpperRight | Corner::LowerRight);
            let upper = matches!(c, Corner::UpperRight | Corner::UpperLeft);
            let in_x = if right { u >= 0.6 } else { u <= 0.4 };
            let in_y = if upper { v >= 0.65 } else { v <= 0.35 };
            if in_x && in_y {
                counts[k] += 1;
            }
        }
    };
    for s in series {
        let pts: Vec<&(f64, f64)> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        for p in &pts {
            count(p.0, p.1);
        }
        if s.mark != Mark::Points {
            for w in pts.windows(2) {
                count(0.5 * (w[0].0 + w[1].0), 0.5 * (w[0].1 + w[1].1));
            }
        }
    }
    let best = (0..4).min_by_key(|&k| counts[k]).unwrap_or(0);
    corners[best]
}

fn drawing<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// A chart's plotting area: x across, y up.
type ChartArea<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The colour of a series: its palette entry, or dark grey for [`GUIDE_COLOR`].
fn series_color(s: &Series) -> RGBAColor {
    if s.color == GUIDE_COLOR {
        RGBColor(80, 80, 80).to_rgba()
    } else {
        Palette99::pick(s.color).to_rgba()
    }
}

/// Draws the finite points of one series as its mark; a labelled series gets a legend
/// entry that shows the mark as drawn: a circle for points, a swatch for a band, a line
/// for lines.
fn draw_series<'a, DB: DrawingBackend + 'a>(
    ctx: &mut ChartArea<'a, DB>,
    s: &Series,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let color = series_color(s);
    let pts: Vec<(f64, f64)> = s
        .points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let anno = match s.mark {
        Mark::Line => ctx.draw_series(LineSeries::new(pts, color.stroke_width(2))),
        Mark::ThickLine => ctx.draw_series(LineSeries::new(pts, color.stroke_width(4))),
        Mark::Points => ctx.draw_series(
            pts.into_iter()
                .map(move |p| Circle::new(p, 4, color.filled())),
        ),
        Mark::Band => ctx.draw_series(std::iter::once(Polygon::new(pts, color.mix(0.2).filled()))),
    }
    .map_err(drawing)?;
    if !s.label.is_empty() {
        // The legend shows the mark as drawn: a circle for points, a line for lines.
        let (mark, width) = (s.mark, if s.mark == Mark::ThickLine { 4 } else { 2 });
        anno.label(s.label.clone())
            .legend(move |(x, y)| -> DynElement<_, _> {
                if mark == Mark::Points {
                    Circle::new((x + 9, y), 4, color.filled()).into_dyn()
                } else if mark == Mark::Band {
                    Rectangle::new([(x, y - 5), (x + 18, y + 5)], color.mix(0.2).filled())
                        .into_dyn()
                } else {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(width))
                        .into_dyn()
                }
            });
    }
    Ok(())
}

/// The legend position of a corner of the plotting area.
fn label_position(corner: Corner) -> SeriesLabelPosition {
    match corner {
        Corner::UpperRight => SeriesLabelPosition::UpperRight,
        Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
        Corner::LowerRight => SeriesLabelPosition::LowerRight,
        Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
    }
}

/// The whole chart on `root`: axes, bands first so that every line is drawn over them,
/// then the other series in order, and the legend in the corner with the fewest data
/// ([`legend_corner`]).
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    chart: &Chart,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let ((x0, x1), (y0, y1)) = bounds(&chart.series)?;
    root.fill(&WHITE).map_err(drawing)?;
    let mut ctx = ChartBuilder::on(&root)
        .caption(&chart.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(drawing)?;
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(drawing)?;
    // Bands first, so that every line is drawn over them.
    let mut order: Vec<&Series> = chart
        .series
        .iter()
        .filter(|s| s.mark == Mark::Band)
        .collect();
    order.extend(chart.series.iter().filter(|s| s.mark != Mark::Band));
    for s in order {
        draw_series(&mut ctx, s)?;
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(label_position(legend_corner(
            &chart.series,
            ((x0, x1), (y0, y1)),
        )))
        .draw()
        .map_err(drawing)?;
    root.present().map_err(drawing)?;
    Ok(())
}

/// Write `<stem>.svg` and `<stem>.png`, each atomically, and return the PNG's path.
pub fn write_chart_files(stem: &Path, chart: &Chart) -> Result<PathBuf> {
    write_chart(stem, chart)?;
    Ok(stem.with_extension("png"))
}

/// Write `<stem>.svg` and `<stem>.png`, each atomically.
pub fn write_chart(stem: &Path, chart: &Chart) -> Result<()> {
    register_font();
    let plot_error = |reason: String| ExperimentError::Plot {
        path: stem.to_path_buf(),
        reason,
    };
    let mut svg = String::new();
    draw(
        SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        chart,
    )
    .map_err(plot_error)?;
    let svg_path = stem.with_extension("svg");
    fep_data::atomic_write(&svg_path, svg.as_bytes())?;

    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    draw(
        BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
        chart,
    )
    .map_err(plot_error)?;
    let png_bytes = encode_png(&rgb, SIZE).map_err(plot_error)?;
    let png_path = stem.with_extension("png");
    fep_data::atomic_write(&png_path, &png_bytes)?;
    Ok(())
}

/// PNG bytes of an RGB buffer of `size`.
pub(crate) fn encode_png(rgb: &[u8], size: (u32, u32)) -> std::result::Result<Vec<u8>, String> {
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, size.0, size.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(png_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(points: Vec<(f64, f64)>) -> Series {
        Series {
            label: "x".into(),
            points,
            mark: Mark::Line,
            color: 0,
        }
    }

    #[test]
    fn a_band_runs_along_the_lower_edge_and_back_along_the_upper() {
        let b = band(&[0.0, 1.0, 2.0], &[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert_eq!(
            b,
            vec![
                (0.0, 1.0),
                (1.0, 2.0),
                (2.0, 3.0),
                (2.0, 6.0),
                (1.0, 5.0),
                (0.0, 4.0)
            ]
        );
        // A chart with a band and its line draws (both files written).
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("banded");
        let chart = Chart {
            title: "band".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                Series {
                    label: String::new(),
                    points: b,
                    mark: Mark::Band,
                    color: 0,
                },
                line(vec![(0.0, 2.5), (1.0, 3.5), (2.0, 4.5)]),
            ],
        };
        write_chart(&stem, &chart).unwrap();
        assert!(stem.with_extension("png").is_file() && stem.with_extension("svg").is_file());
    }

    #[test]
    fn the_legend_goes_where_the_data_are_not() {
        let b = ((0.0, 1.0), (0.0, 1.0));
        // A rising line fills lower left and upper right.
        let rising = line(
            (0..=10)
                .map(|k| (k as f64 / 10.0, k as f64 / 10.0))
                .collect(),
        );
        let c = legend_corner(std::slice::from_ref(&rising), b);
        assert!(matches!(c, Corner::UpperLeft | Corner::LowerRight), "{c:?}");
        // Data along the top: the legend goes below.
        let top = line((0..=10).map(|k| (k as f64 / 10.0, 0.95)).collect());
        let c = legend_corner(&[top], b);
        assert!(matches!(c, Corner::LowerLeft | Corner::LowerRight), "{c:?}");
        // Nothing anywhere: upper right.
        assert_eq!(legend_corner(&[], b), Corner::UpperRight);
    }
}
