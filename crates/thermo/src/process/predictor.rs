//! The predictor of a continuation step and the tangent law it follows.
//!
//! With `x_D = H^-1 grad D`, `x_C = H^-1 grad C` and, when the data move,
//! `x_T = H^-1 (grad J_1 - grad J_0)` and `dG = G_1 - G_0` (at fixed theta on target
//! and source), the parameter velocity along the path is
//! `theta' = -(lambda' x_D + gamma' x_C + t' x_T)` and holding G fixed gives
//! `gamma' = [t' dG - lambda' g_G.x_D - t' g_G.x_T] / g_G.x_C`
//! (docs/THEORY.md, section "Processes"). Without data motion and G = C this is the
//! iso-classification law `gamma' = -(dC/dlambda / dC/dgamma) lambda'`.

use tracing::debug;

use super::bounds::{GammaBounds, TrustRegion};
use super::constraint::Constraint;
use super::schedule::ProcessPath;
use crate::error::{Result, ThermoError};
use crate::sensitivity::{IftConfig, ift_sensitivities, solve_damped};
use crate::system::{Functionals, Multipliers, ThermodynamicSystem};
use crate::vector::{axpy, dot};

/// The tangent of the equilibrium path at the current point.
#[derive(Debug, Clone)]
pub struct Tangent {
    /// `dgamma/ds` by the tangent law (0 where the constraint does not solve gamma).
    pub gamma_rate: f64,
    /// `dtheta/ds = -(lambda' x_D + gamma' x_C + t' x_T)`.
    pub theta_rate: Vec<f64>,
    /// `dtheta/dgamma = -x_C` at fixed lambda and t.
    pub theta_per_gamma: Vec<f64>,
    /// `dG/dgamma = -g_G.x_C` of the constrained functional at fixed lambda and t.
    pub monitored_per_gamma: f64,
}

impl Tangent {
    /// The tangent at the system's current (equilibrated) parameters, multipliers `m`
    /// and path position `s`, by the implicit function theorem. The parameters and
    /// the data position are left as they were.
    pub fn at<S: ThermodynamicSystem + ?Sized>(
        system: &mut S,
        m: Multipliers,
        s: f64,
        path: &ProcessPath,
        constraint: &dyn Constraint,
        ift: &IftConfig,
    ) -> Result<Tangent> {
        let sol = ift_sensitivities(system, m, ift)?;
        let lambda_rate = path.lambda_end - path.lambda_start;
        let t_rate = path.data_rate(s);
        // Data motion: dG_t = G_1 - G_0 and dgJ = grad J_1 - grad J_0 at fixed theta.
        let (data_delta, x_t) = if path.moves_data() {
            let t_here = path.data(s);
            let weights = m.lagrangian_weights();
            system.set_data_position(1.0)?;
            let (f1, g1) = system.gradient(weights)?;
            system.set_data_position(0.0)?;
            let (f0, g0) = system.gradient(weights)?;
            system.set_data_position(t_here)?;
            let dg: Vec<f64> = g1.iter().zip(&g0).map(|(a, b)| a - b).collect();
            let x = solve_damped(system, m, &dg, sol.damping, ift)?.x;
            (f1.sub(&f0), x)
        } else {
            (Functionals::default(), vec![0.0; sol.grad_distortion.len()])
        };
        let x_d = &sol.h_inv_grad_distortion;
        let x_c = &sol.h_inv_grad_classification;
        let which = constraint.monitored();
        let g = constraint.gradient(&sol, m);
        let g_xc = dot(&g, x_c);
        let gamma_rate = if constraint.solves_gamma() {
            if g_xc == 0.0 {
                return Err(ThermoError::NoRoot(format!(
                    "the {which:?} functional does not respond to gamma here; the constraint cannot be held"
                )));
            }
            (t_rate * data_delta.get(which) - lambda_rate * dot(&g, x_d) - t_rate * dot(&g, &x_t))
                / g_xc
        } else {
            0.0
        };
        let theta_rate: Vec<f64> = (0..x_d.len())
            .map(|i| -(lambda_rate * x_d[i] + gamma_rate * x_c[i] + t_rate * x_t[i]))
            .collect();
        debug!(gamma_rate, "tangent");
        Ok(Tangent {
            gamma_rate,
            theta_rate,
            theta_per_gamma: x_c.iter().map(|v| -v).collect(),
            monitored_per_gamma: -g_xc,
        })
    }
}

/// How a step guesses the next point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Predictor {
    /// First order: `(gamma, theta) += h (gamma', theta')` along the [`Tangent`],
    /// scaled into the trust region (the paper's Euler step when the region is
    /// unbounded).
    Tangent {
        /// Limits of the predicted move.
        trust: TrustRegion,
    },
    /// Zeroth order: move lambda and t, keep gamma and theta (a warm start).
    Hold,
}

impl Predictor {
    /// Error unless the trust region is valid.
    pub fn validate(&self) -> Result<()> {
        match self {
            Predictor::Tangent { trust } => trust.validate(),
            Predictor::Hold => Ok(()),
        }
    }
}

/// The predicted multipliers `(lambda_next, gamma + h gamma')` of a step of length
/// `h` from `m`, after moving the system's parameters from `theta` (the current
/// ones) to `theta + h theta'`; the move is scaled into the trust region and gamma
/// clamped into `bounds` ([`Predictor::Tangent`]).
#[allow(clippy::too_many_arguments)]
pub fn along_tangent<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    trust: &TrustRegion,
    theta: Vec<f64>,
    tangent: &Tangent,
    m: Multipliers,
    h: f64,
    lambda_next: f64,
    bounds: GammaBounds,
) -> Result<Multipliers> {
    let mut theta = theta;
    let dtheta: Vec<f64> = tangent.theta_rate.iter().map(|v| v * h).collect();
    let scale = trust.scale(m.gamma, tangent.gamma_rate * h, &theta, &dtheta);
    if scale < 1.0 {
        debug!(scale, "predictor scaled into the trust region");
    }
    axpy(scale, &dtheta, &mut theta);
    system.set_params(&theta)?;
    Ok(Multipliers::new(
        lambda_next,
        bounds.clamp(m.gamma + scale * tangent.gamma_rate * h),
    ))
}

/// The zeroth-order prediction `(lambda_next, gamma)` (gamma clamped into `bounds`);
/// the parameters stay where they are ([`Predictor::Hold`]).
pub fn hold(m: Multipliers, lambda_next: f64, bounds: GammaBounds) -> Multipliers {
    Multipliers::new(lambda_next, bounds.clamp(m.gamma))
}
