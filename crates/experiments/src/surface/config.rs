//! The config file of `surface` and the command line's options.

use std::path::{Path, PathBuf};

use fep_data::DataConfig;
use fep_thermo::surface::{CheckSettings, GridSpec, Shard};
use fep_thermo::{StationarityTest, StoppingRule};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ResultExt, invalid};
use crate::io::read_toml;

/// The `[sweep]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Adam steps at each point after the warm start.
    pub steps_per_point: usize,
    /// Adam steps at the first point of a shard (from the source checkpoint).
    pub first_point_steps: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Examples per Adam step.
    pub batch_size: usize,
    /// Held-out examples on which R, D, C are also measured (the train/held-out gap).
    pub probe_size: usize,
    /// Fresh noise draws per training example when the surface is measured on the
    /// training data (the functionals the identities are about).
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// When a residual counts as a violation (`factor` error estimates; `floor`).
    #[serde(default)]
    pub checks: CheckSettings,
    /// When the equilibration of a point (after the first) stops: a measured criterion
    /// (`{ rule = "stationary", ... }`), or `steps_per_point` fixed steps where absent;
    /// the first point of a shard gets `first_point_steps` as its budget (`max_steps`).
    #[serde(default)]
    pub equilibrium: Option<StoppingRule>,
    /// Seed of noise and data order.
    pub seed: u64,
}

fn default_samples() -> usize {
    8
}

impl SweepConfig {
    /// The rule of the first point of a shard (from the checkpoint, farther away): the
    /// stationarity test with at least `first_point_steps` steps and twice that budget,
    /// or `first_point_steps` fixed steps.
    pub fn first_rule(&self) -> StoppingRule {
        match self.equilibrium {
            Some(StoppingRule::Stationary(t)) => StoppingRule::Stationary(StationarityTest {
                min_steps: self.first_point_steps.max(t.min_steps),
                max_steps: (2 * self.first_point_steps).max(t.max_steps),
                ..t
            }),
            Some(rule) => rule,
            None => StoppingRule::fixed(self.first_point_steps),
        }
    }

    /// The rule of every other point.
    pub fn point_rule(&self) -> StoppingRule {
        self.equilibrium
            .unwrap_or(StoppingRule::fixed(self.steps_per_point))
    }
}

/// The config file of `surface`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceConfig {
    /// Model every shard starts from.
    pub source_checkpoint: PathBuf,
    /// Data (source classes only).
    pub data: DataConfig,
    /// The grid.
    pub grid: GridSpec,
    /// Training per point.
    pub sweep: SweepConfig,
    /// A process trace (`trace.jsonl` of `fep iso-classification`) whose (lambda, gamma)
    /// path is drawn on the maps of the surface, if the file exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_trace: Option<PathBuf>,
}

impl SurfaceConfig {
    /// Reads and validates a surface config.
    pub fn load(path: &Path) -> Result<Self> {
        let cfg: SurfaceConfig = read_toml(path)?;
        cfg.grid
            .validate()
            .and_then(|()| cfg.sweep.checks.validate())
            .context_with(|| format!("in {}", path.display()))?;
        if cfg.sweep.samples < 2 {
            return Err(invalid(format!(
                "in {}: [sweep] samples must be at least 2 (noise is estimated from the spread of the draws)",
                path.display()
            )));
        }
        Ok(cfg)
    }
}

/// Where and how a surface sweep runs.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct SurfaceOptions {
    /// TOML with source_checkpoint, [data], [grid], [sweep].
    #[cfg_attr(
        feature = "cli",
        arg(long, global = true, default_value = "experiments/surface.toml")
    )]
    pub config: PathBuf,
    /// Folder with the dataset files (default: the bundled subset).
    #[cfg_attr(feature = "cli", arg(long, global = true))]
    pub data_dir: Option<PathBuf>,
    /// Result directory (shards go to <out>/shards/).
    #[cfg_attr(
        feature = "cli",
        arg(long, global = true, default_value = "runs/surface")
    )]
    pub out: PathBuf,
    /// Run only shard i of n (1-based), e.g. `--shard 3/8` for task 3 of a job array of 8.
    #[cfg_attr(feature = "cli", arg(long, default_value = "1/1"))]
    pub shard: Shard,
}
