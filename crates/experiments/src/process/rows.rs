//! The per-step record of a process or a baseline ([`TraceRow`]), measured on the
//! controller's probe and on the test splits, and what a whole trace says about the held
//! constraint and the equilibrations.

use std::path::Path;

use fep_models::{Measurement, StandardErrors};
use fep_thermo::{EquilibriumReport, Functionals, StoppingRule};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::io::{write_csv, write_jsonl};

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
    /// Examples measured.
    pub examples: usize,
}

impl From<&Measurement> for SplitMeasurement {
    fn from(m: &Measurement) -> Self {
        Self {
            functionals: m.functionals,
            neg_elbo: m.neg_elbo,
            accuracy: m.accuracy,
            standard_errors: m.standard_errors,
            examples: m.examples,
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
    /// Its standard error, paired with the start on the same source examples and draws
    /// (fresh data and noise; 0 at the start).
    pub relative_drift_se: f64,
}

/// C at the start of a trace on the test splits: the value every later row's drift is
/// measured against (C0 on p_0, K fresh draws per example), and each source test example's
/// own C there (the mean over its K draws), with which later rows are paired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestStart {
    /// C0 on the source's test split.
    pub c0: f64,
    /// C of each source test example at the start, in dataset order.
    pub source: Vec<f64>,
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
    pub controller_relative_drift: f64,
    /// The standard error of that drift as an estimate of the drift on fresh examples,
    /// relative to C0: paired with the start on the probe's own examples and fixed draws
    /// (as [`TestRow::relative_drift_se`]); paths that hold C.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_relative_drift_se: Option<f64>,
    /// C on the source domain's probe alone (the source part of `probe`'s C on p_t; paths
    /// that hold C): beside `test.source` it shows how far the probe, which the process
    /// trains on, sits from unseen source examples.
    #[serde(default)]
    pub controller_source_classification: Option<f64>,
    /// C on the target domain's probe alone, where t > 0 (transfers): beside `test.target`
    /// it measures the target's generalisation gap along the path.
    #[serde(default)]
    pub controller_target_classification: Option<f64>,
    /// Accuracy on the source test set.
    pub source_accuracy: f64,
    /// Accuracy on the target test set (the source's again without a target).
    pub target_accuracy: f64,
    /// The row measured on the test splits with fresh noise.
    pub test: TestRow,
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
    /// Its standard error as an estimate of C on fresh examples, relative to C0: how finely
    /// the probe resolves the held value (`None`: not measured, format-1 files).
    pub probe_relative_se: Option<f64>,
    /// C at the start on the test split(s) with fresh noise (K draws per example).
    pub c0_test: f64,
    /// Largest relative drift of C on p_t along the process, measured on the test splits
    /// with fresh noise: apart from the controller.
    pub max_relative_drift: f64,
    /// The standard error of that drift (paired with the start, [`TestRow`]).
    pub max_relative_drift_se: f64,
    /// Test examples of the source and the target split the drift is measured on.
    pub test_examples: (usize, usize),
    /// Largest relative drift of C on the controller's probe (what it steers on).
    pub controller_max_relative_drift: f64,
    /// The largest standard error of the controller's drift along the path (paired on the
    /// probe, [`TraceRow::controller_relative_drift_se`]), relative to C0: how finely the
    /// probe resolved every decision of the corrector as a statement about fresh examples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_max_relative_drift_se: Option<f64>,
    /// Noise draws per test example (0: the run was not measured on the test splits; see
    /// [`crate::format`]).
    pub test_samples: usize,
    /// Steps accepted without meeting the corrector's tolerance.
    pub unconverged_steps: usize,
    /// How often the process's equilibrations met their criterion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equilibrium: Option<EquilibriumTally>,
    /// C on unseen test examples over C on the controller's probe, per domain: where the
    /// probe is an unbiased estimate both sit near 1 within the test split's resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_over_probe: Option<TestOverProbe>,
}

/// C on a domain's test split (fresh noise) over C on its part of the controller's probe.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TestOverProbe {
    /// Source domain at the start: the source model on its unseen test images against the
    /// training images it was fitted to.
    pub source_start: f64,
    /// Target domain at the end of a transfer: the target learnt along the path, on unseen
    /// target images against the probe images it trained on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_end: Option<f64>,
}

impl TestOverProbe {
    /// The ratios of a trace whose rows carry the per-domain probe values (`None` where
    /// the start's source value is missing: paths that do not hold C, older traces).
    pub fn of(rows: &[TraceRow]) -> Option<Self> {
        let first = rows.first()?;
        let source_start =
            first.test.source.functionals.classification / first.controller_source_classification?;
        let last = rows.last()?;
        let target_end = last
            .test
            .target
            .zip(last.controller_target_classification)
            .map(|(test, probe)| test.functionals.classification / probe);
        Some(Self {
            source_start,
            target_end,
        })
    }

    /// The ratios in words.
    pub fn describe(&self) -> String {
        let target = self
            .target_end
            .map_or(String::new(), |r| format!("; target at the end {r:.3}"));
        format!(
            "C on the test split over C on the probe: source at the start {:.3}{target}",
            self.source_start
        )
    }
}

impl HeldConstraint {
    /// The record of a traced process whose equilibrations followed `rule`.
    pub fn of(traced: &Traced, rule: StoppingRule, test_samples: usize) -> Self {
        Self {
            c0: traced.c0,
            probe_relative_se: traced.probe_relative_se,
            c0_test: traced.c0_test,
            max_relative_drift: traced.max_relative_drift,
            max_relative_drift_se: max_drift_se(&traced.rows),
            test_examples: traced.rows.first().map_or((0, 0), |r| {
                let target = r.test.target.map_or(0, |t| t.examples);
                (r.test.source.examples, target)
            }),
            controller_max_relative_drift: traced.controller_max_relative_drift,
            controller_max_relative_drift_se: traced
                .rows
                .iter()
                .filter_map(|r| r.controller_relative_drift_se)
                .reduce(f64::max),
            test_samples,
            unconverged_steps: traced.rows.iter().filter(|r| !r.converged).count(),
            equilibrium: Some(EquilibriumTally::of(rule, &traced.rows)),
            test_over_probe: TestOverProbe::of(&traced.rows),
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
    /// The start on the test splits that every row's drift is paired with.
    pub test_start: Option<TestStart>,
    /// The standard error of C0 on the controller's probe, relative to C0 (paths that
    /// hold C).
    pub probe_relative_se: Option<f64>,
    /// Largest `|C - C0| / C0` on the test splits with fresh noise along the path.
    pub max_relative_drift: f64,
    /// Largest `|C - C0| / C0` on the controller's probe along the path.
    pub controller_max_relative_drift: f64,
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

/// Largest `|relative drift|` of C on the test splits (fresh noise) along a trace.
pub fn max_drift(rows: &[TraceRow]) -> f64 {
    rows.iter()
        .map(|r| r.test.relative_drift.abs())
        .fold(0.0, f64::max)
}

/// The standard error of the largest `|relative drift|` of a trace (0 for an empty one).
pub fn max_drift_se(rows: &[TraceRow]) -> f64 {
    rows.iter()
        .max_by(|a, b| {
            a.test
                .relative_drift
                .abs()
                .total_cmp(&b.test.relative_drift.abs())
        })
        .map_or(0.0, |r| r.test.relative_drift_se)
}

/// The rows whose drift lies outside `+-band` by more than `z` of its standard errors:
/// `|drift| > band + z se` (a point inside the band's resolution does not count).
pub fn outside_band(rows: &[TraceRow], band: f64, z: f64) -> Vec<&TraceRow> {
    rows.iter()
        .filter(|r| r.test.relative_drift.abs() > band + z * r.test.relative_drift_se)
        .collect()
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
