//! The per-step record of a process or a baseline, the observer that measures it between
//! the steps of a `fep-thermo` [`Process`], and its files (JSON lines, CSV) and charts.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::{DataConfig, Domains};
use fep_models::system::DeepSystem;
use fep_models::{Measurement, StandardErrors};
use fep_thermo::{
    ConstraintKind, Continuation, EquilibriumReport, Functionals, Multipliers, Process,
    ProcessPath, StoppingRule, ThermodynamicSystem,
};
use serde::{Deserialize, Serialize};

use super::resume::{PathProgress, ResumeStore};
use crate::error::{Result, ResultExt};
use crate::io::{write_csv, write_jsonl};
use crate::plot::{Chart, GUIDE_COLOR, Mark, Series, write_chart};
use crate::progress::bar;

/// A test split measured apart from the controller (`fep_models::measure`: every
/// example, fresh noise, K draws per example).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitMeasurement {
    /// R, D, C (nats).
    #[serde(flatten)]
    pub functionals: Functionals,
    /// `R + D`.
    pub neg_elbo: f64,
    /// Accuracy of the classifier at the posterior mean.
    pub accuracy: f64,
    /// Standard errors of R, D, C.
    pub standard_errors: StandardErrors,
}

impl From<&Measurement> for SplitMeasurement {
    fn from(m: &Measurement) -> Self {
        Self {
            functionals: m.functionals,
            neg_elbo: m.neg_elbo,
            accuracy: m.accuracy,
            standard_errors: m.standard_errors,
        }
    }
}

/// A row measured on the test splits with fresh noise: data and noise the controller
/// never saw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestRow {
    /// On the source task's test split.
    pub source: SplitMeasurement,
    /// On the target task's test split (transfers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<SplitMeasurement>,
    /// C on p_t: `(1 - t) C_source + t C_target` at the row's data position.
    pub classification: f64,
    /// Its standard error.
    pub classification_se: f64,
    /// `(C - C0) / C0`, C0 measured the same way at the method's start.
    pub relative_drift: f64,
}

/// How rows are measured on the test splits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestMeasure {
    /// Noise draws per example (K).
    pub samples: usize,
    /// Seed of the draws (a stream of its own: never the probe's or training's noise).
    pub seed: u64,
}

/// The system's current model on both test splits, C mixed at data position `t`; the
/// drift against `c0` (none yet at the start: 0).
pub(crate) fn measure_on_test<B: AutodiffBackend>(
    system: &DeepSystem<B>,
    domains: &Domains,
    t: f64,
    how: TestMeasure,
    c0: Option<f64>,
) -> Result<TestRow> {
    let source = system.measure(&domains.source.test, how.samples, how.seed)?;
    let target = match &domains.target {
        Some(d) => Some(system.measure(&d.test, how.samples, how.seed)?),
        None => None,
    };
    let (cs, ss) = (
        source.functionals.classification,
        source.standard_errors.classification,
    );
    let (ct, st) = target.as_ref().map_or((cs, ss), |m| {
        (
            m.functionals.classification,
            m.standard_errors.classification,
        )
    });
    let classification = (1.0 - t) * cs + t * ct;
    let classification_se = ((1.0 - t).powi(2) * ss * ss + t * t * st * st).sqrt();
    let c0 = c0.unwrap_or(classification);
    Ok(TestRow {
        source: (&source).into(),
        target: target.as_ref().map(SplitMeasurement::from),
        classification,
        classification_se,
        relative_drift: (classification - c0) / c0,
    })
}

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
    /// R, D, C on the controller's probe of p_t.
    #[serde(flatten)]
    pub probe: Functionals,
    /// (C - C0) / C0 on the controller's probe: what the corrector steers on.
    #[serde(alias = "relative_drift")]
    pub controller_relative_drift: f64,
    /// Accuracy on the source test set.
    pub source_accuracy: f64,
    /// Accuracy on the target test set (the source's again without a target).
    pub target_accuracy: f64,
    /// The row measured on the test splits with fresh noise (absent in traces of
    /// earlier versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestRow>,
    /// Corrector iterations of the step (adjustments for the paper's heuristic).
    pub corrector_iterations: usize,
    /// Whether the corrector met its tolerance at this step.
    pub converged: bool,
    /// How the point's equilibrations went: optimiser steps, the stopping criterion's
    /// final value, whether it was met (not measured for fixed budgets).
    pub equilibrium: EquilibriumReport,
    /// Adam steps spent so far.
    pub optimizer_steps: u64,
    /// The model after this step, relative to the output folder (with `--save-steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Seconds since the process started.
    pub wall_seconds: f64,
}

/// How well a process held its constraint, measured apart from the controller and by the
/// controller itself (flattened into the summaries of both process experiments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldConstraint {
    /// C on the controller's probe at the start: the value held.
    pub c0: f64,
    /// C at the start on the test split(s) with fresh noise (K draws per example).
    #[serde(default)]
    pub c0_test: f64,
    /// Largest relative drift of C on p_t along the process, measured on the test splits
    /// with fresh noise: apart from the controller.
    pub max_relative_drift: f64,
    /// Largest relative drift of C on the controller's probe (what it steers on).
    #[serde(default)]
    pub controller_max_relative_drift: f64,
    /// Noise draws per test example (0 in summaries that predate the measurement).
    #[serde(default)]
    pub test_samples: usize,
    /// Steps accepted without meeting the corrector's tolerance.
    pub unconverged_steps: usize,
    /// How often the process's equilibrations met their criterion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equilibrium: Option<EquilibriumTally>,
}

impl HeldConstraint {
    /// The record of a traced process whose equilibrations followed `rule`.
    pub fn of(traced: &Traced, rule: StoppingRule, test_samples: usize) -> Self {
        Self {
            c0: traced.c0,
            c0_test: traced.c0_test,
            max_relative_drift: traced.max_relative_drift,
            controller_max_relative_drift: traced.controller_max_relative_drift,
            test_samples,
            unconverged_steps: traced.rows.iter().filter(|r| !r.converged).count(),
            equilibrium: Some(EquilibriumTally::of(rule, &traced.rows)),
        }
    }
}

/// A process as run: its trace, the held value C0 and the largest drifts.
#[derive(Debug, Clone)]
pub struct Traced {
    /// One row per accepted point, the start included.
    pub rows: Vec<TraceRow>,
    /// The held value of the monitored functional on the controller's probe (C0).
    pub c0: f64,
    /// C0 on the test splits with fresh noise.
    pub c0_test: f64,
    /// Largest `|C - C0| / C0` on the test splits with fresh noise along the path.
    pub max_relative_drift: f64,
    /// Largest `|C - C0| / C0` on the controller's probe along the path.
    pub controller_max_relative_drift: f64,
}

/// Runs a `fep-thermo` process on `system` from `start` and measures both test accuracies
/// after every accepted step.
pub(crate) fn trace_process<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    start: Multipliers,
    path: ProcessPath,
    constraint: ConstraintKind,
    continuation: Continuation,
    observer: &Observer,
    label: &str,
) -> Result<Traced> {
    let Observer {
        domains,
        test: how,
        saver,
        resume,
    } = *observer;
    let moves_data = path.moves_data();
    let restored = match resume {
        Some((store, name)) => store.load_step(name, system)?,
        None => None,
    };
    let (mut process, mut rows, mut c0_test) = match restored {
        Some(p) => {
            eprintln!(
                "{label}: resumed after step {} of the interrupted run (s = {:.3})",
                p.rows.len().saturating_sub(1),
                p.snapshot.s
            );
            (
                Process::resume(system, path, constraint, continuation, p.snapshot)
                    .context_with(|| format!("resuming the {label} process"))?,
                p.rows,
                p.c0_test,
            )
        }
        None => (
            Process::new(system, start, path, constraint, continuation)
                .context_with(|| format!("{label} process"))?,
            Vec::new(),
            None,
        ),
    };
    let progress = bar(1000, label);
    while let Some(record) = process.next() {
        let r = record.context_with(|| format!("{label} process"))?;
        let system = process.system();
        let test = measure_on_test(system, domains, r.t, how, c0_test)
            .context_with(|| "measuring a process step on the test splits".into())?;
        c0_test.get_or_insert(test.classification);
        let (sa, ta) = accuracies(&test);
        let f = r.functionals;
        progress.set_position((r.s * 1000.0).round() as u64);
        progress.suspend(|| {
            eprintln!(
                "{label}: s {:.3}  t {:.3}  lambda {:.3}  gamma {:.3}  R {:.3}  D {:.3}  C {:.4} (probe drift {:+.2}%, test drift {:+.2}%)  acc source {:.2}% target {:.2}%",
                r.s, r.t, r.lambda, r.gamma, f.rate, f.distortion, f.classification,
                100.0 * r.relative_drift, 100.0 * test.relative_drift, 100.0 * sa, 100.0 * ta
            )
        });
        rows.push(TraceRow {
            t: if moves_data { r.t } else { r.s },
            lambda: r.lambda,
            gamma: r.gamma,
            probe: f,
            controller_relative_drift: r.relative_drift,
            source_accuracy: sa,
            target_accuracy: ta,
            test: Some(test),
            corrector_iterations: r.corrector_iterations,
            converged: r.converged,
            equilibrium: r.equilibrium,
            optimizer_steps: system.work().optimizer_steps,
            checkpoint: None,
            wall_seconds: r.wall_seconds,
        });
        let k = rows.len() - 1;
        if let Some(saver) = saver.filter(|s| s.every_step) {
            let name = format!("steps/step-{k:03}.ckpt");
            saver.save(
                system,
                &name,
                label,
                r.t,
                Multipliers::new(r.lambda, r.gamma),
            )?;
            rows[k].checkpoint = Some(name);
        }
        if let Some((store, name)) = resume {
            let state = PathProgress {
                snapshot: process.snapshot(),
                system: process.system().state(),
                rows: rows.clone(),
                c0_test,
            };
            store.save_step(name, process.system(), &state)?;
        }
    }
    progress.finish_and_clear();
    let result = process.finish();
    Ok(Traced {
        c0_test: c0_test.unwrap_or(f64::NAN),
        max_relative_drift: max_drift(&rows),
        rows,
        c0: result.target,
        controller_max_relative_drift: result.max_relative_drift,
    })
}

/// What is measured and saved between the steps of a process.
#[derive(Clone, Copy)]
pub(crate) struct Observer<'a> {
    /// The domains whose test splits every row is measured on.
    pub domains: &'a Domains,
    /// How.
    pub test: TestMeasure,
    /// Where the path's models go after every step (with `--save-steps`), if anywhere.
    pub saver: Option<&'a ModelSaver>,
    /// Where the path's progress is saved after every step, under which name, so that a
    /// killed run continues from its last step (and where it is read back from).
    pub resume: Option<(&'a ResumeStore, &'a str)>,
}

/// Where and how the models of a run are saved.
#[derive(Debug, Clone)]
pub struct ModelSaver {
    /// The output folder (checkpoints are saved under it, paths relative to it).
    pub out: PathBuf,
    /// The data of the run (its classes go into the checkpoint).
    pub data: DataConfig,
    /// Save the path's model after every step (`--save-steps`).
    pub every_step: bool,
}

impl ModelSaver {
    /// Saves the system's model to `<out>/<name>` (atomically), recording the method,
    /// the classes, the data position and the multipliers.
    pub fn save<B: AutodiffBackend>(
        &self,
        system: &DeepSystem<B>,
        name: &str,
        method: &str,
        t: f64,
        m: Multipliers,
    ) -> Result<PathBuf> {
        let path = self.out.join(name);
        if let Some(dir) = path.parent() {
            crate::io::create_dir(dir)?;
        }
        let extra = serde_json::json!({
            "method": method,
            "source_classes": self.data.source_classes,
            "target_classes": self.data.target_classes,
            "data_position": t,
            "lambda": m.lambda,
            "gamma": m.gamma,
        });
        fep_models::checkpoint::save(system.trainer(), &path, extra)?;
        Ok(path)
    }
}

/// Source and target test accuracies of a test row (the source's twice without a target).
fn accuracies(test: &TestRow) -> (f64, f64) {
    let source = test.source.accuracy;
    (source, test.target.map_or(source, |t| t.accuracy))
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

/// The held values a baseline's drifts are measured against: C0 on the controller's
/// probe and on the test splits (both of the common start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldValues {
    /// On the probe.
    pub probe: f64,
    /// On the test splits with fresh noise.
    pub test: f64,
}

/// A baseline's row at `at`: C on the probe of p_t, and the row on the test splits.
pub(crate) fn baseline_row<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    at: RowAt,
    c0: HeldValues,
    how: TestMeasure,
    clock: &Instant,
) -> Result<TraceRow> {
    let RowAt { t, m, trained } = at;
    system.set_data_position(t)?;
    let f = system.functionals()?;
    let test = measure_on_test(system, domains, t, how, Some(c0.test))?;
    let (sa, ta) = accuracies(&test);
    Ok(TraceRow {
        t,
        lambda: m.lambda,
        gamma: m.gamma,
        probe: f,
        controller_relative_drift: (f.classification - c0.probe) / c0.probe,
        source_accuracy: sa,
        target_accuracy: ta,
        test: Some(test),
        corrector_iterations: 0,
        converged: true,
        equilibrium: EquilibriumReport::unmeasured(trained),
        optimizer_steps: system.work().optimizer_steps,
        checkpoint: None,
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

/// Largest `|relative drift|` of C on the test splits (fresh noise) along a trace; the
/// controller's probe drift where a row has no test measurement (earlier versions).
pub fn max_drift(rows: &[TraceRow]) -> f64 {
    rows.iter()
        .map(|r| {
            r.test
                .map_or(r.controller_relative_drift, |t| t.relative_drift)
                .abs()
        })
        .fold(0.0, f64::max)
}

/// Largest `|relative drift|` of C on the controller's probe along a trace.
pub fn max_controller_drift(rows: &[TraceRow]) -> f64 {
    rows.iter()
        .map(|r| r.controller_relative_drift.abs())
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
    /// The held value on the controller's probe, drawn with a band.
    pub c0: f64,
    /// The held value on the test splits, drawn with a band.
    pub c0_test: f64,
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
    let mut written = charts_against(dir, traces, spec, Axis::T)?;
    // The same charts on the axis every method shares: Adam steps spent.
    written.extend(charts_against(dir, traces, spec, Axis::AdamSteps)?);
    Ok(written)
}

/// The x axis of trace charts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Axis {
    /// The trace's t (data position, s, or budget fraction).
    T,
    /// Adam steps spent so far (common to every method).
    AdamSteps,
}

fn charts_against(
    dir: &Path,
    traces: &[(&str, &[TraceRow])],
    spec: &ChartSpec,
    axis: Axis,
) -> Result<Vec<PathBuf>> {
    let x = |r: &TraceRow| match axis {
        Axis::T => r.t,
        Axis::AdamSteps => r.optimizer_steps as f64,
    };
    let (suffix, x_label) = match axis {
        Axis::T => ("", spec.x_label),
        Axis::AdamSteps => ("_by_steps", "Adam steps spent"),
    };
    let mut written = Vec::new();
    type Get = fn(&TraceRow) -> f64;
    let panels: [(&str, &str, Get); 6] = [
        (
            "classification",
            "C on p_t, test splits, fresh noise (nats)",
            |r| r.test.map_or(f64::NAN, |t| t.classification),
        ),
        (
            "classification_probe",
            "C on the controller's probe of p_t (nats)",
            |r| r.probe.classification,
        ),
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
                points: rows.iter().map(|r| (x(r), get(r))).collect(),
                mark: if i == 0 { Mark::ThickLine } else { Mark::Line },
                color: i,
            })
            .collect();
        if let Some(level0) = match stem {
            "classification" => Some(spec.c0_test),
            "classification_probe" => Some(spec.c0),
            _ => None,
        } {
            let x1 = traces
                .iter()
                .flat_map(|(_, rows)| rows.iter().map(x))
                .fold(0.0, f64::max)
                .max(1e-9);
            for (sign, label) in [
                (1.0, format!("C0 +- {:.0}%", 100.0 * spec.band)),
                (-1.0, String::new()),
            ] {
                let level = level0 * (1.0 + sign * spec.band);
                series.push(Series {
                    label,
                    points: vec![(0.0, level), (x1, level)],
                    mark: Mark::Line,
                    color: GUIDE_COLOR,
                });
            }
        }
        let path = dir.join(format!("{stem}{suffix}"));
        write_chart(
            &path,
            &Chart {
                title: format!("{stem}: {}", spec.context),
                x_label: x_label.into(),
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
                .map(|r| (x(r), 100.0 * r.target_accuracy))
                .collect(),
            mark: Mark::ThickLine,
            color: i,
        });
        series.push(Series {
            label: format!("{name}: source"),
            points: rows
                .iter()
                .map(|r| (x(r), 100.0 * r.source_accuracy))
                .collect(),
            mark: Mark::Points,
            color: i,
        });
    }
    let path = dir.join(format!("accuracy{suffix}"));
    write_chart(
        &path,
        &Chart {
            title: format!("test accuracy: {}", spec.context),
            x_label: x_label.into(),
            y_label: "accuracy (%)".into(),
            series,
        },
    )?;
    written.push(path.with_extension("png"));
    Ok(written)
}
