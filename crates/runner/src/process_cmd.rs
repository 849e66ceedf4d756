//! `fep iso-classification` and `fep transfer-iso-classification`: quasi-static processes
//! on a trained deep model, driven by the integrators of `fep-thermo`, beside their
//! baselines (the naive fixed-gamma path; plain fine-tuning and the paper's heuristic).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use fep_data::ImageDataset;
use fep_models::checkpoint;
use fep_models::system::{DeepSystem, EquilibrationSettings, Snapshot};
use fep_models::train::{Metrics, Trainer, evaluate};
use fep_thermo::{
    Constraint, EulerConfig, IftConfig, Integrator, Multipliers, PredictorCorrectorConfig,
    ProcessPath, StepRecord, ThermodynamicSystem, run_process,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::backend::device_name;
use crate::deep::{DataConfig, Domain, Domains, load_domains, read_toml};
use crate::output::{prepare_out_dir, write_csv, write_json, write_jsonl};
use crate::plot::{Chart, GUIDE_COLOR, Mark, Series, write_chart};
use crate::progress::bar;

/// Which integrator drives the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegratorKind {
    /// Tangent predictor, Newton corrector on gamma, adaptive step (ours).
    PredictorCorrector,
    /// Tangent step then K equilibration steps (the paper's scheme).
    Euler,
}

/// The split the probe of each domain is drawn from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProbeSplit {
    /// The held-out validation split: C generalises, but the equilibrium functionals are
    /// only estimated.
    #[default]
    Validation,
    /// The first examples of the training split: the functionals the objective (and so the
    /// equilibrium surface and its sensitivities) is defined on.
    Train,
}

impl ProbeSplit {
    /// Words for tables and logs.
    pub fn describe(self) -> &'static str {
        match self {
            ProbeSplit::Validation => "held-out",
            ProbeSplit::Train => "training",
        }
    }

    /// The split recorded in a process's `summary.json` (the default where absent).
    pub fn of_summary(summary: &serde_json::Value) -> Self {
        serde_json::from_value(summary["config"]["process"]["probe_split"].clone())
            .unwrap_or_default()
    }
}

/// The `[process]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSettings {
    /// Integrator.
    #[serde(default = "default_integrator")]
    pub integrator: IntegratorKind,
    /// lambda at the end (it starts at the checkpoint's lambda and moves linearly in s).
    pub lambda_end: f64,
    /// Steps of the path (the paper's code uses 25); the predictor-corrector's largest step is 1/steps.
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Adam steps of each (re-)equilibration.
    pub equilibration_steps: usize,
    /// Adam learning rate during the process.
    pub learning_rate: f64,
    /// Examples per Adam step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Accept a step when |C - C0| <= tolerance C0.
    #[serde(default = "default_tolerance")]
    pub relative_tolerance: f64,
    /// Newton iterations on gamma per step before the step is halved.
    #[serde(default = "default_corrector")]
    pub max_corrector_iterations: usize,
    /// Examples per domain on which C is measured and held (the probe).
    #[serde(default = "default_probe")]
    pub probe_size: usize,
    /// Where the probe comes from: the held-out validation split (default) or the
    /// training split (the data the equilibrium functionals are defined on).
    #[serde(default)]
    pub probe_split: ProbeSplit,
    /// Examples per domain of the probe used for gradients and Hessian-vector products.
    #[serde(default)]
    pub gradient_probe_size: Option<usize>,
    /// Trust region: gamma moves by at most this fraction of max(gamma, 1) per update.
    #[serde(default = "default_gamma_trust")]
    pub max_relative_gamma_step: f64,
    /// Trust region: parameters move by at most this fraction of |theta| per update.
    #[serde(default = "default_theta_trust")]
    pub max_relative_theta_step: f64,
    /// Transfer: `t = s^data_exponent` (1: uniform in t; 3: the first steps at tiny t,
    /// where the unseen target is learnt before its weight in p_t grows).
    #[serde(default = "default_exponent")]
    pub data_exponent: f64,
    /// gamma is never raised above this.
    #[serde(default = "default_max_gamma")]
    pub max_gamma: f64,
    /// Halvings of a step whose corrector fails before giving up on it.
    #[serde(default = "default_halvings")]
    pub max_halvings: u32,
    /// After the last halving, accept the step flagged `converged = false` (true), or stop
    /// with an error (false).
    #[serde(default = "yes")]
    pub accept_unconverged: bool,
    /// Seed of the process's noise and data order.
    pub seed: u64,
}

fn default_exponent() -> f64 {
    1.0
}
fn default_max_gamma() -> f64 {
    50.0
}
fn default_halvings() -> u32 {
    1
}

fn default_gamma_trust() -> f64 {
    0.5
}
fn default_theta_trust() -> f64 {
    0.02
}

fn default_integrator() -> IntegratorKind {
    IntegratorKind::PredictorCorrector
}
fn default_steps() -> usize {
    25
}
fn default_batch() -> usize {
    64
}
fn default_tolerance() -> f64 {
    0.01
}
fn default_corrector() -> usize {
    4
}
fn default_probe() -> usize {
    500
}

impl ProcessSettings {
    fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.equilibration_steps == 0 || self.batch_size == 0 {
            bail!("[process] steps, equilibration_steps and batch_size must be positive");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            bail!("[process] learning_rate must be positive");
        }
        if !(self.lambda_end > 0.0 && self.lambda_end.is_finite()) {
            bail!("[process] lambda_end must be positive");
        }
        if !(self.relative_tolerance > 0.0 && self.relative_tolerance < 1.0) {
            bail!("[process] relative_tolerance must lie in (0, 1)");
        }
        if self.probe_size == 0 {
            bail!("[process] probe_size must be positive");
        }
        if !(self.data_exponent > 0.0 && self.data_exponent.is_finite()) {
            bail!("[process] data_exponent must be positive");
        }
        Ok(())
    }

    fn integrator(&self) -> Integrator {
        let h = 1.0 / self.steps as f64;
        match self.integrator {
            IntegratorKind::Euler => Integrator::Euler(EulerConfig {
                steps: self.steps,
                equilibration_steps: self.equilibration_steps,
            }),
            IntegratorKind::PredictorCorrector => {
                Integrator::PredictorCorrector(PredictorCorrectorConfig {
                    initial_step: h,
                    min_step: h / f64::powi(2.0, self.max_halvings as i32),
                    max_step: h,
                    relative_tolerance: self.relative_tolerance,
                    max_corrector_iterations: self.max_corrector_iterations,
                    equilibration_steps: self.equilibration_steps,
                    growth: 2.0,
                    shrink: 0.5,
                    max_relative_gamma_step: self.max_relative_gamma_step,
                    max_relative_theta_step: self.max_relative_theta_step,
                    accept_unconverged: self.accept_unconverged,
                    max_gamma: self.max_gamma,
                    min_gamma: 0.0,
                })
            }
        }
    }
}

/// The `[baselines]` section of the transfer experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSettings {
    /// Plain fine-tuning on the target at the start's (lambda, gamma).
    #[serde(default = "yes")]
    pub fine_tune: bool,
    /// The authors' feedback heuristic.
    #[serde(default = "yes")]
    pub paper_heuristic: bool,
    /// gamma increment of the heuristic per adjustment.
    #[serde(default = "default_gamma_increment")]
    pub gamma_increment: f64,
    /// Adjustments of the heuristic per step at most (its `while` loop, bounded).
    #[serde(default = "default_adjustments")]
    pub max_adjustments: usize,
}

fn yes() -> bool {
    true
}
fn default_gamma_increment() -> f64 {
    0.1
}
fn default_adjustments() -> usize {
    2
}

impl Default for BaselineSettings {
    fn default() -> Self {
        Self {
            fine_tune: true,
            paper_heuristic: true,
            gamma_increment: default_gamma_increment(),
            max_adjustments: default_adjustments(),
        }
    }
}

/// The config file of both process commands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// The trained source model (`fep train-source` writes it). `--source` overrides.
    pub source_checkpoint: PathBuf,
    /// Data (the transfer needs `target_classes`).
    pub data: DataConfig,
    /// The process.
    pub process: ProcessSettings,
    /// Sensitivity estimator (truncated CG on finite-difference Hessian-vector products).
    #[serde(default = "deep_ift")]
    pub ift: IftConfig,
    /// Baselines of the transfer experiment.
    #[serde(default)]
    pub baselines: BaselineSettings,
}

fn deep_ift() -> IftConfig {
    IftConfig {
        relative_damping: 1e-2,
        cg_tolerance: 1e-3,
        cg_max_iterations: 5,
        max_accepted_residual: 1.0,
        ..IftConfig::default()
    }
}

/// Arguments of both process commands.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// TOML with source_checkpoint, [data], [process], [ift], [baselines].
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Trained source model (overrides source_checkpoint).
    #[arg(long)]
    pub source: Option<PathBuf>,
    /// Folder with the dataset files (default: the bundled subset).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Result directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite an existing result directory.
    #[arg(long)]
    pub force: bool,
    /// Override the integrator.
    #[arg(long, value_enum)]
    pub integrator: Option<IntegratorArg>,
    /// Override the number of steps of the path.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Skip the baselines.
    #[arg(long)]
    pub no_baselines: bool,
}

/// Integrator on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IntegratorArg {
    /// Predictor-corrector (default).
    PredictorCorrector,
    /// The paper's Euler scheme.
    Euler,
}

fn load_process_config(args: &ProcessArgs, default_config: &str) -> Result<ProcessConfig> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_config));
    let mut cfg: ProcessConfig = read_toml(&path)?;
    if let Some(s) = &args.source {
        cfg.source_checkpoint = s.clone();
    }
    if let Some(i) = args.integrator {
        cfg.process.integrator = match i {
            IntegratorArg::Euler => IntegratorKind::Euler,
            IntegratorArg::PredictorCorrector => IntegratorKind::PredictorCorrector,
        };
    }
    if let Some(n) = args.steps {
        cfg.process.steps = n;
    }
    if args.no_baselines {
        cfg.baselines.fine_tune = false;
        cfg.baselines.paper_heuristic = false;
    }
    cfg.process
        .validate()
        .with_context(|| format!("in {}", path.display()))?;
    Ok(cfg)
}

/// A system at the source model's equilibrium, ready for a process.
pub struct Prepared<B: AutodiffBackend> {
    /// The system.
    pub system: DeepSystem<B>,
    /// (lambda, gamma) the source model was trained at.
    pub start: Multipliers,
}

/// The first `size` examples of the domain's split that `split` names.
fn probe(domain: &Domain, split: ProbeSplit, size: usize) -> ImageDataset {
    match split {
        ProbeSplit::Validation => domain.validation.take(size),
        ProbeSplit::Train => domain.train.take(size),
    }
}

/// Loads the source checkpoint into a [`DeepSystem`] on the configured data.
pub fn prepare<B: AutodiffBackend>(
    device: &B::Device,
    cfg: &ProcessConfig,
    domains: &Domains,
) -> Result<Prepared<B>> {
    let path = &cfg.source_checkpoint;
    if !path.is_file() {
        bail!(
            "source checkpoint {} not found: train one first with `fep train-source` (or `just train-source`), or pass --source",
            path.display()
        );
    }
    let (model, header) = checkpoint::load_model::<B>(path, device)?;
    let arch_shape = header.model.architecture.image_shape();
    if domains.source.train.shape() != arch_shape {
        bail!(
            "the checkpoint {} holds a {} model for images {:?}, but the data are {:?}",
            path.display(),
            header.model.architecture.name(),
            arch_shape,
            domains.source.train.shape()
        );
    }
    let p = &cfg.process;
    let mut train = header.train.clone();
    train.batch_size = p.batch_size;
    train.learning_rate = p.learning_rate;
    train.seed = p.seed;
    let start = Multipliers::new(train.lambda, train.gamma);
    let trainer = Trainer::new(model, train, device.clone())?;
    let target = domains.target.as_ref().unwrap_or(&domains.source);
    let settings = EquilibrationSettings {
        learning_rate: p.learning_rate,
        binarization: cfg.data.binarization(p.seed),
    };
    let mut system = DeepSystem::new(
        trainer,
        domains.source.train.clone(),
        target.train.clone(),
        &probe(&domains.source, p.probe_split, p.probe_size),
        &probe(target, p.probe_split, p.probe_size),
        settings,
    )?;
    system.set_gradient_probe_size(p.gradient_probe_size);
    Ok(Prepared { system, start })
}

/// One row of a process or baseline trace.
#[derive(Debug, Clone, Serialize)]
pub struct TraceRow {
    /// Position of the data path (0 source, 1 target); for iso-classification, s.
    pub t: f64,
    /// lambda.
    pub lambda: f64,
    /// gamma.
    pub gamma: f64,
    /// R on the probe of p_t.
    pub rate: f64,
    /// D on the probe of p_t.
    pub distortion: f64,
    /// C on the probe of p_t.
    pub classification: f64,
    /// (C - C0) / C0.
    pub relative_drift: f64,
    /// Accuracy on the source test set.
    pub source_accuracy: f64,
    /// Accuracy on the target test set (the source's again for iso-classification).
    pub target_accuracy: f64,
    /// Corrector iterations of the step.
    pub corrector_iterations: usize,
    /// Whether the corrector met its tolerance at this step.
    pub converged: bool,
    /// Adam steps so far.
    pub optimizer_steps: u64,
    /// Seconds since the process started.
    pub wall_seconds: f64,
}

/// Test accuracy of a snapshot on a dataset.
fn accuracy<B: AutodiffBackend>(
    snapshot: &Snapshot<B>,
    ds: &ImageDataset,
    cfg: &ProcessConfig,
    num_z: usize,
    device: &B::Device,
) -> Result<Metrics> {
    let model = snapshot.borrow();
    Ok(evaluate(
        &*model,
        ds,
        cfg.data.binarization(cfg.process.seed),
        num_z,
        500,
        cfg.process.seed,
        device,
    )?)
}

/// Runs a `fep-thermo` process on the prepared system, evaluating test accuracy at every
/// accepted step.
#[allow(clippy::too_many_arguments)]
fn run_traced<B: AutodiffBackend>(
    prepared: &mut Prepared<B>,
    path: &ProcessPath,
    constraint: Constraint,
    cfg: &ProcessConfig,
    domains: &Domains,
    device: &B::Device,
    label: &str,
) -> Result<(Vec<TraceRow>, f64, f64)> {
    let snapshot = prepared.system.snapshot();
    let num_z = prepared.system.trainer().config.num_z;
    let rows: Rc<RefCell<Vec<TraceRow>>> = Rc::new(RefCell::new(Vec::new()));
    let failure: Rc<RefCell<Option<anyhow::Error>>> = Rc::new(RefCell::new(None));
    let target_test = &domains.target.as_ref().unwrap_or(&domains.source).test;
    let progress = bar(1000, label);
    let clock = Instant::now();
    let integrator = cfg.process.integrator();
    let result = {
        let rows = rows.clone();
        let failure = failure.clone();
        let snapshot = snapshot.clone();
        let progress = progress.clone();
        let on_step = move |r: &StepRecord| {
            let eval = || -> Result<(f64, f64)> {
                let s = accuracy::<B>(&snapshot, &domains.source.test, cfg, num_z, device)?;
                let t = accuracy::<B>(&snapshot, target_test, cfg, num_z, device)?;
                Ok((s.accuracy, t.accuracy))
            };
            match eval() {
                Ok((sa, ta)) => {
                    progress.set_position((r.s * 1000.0).round() as u64);
                    progress.suspend(|| {
                        eprintln!(
                            "{label}: s {:.3}  t {:.3}  lambda {:.3}  gamma {:.3}  R {:.3}  D {:.3}  C {:.4} (drift {:+.2}%)  acc source {:.2}% target {:.2}%",
                            r.s, r.t, r.lambda, r.gamma, r.rate, r.distortion, r.classification,
                            100.0 * r.relative_drift, 100.0 * sa, 100.0 * ta
                        )
                    });
                    rows.borrow_mut().push(TraceRow {
                        t: if path.data_end != path.data_start {
                            r.t
                        } else {
                            r.s
                        },
                        lambda: r.lambda,
                        gamma: r.gamma,
                        rate: r.rate,
                        distortion: r.distortion,
                        classification: r.classification,
                        relative_drift: r.relative_drift,
                        source_accuracy: sa,
                        target_accuracy: ta,
                        corrector_iterations: r.corrector_iterations,
                        converged: r.converged,
                        optimizer_steps: 0, // filled in after the run
                        wall_seconds: r.wall_seconds,
                    });
                }
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                }
            }
        };
        run_process(
            &mut prepared.system,
            prepared.start,
            path,
            constraint,
            &integrator,
            &cfg.ift,
            on_step,
        )
    };
    progress.finish_and_clear();
    if let Some(e) = failure.borrow_mut().take() {
        return Err(e.context("evaluating a process step"));
    }
    let result = result.with_context(|| format!("{label} process"))?;
    let mut rows = rows.take();
    // Optimiser steps are known per run, not per record: spread them by wall time for the trace.
    let total_steps = prepared.system.work().optimizer_steps;
    let wall = clock.elapsed().as_secs_f64();
    for r in rows.iter_mut() {
        r.optimizer_steps = ((r.wall_seconds / wall.max(1e-9)) * total_steps as f64).round() as u64;
    }
    if let Some(last) = rows.last_mut() {
        last.optimizer_steps = total_steps;
    }
    Ok((rows, result.target, result.max_relative_drift))
}

fn write_trace(dir: &Path, stem: &str, rows: &[TraceRow]) -> Result<()> {
    write_jsonl(&dir.join(format!("{stem}.jsonl")), rows)?;
    write_csv(
        &dir.join(format!("{stem}.csv")),
        &[
            "t",
            "lambda",
            "gamma",
            "rate",
            "distortion",
            "classification",
            "relative_drift",
            "source_accuracy",
            "target_accuracy",
            "corrector_iterations",
            "converged",
            "optimizer_steps",
            "wall_seconds",
        ],
        &rows
            .iter()
            .map(|r| {
                vec![
                    r.t,
                    r.lambda,
                    r.gamma,
                    r.rate,
                    r.distortion,
                    r.classification,
                    r.relative_drift,
                    r.source_accuracy,
                    r.target_accuracy,
                    r.corrector_iterations as f64,
                    f64::from(u8::from(r.converged)),
                    r.optimizer_steps as f64,
                    r.wall_seconds,
                ]
            })
            .collect::<Vec<_>>(),
    )
}

/// Charts of C, R, D, lambda, gamma and accuracies against t for several traces.
fn write_trace_charts(
    dir: &Path,
    traces: &[(&str, &[TraceRow])],
    x_label: &str,
    c0: f64,
    band: f64,
    context: &str,
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    type Get = fn(&TraceRow) -> f64;
    let panels: [(&str, &str, Get); 5] = [
        ("classification", "C on the probe of p_t (nats)", |r| {
            r.classification
        }),
        ("rate", "R (nats)", |r| r.rate),
        ("distortion", "D (nats)", |r| r.distortion),
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
                (1.0, format!("C0 +- {:.0}%", 100.0 * band)),
                (-1.0, String::new()),
            ] {
                series.push(Series {
                    label,
                    points: vec![
                        (0.0, c0 * (1.0 + sign * band)),
                        (x1, c0 * (1.0 + sign * band)),
                    ],
                    mark: Mark::Line,
                    color: GUIDE_COLOR,
                });
            }
        }
        let path = dir.join(stem);
        write_chart(
            &path,
            &Chart {
                title: format!("{stem}: {context}"),
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
            title: format!("test accuracy: {context}"),
            x_label: x_label.into(),
            y_label: "accuracy (%)".into(),
            series,
        },
    )?;
    written.push(path.with_extension("png"));
    Ok(written)
}

/// Metrics at the end of a run: accuracies on both test sets and R, D, C on the target test set.
fn final_metrics<B: AutodiffBackend>(
    system: &DeepSystem<B>,
    domains: &Domains,
) -> Result<serde_json::Value> {
    let target = domains.target.as_ref().unwrap_or(&domains.source);
    let t = system.evaluate(&target.test)?;
    let s = system.evaluate(&domains.source.test)?;
    Ok(json!({
        "target_accuracy": t.accuracy,
        "source_accuracy": s.accuracy,
        "rate": t.rate,
        "distortion": t.distortion,
        "classification": t.classification,
        "source_classification": s.classification,
    }))
}

fn context_line<B: AutodiffBackend>(device: &B::Device, domains: &Domains) -> String {
    format!(
        "{}, {}",
        device_name::<B>(device),
        domains
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    )
}

/// Loads the config, the data and a fresh result directory (with the resolved config).
fn setup(
    args: &ProcessArgs,
    default_config: &str,
    default_out: &str,
    needs_target: bool,
) -> Result<(ProcessConfig, PathBuf, Domains)> {
    let cfg = load_process_config(args, default_config)?;
    if needs_target && cfg.data.target_classes.is_none() {
        bail!("the transfer needs [data] target_classes (for example [5, 6, 7, 8, 9])");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(default_out));
    let domains = load_domains(&cfg.data, args.data_dir.as_deref())?;
    prepare_out_dir(&out, args.force)?;
    fep_data::atomic_write(
        out.join("config.toml"),
        toml::to_string_pretty(&cfg)?.as_bytes(),
    )?;
    Ok((cfg, out, domains))
}

/// `fep iso-classification` on backend B: lambda from the source's value to `lambda_end`
/// with C held, beside the naive path with gamma fixed.
pub fn iso_classification<B: AutodiffBackend>(
    device: &B::Device,
    args: &ProcessArgs,
) -> Result<()> {
    let (cfg, out, domains) = setup(
        args,
        "experiments/iso-classification.toml",
        "runs/iso-classification",
        false,
    )?;
    let clock = Instant::now();
    let mut prepared = prepare::<B>(device, &cfg, &domains)?;
    let path = ProcessPath::lambda_only(prepared.start.lambda, cfg.process.lambda_end);
    let (rows, c0, drift) = run_traced(
        &mut prepared,
        &path,
        Constraint::ISO_CLASSIFICATION,
        &cfg,
        &domains,
        device,
        "iso-classification",
    )?;
    let process_wall = clock.elapsed().as_secs_f64();
    write_trace(&out, "trace", &rows)?;
    let mut naive = prepare::<B>(device, &cfg, &domains)?;
    let naive_cfg = ProcessConfig {
        process: ProcessSettings {
            integrator: IntegratorKind::Euler,
            ..cfg.process.clone()
        },
        ..cfg.clone()
    };
    let (naive_rows, _, naive_drift) = run_traced(
        &mut naive,
        &path,
        Constraint::FixedGamma,
        &naive_cfg,
        &domains,
        device,
        "naive (gamma fixed)",
    )?;
    write_trace(&out, "naive", &naive_rows)?;
    let first = rows.first().context("empty process")?;
    let last = rows.last().context("empty process")?;
    let rate_change = (last.rate - first.rate) / first.rate;
    let charts = write_trace_charts(
        &out,
        &[
            ("iso-classification", &rows),
            ("naive: gamma fixed", &naive_rows),
        ],
        "s (lambda from start to end)",
        c0,
        0.03,
        &context_line::<B>(device, &domains),
    )?;
    let summary = json!({
        "c0": c0,
        "max_relative_drift": drift,
        "unconverged_steps": rows.iter().filter(|r| !r.converged).count(),
        "rate_relative_change": rate_change,
        "integrator": cfg.process.integrator,
        "start": {"lambda": prepared.start.lambda, "gamma": prepared.start.gamma},
        "final": {"lambda": last.lambda, "gamma": last.gamma, "rate": last.rate,
                  "distortion": last.distortion, "classification": last.classification,
                  "accuracy": last.source_accuracy},
        "naive": {"max_relative_drift": naive_drift,
                  "final": naive_rows.last().map(|r| json!({"lambda": r.lambda, "gamma": r.gamma,
                      "rate": r.rate, "distortion": r.distortion, "classification": r.classification,
                      "accuracy": r.source_accuracy}))},
        "seed": cfg.process.seed,
        "device": device_name::<B>(device),
        "data_dir": domains.dir,
        "source_checkpoint": cfg.source_checkpoint,
        "wall_seconds": {"process": process_wall, "total": clock.elapsed().as_secs_f64()},
        "config": cfg,
    });
    write_json(&out.join("summary.json"), &summary)?;
    println!(
        "iso-classification, lambda {} -> {}, C0 = {c0:.4} (probe of {} {} examples)",
        path.lambda_start,
        path.lambda_end,
        cfg.process.probe_size,
        cfg.process.probe_split.describe()
    );
    println!(
        "{:<24}{:>12}{:>12}{:>10}{:>10}{:>10}",
        "path", "max |drift|", "R change", "gamma", "C", "acc %"
    );
    for (name, rows, d) in [
        ("iso-classification", &rows, drift),
        ("naive (gamma fixed)", &naive_rows, naive_drift),
    ] {
        if let (Some(f), Some(l)) = (rows.first(), rows.last()) {
            println!(
                "{name:<24}{:>11.2}%{:>11.1}%{:>10.3}{:>10.4}{:>10.2}",
                100.0 * d,
                100.0 * (l.rate - f.rate) / f.rate,
                l.gamma,
                l.classification,
                100.0 * l.source_accuracy
            );
        }
    }
    println!("\nwrote {}", out.join("summary.json").display());
    for c in charts {
        println!("      {}", c.display());
    }
    Ok(())
}

/// A baseline's trace at the 25 (steps) checkpoints, with C on p_t measured on the probe.
fn baseline_row<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    t: f64,
    m: Multipliers,
    c0: f64,
    clock: &Instant,
) -> Result<TraceRow> {
    system.set_data_position(t)?;
    let f = system.functionals()?;
    let target = domains.target.as_ref().context("transfer needs a target")?;
    let sa = system.evaluate(&domains.source.test)?.accuracy;
    let ta = system.evaluate(&target.test)?.accuracy;
    Ok(TraceRow {
        t,
        lambda: m.lambda,
        gamma: m.gamma,
        rate: f.rate,
        distortion: f.distortion,
        classification: f.classification,
        relative_drift: (f.classification - c0) / c0,
        source_accuracy: sa,
        target_accuracy: ta,
        corrector_iterations: 0,
        converged: true,
        optimizer_steps: system.work().optimizer_steps,
        wall_seconds: clock.elapsed().as_secs_f64(),
    })
}

/// Plain fine-tuning on the target at the start's (lambda, gamma) with `budget` Adam steps.
/// The trace's t is the fraction of the budget spent; C is measured on the target probe.
pub fn fine_tune<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    start: Multipliers,
    budget: u64,
    checkpoints: usize,
    c0: f64,
) -> Result<Vec<TraceRow>> {
    let clock = Instant::now();
    system.reset_optimizer();
    let mut rows = vec![baseline_row(system, domains, 0.0, start, c0, &clock)?];
    rows[0].t = 0.0;
    let progress = bar(checkpoints as u64, "fine-tune");
    let mut done = 0u64;
    for k in 1..=checkpoints {
        let until = budget * k as u64 / checkpoints as u64;
        system.set_data_position(1.0)?;
        system.train_steps(start, (until - done) as usize)?;
        done = until;
        let mut row = baseline_row(system, domains, 1.0, start, c0, &clock)?;
        row.t = k as f64 / checkpoints as f64;
        rows.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(rows)
}

/// The authors' heuristic: for k = 0..n, r = (k+1)/n, retrain at p_r; then, while the mixed
/// C exceeds C0 (at most `max_adjustments` times), move lambda a fraction
/// (lambda - lambda_min)/(n - k) towards lambda_min, add `gamma_increment` to gamma, retrain.
/// Each (re)training is `steps_per_train` Adam steps with a fresh optimiser.
#[allow(clippy::too_many_arguments)]
pub fn paper_heuristic<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    start: Multipliers,
    lambda_min: f64,
    n: usize,
    steps_per_train: usize,
    settings: &BaselineSettings,
    c0: f64,
) -> Result<Vec<TraceRow>> {
    let clock = Instant::now();
    let mut m = start;
    let mut rows = vec![baseline_row(system, domains, 0.0, m, c0, &clock)?];
    let progress = bar(n as u64, "paper heuristic");
    for (k, r) in paper_schedule(n).into_iter().enumerate() {
        system.set_data_position(r)?;
        system.reset_optimizer();
        system.train_steps(m, steps_per_train)?;
        let mut adjustments = 0;
        loop {
            let c = system.functionals()?.classification;
            if c < c0 || adjustments >= settings.max_adjustments {
                break;
            }
            m = heuristic_adjust(m, lambda_min, n, k, settings.gamma_increment);
            system.reset_optimizer();
            system.train_steps(m, steps_per_train)?;
            adjustments += 1;
        }
        let mut row = baseline_row(system, domains, r, m, c0, &clock)?;
        row.corrector_iterations = adjustments;
        rows.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(rows)
}

/// The data positions of the authors' transfer loop: `r_k = (k + 1) / n`, k = 0..n.
pub fn paper_schedule(n: usize) -> Vec<f64> {
    (0..n).map(|k| (k + 1) as f64 / n as f64).collect()
}

/// One adjustment of the authors' controller at step k of n: lambda moves the fraction
/// `1 / (n - k)` of its distance to `lambda_min`, gamma grows by `increment`.
pub fn heuristic_adjust(
    m: Multipliers,
    lambda_min: f64,
    n: usize,
    k: usize,
    increment: f64,
) -> Multipliers {
    let remaining = n.saturating_sub(k).max(1) as f64;
    Multipliers::new(
        m.lambda - (m.lambda - lambda_min) / remaining,
        m.gamma + increment,
    )
}

fn row_final(row: &TraceRow) -> serde_json::Value {
    json!({"target_accuracy": row.target_accuracy, "source_accuracy": row.source_accuracy,
           "rate": row.rate, "distortion": row.distortion, "classification": row.classification})
}

/// `fep transfer-iso-classification` on backend B.
pub fn transfer<B: AutodiffBackend>(device: &B::Device, args: &ProcessArgs) -> Result<()> {
    let (cfg, out, domains) = setup(
        args,
        "experiments/transfer-iso-classification.toml",
        "runs/transfer-iso-classification",
        true,
    )?;
    let total = Instant::now();
    let mut prepared = prepare::<B>(device, &cfg, &domains)?;
    let start = prepared.start;
    let path = ProcessPath::transfer(start.lambda, cfg.process.lambda_end)
        .with_data_exponent(cfg.process.data_exponent);
    let clock = Instant::now();
    let (rows, c0, drift) = run_traced(
        &mut prepared,
        &path,
        Constraint::ISO_CLASSIFICATION,
        &cfg,
        &domains,
        device,
        "transfer",
    )?;
    let process_wall = clock.elapsed().as_secs_f64();
    let work = prepared.system.work();
    write_trace(&out, "trace", &rows)?;
    let ours_final = final_metrics(&prepared.system, &domains)?;
    let budget = work.optimizer_steps.max(1);
    let n = cfg.process.steps;

    let mut baselines = serde_json::Map::new();
    let mut traces: Vec<(&str, Vec<TraceRow>)> = vec![("iso-classification (ours)", rows.clone())];
    let mut walls = serde_json::Map::new();
    walls.insert("process".into(), json!(process_wall));
    if cfg.baselines.fine_tune {
        let clock = Instant::now();
        let mut b = prepare::<B>(device, &cfg, &domains)?;
        let ft = fine_tune(&mut b.system, &domains, start, budget, n, c0)?;
        let fin = final_metrics(&b.system, &domains)?;
        write_trace(&out, "fine_tune", &ft)?;
        baselines.insert("fine_tune".into(), fin);
        walls.insert("fine_tune".into(), json!(clock.elapsed().as_secs_f64()));
        traces.push(("fine-tune", ft));
    }
    if cfg.baselines.paper_heuristic {
        let clock = Instant::now();
        let mut b = prepare::<B>(device, &cfg, &domains)?;
        // Same Adam-step budget: each step trains once and adjusts at most max_adjustments times.
        let per_train = ((budget as usize) / (n * (1 + cfg.baselines.max_adjustments))).max(1);
        let ph = paper_heuristic(
            &mut b.system,
            &domains,
            start,
            cfg.process.lambda_end,
            n,
            per_train,
            &cfg.baselines,
            c0,
        )?;
        let mut fin = final_metrics(&b.system, &domains)?;
        let ph_drift = ph
            .iter()
            .map(|r| r.relative_drift.abs())
            .fold(0.0, f64::max);
        fin["max_relative_drift"] = json!(ph_drift);
        fin["optimizer_steps"] = json!(b.system.work().optimizer_steps);
        write_trace(&out, "paper_heuristic", &ph)?;
        baselines.insert("paper_heuristic".into(), fin);
        walls.insert(
            "paper_heuristic".into(),
            json!(clock.elapsed().as_secs_f64()),
        );
        traces.push(("paper heuristic", ph));
    }
    let trace_refs: Vec<(&str, &[TraceRow])> =
        traces.iter().map(|(n, r)| (*n, r.as_slice())).collect();
    let charts = write_trace_charts(
        &out,
        &trace_refs,
        "t (0 = source, 1 = target)",
        c0,
        0.05,
        &context_line::<B>(device, &domains),
    )?;
    let mut final_json = ours_final.clone();
    if let Some(last) = rows.last() {
        final_json["probe"] = row_final(last);
    }
    let unconverged = rows.iter().filter(|r| !r.converged).count();
    let summary = json!({
        "c0": c0,
        "max_relative_drift": drift,
        "unconverged_steps": unconverged,
        "final": final_json,
        "baselines": baselines,
        "start": {"lambda": start.lambda, "gamma": start.gamma},
        "end": rows.last().map(|r| json!({"lambda": r.lambda, "gamma": r.gamma})),
        "budget": {"optimizer_steps": budget, "probe_gradients": work.probe_gradients,
                   "note": "baselines get the same number of Adam steps on training data; the process also spends probe gradients on its tangents"},
        "seed": cfg.process.seed,
        "device": device_name::<B>(device),
        "data_dir": domains.dir,
        "source_checkpoint": cfg.source_checkpoint,
        "wall_seconds": {"by_method": walls, "total": total.elapsed().as_secs_f64()},
        "config": cfg,
    });
    write_json(&out.join("summary.json"), &summary)?;
    print_transfer_table(&summary);
    println!("\nwrote {}", out.join("summary.json").display());
    for c in charts {
        println!("      {}", c.display());
    }
    Ok(())
}

/// Prints the transfer summary as a table.
pub fn print_transfer_table(summary: &serde_json::Value) {
    let c0 = summary["c0"].as_f64().unwrap_or(f64::NAN);
    let probe = ProbeSplit::of_summary(summary).describe();
    println!(
        "\ntransfer digits source -> target with C held at C0 = {c0:.4} ({probe} probe of p_t)"
    );
    println!(
        "{:<28}{:>10}{:>10}{:>10}{:>10}{:>10}{:>12}",
        "method", "target %", "source %", "R", "D", "C", "max |drift|"
    );
    let mut lines = vec![(
        "iso-classification (ours)",
        &summary["final"],
        summary["max_relative_drift"].as_f64(),
    )];
    for (key, name) in [
        ("fine_tune", "fine-tune"),
        ("paper_heuristic", "paper heuristic"),
    ] {
        let b = &summary["baselines"][key];
        if !b.is_null() {
            lines.push((name, b, b["max_relative_drift"].as_f64()));
        }
    }
    for (name, v, d) in lines {
        let g = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{name:<28}{:>10.2}{:>10.2}{:>10.3}{:>10.3}{:>10.4}{:>12}",
            100.0 * g("target_accuracy"),
            100.0 * g("source_accuracy"),
            g("rate"),
            g("distortion"),
            g("classification"),
            d.map(|d| format!("{:.2}%", 100.0 * d))
                .unwrap_or_else(|| "-".into())
        );
    }
    println!(
        "(R, D, C on the target test set; drift measured on the {probe} probe of p_t along the path)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_schedule_runs_from_one_nth_to_one() {
        let s = paper_schedule(25);
        assert_eq!(s.len(), 25);
        assert!((s[0] - 0.04).abs() < 1e-12);
        assert!((s[24] - 1.0).abs() < 1e-12);
        assert!(s.windows(2).all(|w| (w[1] - w[0] - 0.04).abs() < 1e-12));
    }

    #[test]
    fn heuristic_controller_matches_hand_computation() {
        // Step k = 0 of 25 from (2, 2): lambda moves 1/25 of the way to 0.5.
        let m = heuristic_adjust(Multipliers::new(2.0, 2.0), 0.5, 25, 0, 0.1);
        assert!((m.lambda - (2.0 - 1.5 / 25.0)).abs() < 1e-12);
        assert!((m.gamma - 2.1).abs() < 1e-12);
        // At the last step it lands on lambda_min exactly.
        let m = heuristic_adjust(Multipliers::new(1.3, 4.0), 0.5, 25, 24, 0.1);
        assert!((m.lambda - 0.5).abs() < 1e-12);
        // Adjusting at every step walks lambda to lambda_min and adds 0.1 per step.
        let mut m = Multipliers::new(2.0, 2.0);
        for k in 0..25 {
            m = heuristic_adjust(m, 0.5, 25, k, 0.1);
        }
        assert!((m.lambda - 0.5).abs() < 1e-12);
        assert!((m.gamma - 4.5).abs() < 1e-9);
    }

    #[test]
    fn process_config_defaults_and_validation() {
        let text = r#"
            source_checkpoint = "x.ckpt"
            [data]
            kind = "mnist"
            source_classes = [0, 1]
            target_classes = [2, 3]
            [process]
            lambda_end = 0.5
            equilibration_steps = 10
            learning_rate = 1e-3
            seed = 3
        "#;
        let cfg: ProcessConfig = toml::from_str(text).unwrap();
        assert_eq!(cfg.process.steps, 25);
        assert_eq!(cfg.process.integrator, IntegratorKind::PredictorCorrector);
        assert!(cfg.baselines.fine_tune && cfg.baselines.paper_heuristic);
        cfg.process.validate().unwrap();
        match cfg.process.integrator() {
            Integrator::PredictorCorrector(pc) => {
                assert!((pc.max_step - 0.04).abs() < 1e-12);
                assert_eq!(pc.equilibration_steps, 10);
            }
            other => panic!("{other:?}"),
        }
        let bad = text.replace("lambda_end = 0.5", "lambda_end = -1");
        let cfg: ProcessConfig = toml::from_str(&bad).unwrap();
        assert!(cfg.process.validate().is_err());
        let unknown = text.replace("seed = 3", "seed = 3\nsteps_typo = 4");
        assert!(toml::from_str::<ProcessConfig>(&unknown).is_err());
        // The probe comes from the held-out split unless the config asks for the training one.
        assert_eq!(cfg_probe(text), Some(ProbeSplit::Validation));
        let train = text.replace("seed = 3", "seed = 3\nprobe_split = \"train\"");
        assert_eq!(cfg_probe(&train), Some(ProbeSplit::Train));
        let typo = text.replace("seed = 3", "seed = 3\nprobe_split = \"test\"");
        assert_eq!(cfg_probe(&typo), None, "the test split is never a probe");
    }

    fn cfg_probe(text: &str) -> Option<ProbeSplit> {
        toml::from_str::<ProcessConfig>(text)
            .ok()
            .map(|c| c.process.probe_split)
    }
}
