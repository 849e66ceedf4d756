//! The per-step record of a process or a baseline, the observer that measures it between
//! the steps of a `fep-thermo` [`Process`], and its files (JSON lines, CSV) and charts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::Domains;
use fep_models::system::DeepSystem;
use fep_thermo::{
    ConstraintKind, Continuation, EquilibriumReport, Functionals, Multipliers, Process,
    ProcessPath, StoppingRule, ThermodynamicSystem,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ResultExt};
use crate::io::{write_csv, write_jsonl};
use crate::plot::{Chart, GUIDE_COLOR, Mark, Series, write_chart};
use crate::progress::bar;

/// One row of a process or baseline trace (`<name>.jsonl`, `<name>.csv`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRow {
    /// Position of the data path (0 source, 1 target); s on a path without data motion;
    /// the fraction of the budget spent for fine-tuning.
    pub t: f64,
    /// lambda.
    pub lambda: f64,
    /// gamma.
    pub gamma: f64,
    /// R, D, C on the probe of p_t.
    #[serde(flatten)]
    pub probe: Functionals,
    /// (C - C0) / C0 on the probe.
    pub relative_drift: f64,
    /// Accuracy on the source test set.
    pub source_accuracy: f64,
    /// Accuracy on the target test set (the source's again without a target).
    pub target_accuracy: f64,
    /// Corrector iterations of the step (adjustments for the paper's heuristic).
    pub corrector_iterations: usize,
    /// Whether the corrector met its tolerance at this step.
    pub converged: bool,
    /// How the point's equilibrations went: optimiser steps, the stopping criterion's
    /// final value, whether it was met (not measured for fixed budgets).
    pub equilibrium: EquilibriumReport,
    /// Adam steps spent so far.
    pub optimizer_steps: u64,
    /// Seconds since the process started.
    pub wall_seconds: f64,
}

/// Accuracies of the system's current model on both test sets.
pub(crate) fn test_accuracies<B: AutodiffBackend>(
    system: &DeepSystem<B>,
    domains: &Domains,
) -> Result<(f64, f64)> {
    let source = system.evaluate(&domains.source.test)?.accuracy;
    let target = match &domains.target {
        Some(target) => system.evaluate(&target.test)?.accuracy,
        // Without a target the "target" test set is the source's: measured once.
        None => source,
    };
    Ok((source, target))
}

/// A process as run: its trace, the held value C0 and the largest drift on the probe.
#[derive(Debug, Clone)]
pub struct Traced {
    /// One row per accepted point, the start included.
    pub rows: Vec<TraceRow>,
    /// The held value of the monitored functional (C0).
    pub c0: f64,
    /// Largest `|C - C0| / C0` on the probe along the path.
    pub max_relative_drift: f64,
}

/// Runs a `fep-thermo` process on `system` from `start` and measures both test accuracies
/// after every accepted step.
pub(crate) fn trace_process<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    start: Multipliers,
    path: ProcessPath,
    constraint: ConstraintKind,
    continuation: Continuation,
    domains: &Domains,
    label: &str,
) -> Result<Traced> {
    let moves_data = path.moves_data();
    let mut process = Process::new(system, start, path, constraint, continuation)
        .context_with(|| format!("{label} process"))?;
    let progress = bar(1000, label);
    let mut rows = Vec::new();
    while let Some(record) = process.next() {
        let r = record.context_with(|| format!("{label} process"))?;
        let system = process.system();
        let (sa, ta) =
            test_accuracies(system, domains).context_with(|| "evaluating a process step".into())?;
        let f = r.functionals;
        progress.set_position((r.s * 1000.0).round() as u64);
        progress.suspend(|| {
            eprintln!(
                "{label}: s {:.3}  t {:.3}  lambda {:.3}  gamma {:.3}  R {:.3}  D {:.3}  C {:.4} (drift {:+.2}%)  acc source {:.2}% target {:.2}%",
                r.s, r.t, r.lambda, r.gamma, f.rate, f.distortion, f.classification,
                100.0 * r.relative_drift, 100.0 * sa, 100.0 * ta
            )
        });
        rows.push(TraceRow {
            t: if moves_data { r.t } else { r.s },
            lambda: r.lambda,
            gamma: r.gamma,
            probe: f,
            relative_drift: r.relative_drift,
            source_accuracy: sa,
            target_accuracy: ta,
            corrector_iterations: r.corrector_iterations,
            converged: r.converged,
            equilibrium: r.equilibrium,
            optimizer_steps: system.work().optimizer_steps,
            wall_seconds: r.wall_seconds,
        });
    }
    progress.finish_and_clear();
    let result = process.finish();
    Ok(Traced {
        rows,
        c0: result.target,
        max_relative_drift: result.max_relative_drift,
    })
}

/// Where a baseline's row is measured.
pub(crate) struct RowAt {
    /// Data position.
    pub t: f64,
    /// Multipliers.
    pub m: Multipliers,
    /// Adam steps trained since the previous row (a fixed budget, not a measured
    /// equilibrium).
    pub trained: usize,
}

/// A baseline's row at `at`: C on the probe of p_t and both test accuracies.
pub(crate) fn baseline_row<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    at: RowAt,
    c0: f64,
    clock: &Instant,
) -> Result<TraceRow> {
    let RowAt { t, m, trained } = at;
    system.set_data_position(t)?;
    let f = system.functionals()?;
    let (sa, ta) = test_accuracies(system, domains)?;
    Ok(TraceRow {
        t,
        lambda: m.lambda,
        gamma: m.gamma,
        probe: f,
        relative_drift: (f.classification - c0) / c0,
        source_accuracy: sa,
        target_accuracy: ta,
        corrector_iterations: 0,
        converged: true,
        equilibrium: EquilibriumReport::unmeasured(trained),
        optimizer_steps: system.work().optimizer_steps,
        wall_seconds: clock.elapsed().as_secs_f64(),
    })
}

/// A stopping rule in words.
pub fn describe_rule(rule: &StoppingRule) -> String {
    match *rule {
        StoppingRule::FixedSteps { steps } => {
            format!("a fixed budget of {steps} Adam steps (equilibrium assumed, not measured)")
        }
        StoppingRule::GradientNorm { tolerance, .. } => format!("|grad J| <= {tolerance:e}"),
        StoppingRule::Stationary(t) => format!(
            "the stationarity test (windows of {} steps, {} in a row within {} standard errors, {} to {} steps)",
            t.window, t.consecutive, t.z, t.min_steps, t.max_steps
        ),
    }
}

/// How often the equilibrations of a process met their criterion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EquilibriumTally {
    /// The rule of every (re-)equilibration.
    pub rule: StoppingRule,
    /// Accepted points after the start.
    pub points: usize,
    /// Points whose last equilibration met the rule's criterion.
    pub met: usize,
    /// Optimiser steps of all equilibrations of the accepted points.
    pub optimizer_steps: usize,
}

impl EquilibriumTally {
    /// The tally in words: how many points met which rule, and the steps spent.
    pub fn describe(&self) -> String {
        format!(
            "{} of {} points met {}; {} Adam steps in their equilibrations",
            self.met,
            self.points,
            describe_rule(&self.rule),
            self.optimizer_steps
        )
    }

    /// The tally of a process trace (its first row is the start, not equilibrated here).
    pub fn of(rule: StoppingRule, rows: &[TraceRow]) -> Self {
        let steps = rows.iter().skip(1);
        Self {
            rule,
            points: steps.clone().count(),
            met: steps.clone().filter(|r| r.equilibrium.met).count(),
            optimizer_steps: steps.map(|r| r.equilibrium.steps).sum(),
        }
    }
}

/// Largest `|relative_drift|` of a trace.
pub fn max_drift(rows: &[TraceRow]) -> f64 {
    rows.iter()
        .map(|r| r.relative_drift.abs())
        .fold(0.0, f64::max)
}

/// Writes `<stem>.jsonl` and `<stem>.csv` of a trace.
pub fn write_trace(dir: &Path, stem: &str, rows: &[TraceRow]) -> Result<()> {
    write_jsonl(&dir.join(format!("{stem}.jsonl")), rows)?;
    write_csv(&dir.join(format!("{stem}.csv")), rows)
}

/// What the charts of several traces show.
pub(crate) struct ChartSpec<'a> {
    /// Label of the x axis.
    pub x_label: &'a str,
    /// The held value, drawn with a band.
    pub c0: f64,
    /// Half-width of the band, relative to C0.
    pub band: f64,
    /// Machine, backend and data, for the titles.
    pub context: String,
}

/// Charts of C, R, D, lambda, gamma and the test accuracies against t for several
/// traces (the first drawn thick); returns the PNG paths.
pub(crate) fn write_trace_charts(
    dir: &Path,
    traces: &[(&str, &[TraceRow])],
    spec: &ChartSpec,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    type Get = fn(&TraceRow) -> f64;
    let panels: [(&str, &str, Get); 5] = [
        ("classification", "C on the probe of p_t (nats)", |r| {
            r.probe.classification
        }),
        ("rate", "R (nats)", |r| r.probe.rate),
        ("distortion", "D (nats)", |r| r.probe.distortion),
        ("lambda", "lambda", |r| r.lambda),
        ("gamma", "gamma", |r| r.gamma),
    ];
    for (stem, y_label, get) in panels {
        let mut series: Vec<Series> = traces
            .iter()
            .enumerate()
            .map(|(i, (name, rows))| Series {
                label: name.to_string(),
                points: rows.iter().map(|r| (r.t, get(r))).collect(),
                mark: if i == 0 { Mark::ThickLine } else { Mark::Line },
                color: i,
            })
            .collect();
        if stem == "classification" {
            let x1 = traces
                .iter()
                .flat_map(|(_, rows)| rows.iter().map(|r| r.t))
                .fold(0.0, f64::max)
                .max(1e-9);
            for (sign, label) in [
                (1.0, format!("C0 +- {:.0}%", 100.0 * spec.band)),
                (-1.0, String::new()),
            ] {
                let level = spec.c0 * (1.0 + sign * spec.band);
                series.push(Series {
                    label,
                    points: vec![(0.0, level), (x1, level)],
                    mark: Mark::Line,
                    color: GUIDE_COLOR,
                });
            }
        }
        let path = dir.join(stem);
        write_chart(
            &path,
            &Chart {
                title: format!("{stem}: {}", spec.context),
                x_label: spec.x_label.into(),
                y_label: y_label.into(),
                series,
            },
        )?;
        written.push(path.with_extension("png"));
    }
    let mut series = Vec::new();
    for (i, (name, rows)) in traces.iter().enumerate() {
        series.push(Series {
            label: format!("{name}: target"),
            points: rows
                .iter()
                .map(|r| (r.t, 100.0 * r.target_accuracy))
                .collect(),
            mark: Mark::ThickLine,
            color: i,
        });
        series.push(Series {
            label: format!("{name}: source"),
            points: rows
                .iter()
                .map(|r| (r.t, 100.0 * r.source_accuracy))
                .collect(),
            mark: Mark::Points,
            color: i,
        });
    }
    let path = dir.join("accuracy");
    write_chart(
        &path,
        &Chart {
            title: format!("test accuracy: {}", spec.context),
            x_label: spec.x_label.into(),
            y_label: "accuracy (%)".into(),
            series,
        },
    )?;
    written.push(path.with_extension("png"));
    Ok(written)
}
