//! Charts over seeds: each method's mean trace with a band of plus or minus one sample
//! standard deviation over the seeds, from the per-seed traces under
//! `<out>/seed-<s>/<method>.jsonl`. Each seed's trace is interpolated linearly onto a
//! common grid of x (t or Adam steps), since adaptive paths and measured equilibrations put
//! the rows of different seeds at different x.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::io::read_jsonl;
use crate::plot::{Chart, GUIDE_COLOR, Mark, Series, band, write_chart_files};
use crate::process::Method;
use crate::process::TraceRow;
use crate::spread::Spread;

/// A method's traces over seeds.
struct MethodTraces {
    name: &'static str,
    /// Whether the method moves along a data or lambda path (its t is a path coordinate
    /// rather than a fraction of the budget).
    is_path: bool,
    /// One trace per seed.
    seeds: Vec<Vec<TraceRow>>,
}

/// The value at `x` of the piecewise-linear curve through `points` (sorted by x; held
/// constant beyond the ends).
fn interpolate(points: &[(f64, f64)], x: f64) -> f64 {
    let Some(&(x0, y0)) = points.first() else {
        return f64::NAN;
    };
    if x <= x0 {
        return y0;
    }
    for w in points.windows(2) {
        let ((xa, ya), (xb, yb)) = (w[0], w[1]);
        if x <= xb {
            return if xb > xa {
                ya + (yb - ya) * (x - xa) / (xb - xa)
            } else {
                yb
            };
        }
    }
    points.last().map_or(f64::NAN, |p| p.1)
}

impl MethodTraces {
    /// Mean and spread over seeds of `y` on a common grid of `x` from 0 to the smallest
    /// last x of the seeds: each seed's trace is interpolated linearly between its rows (the
    /// rows of adaptive paths and of methods with measured equilibrations sit at different
    /// x in different seeds).
    fn on_grid(
        &self,
        x: impl Fn(&TraceRow) -> f64,
        y: impl Fn(&TraceRow) -> f64,
    ) -> Vec<(f64, Spread)> {
        let curves: Vec<Vec<(f64, f64)>> = self
            .seeds
            .iter()
            .map(|rows| {
                rows.iter()
                    .map(|r| (x(r), y(r)))
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .collect()
            })
            .collect();
        let end = curves
            .iter()
            .map(|c| c.last().map_or(0.0, |p| p.0))
            .fold(f64::INFINITY, f64::min);
        if !end.is_finite() || curves.iter().any(Vec::is_empty) {
            return Vec::new();
        }
        const POINTS: usize = 60;
        (0..=POINTS)
            .map(|k| {
                let at = end * k as f64 / POINTS as f64;
                (
                    at,
                    Spread::of(curves.iter().map(|c| interpolate(c, at)).collect()),
                )
            })
            .collect()
    }
}

/// Reads the traces `<stem>.jsonl` of every seed folder; methods missing in some seed are
/// left out.
fn read_methods(
    seed_dirs: &[PathBuf],
    methods: &[(&'static str, &str, bool)],
) -> Result<Vec<MethodTraces>> {
    let mut found = Vec::new();
    for &(name, stem, is_path) in methods {
        let files: Vec<PathBuf> = seed_dirs
            .iter()
            .map(|d| d.join(format!("{stem}.jsonl")))
            .collect();
        if files.is_empty() || !files.iter().all(|f| f.is_file()) {
            continue;
        }
        let seeds = files
            .iter()
            .map(|f| read_jsonl::<TraceRow>(f))
            .collect::<Result<Vec<_>>>()?;
        found.push(MethodTraces {
            name,
            is_path,
            seeds,
        });
    }
    Ok(found)
}

/// The x axis of a seed chart.
#[derive(Clone, Copy)]
enum SeedAxis {
    AdamSteps,
    T,
}

/// One chart: for each method, a band (mean +- sd) and a mean line of `get`.
fn seed_chart(
    stem: &Path,
    methods: &[MethodTraces],
    axis: SeedAxis,
    (title, x_label, y_label): (String, &str, &str),
    get: impl Fn(&TraceRow) -> f64 + Copy,
    guides: &[(f64, String)],
) -> Result<PathBuf> {
    let mut series = Vec::new();
    let mut x_max: f64 = 0.0;
    for (i, m) in methods.iter().enumerate() {
        if matches!(axis, SeedAxis::T) && !m.is_path {
            continue;
        }
        let grid = match axis {
            SeedAxis::AdamSteps => m.on_grid(|r| r.optimizer_steps as f64, get),
            SeedAxis::T => m.on_grid(|r| r.t, get),
        };
        let x: Vec<f64> = grid.iter().map(|(x, _)| *x).collect();
        let y: Vec<Spread> = grid.into_iter().map(|(_, s)| s).collect();
        x_max = x.iter().copied().fold(x_max, f64::max);
        let lower: Vec<f64> = y.iter().map(|s| s.mean - s.sd).collect();
        let upper: Vec<f64> = y.iter().map(|s| s.mean + s.sd).collect();
        series.push(Series {
            label: String::new(),
            points: band(&x, &lower, &upper),
            mark: Mark::Band,
            color: i,
        });
        series.push(Series {
            label: m.name.to_string(),
            points: x.iter().zip(&y).map(|(&x, s)| (x, s.mean)).collect(),
            mark: if i == 0 { Mark::ThickLine } else { Mark::Line },
            color: i,
        });
    }
    for (k, (level, label)) in guides.iter().enumerate() {
        series.push(Series {
            label: if k == 0 { label.clone() } else { String::new() },
            points: vec![(0.0, *level), (x_max.max(1e-9), *level)],
            mark: Mark::Line,
            color: GUIDE_COLOR,
        });
    }
    write_chart_files(
        stem,
        &Chart {
            title,
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
        },
    )
}

fn drift_percent(r: &TraceRow) -> f64 {
    100.0 * r.test.relative_drift
}

/// The seed folders of `seeds` under `out`.
fn seed_dirs(out: &Path, seeds: &[u64]) -> Vec<PathBuf> {
    seeds
        .iter()
        .map(|s| out.join(format!("seed-{s}")))
        .collect()
}

/// One chart over seeds: file stem, axis, labels, the quantity and guide lines.
struct SeedChart<'a> {
    stem: &'a str,
    axis: SeedAxis,
    title: String,
    x_label: &'a str,
    y_label: &'a str,
    get: fn(&TraceRow) -> f64,
    guides: &'a [(f64, String)],
}

/// Charts of the transfer over seeds in `out`: the drift of C on p_t (test splits, fresh
/// noise) and both test accuracies against the Adam steps spent (every method), and the
/// drift against t (the path methods). Returns the PNG paths.
pub fn transfer_seed_charts(out: &Path, seeds: &[u64], device: &str) -> Result<Vec<PathBuf>> {
    let listed: Vec<(&str, &str, bool)> = std::iter::once(Method::IsoClassification)
        .chain(Method::BASELINES)
        .map(|m| (m.name(), m.trace_stem(), m.follows_a_path()))
        .collect();
    let methods = read_methods(&seed_dirs(out, seeds), &listed)?;
    let context = format!("mean +- sd over {} seeds (bands), {device}", seeds.len());
    let guides = [(5.0, "+-5% of C0".to_string()), (-5.0, String::new())];
    let drift = "drift of C on p_t from C0, test splits, fresh noise (%)";
    let steps = "Adam steps spent";
    let charts: [SeedChart; 4] = [
        SeedChart {
            stem: "seeds_drift_by_steps",
            axis: SeedAxis::AdamSteps,
            title: format!("C on p_t: {context}"),
            x_label: steps,
            y_label: drift,
            get: drift_percent,
            guides: &guides,
        },
        SeedChart {
            stem: "seeds_drift_by_t",
            axis: SeedAxis::T,
            title: format!("C on p_t along the paths: {context}"),
            x_label: "t (0 = source, 1 = target)",
            y_label: drift,
            get: drift_percent,
            guides: &guides,
        },
        SeedChart {
            stem: "seeds_target_accuracy_by_steps",
            axis: SeedAxis::AdamSteps,
            title: format!("target accuracy: {context}"),
            x_label: steps,
            y_label: "accuracy on the target test set (%)",
            get: |r| 100.0 * r.target_accuracy,
            guides: &[],
        },
        SeedChart {
            stem: "seeds_source_accuracy_by_steps",
            axis: SeedAxis::AdamSteps,
            title: format!("source accuracy kept: {context}"),
            x_label: steps,
            y_label: "accuracy on the source test set (%)",
            get: |r| 100.0 * r.source_accuracy,
            guides: &[],
        },
    ];
    charts
        .into_iter()
        .map(|c| {
            let labels = (c.title, c.x_label, c.y_label);
            seed_chart(&out.join(c.stem), &methods, c.axis, labels, c.get, c.guides)
        })
        .collect()
}

/// Charts of the iso-classification over seeds in `out`: the drift of C (test split,
/// fresh noise) along the iso-classification and the naive paths. Returns the PNG paths.
pub fn iso_seed_charts(out: &Path, seeds: &[u64], device: &str) -> Result<Vec<PathBuf>> {
    let methods = read_methods(
        &seed_dirs(out, seeds),
        &[
            ("iso-classification", "trace", true),
            ("naive: gamma fixed", "naive", true),
        ],
    )?;
    let context = format!("mean +- sd over {} seeds (bands), {device}", seeds.len());
    let guides = [(3.0, "+-3% of C0".to_string()), (-3.0, String::new())];
    Ok(vec![seed_chart(
        &out.join("seeds_drift"),
        &methods,
        SeedAxis::T,
        (
            format!("C along lambda: {context}"),
            "s (lambda from start to end)",
            "drift of C from C0, test split, fresh noise (%)",
        ),
        drift_percent,
        &guides,
    )?])
}

#[cfg(test)]
mod tests {
    use super::interpolate;

    #[test]
    fn interpolation_is_linear_between_points_and_flat_beyond() {
        let c = [(0.0, 1.0), (1.0, 3.0), (3.0, -1.0)];
        assert_eq!(interpolate(&c, -1.0), 1.0);
        assert_eq!(interpolate(&c, 0.5), 2.0);
        assert_eq!(interpolate(&c, 2.0), 1.0);
        assert_eq!(interpolate(&c, 3.0), -1.0);
        assert_eq!(interpolate(&c, 9.0), -1.0);
        assert!(interpolate(&[], 0.0).is_nan());
    }
}
