//! The equilibrium surface: points and grids ([`grid`]), the measured residuals of
//! its thermodynamic identities ([`checks`]), sweeping a system over a grid in
//! shards ([`sweep`]) and a quadratic model of it ([`fit`]).

pub mod checks;
pub mod fit;
pub mod grid;
pub mod sweep;

pub use checks::{CHECK_NAMES, CheckSettings, CheckSummary, Place, SurfaceChecks};
pub use fit::QuadraticFit;
pub use grid::{GridSpec, SurfaceGrid, SurfacePoint};
pub use sweep::{GridCell, Shard, Sweep, SweepPoint, assemble_grid, shard_points, snake_order};
