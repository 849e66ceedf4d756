//! `surface`: the equilibrium surface of a deep model over a (lambda, gamma) grid. Every
//! point is trained to equilibrium warm-started from its grid neighbour (the sweep of
//! `fep-thermo`), in shards for job arrays; `merge` joins the shards, measures the
//! identities of the surface and draws it.

mod config;
mod merge;
mod records;
mod shard;

pub use config::{SurfaceConfig, SurfaceOptions, SweepConfig};
pub use merge::{merge, read_shards};
pub use records::{
    HeldOutGap, ShardRecord, SurfaceMeasurement, SurfaceRow, SurfaceSummary, SweepEquilibrium,
    shard_path,
};
pub use shard::run_shard;
