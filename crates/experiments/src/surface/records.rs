//! What a surface run writes: a line per measured point in its shard file, a line per
//! point of the merged surface, and the summary.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fep_models::StandardErrors;
use fep_thermo::Functionals;
use fep_thermo::surface::{Shard, SurfaceChecks, SurfacePoint};
use fep_thermo::{EquilibriumReport, StoppingRule};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::config::SurfaceConfig;
use crate::format::{Result2, Versioned};

/// One line of a shard file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    /// 1-based shard.
    pub shard: usize,
    /// Shards in all.
    pub of: usize,
    /// Grid index of lambda.
    pub i: usize,
    /// Grid index of gamma.
    pub j: usize,
    /// The equilibrium point measured on the training data with fresh noise (`samples`
    /// draws per example), with the noise covariance of its functionals.
    pub point: SurfacePoint,
    /// Standard errors of the training-data functionals (noise only).
    pub standard_errors: StandardErrors,
    /// R, D, C on the held-out probe (validation split).
    pub held_out: Functionals,
    /// Test accuracy at the point.
    pub accuracy: f64,
    /// Seed of the sweep.
    pub seed: u64,
    /// Training examples measured.
    pub examples: usize,
    /// Seconds spent on this point.
    pub wall_seconds: f64,
    /// How its equilibration went.
    pub equilibrium: EquilibriumReport,
}

/// One line of `surface.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceRow {
    /// The equilibrium point (training data, fresh noise).
    #[serde(flatten)]
    pub point: SurfacePoint,
    /// Standard errors of its functionals (noise only).
    pub standard_errors: StandardErrors,
    /// R, D, C on the held-out probe.
    pub held_out: Functionals,
    /// Test accuracy at the point.
    pub accuracy: f64,
    /// The shard that measured it.
    pub shard: usize,
    /// How its equilibration went.
    pub equilibrium: EquilibriumReport,
}

/// `summary.json` of a merged surface (format [`crate::format::SUMMARY_FORMAT`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurfaceSummary {
    /// The version of this file's layout ([`crate::format`] upgrades older ones).
    pub format: u32,
    /// Grid values of lambda.
    pub lambdas: Vec<f64>,
    /// Grid values of gamma.
    pub gammas: Vec<f64>,
    /// The measured identities, on the training-data functionals.
    pub checks: SurfaceChecks,
    /// Where the functionals of the checks come from.
    pub measurement: SurfaceMeasurement,
    /// How far the held-out functionals are from the training ones.
    pub held_out_gap: HeldOutGap,
    /// Least-squares quadratic fits of R, D, C and F in (lambda, gamma).
    pub quadratic_fits: BTreeMap<String, [f64; 6]>,
    /// The basis of the fits.
    pub fit_basis: String,
    /// Number of shards.
    pub shards: Option<usize>,
    /// Seed.
    pub seed: u64,
    /// Backend and device of the merge.
    pub device: String,
    /// Training time summed over points, seconds.
    pub wall_seconds_summed_over_points: f64,
    /// How the points' equilibrations went (`None`: not recorded, in files upgraded from
    /// format 1).
    pub equilibrium: Option<SweepEquilibrium>,
    /// The config.
    pub config: SurfaceConfig,
}

impl Versioned for SurfaceSummary {
    fn upgrade_step(map: &mut Map<String, Value>, from: u32) -> Result2 {
        debug_assert_eq!(from, 1, "format 2 is the current one");
        map.entry("equilibrium").or_insert(Value::Null);
        Ok(())
    }
}

/// Where the functionals of the checks come from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SurfaceMeasurement {
    /// Training examples measured at every point.
    pub examples: usize,
    /// Fresh noise draws per example.
    pub samples: usize,
    /// Largest standard error of R, D, C over the points (noise only, nats).
    pub max_standard_errors: StandardErrors,
}

/// Largest `held-out - training` difference of each functional over the points (nats):
/// where the identities would be tested if they were measured on held-out data.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct HeldOutGap {
    /// Of R.
    pub rate: f64,
    /// Of D.
    pub distortion: f64,
    /// Of C.
    pub classification: f64,
}

/// How the equilibrations of a sweep's points went.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SweepEquilibrium {
    /// The rule of the points after each shard's first.
    pub rule: StoppingRule,
    /// Points.
    pub points: usize,
    /// Points whose equilibration met the rule's criterion.
    pub met: usize,
    /// Adam steps of all points.
    pub optimizer_steps: usize,
}

/// The shard file of `shard` under `out`.
pub fn shard_path(out: &Path, shard: Shard) -> PathBuf {
    out.join("shards").join(format!(
        "shard-{}-of-{}.jsonl",
        shard.index + 1,
        shard.count
    ))
}
