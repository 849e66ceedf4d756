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
use fep_thermo::{ConstraintKind, Functionals, Multipliers, ProcessPath};
use serde::{Deserialize, Serialize};

use super::baselines::{fine_tune, paper_heuristic};
use super::config::{ProcessConfig, ProcessOptions, TRANSFER, setup};
use super::trace::{
    ChartSpec, EquilibriumTally, TraceRow, max_drift, trace_process, write_trace,
    write_trace_charts,
};
use crate::Outcome;
use crate::error::Result;
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
    /// Largest relative drift of C on the probe of p_t along the way (methods that have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_relative_drift: Option<f64>,
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

/// The baselines that ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Plain fine-tuning on the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_tune: Option<MethodResult>,
    /// The authors' heuristic controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_heuristic: Option<MethodResult>,
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
    /// By method: `process`, `fine_tune`, `paper_heuristic`.
    pub by_method: BTreeMap<String, f64>,
    /// The whole command.
    pub total: f64,
}

/// `summary.json` of a transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferSummary {
    /// C on the probe of p_0 at the start: the value held.
    pub c0: f64,
    /// Largest relative drift of C on the probe of p_t along the process.
    pub max_relative_drift: f64,
    /// Steps accepted without meeting the corrector's tolerance.
    pub unconverged_steps: usize,
    /// How often the process's equilibrations met their criterion (the baselines train
    /// fixed budgets: the process's number of Adam steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equilibrium: Option<EquilibriumTally>,
    /// Where the process ends.
    #[serde(rename = "final")]
    pub process: MethodResult,
    /// Where the baselines end.
    pub baselines: Baselines,
    /// (lambda, gamma) of the source checkpoint.
    pub start: Multipliers,
    /// (lambda, gamma) at the end of the process.
    pub end: Option<Multipliers>,
    /// The compute budget.
    pub budget: Budget,
    /// Seed of the process and the baselines.
    pub seed: u64,
    /// Backend and device.
    pub device: String,
    /// Folder the data came from.
    pub data_dir: PathBuf,
    /// The source checkpoint.
    pub source_checkpoint: PathBuf,
    /// Wall times.
    pub wall_seconds: TransferWall,
    /// The resolved config.
    pub config: ProcessConfig,
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
        optimizer_steps: None,
        probe: None,
    })
}

/// Runs the transfer of `options` (default config
/// `experiments/transfer-iso-classification.toml`) on backend B.
pub fn transfer<B: AutodiffBackend>(
    device: &B::Device,
    options: &ProcessOptions,
) -> Result<Outcome<TransferSummary>> {
    let setup = setup(options, &TRANSFER)?;
    let (cfg, out, domains) = (&setup.cfg, &setup.out, &setup.domains);
    let total = Instant::now();
    let Assembled { mut system, start } = setup.assemble::<B>(device, true)?;
    let path = ProcessPath::transfer(start.lambda, cfg.process.lambda_end)
        .with_data_exponent(cfg.process.data_exponent);
    let clock = Instant::now();
    let traced = trace_process(
        &mut system,
        start,
        path,
        ConstraintKind::IsoClassification,
        cfg.process.continuation(&cfg.ift),
        domains,
        "transfer",
    )?;
    let c0 = traced.c0;
    let mut walls = TransferWall::default();
    walls
        .by_method
        .insert("process".into(), clock.elapsed().as_secs_f64());
    let work = system.work();
    write_trace(out, "trace", &traced.rows)?;
    let mut process = final_metrics(&system, domains)?;
    process.probe = traced.rows.last().map(|r| ProbeEnd {
        target_accuracy: r.target_accuracy,
        source_accuracy: r.source_accuracy,
        functionals: r.probe,
    });
    let budget = work.optimizer_steps.max(1);
    let n = cfg.process.steps;

    let mut baselines = Baselines::default();
    let mut traces: Vec<(&str, Vec<TraceRow>)> =
        vec![("iso-classification (ours)", traced.rows.clone())];
    if cfg.baselines.fine_tune {
        let clock = Instant::now();
        let mut b = setup.assemble::<B>(device, true)?;
        let rows = fine_tune(&mut b.system, domains, start, budget, n, c0)?;
        baselines.fine_tune = Some(final_metrics(&b.system, domains)?);
        write_trace(out, "fine_tune", &rows)?;
        walls
            .by_method
            .insert("fine_tune".into(), clock.elapsed().as_secs_f64());
        traces.push(("fine-tune", rows));
    }
    if cfg.baselines.paper_heuristic {
        let clock = Instant::now();
        let mut b = setup.assemble::<B>(device, true)?;
        // Same Adam-step budget: each step trains once and adjusts at most max_adjustments times.
        let per_train = ((budget as usize) / (n * (1 + cfg.baselines.max_adjustments))).max(1);
        let rows = paper_heuristic(
            &mut b.system,
            domains,
            start,
            cfg.process.lambda_end,
            n,
            per_train,
            &cfg.baselines,
            c0,
        )?;
        let mut result = final_metrics(&b.system, domains)?;
        result.max_relative_drift = Some(max_drift(&rows));
        result.optimizer_steps = Some(b.system.work().optimizer_steps);
        baselines.paper_heuristic = Some(result);
        write_trace(out, "paper_heuristic", &rows)?;
        walls
            .by_method
            .insert("paper_heuristic".into(), clock.elapsed().as_secs_f64());
        traces.push(("paper heuristic", rows));
    }
    let trace_refs: Vec<(&str, &[TraceRow])> =
        traces.iter().map(|(n, r)| (*n, r.as_slice())).collect();
    let mut files = write_trace_charts(
        out,
        &trace_refs,
        &ChartSpec {
            x_label: "t (0 = source, 1 = target)",
            c0,
            band: 0.05,
            context: format!("{}, {}", device_name::<B>(device), domains.dir_name()),
        },
    )?;
    process.max_relative_drift = Some(traced.max_relative_drift);
    walls.total = total.elapsed().as_secs_f64();
    let summary = TransferSummary {
        c0,
        max_relative_drift: traced.max_relative_drift,
        unconverged_steps: traced.rows.iter().filter(|r| !r.converged).count(),
        equilibrium: Some(EquilibriumTally::of(
            cfg.process.equilibrium_rule(),
            &traced.rows,
        )),
        process,
        baselines,
        start,
        end: traced
            .rows
            .last()
            .map(|r| Multipliers::new(r.lambda, r.gamma)),
        budget: Budget {
            optimizer_steps: budget,
            probe_gradients: work.probe_gradients,
            note: "baselines get the same number of Adam steps on training data; the process also spends probe gradients on its tangents".into(),
        },
        seed: cfg.process.seed,
        device: device_name::<B>(device),
        data_dir: domains.dir.clone(),
        source_checkpoint: cfg.source_checkpoint.clone(),
        wall_seconds: walls,
        config: cfg.clone(),
    };
    let summary_path = out.join("summary.json");
    write_json(&summary_path, &summary)?;
    files.insert(0, summary_path);
    Ok(Outcome { summary, files })
}
