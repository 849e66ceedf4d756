//! Closed forms of the linear-Gaussian model (docs/THEORY.md, section "The exact linear-Gaussian model"), in f64.
//!
//! With `Q = lambda/(2 sigma0^2) I + gamma/(2 sigmac^2) W'W` and `q_i`, `U` the
//! eigen-pairs of `K = Sigma^(1/2) Q Sigma^(1/2)`, the optimal posterior error
//! covariance is `E = Sigma^(1/2) U diag(min(1, 1/(2 q_i))) U' Sigma^(1/2)`, and
//! `R* = 1/2 sum_{q_i > 1/2} log(2 q_i)`, `D* = n/2 log(2 pi sigma0^2) + tr E / (2 sigma0^2)`,
//! `C* = m/2 log(2 pi sigmac^2) + (tr(W E W') + tr Psi) / (2 sigmac^2)` where Psi is the
//! residual covariance of y given x.

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ThermoError};
use crate::sensitivity::Sensitivities;
use crate::system::{Functionals, Multipliers};

/// Second moments of a zero-mean joint distribution of (x, y); only these matter
/// for the linear-Gaussian family, and they mix linearly along `p_t`.
#[derive(Debug, Clone, PartialEq)]
pub struct JointMoments {
    /// `E[x x']` (n x n, symmetric positive definite).
    pub sxx: DMatrix<f64>,
    /// `E[y x']` (m x n).
    pub syx: DMatrix<f64>,
    /// `E[y y']` (m x m).
    pub syy: DMatrix<f64>,
}

impl JointMoments {
    /// Moments of `x ~ N(0, Sigma)`, `y = W x + eps`, `eps ~ N(0, s^2 I)`.
    pub fn linear_gaussian(sigma: &DMatrix<f64>, w: &DMatrix<f64>, noise_std: f64) -> Self {
        let m = w.nrows();
        Self {
            sxx: sigma.clone(),
            syx: w * sigma,
            syy: w * sigma * w.transpose() + DMatrix::identity(m, m) * noise_std.powi(2),
        }
    }

    /// Moments of the mixture `(1 - t) p_a + t p_b`.
    pub fn mix(a: &JointMoments, b: &JointMoments, t: f64) -> Self {
        Self {
            sxx: &a.sxx * (1.0 - t) + &b.sxx * t,
            syx: &a.syx * (1.0 - t) + &b.syx * t,
            syy: &a.syy * (1.0 - t) + &b.syy * t,
        }
    }

    /// Dimension n of x.
    pub fn n(&self) -> usize {
        self.sxx.nrows()
    }

    /// Dimension m of y.
    pub fn m(&self) -> usize {
        self.syy.nrows()
    }

    /// Regression of y on x: `W = Syx Sxx^-1` and the trace of the residual
    /// covariance `Psi = Syy - W Sxx W'`.
    pub fn regression(&self) -> Result<(DMatrix<f64>, f64)> {
        let chol = self.sxx.clone().cholesky().ok_or_else(|| {
            ThermoError::InvalidConfig("covariance of x is not positive definite".into())
        })?;
        // W' = Sxx^-1 Sxy.
        let w = chol.solve(&self.syx.transpose()).transpose();
        let psi = &self.syy - &w * &self.sxx * w.transpose();
        Ok((w, psi.trace()))
    }
}

/// The exact equilibrium surface of the linear-Gaussian model on one data distribution.
#[derive(Debug, Clone)]
pub struct ClosedForm {
    sigma_half: DMatrix<f64>,
    w: DMatrix<f64>,
    residual_trace: f64,
    sigma0: f64,
    sigmac: f64,
}

/// The optimum at one (lambda, gamma).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExactPoint {
    /// R*, D*, C*.
    pub functionals: Functionals,
    /// `F = R* + lambda D* + gamma C*`.
    pub free_energy: f64,
}

fn symmetric_sqrt(a: &DMatrix<f64>) -> Result<DMatrix<f64>> {
    let eig = SymmetricEigen::new(a.clone());
    if eig.eigenvalues.iter().any(|&v| v <= 0.0) {
        return Err(ThermoError::InvalidConfig(
            "covariance of x is not positive definite".into(),
        ));
    }
    let d = DMatrix::from_diagonal(&eig.eigenvalues.map(f64::sqrt));
    Ok(&eig.eigenvectors * d * eig.eigenvectors.transpose())
}

/// `f(q) = min(1, 1/(2q))`: the optimal shrinkage of each eigen-direction.
fn shrink(q: f64) -> f64 {
    if q > 0.5 { 1.0 / (2.0 * q) } else { 1.0 }
}

fn shrink_derivative(q: f64) -> f64 {
    if q > 0.5 { -1.0 / (2.0 * q * q) } else { 0.0 }
}

impl ClosedForm {
    /// The surface for data moments and fixed decoder / classifier deviations.
    pub fn new(moments: &JointMoments, sigma0: f64, sigmac: f64) -> Result<Self> {
        if !(sigma0 > 0.0 && sigmac > 0.0) {
            return Err(ThermoError::InvalidConfig(format!(
                "sigma0 and sigmac must be positive, got {sigma0} and {sigmac}"
            )));
        }
        let (w, residual_trace) = moments.regression()?;
        Ok(Self {
            sigma_half: symmetric_sqrt(&moments.sxx)?,
            w,
            residual_trace,
            sigma0,
            sigmac,
        })
    }

    fn n(&self) -> usize {
        self.sigma_half.nrows()
    }

    fn m(&self) -> usize {
        self.w.nrows()
    }

    fn check(&self, mult: Multipliers) -> Result<()> {
        if !(mult.lambda > 0.0 && mult.gamma >= 0.0) {
            return Err(ThermoError::InvalidConfig(format!(
                "the exact surface needs lambda > 0 and gamma >= 0, got ({}, {})",
                mult.lambda, mult.gamma
            )));
        }
        Ok(())
    }

    /// `dK/dlambda` and `dK/dgamma`.
    fn k_derivatives(&self) -> (DMatrix<f64>, DMatrix<f64>) {
        let s = &self.sigma_half;
        let k_l = s * s / (2.0 * self.sigma0.powi(2));
        let k_g = s * self.w.transpose() * &self.w * s / (2.0 * self.sigmac.powi(2));
        (k_l, k_g)
    }

    fn eigen(&self, mult: Multipliers) -> SymmetricEigen<f64, nalgebra::Dyn> {
        let (k_l, k_g) = self.k_derivatives();
        SymmetricEigen::new(k_l * mult.lambda + k_g * mult.gamma)
    }

    fn functionals_of_error(&self, e: &DMatrix<f64>) -> (f64, f64) {
        let n = self.n() as f64;
        let m = self.m() as f64;
        let two_pi = 2.0 * std::f64::consts::PI;
        let d =
            0.5 * n * (two_pi * self.sigma0.powi(2)).ln() + e.trace() / (2.0 * self.sigma0.powi(2));
        let c = 0.5 * m * (two_pi * self.sigmac.powi(2)).ln()
            + ((&self.w * e * self.w.transpose()).trace() + self.residual_trace)
                / (2.0 * self.sigmac.powi(2));
        (d, c)
    }

    /// The eigenvalues `q_i` of `Sigma^(1/2) Q Sigma^(1/2)`; directions with
    /// `q_i > 1/2` carry information.
    pub fn spectrum(&self, mult: Multipliers) -> Result<Vec<f64>> {
        self.check(mult)?;
        Ok(self.eigen(mult).eigenvalues.iter().copied().collect())
    }

    /// R*, D*, C* and F at (lambda, gamma).
    pub fn point(&self, mult: Multipliers) -> Result<ExactPoint> {
        self.check(mult)?;
        let eig = self.eigen(mult);
        let rate: f64 = eig
            .eigenvalues
            .iter()
            .filter(|&&q| q > 0.5)
            .map(|&q| 0.5 * (2.0 * q).ln())
            .sum();
        let mdiag = DMatrix::from_diagonal(&eig.eigenvalues.map(shrink));
        let u = &eig.eigenvectors;
        let e = &self.sigma_half * u * mdiag * u.transpose() * &self.sigma_half;
        let (distortion, classification) = self.functionals_of_error(&e);
        let functionals = Functionals {
            rate,
            distortion,
            classification,
        };
        Ok(ExactPoint {
            functionals,
            free_energy: functionals.lagrangian(mult),
        })
    }

    /// The exact susceptibilities, by the Daleckii-Krein formula for the derivative
    /// of the matrix function `M = f(K)`: `dM = U (L o U' dK U) U'` with
    /// `L_ij = (f(q_i) - f(q_j)) / (q_i - q_j)` (or `f'(q_i)` on ties).
    pub fn sensitivities(&self, mult: Multipliers) -> Result<Sensitivities> {
        self.check(mult)?;
        let eig = self.eigen(mult);
        let q = &eig.eigenvalues;
        let u = &eig.eigenvectors;
        let k = q.len();
        let scale = q.iter().fold(0.0_f64, |a, &b| a.max(b.abs())).max(1.0);
        let loewner = DMatrix::from_fn(k, k, |i, j| {
            let (qi, qj) = (q[i], q[j]);
            if (qi - qj).abs() > 1e-9 * scale {
                (shrink(qi) - shrink(qj)) / (qi - qj)
            } else {
                shrink_derivative(0.5 * (qi + qj))
            }
        });
        let (k_l, k_g) = self.k_derivatives();
        let response = |dk: &DMatrix<f64>| -> (f64, f64) {
            let inner = (u.transpose() * dk * u).component_mul(&loewner);
            let de = &self.sigma_half * u * inner * u.transpose() * &self.sigma_half;
            let dd = de.trace() / (2.0 * self.sigma0.powi(2));
            let dc = (&self.w * &de * self.w.transpose()).trace() / (2.0 * self.sigmac.powi(2));
            (dd, dc)
        };
        let (dd_dl, dc_dl) = response(&k_l);
        let (dd_dg, dc_dg) = response(&k_g);
        Ok(Sensitivities {
            dD_dlambda: dd_dl,
            dD_dgamma: dd_dg,
            dC_dlambda: dc_dl,
            dC_dgamma: dc_dg,
        })
    }

    /// The gamma >= 0 with `C*(lambda, gamma) = c0` (C* is non-increasing in gamma).
    pub fn gamma_for_classification(&self, lambda: f64, c0: f64) -> Result<f64> {
        let c = |gamma: f64| -> Result<f64> {
            Ok(self
                .point(Multipliers::new(lambda, gamma))?
                .functionals
                .classification)
        };
        let mut lo = 0.0;
        let c_lo = c(lo)?;
        if c_lo < c0 {
            return Err(ThermoError::NoRoot(format!(
                "at lambda = {lambda}, C* is {c_lo:.6} already at gamma = 0, below the target {c0:.6}"
            )));
        }
        let mut hi = 1.0;
        let mut doublings = 0;
        while c(hi)? > c0 {
            lo = hi;
            hi *= 2.0;
            doublings += 1;
            if doublings > 60 {
                return Err(ThermoError::NoRoot(format!(
                    "at lambda = {lambda}, no gamma brings C* down to {c0:.6}"
                )));
            }
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if c(mid)? > c0 {
                lo = mid;
            } else {
                hi = mid;
            }
            if hi - lo <= 1e-13 * hi.max(1.0) {
                break;
            }
        }
        Ok(0.5 * (lo + hi))
    }
}

/// The exact transfer path: on the mixture of `source` and `target` at t, the gamma
/// that keeps `C*_t(lambda, gamma) = c0`.
pub fn transfer_gamma(
    source: &JointMoments,
    target: &JointMoments,
    t: f64,
    lambda: f64,
    c0: f64,
    sigma0: f64,
    sigmac: f64,
) -> Result<f64> {
    ClosedForm::new(&JointMoments::mix(source, target, t), sigma0, sigmac)?
        .gamma_for_classification(lambda, c0)
}
