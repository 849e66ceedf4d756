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
use fep_thermo::{
    ConstraintKind, Continuation, Functionals, Multipliers, ProcessPath, StoppingRule,
};
use serde::{Deserialize, Serialize};

use super::baselines::{BaselineBudget, fine_tune, paper_heuristic, spend_the_rest};
use super::config::{ProcessConfig, ProcessOptions, TRANSFER, setup};
use super::trace::{
    ChartSpec, HeldConstraint, HeldValues, Observer, TraceRow, max_controller_drift, max_drift,
    trace_process, write_trace, write_trace_charts,
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
    /// Largest relative drift of C on p_t along the way, measured on the test splits with
    /// fresh noise (methods that have a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_relative_drift: Option<f64>,
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

/// The baselines and ablations that ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Plain fine-tuning on the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_tune: Option<MethodResult>,
    /// The authors' heuristic controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paper_heuristic: Option<MethodResult>,
    /// Ablation: our schedule and lambda path with gamma fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_only: Option<MethodResult>,
    /// Ablation: fine-tuning at the end point of our path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine_tune_at_end: Option<MethodResult>,
}

impl Baselines {
    /// The methods that ran, with their names in tables.
    pub fn named(&self) -> Vec<(&'static str, &MethodResult)> {
        [
            ("fine-tune", &self.fine_tune),
            ("paper heuristic", &self.paper_heuristic),
            ("schedule only (gamma fixed)", &self.schedule_only),
            ("fine-tune at our end point", &self.fine_tune_at_end),
        ]
        .into_iter()
        .filter_map(|(n, r)| r.as_ref().map(|r| (n, r)))
        .collect()
    }
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
    /// C0 (C on p_0) and how well it was held along p_t (the baselines spend the process's
    /// number of Adam steps).
    #[serde(flatten)]
    pub held: HeldConstraint,
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

/// A baseline that finished, as recorded for a resumed run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FinishedMethod {
    result: MethodResult,
    rows: Vec<TraceRow>,
    wall_seconds: f64,
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
        controller_max_relative_drift: None,
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
        &Observer {
            domains,
            test: cfg.process.test_measure(),
            saver: Some(&setup.saver),
            resume: Some((&setup.resume, "trace")),
        },
        "transfer",
    )?;
    let c0 = traced.c0;
    let held = HeldValues {
        probe: c0,
        test: traced.c0_test,
    };
    let how = cfg.process.test_measure();
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
    process.optimizer_steps = Some(work.optimizer_steps);
    let n = cfg.process.steps;
    let shared = BaselineBudget {
        optimizer_steps: budget,
        average_last: match cfg.process.equilibrium_rule() {
            StoppingRule::Stationary(t) => t.window,
            _ => 0,
        },
        c0: held,
        test: how,
    };
    let end = traced
        .rows
        .last()
        .map_or(start, |r| Multipliers::new(r.lambda, r.gamma));
    setup.saver.save(
        &system,
        "models/iso_classification.ckpt",
        "iso-classification (ours)",
        1.0,
        end,
    )?;

    let mut baselines = Baselines::default();
    let mut traces: Vec<(&str, Vec<TraceRow>)> =
        vec![("iso-classification (ours)", traced.rows.clone())];
    // Each method from the same source checkpoint; its result, trace and wall time (read
    // back when it finished before an interruption).
    let mut run = |name: &'static str,
                   stem: &str,
                   method: &mut dyn FnMut(&mut DeepSystem<B>) -> Result<Vec<TraceRow>>|
     -> Result<MethodResult> {
        if let Some(done) = setup.resume.load_done::<FinishedMethod>(stem)? {
            walls.by_method.insert(stem.into(), done.wall_seconds);
            traces.push((name, done.rows));
            return Ok(done.result);
        }
        let clock = Instant::now();
        let mut b = setup.assemble::<B>(device, true)?;
        let rows = method(&mut b.system)?;
        let m = rows
            .last()
            .map_or(start, |r| Multipliers::new(r.lambda, r.gamma));
        setup
            .saver
            .save(&b.system, &format!("models/{stem}.ckpt"), name, 1.0, m)?;
        let mut result = final_metrics(&b.system, domains)?;
        result.max_relative_drift = Some(max_drift(&rows));
        result.controller_max_relative_drift = Some(max_controller_drift(&rows));
        result.optimizer_steps = Some(b.system.work().optimizer_steps);
        write_trace(out, stem, &rows)?;
        let wall_seconds = clock.elapsed().as_secs_f64();
        setup.resume.save_done(
            stem,
            &FinishedMethod {
                result: result.clone(),
                rows: rows.clone(),
                wall_seconds,
            },
        )?;
        walls.by_method.insert(stem.into(), wall_seconds);
        traces.push((name, rows));
        Ok(result)
    };
    if cfg.baselines.fine_tune {
        baselines.fine_tune = Some(run("fine-tune", "fine_tune", &mut |sys| {
            fine_tune(sys, domains, start, n, shared, "fine-tune")
        })?);
    }
    if cfg.baselines.paper_heuristic {
        baselines.paper_heuristic = Some(run("paper heuristic", "paper_heuristic", &mut |sys| {
            paper_heuristic(
                sys,
                domains,
                start,
                cfg.process.lambda_end,
                n,
                &cfg.baselines,
                shared,
            )
        })?);
    }
    if cfg.baselines.schedule_only {
        baselines.schedule_only = Some(run(
            "schedule only (gamma fixed)",
            "schedule_only",
            &mut |sys| {
                let mut continuation = Continuation::euler(
                    cfg.process.steps,
                    cfg.process.equilibration_steps,
                    cfg.ift,
                );
                continuation.equilibrium = cfg.process.equilibrium_rule();
                let traced = trace_process(
                    sys,
                    start,
                    path,
                    ConstraintKind::FixedGamma,
                    continuation,
                    &Observer {
                        domains,
                        test: how,
                        saver: None,
                        resume: Some((&setup.resume, "schedule_only")),
                    },
                    "schedule only",
                )?;
                let mut rows = traced.rows;
                let spent = sys.work().optimizer_steps;
                if spent < budget {
                    let clock = Instant::now();
                    let m = rows
                        .last()
                        .map_or(start, |r| Multipliers::new(r.lambda, r.gamma));
                    rows.push(spend_the_rest(
                        sys,
                        domains,
                        m,
                        (budget - spent) as usize,
                        shared,
                        &clock,
                    )?);
                }
                Ok(rows)
            },
        )?);
    }
    if cfg.baselines.fine_tune_at_end {
        baselines.fine_tune_at_end = Some(run(
            "fine-tune at our end point",
            "fine_tune_at_end",
            &mut |sys| fine_tune(sys, domains, end, n, shared, "fine-tune at end"),
        )?);
    }
    let trace_refs: Vec<(&str, &[TraceRow])> =
        traces.iter().map(|(n, r)| (*n, r.as_slice())).collect();
    let mut files = write_trace_charts(
        out,
        &trace_refs,
        &ChartSpec {
            x_label: "t (0 = source, 1 = target)",
            c0,
            c0_test: traced.c0_test,
            band: 0.05,
            context: format!("{}, {}", device_name::<B>(device), domains.dir_name()),
        },
    )?;
    process.max_relative_drift = Some(traced.max_relative_drift);
    process.controller_max_relative_drift = Some(traced.controller_max_relative_drift);
    walls.total = total.elapsed().as_secs_f64();
    let summary = TransferSummary {
        held: HeldConstraint::of(
            &traced,
            cfg.process.equilibrium_rule(),
            cfg.process.test_samples,
        ),
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
            note: "every baseline and ablation spends exactly the process's number of Adam steps on training data (methods that finish early train the rest at their end point), each training phase ending in the same tail average as the process's equilibrations; the process also spends probe gradients on its tangents and corrector".into(),
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
    setup.resume.finish()?;
    files.insert(0, summary_path);
    Ok(Outcome { summary, files })
}
