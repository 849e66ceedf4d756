//! The config file of `iso-classification` and `transfer-iso-classification`, the one
//! place its settings become a `fep-thermo` [`Continuation`], and the command line's
//! options of both experiments.

use std::path::PathBuf;

use fep_data::{DataConfig, ProbeSplit};
use fep_models::assemble::SystemSpec;
use fep_thermo::{
    ConstraintKind, Continuation, GammaBounds, HvpMethod, IftConfig, IntegratorKind,
    PredictorCorrectorConfig, StoppingRule, TrustRegion,
};
use serde::{Deserialize, Serialize};

use super::measure::TestMeasure;
use super::method::Method;
use crate::error::{Result, ResultExt, invalid};
use crate::io::read_toml;

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
    /// Refuse to run when the probe resolves C0 worse than this: its standard error (as an
    /// estimate of C on fresh examples) above `max_probe_relative_se * C0`, or above the
    /// corrector's `relative_tolerance` (a tolerance below the probe's own error steers on
    /// noise). Absent: the error is measured and reported, not enforced.
    #[serde(default)]
    pub max_probe_relative_se: Option<f64>,
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
    /// Error unless a probe whose C0 has relative standard error `relative_se` (on `n`
    /// examples per domain) resolves C0 as `max_probe_relative_se` and `relative_tolerance`
    /// ask (nothing is enforced without `max_probe_relative_se`).
    pub fn check_probe(&self, relative_se: f64, n: usize) -> Result<()> {
        let Some(max) = self.max_probe_relative_se else {
            return Ok(());
        };
        let bound = max.min(self.relative_tolerance);
        if relative_se <= bound {
            return Ok(());
        }
        let which = if max <= self.relative_tolerance {
            format!("max_probe_relative_se = {:.1}%", 100.0 * max)
        } else {
            format!(
                "the corrector's relative_tolerance = {:.1}% (a tolerance below the probe's own error steers on noise)",
                100.0 * self.relative_tolerance
            )
        };
        Err(invalid(format!(
            "[process] the controller's probe ({n} examples per domain, {} split) resolves C0 only to +-{:.1}% (one standard error), above {which}: enlarge probe_size, use probe_split = \"train\", or run on full MNIST (--data-dir)",
            self.probe_split.describe(),
            100.0 * relative_se
        )))
    }

    /// How every row is measured on the test splits.
    pub(crate) fn test_measure(&self) -> TestMeasure {
        TestMeasure {
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
        if self
            .max_probe_relative_se
            .is_some_and(|m| !(m > 0.0 && m < 1.0))
        {
            return Err(invalid(
                "[process] max_probe_relative_se must lie in (0, 1)",
            ));
        }
        Ok(())
    }

    /// The continuation of a path that holds `constraint`: for a held functional the
    /// configured integrator (the predictor-corrector, whose largest step is `1 / steps`,
    /// halved at most `max_halvings` times, growing by 2 after easy steps; or Euler with
    /// `steps` fixed steps); with gamma fixed, the paper's Euler scheme. Every path gets
    /// the same gamma bounds `[0, max_gamma]` and the same equilibrium rule.
    pub fn continuation(&self, constraint: ConstraintKind, ift: &IftConfig) -> Continuation {
        let h = 1.0 / self.steps as f64;
        let gamma_bounds = GammaBounds {
            min: 0.0,
            max: self.max_gamma,
        };
        let equilibrium = self.equilibrium_rule();
        let corrected = constraint != ConstraintKind::FixedGamma
            && self.integrator == IntegratorKind::PredictorCorrector;
        if !corrected {
            let mut euler = Continuation::euler(self.steps, self.equilibration_steps, *ift)
                .with_equilibrium(equilibrium);
            euler.gamma_bounds = gamma_bounds;
            return euler;
        }
        let pc = PredictorCorrectorConfig {
            initial_step: h,
            min_step: h / f64::powi(2.0, self.max_halvings as i32),
            max_step: h,
            relative_tolerance: self.relative_tolerance,
            max_corrector_iterations: self.max_corrector_iterations,
            equilibrium,
            growth: 2.0,
            shrink: 0.5,
            gamma_bounds,
            accept_unconverged: self.accept_unconverged,
            trust: TrustRegion {
                max_relative_gamma_step: self.max_relative_gamma_step,
                max_relative_theta_step: self.max_relative_theta_step,
            },
        };
        Continuation::predictor_corrector(&pc, *ift)
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

/// The `[baselines]` section of the transfer experiment: which methods run beside ours,
/// and the settings of the authors' heuristic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSettings {
    /// The baselines and ablations to run, in table order (default: all of
    /// [`Method::BASELINES`]; ours always runs).
    #[serde(default = "all_baselines")]
    pub methods: Vec<Method>,
    /// gamma increment of the heuristic per adjustment.
    #[serde(default = "default_gamma_increment")]
    pub gamma_increment: f64,
    /// A cap on the heuristic's adjustments per step. None (the default) runs its `while`
    /// loop as the authors wrote it: until the mixed C is below C0 or the budget is spent.
    #[serde(default)]
    pub max_adjustments: Option<usize>,
}

fn all_baselines() -> Vec<Method> {
    Method::BASELINES.to_vec()
}

fn default_gamma_increment() -> f64 {
    0.1
}

impl Default for BaselineSettings {
    fn default() -> Self {
        Self {
            methods: all_baselines(),
            gamma_increment: default_gamma_increment(),
            max_adjustments: None,
        }
    }
}

impl BaselineSettings {
    /// Error unless every method is a baseline and listed once.
    pub fn validate(&self) -> Result<()> {
        for (i, m) in self.methods.iter().enumerate() {
            if *m == Method::IsoClassification {
                return Err(invalid(
                    "[baselines] methods: iso_classification is the process itself and always runs; list only baselines",
                ));
            }
            if self.methods[..i].contains(m) {
                return Err(invalid(format!(
                    "[baselines] methods lists {} twice",
                    m.stem()
                )));
            }
        }
        Ok(())
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

/// The iso-classification's config where none is given.
pub const ISO_CLASSIFICATION_CONFIG: &str = "experiments/iso-classification.toml";
/// The iso-classification's result directory where none is given.
pub const ISO_CLASSIFICATION_OUT: &str = "runs/iso-classification";
/// The transfer's config where none is given.
pub const TRANSFER_CONFIG: &str = "experiments/transfer-iso-classification.toml";
/// The transfer's result directory where none is given.
pub const TRANSFER_OUT: &str = "runs/transfer-iso-classification";

/// Where and how a process experiment runs (the options of `fep iso-classification` and
/// `fep transfer-iso-classification`).
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct ProcessOptions {
    /// TOML with source_checkpoint, [data], [process], [ift], [baselines] (default: the
    /// experiment's file in experiments/).
    #[cfg_attr(feature = "cli", arg(long))]
    pub config: Option<PathBuf>,
    /// Trained source model (overrides source_checkpoint).
    #[cfg_attr(feature = "cli", arg(long))]
    pub source: Option<PathBuf>,
    /// Folder with the dataset files (default: the bundled subset).
    #[cfg_attr(feature = "cli", arg(long))]
    pub data_dir: Option<PathBuf>,
    /// Result directory (default: runs/<experiment>).
    #[cfg_attr(feature = "cli", arg(long))]
    pub out: Option<PathBuf>,
    /// Overwrite an existing result directory.
    #[cfg_attr(feature = "cli", arg(long))]
    pub force: bool,
    /// Continue a killed run in --out from its last completed step (same config); with
    /// --seeds, skip the finished seeds and continue the unfinished one.
    #[cfg_attr(feature = "cli", arg(long, conflicts_with = "force"))]
    pub resume: bool,
    /// Override the integrator (predictor-corrector or euler).
    #[cfg_attr(feature = "cli", arg(long))]
    pub integrator: Option<IntegratorKind>,
    /// Override the number of steps of the path.
    #[cfg_attr(feature = "cli", arg(long))]
    pub steps: Option<usize>,
    /// Skip the baselines.
    #[cfg_attr(feature = "cli", arg(long))]
    pub no_baselines: bool,
    /// Save the path's model after every step as steps/step-<k>.ckpt (the trace records each file).
    #[cfg_attr(feature = "cli", arg(long))]
    pub save_steps: bool,
    /// Override the seed of the process.
    #[cfg_attr(feature = "cli", arg(long))]
    pub seed: Option<u64>,
    /// Deal each domain's official training and test images again with this seed
    /// (overrides `[data] resplit_seed`; the source must have been trained on the same
    /// dealing).
    #[cfg_attr(feature = "cli", arg(long))]
    pub resplit_seed: Option<u64>,
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
        if let Some(deal) = self.resplit_seed {
            cfg.data.resplit_seed = Some(deal);
        }
        if self.no_baselines {
            cfg.baselines.methods.clear();
        }
        cfg.process
            .validate()
            .and_then(|()| cfg.baselines.validate())
            .context_with(|| format!("in {}", path.display()))?;
        Ok(cfg)
    }
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
        assert_eq!(cfg.baselines.methods, Method::BASELINES.to_vec());
        cfg.process.validate().expect("valid settings");
        let c = cfg
            .process
            .continuation(ConstraintKind::IsoClassification, &cfg.ift);
        match c.step_control {
            fep_thermo::StepControl::Adaptive(a) => {
                assert!((a.max - 0.04).abs() < 1e-12);
                assert!((a.min - 0.02).abs() < 1e-12);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(c.equilibrium, StoppingRule::fixed(10));
        assert_eq!(c.gamma_bounds.max, 50.0);
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

    /// Every path of every method, whatever the integrator, gets the same gamma bounds
    /// and equilibrium rule; only a held functional under the predictor-corrector gets a
    /// corrector.
    #[test]
    fn every_path_shares_the_gamma_bounds_and_the_equilibrium_rule() {
        let mut cfg: ProcessConfig = toml::from_str(TEXT).expect("valid config");
        cfg.process.max_gamma = 7.0;
        for kind in [IntegratorKind::Euler, IntegratorKind::PredictorCorrector] {
            for constraint in [
                ConstraintKind::IsoClassification,
                ConstraintKind::FixedGamma,
            ] {
                cfg.process.integrator = kind;
                let c = cfg.process.continuation(constraint, &cfg.ift);
                assert_eq!(c.gamma_bounds.max, 7.0, "{kind} {constraint}");
                assert_eq!(c.gamma_bounds.min, 0.0, "{kind} {constraint}");
                assert_eq!(
                    c.equilibrium,
                    StoppingRule::fixed(10),
                    "{kind} {constraint}"
                );
                let corrected = !matches!(c.corrector, fep_thermo::Corrector::None);
                assert_eq!(
                    corrected,
                    kind == IntegratorKind::PredictorCorrector
                        && constraint == ConstraintKind::IsoClassification
                );
            }
        }
    }

    /// A probe too coarse for the bound, or for the corrector's tolerance, is refused with
    /// its resolution named; without a bound nothing is enforced.
    #[test]
    fn a_probe_too_small_for_the_tolerance_is_refused() {
        let mut cfg: ProcessConfig = toml::from_str(TEXT).expect("valid config");
        cfg.process.relative_tolerance = 0.04;
        assert!(cfg.process.check_probe(0.12, 500).is_ok(), "not enforced");
        cfg.process.max_probe_relative_se = Some(0.015);
        assert!(cfg.process.check_probe(0.012, 5000).is_ok());
        let err = cfg.process.check_probe(0.12, 500).expect_err("12% > 1.5%");
        let msg = err.to_string();
        assert!(
            msg.contains("+-12.0%") && msg.contains("500 examples") && msg.contains("1.5%"),
            "{msg}"
        );
        cfg.process.max_probe_relative_se = Some(0.5);
        let msg = cfg
            .process
            .check_probe(0.12, 500)
            .expect_err("above the tolerance")
            .to_string();
        assert!(msg.contains("relative_tolerance = 4.0%"), "{msg}");
        cfg.process.max_probe_relative_se = Some(1.5);
        assert!(cfg.process.validate().is_err(), "a bound outside (0, 1)");
    }

    #[test]
    fn the_methods_list_is_checked() {
        let with = |list: &str| {
            let text = format!("{TEXT}\n[baselines]\nmethods = {list}\n");
            toml::from_str::<ProcessConfig>(&text).map(|c| c.baselines.validate())
        };
        assert!(matches!(with("[\"fine_tune\"]"), Ok(Ok(()))));
        assert!(matches!(with("[]"), Ok(Ok(()))));
        assert!(with("[\"fine_tuning\"]").is_err(), "unknown name");
        assert!(matches!(with("[\"fine_tune\", \"fine_tune\"]"), Ok(Err(_))));
        assert!(matches!(with("[\"iso_classification\"]"), Ok(Err(_))));
    }
}
