//! The thermodynamic identities of the equilibrium surface (docs/THEORY.md, section
//! "Functionals and free energy"), each measured on a grid by its own function, each
//! residual weighed against an estimate of its own error.
//!
//! On a grid an identity never holds exactly: derivatives and integrals are taken from
//! a few nodes (a *discretisation* error, of order `h^2` or higher in the spacing), and
//! a deep model's functionals are Monte-Carlo averages (a *noise* error). Every residual
//! here is therefore computed twice, by a higher-order formula (the reported residual)
//! and by the embedded formula one order lower: their difference estimates the
//! discretisation error of the lower-order one, a conservative bound for the reported
//! residual (the embedded-pair estimate of Runge-Kutta and Richardson extrapolation).
//! Every residual is a linear combination of the nodes' (R, D, C, F); its noise standard
//! error follows from each node's covariance of (R, D, C) ([`SurfacePoint::covariance`]),
//! the nodes taken as independent draws. A place violates its identity when
//!
//! ```text
//! |residual| > factor * sqrt(discretisation^2 + noise^2 + floor^2)
//! ```
//!
//! ([`CheckSettings`]); `|residual| / sqrt(...)` is the residual *in units of its error
//! estimate* that the summaries report.
//!
//! The code is split by concern, each module depending only on those before it:
//! `summary` (the settings, places and summaries: the reported types), `combination`
//! (residuals as linear combinations of the nodes' functionals, with their error
//! estimates), `stencil` (derivatives and integrals along grid lines), and the identities
//! themselves: `differences` (monotonicity and minimality, from differences of two
//! nodes), `integrals` (envelope theorems and the first law) and `curvature` (the Maxwell
//! relation and concavity).
//!
//! [`SurfacePoint::covariance`]: crate::surface::SurfacePoint::covariance

mod combination;
mod curvature;
mod differences;
mod integrals;
mod stencil;
mod summary;

pub use curvature::{concavity, maxwell};
pub use differences::{
    classification_decreasing_in_gamma, distortion_decreasing_in_lambda, minimality,
};
pub use integrals::{envelope_gamma, envelope_lambda, first_law};
pub use summary::{CHECK_NAMES, CheckSettings, CheckSummary, Place, SurfaceChecks};

use super::grid::SurfaceGrid;
use crate::error::Result;

impl SurfaceGrid {
    /// Every place of every identity, in the order of [`CHECK_NAMES`].
    pub fn check_places(&self, settings: CheckSettings) -> Result<Vec<Place>> {
        settings.validate()?;
        let mut out = distortion_decreasing_in_lambda(self, settings);
        out.extend(classification_decreasing_in_gamma(self, settings));
        out.extend(envelope_lambda(self, settings));
        out.extend(envelope_gamma(self, settings));
        out.extend(maxwell(self, settings));
        out.extend(concavity(self, settings));
        out.extend(first_law(self, settings));
        out.extend(minimality(self, settings));
        Ok(out)
    }

    /// The summary of every identity.
    pub fn checks(&self, settings: CheckSettings) -> Result<SurfaceChecks> {
        Ok(SurfaceChecks::of(&self.check_places(settings)?, settings))
    }
}
