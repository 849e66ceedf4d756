//! The command line's arguments beyond the library's option structs (which derive clap's
//! `Args` themselves, with the `cli` feature of `fep-experiments`): seeds, subcommands, the
//! exact model's commands.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use fep_experiments::bench::{BenchOptions, ReferenceOptions};
use fep_experiments::evaluate::EvaluateOptions;
use fep_experiments::process::ProcessOptions;
use fep_experiments::seeds::SeedsOptions;
use fep_experiments::surface::SurfaceOptions;
use fep_thermo::IntegratorKind;
use fep_thermo::surface::Shard;

/// Both process commands: the library's options, and the seeds to run them over.
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// Where and how the process runs.
    #[command(flatten)]
    pub options: ProcessOptions,
    /// Run the whole experiment (source training and process) for N seeds, from the config's
    /// seed on, each in <out>/seed-<s>/, then aggregate them (mean +- sd) in <out>/aggregate.json.
    #[arg(long)]
    pub seeds: Option<usize>,
    /// With --seeds: run only part i of n of the seeds (a job-array task); every task
    /// aggregates the seeds finished so far.
    #[arg(long)]
    pub seed_shard: Option<Shard>,
    /// With --seeds: the source training's config.
    #[arg(long, default_value = fep_experiments::train_source::DEFAULT_CONFIG)]
    pub train_config: PathBuf,
    /// With --seeds: deal each domain's official training and test images again with each
    /// seed's own seed (source training and process alike), so that the sampling of the
    /// test split is part of the spread over seeds.
    #[arg(long, requires = "seeds", conflicts_with = "resplit_seed")]
    pub deal_per_seed: bool,
}

impl ProcessArgs {
    /// The seeds of `--seeds`, if given: from the config's seed on, in `--out` (default
    /// `default_out`).
    pub fn seeds_options(&self, default_out: &str, first: u64) -> Option<SeedsOptions> {
        let count = self.seeds?;
        let mut process = self.options.clone();
        process
            .out
            .get_or_insert_with(|| PathBuf::from(default_out));
        Some(SeedsOptions {
            process,
            train_config: self.train_config.clone(),
            first,
            count,
            shard: self.seed_shard.unwrap_or(Shard::ALL),
            deal_per_seed: self.deal_per_seed,
        })
    }
}

/// `fep surface`.
#[derive(Debug, Args)]
pub struct SurfaceArgs {
    /// Run or merge.
    #[command(subcommand)]
    pub action: Option<SurfaceAction>,
    /// Where and which shard.
    #[command(flatten)]
    pub options: SurfaceOptions,
}

/// `fep surface merge`.
#[derive(Debug, Subcommand)]
pub enum SurfaceAction {
    /// Join the shards in <out>/shards/, check completeness, run the checks and plot.
    Merge,
}

/// Subcommands of `fep exact`.
#[derive(Debug, Subcommand)]
pub enum ExactCommand {
    /// Train at (lambda, gamma) and compare with the closed form, with sensitivities.
    Solve(ExactSolveArgs),
    /// Iso-classification process from (lambda_start, gamma_start) to lambda_end.
    IsoClassification(ExactIsoArgs),
    /// Closed-form and trained surface over a grid, its checks and a plot.
    Surface(ExactSurfaceArgs),
}

/// Arguments shared by the exact commands.
#[derive(Debug, Args)]
pub struct ExactCommon {
    /// TOML file with [data], [model] (and optional [target], [training]).
    #[arg(long)]
    pub config: PathBuf,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Result directory (default runs/exact-<command>/; with --json and no --out nothing is written).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Overwrite an existing result directory.
    #[arg(long)]
    pub force: bool,
}

/// `fep exact solve`.
#[derive(Debug, Args)]
pub struct ExactSolveArgs {
    #[command(flatten)]
    pub common: ExactCommon,
    /// Multiplier of the distortion.
    #[arg(long)]
    pub lambda: f64,
    /// Multiplier of the classification loss.
    #[arg(long)]
    pub gamma: f64,
}

/// `fep exact iso-classification`.
#[derive(Debug, Args)]
pub struct ExactIsoArgs {
    #[command(flatten)]
    pub common: ExactCommon,
    /// lambda at the start.
    #[arg(long, default_value_t = 2.0)]
    pub lambda_start: f64,
    /// gamma at the start.
    #[arg(long, default_value_t = 1.0)]
    pub gamma_start: f64,
    /// lambda at the end.
    #[arg(long, default_value_t = 0.5)]
    pub lambda_end: f64,
    /// Integrator (predictor-corrector or euler).
    #[arg(long, default_value_t = IntegratorKind::PredictorCorrector)]
    pub integrator: IntegratorKind,
}

/// `fep exact surface`.
#[derive(Debug, Args)]
pub struct ExactSurfaceArgs {
    #[command(flatten)]
    pub common: ExactCommon,
    /// lambda grid as start:end:count.
    #[arg(long, default_value = "0.5:3:6")]
    pub lambdas: String,
    /// gamma grid as start:end:count.
    #[arg(long, default_value = "0.25:3:6")]
    pub gammas: String,
    /// gamma at which the iso-classification curve drawn on the plot starts (at the largest lambda).
    #[arg(long, default_value_t = 1.0)]
    pub iso_gamma: f64,
    /// A residual above this many error estimates (discretisation, noise, floor) is a violation.
    #[arg(long, default_value_t = 3.0)]
    pub check_factor: f64,
    /// Error floor of the trained model's checks: its distance from exact equilibrium.
    #[arg(long, default_value_t = 1e-4)]
    pub trained_floor: f64,
}

impl ExactSurfaceArgs {
    /// How the identities of both surfaces are counted.
    pub fn check_settings(&self) -> fep_experiments::exact::ExactCheckSettings {
        let d = fep_experiments::exact::ExactCheckSettings::default();
        fep_experiments::exact::ExactCheckSettings {
            trained: fep_thermo::CheckSettings {
                factor: self.check_factor,
                floor: self.trained_floor,
            },
            closed_form: fep_thermo::CheckSettings {
                factor: self.check_factor,
                ..d.closed_form
            },
        }
    }
}

/// `fep bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// What to measure (default: the full suite).
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
    /// The suite.
    #[command(flatten)]
    pub options: BenchOptions,
}

/// `fep bench reference`.
#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// The reference model of benchmarks/peers (mnist-small layers, Bernoulli, linear classifier).
    Reference(ReferenceOptions),
}

/// `fep evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// What to evaluate and on what.
    #[command(flatten)]
    pub options: EvaluateOptions,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `fep aggregate`.
#[derive(Debug, Args)]
pub struct AggregateArgs {
    /// The folder holding seed-<s>/ results.
    #[arg(long)]
    pub out: PathBuf,
    /// Which experiment the seeds ran (read from the first seed's summary when not given).
    #[arg(long, value_enum)]
    pub kind: Option<AggregateKind>,
}

/// The experiments that run over seeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AggregateKind {
    /// transfer-iso-classification.
    Transfer,
    /// iso-classification.
    IsoClassification,
}
