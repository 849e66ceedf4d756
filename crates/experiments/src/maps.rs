//! Maps of the equilibrium surface: F, R, D and C over the (lambda, gamma) plane as
//! colour fields with contour lines, the measured points on top and a process path drawn
//! across; and monotone interpolation of measured curves (no global fit that can curl
//! back between points).

use std::path::{Path, PathBuf};

use fep_thermo::{SurfaceGrid, SurfacePoint};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::{ExperimentError, Result};
use crate::plot::register_font;

/// A quantity of an equilibrium point.
pub type Quantity = fn(&SurfacePoint) -> f64;

/// The measured nodes of `grid` as `(lambda, gamma, value)`, the points drawn on a map.
pub fn node_points(grid: &SurfaceGrid, get: Quantity) -> Vec<(f64, f64, f64)> {
    grid.points
        .iter()
        .flatten()
        .map(|p| (p.lambda, p.gamma, get(p)))
        .collect()
}

/// The four quantities every map of the surface shows, with their panel titles.
pub const SURFACE_QUANTITIES: [(&str, Quantity); 4] = [
    ("free energy F (nats)", |p| p.free_energy),
    ("rate R (nats)", |p| p.functionals.rate),
    ("distortion D (nats)", |p| p.functionals.distortion),
    ("classification loss C (nats)", |p| {
        p.functionals.classification
    }),
];

/// One quantity over the plane, sampled on a regular mesh `values[a][b]` at
/// `(lambda_a, gamma_b)`.
#[derive(Debug, Clone)]
pub struct Field {
    /// Panel title (quantity and unit).
    pub name: String,
    /// Mesh values, `[lambda index][gamma index]`.
    pub values: Vec<Vec<f64>>,
    /// The measured points `(lambda, gamma, value)` drawn on the field, filled with the
    /// colour of their own value (a point that disagrees with the field stands out).
    pub points: Vec<(f64, f64, f64)>,
}

/// Four (or fewer) fields over the same mesh, with an optional path.
#[derive(Debug, Clone)]
pub struct Maps {
    /// Title line.
    pub title: String,
    /// Mesh lambdas (increasing, evenly spaced).
    pub lambdas: Vec<f64>,
    /// Mesh gammas (increasing, evenly spaced).
    pub gammas: Vec<f64>,
    /// The fields, drawn left to right, top to bottom.
    pub fields: Vec<Field>,
    /// A path `(lambda, gamma)` drawn on every field, with its legend label.
    pub path: Option<(String, Vec<(f64, f64)>)>,
    /// Legend label of the points.
    pub points_label: String,
}

/// Viridis, by linear interpolation between eight of its colours.
fn viridis(u: f64) -> RGBColor {
    const STOPS: [(u8, u8, u8); 8] = [
        (68, 1, 84),
        (70, 50, 127),
        (54, 92, 141),
        (39, 127, 142),
        (31, 161, 135),
        (74, 194, 109),
        (159, 218, 58),
        (253, 231, 37),
    ];
    let x = u.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let k = (x.floor() as usize).min(STOPS.len() - 2);
    let f = x - k as f64;
    let mix = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    let (a, b) = (STOPS[k], STOPS[k + 1]);
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Segments of the contour `level` of a mesh field by marching squares.
fn contour(xs: &[f64], ys: &[f64], v: &[Vec<f64>], level: f64) -> Vec<[(f64, f64); 2]> {
    let mut out = Vec::new();
    for a in 0..xs.len().saturating_sub(1) {
        for b in 0..ys.len().saturating_sub(1) {
            let corners = [
                (xs[a], ys[b], v[a][b]),
                (xs[a + 1], ys[b], v[a + 1][b]),
                (xs[a + 1], ys[b + 1], v[a + 1][b + 1]),
                (xs[a], ys[b + 1], v[a][b + 1]),
            ];
            let mut crossings = Vec::new();
            for e in 0..4 {
                let (p, q) = (corners[e], corners[(e + 1) % 4]);
                if (p.2 - level) * (q.2 - level) < 0.0 {
                    let s = (level - p.2) / (q.2 - p.2);
                    crossings.push((p.0 + s * (q.0 - p.0), p.1 + s * (q.1 - p.1)));
                }
            }
            for pair in crossings.chunks(2) {
                if let [p, q] = pair {
                    out.push([*p, *q]);
                }
            }
        }
    }
    out
}

fn drawing<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// A panel's chart: lambda across, gamma up.
type PanelChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// `(lo, hi)`: the smallest and largest finite value of a field, the ends of its colour
/// scale.
fn value_range(field: &Field) -> std::result::Result<(f64, f64), String> {
    let finite = field
        .values
        .iter()
        .flatten()
        .copied()
        .filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
    if lo > hi {
        return Err(format!("{}: no finite values", field.name));
    }
    Ok((lo, hi))
}

/// An edge of the cell centred on mesh node `k` of `v`: halfway to the next node when
/// `up` (else to the previous one), the node itself at the ends of the mesh.
fn cell_edge(v: &[f64], k: usize, up: bool) -> f64 {
    let n = v.len();
    if up {
        if k + 1 < n {
            0.5 * (v[k] + v[k + 1])
        } else {
            v[k]
        }
    } else if k > 0 {
        0.5 * (v[k - 1] + v[k])
    } else {
        v[k]
    }
}

/// The field as cells centred on the mesh nodes, coloured by `unit` (the value mapped to
/// `[0, 1]` of the colour scale), with white contour lines at the seven inner eighths of
/// `lo .. lo + span`.
fn draw_field<DB: DrawingBackend>(
    ctx: &mut PanelChart<'_, DB>,
    maps: &Maps,
    field: &Field,
    (lo, span): (f64, f64),
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let (xs, ys) = (&maps.lambdas, &maps.gammas);
    let unit = |v: f64| (v - lo) / span;
    ctx.draw_series((0..xs.len()).flat_map(|a| {
        (0..ys.len()).map(move |b| {
            Rectangle::new(
                [
                    (cell_edge(xs, a, false), cell_edge(ys, b, false)),
                    (cell_edge(xs, a, true), cell_edge(ys, b, true)),
                ],
                viridis(unit(field.values[a][b])).filled(),
            )
        })
    }))
    .map_err(drawing)?;
    for k in 1..8 {
        let level = lo + span * k as f64 / 8.0;
        ctx.draw_series(
            contour(xs, ys, &field.values, level)
                .into_iter()
                .map(|seg| PathElement::new(seg.to_vec(), WHITE.mix(0.7).stroke_width(1))),
        )
        .map_err(drawing)?;
    }
    Ok(())
}

/// The field's measured points, each a black-ringed circle filled with the colour of its
/// own value on the scale `lo .. lo + span`; labelled `maps.points_label` when `legend`.
fn draw_points<DB: DrawingBackend>(
    ctx: &mut PanelChart<'_, DB>,
    maps: &Maps,
    field: &Field,
    (lo, span): (f64, f64),
    legend: bool,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let unit = |v: f64| (v - lo) / span;
    let points = ctx
        .draw_series(field.points.iter().flat_map(|&(l, g, v)| {
            [
                Circle::new((l, g), 6, viridis(unit(v)).filled()),
                Circle::new((l, g), 6, BLACK.stroke_width(2)),
            ]
        }))
        .map_err(drawing)?;
    if legend {
        points
            .label(maps.points_label.clone())
            .legend(|(x, y)| Circle::new((x + 9, y), 5, BLACK.stroke_width(2)));
    }
    Ok(())
}

/// The runs of consecutive points of `path` inside `[x0, x1] x [y0, y1]`: a point outside
/// breaks the line rather than joining its neighbours across the gap. No run is empty.
fn runs_inside(
    path: &[(f64, f64)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Vec<Vec<(f64, f64)>> {
    let inside = |&(l, g): &(f64, f64)| (x0..=x1).contains(&l) && (y0..=y1).contains(&g);
    let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for p in path {
        if inside(p) {
            if let Some(run) = runs.last_mut() {
                run.push(*p);
            }
        } else if runs.last().is_some_and(|r| !r.is_empty()) {
            runs.push(Vec::new());
        }
    }
    runs.into_iter().filter(|r| !r.is_empty()).collect()
}

/// The process path `path` in red over the panel, in its runs inside the mesh
/// `[x0, x1] x [y0, y1]` ([`runs_inside`]); the first run carries the legend entry `label`
/// when `legend`.
fn draw_path<DB: DrawingBackend>(
    ctx: &mut PanelChart<'_, DB>,
    (label, path): &(String, Vec<(f64, f64)>),
    (x_range, y_range): ((f64, f64), (f64, f64)),
    legend: bool,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let red = RGBColor(220, 40, 40);
    for (k, run) in runs_inside(path, x_range, y_range).into_iter().enumerate() {
        let line = ctx
            .draw_series(LineSeries::new(run, red.stroke_width(3)))
            .map_err(drawing)?;
        if legend && k == 0 {
            line.label(label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], red.stroke_width(3))
            });
        }
    }
    Ok(())
}

/// One panel of the maps: `field` as a colour field with contours over the mesh, its
/// measured points filled with the colour of their own value, and the process path; the
/// legend (points and path) only when `legend`.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    maps: &Maps,
    field: &Field,
    legend: bool,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    let (xs, ys) = (&maps.lambdas, &maps.gammas);
    let (Some(&x0), Some(&x1), Some(&y0), Some(&y1)) =
        (xs.first(), xs.last(), ys.first(), ys.last())
    else {
        return Err("empty mesh".into());
    };
    let (lo, hi) = value_range(field)?;
    let span = (hi - lo).max(1e-12);
    let mut ctx = ChartBuilder::on(area)
        .caption(
            format!("{}: {:.4} .. {:.4}", field.name, lo, hi),
            ("sans-serif", 15),
        )
        .margin(8)
        .x_label_area_size(32)
        .y_label_area_size(44)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(drawing)?;
    ctx.configure_mesh()
        .disable_mesh()
        .x_desc("lambda")
        .y_desc("gamma")
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(drawing)?;
    draw_field(&mut ctx, maps, field, (lo, span))?;
    draw_points(&mut ctx, maps, field, (lo, span), legend)?;
    if let Some(path) = &maps.path {
        draw_path(&mut ctx, path, ((x0, x1), (y0, y1)), legend)?;
    }
    if legend {
        ctx.configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(drawing)?;
    }
    Ok(())
}

const SIZE: (u32, u32) = (1100, 960);

fn draw_maps<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    maps: &Maps,
) -> std::result::Result<(), String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(drawing)?;
    let root = root
        .titled(&maps.title, ("sans-serif", 18))
        .map_err(drawing)?;
    let cols = if maps.fields.len() > 1 { 2 } else { 1 };
    let rows = maps.fields.len().div_ceil(cols);
    let panels = root.split_evenly((rows, cols));
    for (k, (panel, field)) in panels.iter().zip(&maps.fields).enumerate() {
        draw_panel(panel, maps, field, k == 0)?;
    }
    root.present().map_err(drawing)
}

/// Writes `<stem>.svg` and `<stem>.png` of the maps, each atomically; returns the PNG.
pub fn write_maps(stem: &Path, maps: &Maps) -> Result<PathBuf> {
    register_font();
    let plot_error = |reason: String| ExperimentError::Plot {
        path: stem.to_path_buf(),
        reason,
    };
    let mut svg = String::new();
    draw_maps(
        SVGBackend::with_string(&mut svg, SIZE).into_drawing_area(),
        maps,
    )
    .map_err(plot_error)?;
    fep_data::atomic_write(stem.with_extension("svg"), svg.as_bytes())?;
    let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
    draw_maps(
        BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area(),
        maps,
    )
    .map_err(plot_error)?;
    let png = crate::plot::encode_png(&rgb, SIZE).map_err(plot_error)?;
    let path = stem.with_extension("png");
    fep_data::atomic_write(&path, &png)?;
    Ok(path)
}

/// `n` evenly spaced values from `a` to `b`.
pub fn linspace(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| a + (b - a) * k as f64 / (n.max(2) - 1) as f64)
        .collect()
}

/// Bilinear interpolation of node values `v[i][j]` at `(xs[i], ys[j])` (clamped to the
/// grid): the surface between measured points without any model of it.
pub fn bilinear(xs: &[f64], ys: &[f64], v: &[Vec<f64>], x: f64, y: f64) -> f64 {
    let cell = |grid: &[f64], t: f64| {
        let k = grid.partition_point(|&g| g <= t).clamp(1, grid.len() - 1) - 1;
        let s = ((t - grid[k]) / (grid[k + 1] - grid[k])).clamp(0.0, 1.0);
        (k, s)
    };
    let ((i, s), (j, u)) = (cell(xs, x), cell(ys, y));
    (1.0 - s) * ((1.0 - u) * v[i][j] + u * v[i][j + 1])
        + s * ((1.0 - u) * v[i + 1][j] + u * v[i + 1][j + 1])
}

/// Monotone piecewise-cubic Hermite interpolation (Fritsch-Carlson) of `(x_k, y_k)`,
/// `x` increasing, evaluated at `t`: between two nodes it never leaves the range of
/// their values, so monotone data give a monotone curve.
pub fn pchip(x: &[f64], y: &[f64], t: f64) -> f64 {
    let n = x.len();
    if n == 0 {
        return f64::NAN;
    }
    if n == 1 {
        return y[0];
    }
    let h: Vec<f64> = x.windows(2).map(|w| w[1] - w[0]).collect();
    let delta: Vec<f64> = (0..n - 1).map(|k| (y[k + 1] - y[k]) / h[k]).collect();
    let mut m = vec![0.0; n];
    m[0] = delta[0];
    m[n - 1] = delta[n - 2];
    for k in 1..n - 1 {
        if delta[k - 1] * delta[k] > 0.0 {
            // Weighted harmonic mean of the neighbouring slopes.
            let (w1, w2) = (2.0 * h[k] + h[k - 1], h[k] + 2.0 * h[k - 1]);
            m[k] = (w1 + w2) / (w1 / delta[k - 1] + w2 / delta[k]);
        }
    }
    for k in 0..n - 1 {
        if delta[k] == 0.0 {
            m[k] = 0.0;
            m[k + 1] = 0.0;
        }
    }
    let k = x.partition_point(|&v| v <= t).clamp(1, n - 1) - 1;
    let s = ((t - x[k]) / h[k]).clamp(0.0, 1.0);
    let (h00, h10) = ((1.0 + 2.0 * s) * (1.0 - s).powi(2), s * (1.0 - s).powi(2));
    let (h01, h11) = (s * s * (3.0 - 2.0 * s), s * s * (s - 1.0));
    h00 * y[k] + h10 * h[k] * m[k] + h01 * y[k + 1] + h11 * h[k] * m[k + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pchip_interpolates_and_stays_monotone() {
        let x = [0.5, 1.0, 2.0, 4.0];
        let y = [10.0, 4.0, 3.9, 1.0];
        for (a, b) in x.iter().zip(&y) {
            assert!((pchip(&x, &y, *a) - b).abs() < 1e-12);
        }
        let mut prev = f64::INFINITY;
        for t in linspace(0.5, 4.0, 200) {
            let v = pchip(&x, &y, t);
            assert!(v <= prev + 1e-12, "not monotone at {t}");
            prev = v;
        }
        // Linear data are reproduced exactly.
        let lin = [1.0, 2.0, 4.0, 8.0];
        assert!((pchip(&x, &lin, 3.0) - 6.0).abs() < 1e-12);
    }

    #[test]
    fn bilinear_reproduces_nodes_and_planes() {
        let xs = [0.0, 1.0, 3.0];
        let ys = [0.0, 2.0];
        let v: Vec<Vec<f64>> = xs
            .iter()
            .map(|&x| ys.iter().map(|&y| 1.0 + 2.0 * x - y).collect())
            .collect();
        for (x, y) in [(0.0, 0.0), (0.5, 1.0), (2.2, 1.7), (3.0, 2.0)] {
            assert!((bilinear(&xs, &ys, &v, x, y) - (1.0 + 2.0 * x - y)).abs() < 1e-12);
        }
    }

    #[test]
    fn contours_cross_where_the_field_crosses_the_level() {
        let xs = [0.0, 1.0];
        let ys = [0.0, 1.0];
        let v = vec![vec![0.0, 0.0], vec![1.0, 1.0]];
        let segs = contour(&xs, &ys, &v, 0.25);
        assert_eq!(segs.len(), 1);
        for p in segs[0] {
            assert!((p.0 - 0.25).abs() < 1e-12);
        }
    }

    #[test]
    fn maps_are_written_as_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("fep-maps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (xs, ys) = (linspace(0.5, 2.0, 20), linspace(0.5, 3.0, 20));
        let field = |f: fn(f64, f64) -> f64, name: &str| Field {
            name: name.into(),
            values: xs
                .iter()
                .map(|&l| ys.iter().map(|&g| f(l, g)).collect())
                .collect(),
            points: vec![(1.0, 1.0, f(1.0, 1.0))],
        };
        let maps = Maps {
            title: "test".into(),
            lambdas: xs.clone(),
            gammas: ys.clone(),
            fields: vec![field(|l, g| l * g, "F"), field(|l, _| -l, "D")],
            path: Some(("path".into(), vec![(0.6, 0.6), (1.5, 2.5)])),
            points_label: "measured".into(),
        };
        let png = write_maps(&dir.join("maps"), &maps).unwrap();
        assert!(std::fs::metadata(&png).unwrap().len() > 1000);
        let svg = std::fs::read_to_string(dir.join("maps.svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("measured"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
