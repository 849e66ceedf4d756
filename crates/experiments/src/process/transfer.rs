//! `transfer-iso-classification`: the source model carried to the target along the data
//! path `p_t = (1 - t) p_0 + t p_1`, `t = s^p`, with C on p_t held at C0 by the
//! continuation, beside plain fine-tuning and the authors' heuristic with the same Adam-step
//! budget, each from the same source checkpoint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::Domains;
use fep_models::assemble::Assembled;
use fep_models::system::DeepSystem;
use fep_thermo::{ConstraintKind, Functionals, Multipliers, ProcessPath, StoppingRule};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::baselines::{BaselineBudget, MethodContext, MethodRun, runner};
use super::charts::{ChartSpec, write_trace_charts};
use super::config::ProcessOptions;
use super::measure::HeldValues;
use super::method::Method;
use super::observer::{PathRun, trace_path};
use super::rows::{
    HeldConstraint, TraceRow, Traced, max_controller_drift, max_drift, max_drift_se, write_trace,
};
use super::setup::{ProcessRun, Setup, TRANSFER, setup};
use crate::Outcome;
use crate::error::{Result, invalid};
use crate::format::{Result2, SUMMARY_FORMAT, Versioned, process_summary_1_to_2};
use crate::io::write_json;
use crate::provenance::device_name;

/// Where a method ends: accuracies on both test sets and R, D, C on the target test set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodResult {
    /// Accuracy on the target test set.
    pub target_accuracy: f64,
    /// Accuracy on the source test set (what the method kept).
    pub source_accuracy: f64,
    /// R, D, C on the target test set (evaluation noise).
    #[serde(flatten)]
    pub target: Functionals,
    /// C on the source test set.
    pub source_classification: f64,
    /// Largest relative drift of C on p_t along the way, measured on the test splits with
    /// fresh noise (methods that have a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_relative_drift: Option<f64>,
    /// Its standard error, paired with the start on the same examples and draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_relative_drift_se: Option<f64>,
    /// The same on the controller's probe (what the process steers on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_max_relative_drift: Option<f64>,
    /// Adam steps the method spent (baselines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optimizer_steps: Option<u64>,
    /// The last row of the method's trace, measured on the probe (the process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeEnd>,
}

/// The end of a trace as measured on the probe of p_1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeEnd {
    /// Accuracy on the target test set.
    pub target_accuracy: f64,
    /// Accuracy on the source test set.
    pub source_accuracy: f64,
    /// R, D, C on the probe.
    #[serde(flatten)]
    pub functionals: Functionals,
}

/// The compute every method was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Adam steps of the process, given to each baseline.
    pub optimizer_steps: u64,
    /// Probe gradients the process spent on its tangents and Hessian-vector products.
    pub probe_gradients: u64,
    /// How the budget is shared.
    pub note: String,
}

/// Wall times of the methods, seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransferWall {
    /// By method, ours included.
    pub by_method: BTreeMap<Method, f64>,
    /// The whole command.
    pub total: f64,
}

/// `summary.json` of a transfer (format [`crate::format::SUMMARY_FORMAT`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferSummary {
    /// The version of this file's layout ([`crate::format`] upgrades older ones).
    pub format: u32,
    /// C0 (C on p_0) and how well it was held along p_t (the baselines spend the process's
    /// number of Adam steps).
    #[serde(flatten)]
    pub held: HeldConstraint,
    /// Where the process ends.
    #[serde(rename = "final")]
    pub process: MethodResult,
    /// Where the baselines end, by method (those that ran).
    pub baselines: BTreeMap<Method, MethodResult>,
    /// (lambda, gamma) of the source checkpoint.
    pub start: Multipliers,
    /// (lambda, gamma) at the end of the process.
    pub end: Option<Multipliers>,
    /// The compute budget.
    pub budget: Budget,
    /// Seed, device, data, source and config of the run.
    #[serde(flatten)]
    pub run: ProcessRun,
    /// Wall times.
    pub wall_seconds: TransferWall,
}

impl Versioned for TransferSummary {
    fn upgrade_step(map: &mut Map<String, Value>, from: u32) -> Result2 {
        debug_assert_eq!(from, 1, "format 2 is the current one");
        process_summary_1_to_2(map)?;
        if let Some(Value::Object(by_method)) = map
            .get_mut("wall_seconds")
            .and_then(|w| w.get_mut("by_method"))
            && let Some(ours) = by_method.remove("process")
        {
            by_method.insert(Method::IsoClassification.stem().into(), ours);
        }
        Ok(())
    }
}

impl TransferSummary {
    /// Every method that ran with its result, ours first, then the baselines in table
    /// order.
    pub fn methods(&self) -> Vec<(Method, &MethodResult)> {
        std::iter::once((Method::IsoClassification, &self.process))
            .chain(self.baselines.iter().map(|(m, r)| (*m, r)))
            .collect()
    }
}

/// A method that finished: its result, trace and wall time (also what a resumed run reads
/// back instead of running it again).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishedMethod {
    /// Where it ended.
    pub result: MethodResult,
    /// Its trace, the start included.
    pub rows: Vec<TraceRow>,
    /// Seconds it took.
    pub wall_seconds: f64,
}

/// Accuracies on both test sets and R, D, C on the target test set of the current model.
fn final_metrics<B: AutodiffBackend>(
    system: &DeepSystem<B>,
    domains: &Domains,
) -> Result<MethodResult> {
    let t = system.evaluate(&domains.target_or_source().test)?;
    let s = system.evaluate(&domains.source.test)?;
    Ok(MethodResult {
        target_accuracy: t.accuracy,
        source_accuracy: s.accuracy,
        target: t.functionals,
        source_classification: s.functionals.classification,
        max_relative_drift: None,
        max_relative_drift_se: None,
        controller_max_relative_drift: None,
        optimizer_steps: None,
        probe: None,
    })
}

/// The process run as the first method: the traced path with C held, its model and trace
/// saved, and the context every baseline starts from.
struct Ours {
    traced: Traced,
    finished: FinishedMethod,
    start: Multipliers,
    end: Multipliers,
    path: ProcessPath,
    probe_gradients: u64,
}

/// Runs our path from the source checkpoint.
fn run_ours<B: AutodiffBackend>(device: &B::Device, setup: &Setup) -> Result<Ours> {
    let clock = Instant::now();
    let Assembled { mut system, start } = setup.assemble::<B>(device, true)?;
    let process = &setup.cfg.process;
    let path = ProcessPath::transfer(start.lambda, process.lambda_end)
        .with_data_exponent(process.data_exponent);
    let run = PathRun {
        label: "transfer",
        resume_key: Method::IsoClassification.trace_stem(),
        path,
        constraint: ConstraintKind::IsoClassification,
        saves_steps: true,
    };
    let traced = trace_path(setup, &mut system, start, run)?;
    let end = end_of(&traced.rows, start);
    write_trace(
        &setup.out,
        Method::IsoClassification.trace_stem(),
        &traced.rows,
    )?;
    let mut result = final_metrics(&system, &setup.domains)?;
    result.probe = traced.rows.last().map(|r| ProbeEnd {
        target_accuracy: r.target_accuracy,
        source_accuracy: r.source_accuracy,
        functionals: r.probe,
    });
    let work = system.work();
    result.optimizer_steps = Some(work.optimizer_steps);
    result.max_relative_drift = Some(traced.max_relative_drift);
    result.max_relative_drift_se = Some(max_drift_se(&traced.rows));
    result.controller_max_relative_drift = Some(traced.controller_max_relative_drift);
    let model = format!("models/{}.ckpt", Method::IsoClassification.stem());
    setup
        .saver
        .save(&system, &model, Method::IsoClassification.name(), 1.0, end)?;
    let finished = FinishedMethod {
        result,
        rows: traced.rows.clone(),
        wall_seconds: clock.elapsed().as_secs_f64(),
    };
    Ok(Ours {
        traced,
        finished,
        start,
        end,
        path,
        probe_gradients: work.probe_gradients,
    })
}

/// (lambda, gamma) of a trace's last row (`start` for an empty trace).
fn end_of(rows: &[TraceRow], start: Multipliers) -> Multipliers {
    rows.last()
        .map_or(start, |r| Multipliers::new(r.lambda, r.gamma))
}

/// Runs one method from a fresh system at the source checkpoint (or reads it back when it
/// finished before an interruption): its trace and model saved, its result measured, and
/// its Adam steps checked against the budget.
pub fn run_method<B: AutodiffBackend>(
    device: &B::Device,
    context: &MethodContext<'_>,
    method: Method,
    run: MethodRun<B>,
) -> Result<FinishedMethod> {
    let setup = context.setup;
    if let Some(done) = setup.resume.load_done::<FinishedMethod>(method.stem())? {
        return Ok(done);
    }
    let clock = Instant::now();
    let mut system = setup.assemble::<B>(device, true)?.system;
    let rows = run(&mut system, context)?;
    let spent = system.work().optimizer_steps;
    if spent < context.budget.optimizer_steps {
        return Err(invalid(format!(
            "{method} spent {spent} Adam steps of the budget of {}: every method must spend all of it",
            context.budget.optimizer_steps
        )));
    }
    let model = format!("models/{}.ckpt", method.stem());
    let end = end_of(&rows, context.start);
    setup.saver.save(&system, &model, method.name(), 1.0, end)?;
    let mut result = final_metrics(&system, &setup.domains)?;
    result.max_relative_drift = Some(max_drift(&rows));
    result.max_relative_drift_se = Some(max_drift_se(&rows));
    result.controller_max_relative_drift = Some(max_controller_drift(&rows));
    result.optimizer_steps = Some(spent);
    write_trace(&setup.out, method.trace_stem(), &rows)?;
    let done = FinishedMethod {
        result,
        rows,
        wall_seconds: clock.elapsed().as_secs_f64(),
    };
    setup.resume.save_done(method.stem(), &done)?;
    Ok(done)
}

/// Runs the transfer of `options` (default config
/// `experiments/transfer-iso-classification.toml`) on backend B: our path from the
/// source checkpoint, then every configured baseline from the same checkpoint with the
/// Adam steps ours spent, each measured on the test splits apart from the controller.
pub fn transfer<B: AutodiffBackend>(
    device: &B::Device,
    options: &ProcessOptions,
) -> Result<Outcome<TransferSummary>> {
    let setup = setup(options, &TRANSFER)?;
    let total = Instant::now();
    let ours = run_ours::<B>(device, &setup)?;
    let context = MethodContext {
        setup: &setup,
        start: ours.start,
        end: ours.end,
        path: ours.path,
        budget: budget_of(&setup, &ours)?,
    };
    let mut finished = vec![(Method::IsoClassification, ours.finished.clone())];
    for &method in &setup.cfg.baselines.methods {
        let run =
            runner::<B>(method).ok_or_else(|| invalid(format!("{method} is not a baseline")))?;
        finished.push((method, run_method(device, &context, method, run)?));
    }
    let files = transfer_charts::<B>(device, &setup, &ours.traced, &finished)?;
    let summary = summarise::<B>(device, &setup, &ours, finished, total)?;
    let summary_path = setup.out.join("summary.json");
    write_json(&summary_path, &summary)?;
    setup.resume.finish()?;
    Ok(Outcome {
        summary,
        files: std::iter::once(summary_path).chain(files).collect(),
    })
}

/// What every baseline shares with our path: its Adam steps, its tail average, C0.
fn budget_of(setup: &Setup, ours: &Ours) -> Result<BaselineBudget> {
    Ok(BaselineBudget {
        optimizer_steps: ours.finished.result.optimizer_steps.unwrap_or(0).max(1),
        average_last: match setup.cfg.process.equilibrium_rule() {
            StoppingRule::Stationary(t) => t.window,
            _ => 0,
        },
        c0: HeldValues {
            probe: ours.traced.c0,
            test: ours
                .traced
                .test_start
                .clone()
                .ok_or_else(|| invalid("the process recorded no point on the test splits"))?,
        },
        test: setup.cfg.process.test_measure(),
    })
}

/// The charts of every method's trace against t and against Adam steps.
fn transfer_charts<B: AutodiffBackend>(
    device: &B::Device,
    setup: &Setup,
    traced: &Traced,
    finished: &[(Method, FinishedMethod)],
) -> Result<Vec<PathBuf>> {
    let traces: Vec<(&str, &[TraceRow])> = finished
        .iter()
        .map(|(m, f)| (m.name(), f.rows.as_slice()))
        .collect();
    let x_label = "t (0 = source, 1 = target)";
    let context = format!("{}, {}", device_name::<B>(device), setup.domains.dir_name());
    write_trace_charts(
        &setup.out,
        &traces,
        &ChartSpec {
            x_label,
            c0: traced.c0,
            c0_test: traced.c0_test,
            band: 0.05,
            context,
        },
    )
}

/// The summary of a finished transfer.
fn summarise<B: AutodiffBackend>(
    device: &B::Device,
    setup: &Setup,
    ours: &Ours,
    finished: Vec<(Method, FinishedMethod)>,
    total: Instant,
) -> Result<TransferSummary> {
    let cfg = &setup.cfg;
    let mut wall = TransferWall::default();
    let mut baselines = BTreeMap::new();
    for (method, done) in finished {
        wall.by_method.insert(method, done.wall_seconds);
        if method != Method::IsoClassification {
            baselines.insert(method, done.result);
        }
    }
    wall.total = total.elapsed().as_secs_f64();
    let budget = budget_of(setup, ours)?;
    Ok(TransferSummary {
        format: SUMMARY_FORMAT,
        held: HeldConstraint::of(
            &ours.traced,
            cfg.process.equilibrium_rule(),
            cfg.process.test_samples,
        ),
        process: ours.finished.result.clone(),
        baselines,
        start: ours.start,
        end: ours.traced.rows.last().map(|_| ours.end),
        budget: Budget {
            optimizer_steps: budget.optimizer_steps,
            probe_gradients: ours.probe_gradients,
            note: BUDGET_NOTE.into(),
        },
        run: setup.run_record(device_name::<B>(device)),
        wall_seconds: wall,
    })
}

/// How the budget is shared, in the summary's words.
const BUDGET_NOTE: &str = "every baseline and ablation spends exactly the process's number of Adam steps on training data (methods that finish early train the rest at their end point), each training phase ending in the same tail average as the process's equilibrations; the process also spends probe gradients on its tangents and corrector";
