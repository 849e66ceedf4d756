//! The config file of `iso-classification` and `transfer-iso-classification`, and the
//! `fep-thermo` continuation it describes.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use fep_data::{DataConfig, Domains, ProbeSplit};
use fep_models::assemble::{Assembled, SystemSpec, system_from_checkpoint};
use fep_thermo::{
    Continuation, EulerConfig, HvpMethod, IftConfig, Integrator, IntegratorKind,
    PredictorCorrectorConfig, StoppingRule,
};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ResultExt, invalid};
use crate::io::{prepare_out_dir, read_toml, write_toml};

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
    /// Adam steps of each (re-)equilibration where no `equilibrium` rule is given (a
    /// fixed budget: equilibrium assumed, not measured).
    pub equilibration_steps: usize,
    /// When a (re-)equilibration of the process stops: a measured criterion
    /// (`{ rule = "stationary", window, consecutive, z, min_steps, max_steps }`), or
    /// `equilibration_steps` fixed steps where absent.
    #[serde(default)]
    pub equilibrium: Option<StoppingRule>,
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
    /// gamma is never raised above this (every integrator honours it).
    #[serde(default = "default_max_gamma")]
    pub max_gamma: f64,
    /// Halvings of a step whose corrector fails before giving up on it.
    #[serde(default = "default_halvings")]
    pub max_halvings: u32,
    /// After the last halving, accept the step flagged `converged = false` (true), or stop
    /// with an error (false).
    #[serde(default = "yes")]
    pub accept_unconverged: bool,
    /// Fresh noise draws per test example when every row is measured on the test splits,
    /// apart from the controller (K).
    #[serde(default = "default_test_samples")]
    pub test_samples: usize,
    /// Seed of the process's noise and data order.
    pub seed: u64,
}

fn default_test_samples() -> usize {
    8
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
fn yes() -> bool {
    true
}

impl ProcessSettings {
    /// How every row is measured on the test splits.
    pub(crate) fn test_measure(&self) -> super::trace::TestMeasure {
        super::trace::TestMeasure {
            samples: self.test_samples,
            seed: self.seed,
        }
    }

    /// Checks every range; the message names the setting.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 || self.equilibration_steps == 0 || self.batch_size == 0 {
            return Err(invalid(
                "[process] steps, equilibration_steps and batch_size must be positive",
            ));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(invalid("[process] learning_rate must be positive"));
        }
        if !(self.lambda_end > 0.0 && self.lambda_end.is_finite()) {
            return Err(invalid("[process] lambda_end must be positive"));
        }
        if !(self.relative_tolerance > 0.0 && self.relative_tolerance < 1.0) {
            return Err(invalid("[process] relative_tolerance must lie in (0, 1)"));
        }
        if self.probe_size == 0 {
            return Err(invalid("[process] probe_size must be positive"));
        }
        if !(self.data_exponent > 0.0 && self.data_exponent.is_finite()) {
            return Err(invalid("[process] data_exponent must be positive"));
        }
        if self.max_gamma.is_nan() || self.max_gamma <= 0.0 {
            return Err(invalid("[process] max_gamma must be positive"));
        }
        Ok(())
    }

    /// The integrator of these settings: Euler with `steps` fixed steps, or the
    /// predictor-corrector whose largest step is `1 / steps`, halved at most
    /// `max_halvings` times, growing by 2 after easy steps.
    pub fn integrator(&self) -> Integrator {
        let h = 1.0 / self.steps as f64;
        match self.integrator {
            IntegratorKind::Euler => Integrator::Euler(EulerConfig {
                steps: self.steps,
                equilibration_steps: self.equilibration_steps,
                equilibrium: self.equilibrium,
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
                    equilibrium: self.equilibrium,
                })
            }
        }
    }

    /// The continuation (predictor, corrector, step control, gamma bounds) of these settings.
    pub fn continuation(&self, ift: &IftConfig) -> Continuation {
        let mut continuation = self.integrator().continuation(*ift);
        continuation.gamma_bounds.max = self.max_gamma;
        continuation
    }

    /// The rule of every (re-)equilibration: the configured one, else the fixed budget.
    pub fn equilibrium_rule(&self) -> StoppingRule {
        self.equilibrium
            .unwrap_or(StoppingRule::fixed(self.equilibration_steps))
    }

    /// How the system around the source checkpoint samples, steps and measures.
    pub fn system_spec(&self, data: &DataConfig) -> SystemSpec {
        SystemSpec {
            batch_size: self.batch_size,
            learning_rate: self.learning_rate,
            seed: self.seed,
            probe_size: self.probe_size,
            probe_split: self.probe_split,
            gradient_probe_size: self.gradient_probe_size,
            binarization: data.binarization(self.seed),
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
    /// Ablation: our data schedule t(s) and lambda path with gamma fixed (the effect of
    /// the schedule without holding C).
    #[serde(default = "yes")]
    pub schedule_only: bool,
    /// Ablation: fine-tuning on the target at the (lambda, gamma) where our path ended
    /// (the effect of gamma without the path).
    #[serde(default = "yes")]
    pub fine_tune_at_end: bool,
    /// gamma increment of the heuristic per adjustment.
    #[serde(default = "default_gamma_increment")]
    pub gamma_increment: f64,
    /// A cap on the heuristic's adjustments per step. None (the default) runs its `while`
    /// loop as the authors wrote it: until the mixed C is below C0 or the budget is spent.
    #[serde(default)]
    pub max_adjustments: Option<usize>,
}

fn default_gamma_increment() -> f64 {
    0.1
}

impl Default for BaselineSettings {
    fn default() -> Self {
        Self {
            fine_tune: true,
            paper_heuristic: true,
            schedule_only: true,
            fine_tune_at_end: true,
            gamma_increment: default_gamma_increment(),
            max_adjustments: None,
        }
    }
}

/// The config file of both process experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessConfig {
    /// The trained source model (`train-source` writes it).
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

/// The IFT settings of deep models: truncated CG (5 iterations) on a damped Hessian,
/// accepted at any residual, because the corrector absorbs what the tangent misses.
pub fn deep_ift() -> IftConfig {
    IftConfig {
        relative_damping: 1e-2,
        cg_tolerance: 1e-3,
        cg_max_iterations: 5,
        max_accepted_residual: 1.0,
        hvp: HvpMethod::FiniteDifference {
            relative_step: 1e-3,
        },
    }
}

/// Where and how a process experiment runs (the command line's choices).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessOptions {
    /// The config file (default: the experiment's file in `experiments/`).
    pub config: Option<PathBuf>,
    /// Trained source model (overrides `source_checkpoint`).
    pub source: Option<PathBuf>,
    /// Folder with the dataset files (default: the bundled subset).
    pub data_dir: Option<PathBuf>,
    /// Result directory (default: `runs/<experiment>`).
    pub out: Option<PathBuf>,
    /// Overwrite an existing result directory.
    pub force: bool,
    /// Continue a killed run in `out` from its last completed step (`out/resume/`).
    pub resume: bool,
    /// Override the integrator.
    pub integrator: Option<IntegratorKind>,
    /// Override the number of steps of the path.
    pub steps: Option<usize>,
    /// Skip the baselines.
    pub no_baselines: bool,
    /// Save the path's model after every step under `steps/`.
    pub save_steps: bool,
    /// Override the seed of the process.
    pub seed: Option<u64>,
}

impl ProcessOptions {
    /// Reads the config (`default_config` where none is given), applies the overrides and
    /// validates it.
    pub fn load_config(&self, default_config: &str) -> Result<ProcessConfig> {
        let path = self
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(default_config));
        let mut cfg: ProcessConfig = read_toml(&path)?;
        if let Some(s) = &self.source {
            cfg.source_checkpoint = s.clone();
        }
        if let Some(i) = self.integrator {
            cfg.process.integrator = i;
        }
        if let Some(n) = self.steps {
            cfg.process.steps = n;
        }
        if let Some(seed) = self.seed {
            cfg.process.seed = seed;
        }
        if self.no_baselines {
            cfg.baselines.fine_tune = false;
            cfg.baselines.paper_heuristic = false;
            cfg.baselines.schedule_only = false;
            cfg.baselines.fine_tune_at_end = false;
        }
        cfg.process
            .validate()
            .context_with(|| format!("in {}", path.display()))?;
        Ok(cfg)
    }
}

/// A loaded experiment: its config, result directory and data.
pub(crate) struct Setup {
    pub cfg: ProcessConfig,
    pub out: PathBuf,
    pub domains: Domains,
    pub saver: super::trace::ModelSaver,
    pub resume: super::resume::ResumeStore,
}

impl Setup {
    /// A fresh system at the source checkpoint's equilibrium, on the source (and, with
    /// `with_target`, the target) domain.
    pub fn assemble<B: AutodiffBackend>(
        &self,
        device: &B::Device,
        with_target: bool,
    ) -> Result<Assembled<B>> {
        let target = if with_target {
            Some(self.domains.require_target()?)
        } else {
            None
        };
        Ok(system_from_checkpoint::<B>(
            &self.cfg.source_checkpoint,
            device,
            &self.domains.source,
            target,
            &self.cfg.process.system_spec(&self.cfg.data),
        )?)
    }
}

/// What an experiment falls back on and needs.
pub(crate) struct Defaults {
    /// The config file where none is given.
    pub config: &'static str,
    /// The result directory where none is given.
    pub out: &'static str,
    /// Whether `[data] target_classes` is required.
    pub needs_target: bool,
}

/// The iso-classification experiment's defaults.
pub(crate) const ISO_CLASSIFICATION: Defaults = Defaults {
    config: "experiments/iso-classification.toml",
    out: "runs/iso-classification",
    needs_target: false,
};

/// The transfer experiment's defaults.
pub(crate) const TRANSFER: Defaults = Defaults {
    config: "experiments/transfer-iso-classification.toml",
    out: "runs/transfer-iso-classification",
    needs_target: true,
};

/// Loads the config and the data and prepares a fresh result directory holding the
/// resolved config.
pub(crate) fn setup(options: &ProcessOptions, defaults: &Defaults) -> Result<Setup> {
    let cfg = options.load_config(defaults.config)?;
    if defaults.needs_target && cfg.data.target_classes.is_none() {
        return Err(invalid(
            "the transfer needs [data] target_classes (for example [5, 6, 7, 8, 9])",
        ));
    }
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(defaults.out));
    let domains = Domains::load(&cfg.data, options.data_dir.as_deref())?;
    if !options.resume {
        prepare_out_dir(&out, options.force)?;
    }
    let resume = super::resume::ResumeStore::open(&out, &cfg, options.resume)?;
    write_toml(&out.join("config.toml"), &cfg)?;
    let saver = super::trace::ModelSaver {
        out: out.clone(),
        data: cfg.data.clone(),
        every_step: options.save_steps,
    };
    Ok(Setup {
        cfg,
        out,
        domains,
        saver,
        resume,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"
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

    fn probe_split(text: &str) -> Option<ProbeSplit> {
        toml::from_str::<ProcessConfig>(text)
            .ok()
            .map(|c| c.process.probe_split)
    }

    #[test]
    fn process_config_defaults_and_validation() {
        let cfg: ProcessConfig = toml::from_str(TEXT).expect("valid config");
        assert_eq!(cfg.process.steps, 25);
        assert_eq!(cfg.process.integrator, IntegratorKind::PredictorCorrector);
        assert!(cfg.baselines.fine_tune && cfg.baselines.paper_heuristic);
        cfg.process.validate().expect("valid settings");
        match cfg.process.integrator() {
            Integrator::PredictorCorrector(pc) => {
                assert!((pc.max_step - 0.04).abs() < 1e-12);
                assert!((pc.min_step - 0.02).abs() < 1e-12);
                assert_eq!(pc.equilibration_steps, 10);
                assert_eq!(pc.max_gamma, 50.0);
            }
            other => panic!("{other:?}"),
        }
        let bad = TEXT.replace("lambda_end = 0.5", "lambda_end = -1");
        let cfg: ProcessConfig = toml::from_str(&bad).expect("parses");
        assert!(cfg.process.validate().is_err());
        let unknown = TEXT.replace("seed = 3", "seed = 3\nsteps_typo = 4");
        assert!(toml::from_str::<ProcessConfig>(&unknown).is_err());
        assert_eq!(probe_split(TEXT), Some(ProbeSplit::Validation));
        let train = TEXT.replace("seed = 3", "seed = 3\nprobe_split = \"train\"");
        assert_eq!(probe_split(&train), Some(ProbeSplit::Train));
        let typo = TEXT.replace("seed = 3", "seed = 3\nprobe_split = \"test\"");
        assert_eq!(probe_split(&typo), None, "the test split is never a probe");
        let exact_hvp = TEXT.replace("seed = 3", "seed = 3\n[ift]\nrelative_damping = 1e-2\ncg_tolerance = 1e-3\ncg_max_iterations = 5\nhvp = { kind = \"exact\" }");
        assert!(
            toml::from_str::<ProcessConfig>(&exact_hvp).is_err(),
            "an unimplemented Hessian-vector product is refused, not replaced"
        );
    }

    #[test]
    fn euler_and_predictor_corrector_share_the_gamma_bounds() {
        let mut cfg: ProcessConfig = toml::from_str(TEXT).expect("valid config");
        cfg.process.max_gamma = 7.0;
        for kind in [IntegratorKind::Euler, IntegratorKind::PredictorCorrector] {
            cfg.process.integrator = kind;
            let c = cfg.process.continuation(&cfg.ift);
            assert_eq!(c.gamma_bounds.max, 7.0, "{kind}");
            assert_eq!(c.gamma_bounds.min, 0.0, "{kind}");
        }
    }
}
