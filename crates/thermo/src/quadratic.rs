//! A toy thermodynamic system with closed forms: quadratic rate, distortion and
//! classification loss of a parameter vector theta, in f64.
//!
//! `R(theta) = 1/2 theta' A theta`, and for G in {D, C} with matrix M in {P, Q}
//! `G_t(theta) = (1 - t) G_0(theta) + t G_1(theta)`,
//! `G_k(theta) = 1/2 (theta - a_k)' M (theta - a_k) + o_k` (centres a_k, offsets o_k),
//! with A, P, Q symmetric positive definite. Then `J = R + lambda D_t + gamma C_t` has
//! Hessian `H = A + lambda P + gamma Q`, its minimiser is
//! `theta* = H^-1 (lambda P abar_t + gamma Q cbar_t)` with the mixed centres
//! `abar_t = (1 - t) a_0 + t a_1` (likewise cbar_t), the free energy is
//! `F = J(theta*)`, and the susceptibilities are `dG/dm = -g_G' H^-1 g_m` exactly.
//!
//! [`QuadraticSystem`] implements [`ThermodynamicSystem`] with exact gradients and an
//! `equilibrate` that solves the linear system, so processes, sensitivities and
//! surface checks can be tested (or explored) in microseconds against the closed forms.

use nalgebra::{DMatrix, DVector};

use crate::equilibrium::{Equilibrium, StoppingRule, equilibrate_by_rule};
use crate::error::{Result, ThermoError};
use crate::sensitivity::Sensitivities;
use crate::system::{Functionals, Multipliers, ThermodynamicSystem, Weights};

/// One quadratic family `G_t = (1 - t) G_0 + t G_1`,
/// `G_k(theta) = 1/2 (theta - c_k)' M (theta - c_k) + o_k`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuadraticTerm {
    /// The symmetric positive definite matrix M.
    pub matrix: DMatrix<f64>,
    /// Centres `c_0` (source, t = 0) and `c_1` (target, t = 1).
    pub centres: [DVector<f64>; 2],
    /// Offsets `o_0`, `o_1`.
    pub offsets: [f64; 2],
}

impl QuadraticTerm {
    /// A term that is the same on source and target.
    pub fn fixed(matrix: DMatrix<f64>, centre: DVector<f64>, offset: f64) -> Self {
        Self {
            matrix,
            centres: [centre.clone(), centre],
            offsets: [offset, offset],
        }
    }

    /// `cbar_t = (1 - t) c_0 + t c_1`.
    pub fn centre(&self, t: f64) -> DVector<f64> {
        &self.centres[0] * (1.0 - t) + &self.centres[1] * t
    }

    /// `G_k(theta)` of one end (k = 0 source, 1 target).
    fn end_value(&self, k: usize, theta: &DVector<f64>) -> f64 {
        let d = theta - &self.centres[k];
        0.5 * d.dot(&(&self.matrix * &d)) + self.offsets[k]
    }

    /// `G_t(theta) = (1 - t) G_0(theta) + t G_1(theta)`.
    pub fn value(&self, theta: &DVector<f64>, t: f64) -> f64 {
        (1.0 - t) * self.end_value(0, theta) + t * self.end_value(1, theta)
    }

    /// `grad G_t(theta) = M (theta - cbar_t)`.
    pub fn gradient(&self, theta: &DVector<f64>, t: f64) -> DVector<f64> {
        &self.matrix * (theta - self.centre(t))
    }
}

/// The quadratic toy system (see the module documentation), at parameters theta
/// and data position t.
#[derive(Debug, Clone, PartialEq)]
pub struct QuadraticSystem {
    rate: DMatrix<f64>,
    distortion: QuadraticTerm,
    classification: QuadraticTerm,
    theta: DVector<f64>,
    position: f64,
}

fn check_spd(name: &str, m: &DMatrix<f64>, n: usize) -> Result<()> {
    if m.nrows() != n || m.ncols() != n {
        return Err(ThermoError::InvalidConfig(format!(
            "{name} must be {n} x {n}, got {} x {}",
            m.nrows(),
            m.ncols()
        )));
    }
    if m.iter().any(|v| !v.is_finite())
        || (m - m.transpose()).abs().max() > 1e-12 * m.abs().max().max(1.0)
        || m.clone().cholesky().is_none()
    {
        return Err(ThermoError::InvalidConfig(format!(
            "{name} must be finite, symmetric and positive definite"
        )));
    }
    Ok(())
}

impl QuadraticSystem {
    /// The system with rate matrix A, distortion and classification terms, at
    /// `theta = 0` and `t = 0`. Error unless the matrices are SPD of one size n and the
    /// centres have n entries.
    pub fn new(
        rate_matrix: DMatrix<f64>,
        distortion: QuadraticTerm,
        classification: QuadraticTerm,
    ) -> Result<Self> {
        let n = rate_matrix.nrows();
        check_spd("the rate matrix A", &rate_matrix, n)?;
        for (name, term) in [
            ("distortion", &distortion),
            ("classification", &classification),
        ] {
            check_spd(&format!("the {name} matrix"), &term.matrix, n)?;
            let finite = term.offsets.iter().all(|o| o.is_finite())
                && term.centres.iter().all(|c| c.iter().all(|v| v.is_finite()));
            if term.centres.iter().any(|c| c.len() != n) || !finite {
                return Err(ThermoError::InvalidConfig(format!(
                    "the {name} centres must have {n} finite entries"
                )));
            }
        }
        Ok(Self {
            rate: rate_matrix,
            distortion,
            classification,
            theta: DVector::zeros(n),
            position: 0.0,
        })
    }

    /// A fixed two-parameter example: `A = [[1, 0.2], [0.2, 0.8]]`,
    /// `P = [[1.5, 0.3], [0.3, 1]]`, `Q = [[1, -0.2], [-0.2, 2]]`, distortion centres
    /// (1, 0.5) -> (1.2, 0.3), classification centres (1, 0.6) -> (1.1, 0.7),
    /// offsets D: 1 -> 1.1, C: 0.5 -> 0.4. D and C pull theta nearly the same way, so
    /// from (lambda, gamma) = (2, 1) each of R, D, C can be held while lambda falls
    /// to 0.5, and R or C while the data move to the target.
    pub fn example() -> Self {
        let m = |a: f64, b: f64, d: f64| DMatrix::from_row_slice(2, 2, &[a, b, b, d]);
        let v = |a: f64, b: f64| DVector::from_vec(vec![a, b]);
        let distortion = QuadraticTerm {
            matrix: m(1.5, 0.3, 1.0),
            centres: [v(1.0, 0.5), v(1.2, 0.3)],
            offsets: [1.0, 1.1],
        };
        let classification = QuadraticTerm {
            matrix: m(1.0, -0.2, 2.0),
            centres: [v(1.0, 0.6), v(1.1, 0.7)],
            offsets: [0.5, 0.4],
        };
        Self {
            rate: m(1.0, 0.2, 0.8),
            distortion,
            classification,
            theta: DVector::zeros(2),
            position: 0.0,
        }
    }

    /// The rate matrix A.
    pub fn rate_matrix(&self) -> &DMatrix<f64> {
        &self.rate
    }

    /// The distortion term.
    pub fn distortion(&self) -> &QuadraticTerm {
        &self.distortion
    }

    /// The classification term.
    pub fn classification(&self) -> &QuadraticTerm {
        &self.classification
    }

    /// `H = A + lambda P + gamma Q`, the Hessian of J (independent of theta and t).
    pub fn hessian(&self, m: Multipliers) -> DMatrix<f64> {
        &self.rate + &self.distortion.matrix * m.lambda + &self.classification.matrix * m.gamma
    }

    /// `(R, D_t, C_t)` at any theta.
    pub fn functionals_at(&self, theta: &DVector<f64>, t: f64) -> Functionals {
        Functionals {
            rate: 0.5 * theta.dot(&(&self.rate * theta)),
            distortion: self.distortion.value(theta, t),
            classification: self.classification.value(theta, t),
        }
    }

    /// `theta* = H^-1 (lambda P abar_t + gamma Q cbar_t)`; error where H is not positive
    /// definite (J has no minimum).
    pub fn equilibrium(&self, m: Multipliers, t: f64) -> Result<DVector<f64>> {
        let chol = self.hessian(m).cholesky().ok_or_else(|| {
            ThermoError::InvalidConfig(format!(
                "J has no minimum at lambda = {}, gamma = {}: A + lambda P + gamma Q is not positive definite",
                m.lambda, m.gamma
            ))
        })?;
        let rhs = &self.distortion.matrix * self.distortion.centre(t) * m.lambda
            + &self.classification.matrix * self.classification.centre(t) * m.gamma;
        Ok(chol.solve(&rhs))
    }

    /// `(R*, D*, C*)` at the equilibrium of `(lambda, gamma)` on `p_t`.
    pub fn equilibrium_functionals(&self, m: Multipliers, t: f64) -> Result<Functionals> {
        Ok(self.functionals_at(&self.equilibrium(m, t)?, t))
    }

    /// `F(lambda, gamma; t) = min_theta J = R* + lambda D* + gamma C*`.
    pub fn free_energy(&self, m: Multipliers, t: f64) -> Result<f64> {
        Ok(self.equilibrium_functionals(m, t)?.lagrangian(m))
    }

    /// The exact susceptibilities `dG/dm = -g_G' H^-1 g_m` (G, m over D/lambda and
    /// C/gamma) at the equilibrium, with `g_D = P (theta* - abar_t)`,
    /// `g_C = Q (theta* - cbar_t)`.
    pub fn sensitivities(&self, m: Multipliers, t: f64) -> Result<Sensitivities> {
        let theta = self.equilibrium(m, t)?;
        let g_d = self.distortion.gradient(&theta, t);
        let g_c = self.classification.gradient(&theta, t);
        let h = self.hessian(m);
        let chol = h
            .cholesky()
            .ok_or_else(|| ThermoError::InvalidConfig("H is not positive definite".into()))?;
        let x_d = chol.solve(&g_d);
        let x_c = chol.solve(&g_c);
        Ok(Sensitivities {
            dD_dlambda: -g_d.dot(&x_d),
            dD_dgamma: -g_d.dot(&x_c),
            dC_dlambda: -g_c.dot(&x_d),
            dC_dgamma: -g_c.dot(&x_c),
        })
    }
}

impl ThermodynamicSystem for QuadraticSystem {
    fn num_params(&self) -> usize {
        self.theta.len()
    }

    fn params(&self) -> Result<Vec<f64>> {
        Ok(self.theta.iter().copied().collect())
    }

    fn set_params(&mut self, theta: &[f64]) -> Result<()> {
        if theta.len() != self.theta.len() {
            return Err(ThermoError::model(format!(
                "parameter vector has {} entries but the quadratic system has {}",
                theta.len(),
                self.theta.len()
            )));
        }
        self.theta = DVector::from_column_slice(theta);
        Ok(())
    }

    fn data_position(&self) -> f64 {
        self.position
    }

    fn set_data_position(&mut self, t: f64) -> Result<()> {
        crate::system::check_data_position(t)?;
        self.position = t;
        Ok(())
    }

    fn functionals(&mut self) -> Result<Functionals> {
        Ok(self.functionals_at(&self.theta, self.position))
    }

    fn gradient(&mut self, weights: Weights) -> Result<(Functionals, Vec<f64>)> {
        let t = self.position;
        let g = &self.rate * &self.theta * weights.rate
            + self.distortion.gradient(&self.theta, t) * weights.distortion
            + self.classification.gradient(&self.theta, t) * weights.classification;
        Ok((
            self.functionals_at(&self.theta, t),
            g.iter().copied().collect(),
        ))
    }

    /// Fixed steps or the gradient-norm rule ([`equilibrate_by_rule`]).
    fn equilibrate_until(
        &mut self,
        multipliers: Multipliers,
        rule: &StoppingRule,
    ) -> Result<Equilibrium> {
        equilibrate_by_rule(self, multipliers, rule)
    }

    /// Any `steps >= 1` jumps to the exact minimiser theta*; `steps = 0` leaves theta
    /// where it is.
    fn equilibrate(&mut self, multipliers: Multipliers, steps: usize) -> Result<Functionals> {
        if steps > 0 {
            self.theta = self.equilibrium(multipliers, self.position)?;
        }
        self.functionals()
    }
}
