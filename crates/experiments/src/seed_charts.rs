//! Charts over seeds: each method's mean trace with a band of plus or minus one sample
//! standard deviation over the seeds, from the per-seed traces under
//! `<out>/seed-<s>/<method>.jsonl`. Rows are matched by their index along the trace (every
//! seed runs the same number of steps); the x of a row is its mean over seeds.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::io::read_jsonl;
use crate::plot::{Chart, GUIDE_COLOR, Mark, Series, band, write_chart_files};
use crate::process::TraceRow;
use crate::seeds::Spread;

/// A method's traces over seeds.
struct MethodTraces {
    name: &'static str,
    /// Whether the method moves along a data or lambda path (its t is a path coordinate
    /// rather than a fraction of the budget).
    is_path: bool,
    /// One trace per seed.
    seeds: Vec<Vec<TraceRow>>,
}

impl MethodTraces {
    /// Mean and spread over seeds of `get` at each row index present in every seed.
    fn spread(&self, get: impl Fn(&TraceRow) -> f64) -> Vec<Spread> {
        let n = self.seeds.iter().map(Vec::len).min().unwrap_or(0);
        (0..n)
            .map(|i| Spread::of(self.seeds.iter().map(|rows| get(&rows[i])).collect()))
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
        let x: Vec<f64> = match axis {
            SeedAxis::AdamSteps => m.spread(|r| r.optimizer_steps as f64),
            SeedAxis::T => m.spread(|r| r.t),
        }
        .iter()
        .map(|s| s.mean)
        .collect();
        let y = m.spread(get);
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
    100.0 * r.test.map_or(f64::NAN, |t| t.relative_drift)
}

/// The seed folders of `seeds` under `out`.
fn seed_dirs(out: &Path, seeds: &[u64]) -> Vec<PathBuf> {
    seeds
        .iter()
        .map(|s| out.join(format!("seed-{s}")))
        .collect()
}

/// Charts of the transfer over seeds in `out`: the drift of C on p_t (test splits, fresh
/// noise) and both test accuracies against the Adam steps spent (every method), and the
/// drift against t (the path methods). Returns the PNG paths.
pub fn transfer_seed_charts(out: &Path, seeds: &[u64], device: &str) -> Result<Vec<PathBuf>> {
    let methods = read_methods(
        &seed_dirs(out, seeds),
        &[
            ("iso-classification (ours)", "trace", true),
            ("fine-tune", "fine_tune", false),
            ("paper heuristic", "paper_heuristic", true),
            ("schedule only (gamma fixed)", "schedule_only", true),
            ("fine-tune at our end point", "fine_tune_at_end", false),
        ],
    )?;
    let context = format!("mean +- sd over {} seeds (bands), {device}", seeds.len());
    let guides = [(5.0, "+-5% of C0".to_string()), (-5.0, String::new())];
    let drift_label = "drift of C on p_t from C0, test splits, fresh noise (%)";
    Ok(vec![
        seed_chart(
            &out.join("seeds_drift_by_steps"),
            &methods,
            SeedAxis::AdamSteps,
            (
                format!("C on p_t: {context}"),
                "Adam steps spent",
                drift_label,
            ),
            drift_percent,
            &guides,
        )?,
        seed_chart(
            &out.join("seeds_drift_by_t"),
            &methods,
            SeedAxis::T,
            (
                format!("C on p_t along the paths: {context}"),
                "t (0 = source, 1 = target)",
                drift_label,
            ),
            drift_percent,
            &guides,
        )?,
        seed_chart(
            &out.join("seeds_target_accuracy_by_steps"),
            &methods,
            SeedAxis::AdamSteps,
            (
                format!("target accuracy: {context}"),
                "Adam steps spent",
                "accuracy on the target test set (%)",
            ),
            |r| 100.0 * r.target_accuracy,
            &[],
        )?,
        seed_chart(
            &out.join("seeds_source_accuracy_by_steps"),
            &methods,
            SeedAxis::AdamSteps,
            (
                format!("source accuracy kept: {context}"),
                "Adam steps spent",
                "accuracy on the source test set (%)",
            ),
            |r| 100.0 * r.source_accuracy,
            &[],
        )?,
    ])
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
