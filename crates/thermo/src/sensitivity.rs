//! Susceptibilities of the equilibrium surface: how D and C respond to lambda and
//! gamma, by the implicit function theorem and by finite differences on the surface.

use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

/// How many times the IFT estimator multiplies its damping by ten after a failed solve.
const MAX_DAMPING_INCREASES: usize = 3;

use crate::equilibrium::StoppingRule;
use crate::error::{Result, ThermoError};
use crate::system::{Functional, Functionals, Multipliers, ThermodynamicSystem, Weights};
use crate::vector::{add_scaled, axpy, dot, norm};

/// The Hessian `[[dD/dlambda, dD/dgamma], [dC/dlambda, dC/dgamma]]` of the free
/// energy F(lambda, gamma); symmetric negative semi-definite at a true optimum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct Sensitivities {
    /// `dD/dlambda` (<= 0 at equilibrium).
    pub dD_dlambda: f64,
    /// `dD/dgamma` (= dC/dlambda by the Maxwell relation).
    pub dD_dgamma: f64,
    /// `dC/dlambda`.
    pub dC_dlambda: f64,
    /// `dC/dgamma` (<= 0 at equilibrium).
    pub dC_dgamma: f64,
}

impl Sensitivities {
    /// Maxwell residual `dD/dgamma - dC/dlambda` (zero at a true optimum).
    pub fn maxwell_residual(&self) -> f64 {
        self.dD_dgamma - self.dC_dlambda
    }

    /// Determinant `dD/dlambda dC/dgamma - dD/dgamma dC/dlambda` of the Hessian of F
    /// (>= 0 where F is concave).
    pub fn determinant(&self) -> f64 {
        self.dD_dlambda * self.dC_dgamma - self.dD_dgamma * self.dC_dlambda
    }

    /// The largest relative deviation from `other` over the four entries, where a
    /// deviation counts as relative to `max(|other|, abs_floor)`.
    pub fn max_relative_deviation(&self, other: &Sensitivities, abs_floor: f64) -> f64 {
        [
            (self.dD_dlambda, other.dD_dlambda),
            (self.dD_dgamma, other.dD_dgamma),
            (self.dC_dlambda, other.dC_dlambda),
            (self.dC_dgamma, other.dC_dgamma),
        ]
        .iter()
        .map(|(a, b)| (a - b).abs() / b.abs().max(abs_floor))
        .fold(0.0, f64::max)
    }
}

/// How Hessian-vector products are formed (one scheme today; the enum keeps the
/// `kind = "finite-difference"` tag of the configuration files).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum HvpMethod {
    /// `(grad J(theta + h v) - grad J(theta - h v)) / 2h` with
    /// `h = relative_step (1 + |theta|) / |v|`.
    FiniteDifference {
        /// Step relative to the parameter norm.
        relative_step: f64,
    },
}

/// Settings of the implicit-function-theorem estimator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IftConfig {
    /// Damping `delta` of `H + delta I`, relative to the curvature scale
    /// `gD' H gD / |gD|^2` measured at the point (networks have flat directions,
    /// for instance the rescaling of a latent coordinate together with its prior).
    pub relative_damping: f64,
    /// Relative residual at which conjugate gradients stop.
    pub cg_tolerance: f64,
    /// Maximum conjugate-gradient iterations per solve.
    pub cg_max_iterations: usize,
    /// Hessian-vector products.
    pub hvp: HvpMethod,
    /// Largest relative residual at which a conjugate-gradient solve is still accepted
    /// (1e-2 by default). Deep networks use truncated CG (Hessian-free style): a few
    /// dozen iterations on a damped Hessian, accepted at a loose residual, because the
    /// corrector of a process absorbs what the tangent misses.
    #[serde(default = "default_max_accepted_residual")]
    pub max_accepted_residual: f64,
}

fn default_max_accepted_residual() -> f64 {
    1e-2
}

impl Default for IftConfig {
    fn default() -> Self {
        Self {
            relative_damping: 1e-5,
            cg_tolerance: 1e-6,
            cg_max_iterations: 1000,
            hvp: HvpMethod::FiniteDifference {
                relative_step: 1e-3,
            },
            max_accepted_residual: default_max_accepted_residual(),
        }
    }
}

/// `(hess J) v` at the system's current parameters, J at `multipliers`; the
/// parameters are restored afterwards.
pub fn hessian_vector_product<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    multipliers: Multipliers,
    v: &[f64],
    method: HvpMethod,
) -> Result<Vec<f64>> {
    let HvpMethod::FiniteDifference { relative_step } = method;
    let v_norm = norm(v);
    if v_norm == 0.0 {
        return Ok(vec![0.0; v.len()]);
    }
    let theta = system.params()?;
    let h = relative_step * (1.0 + norm(&theta)) / v_norm;
    let weights = multipliers.lagrangian_weights();
    system.set_params(&add_scaled(&theta, h, v))?;
    let plus = system.gradient(weights);
    let minus = plus.and_then(|(_, gp)| {
        system.set_params(&add_scaled(&theta, -h, v))?;
        system.gradient(weights).map(|(_, gm)| (gp, gm))
    });
    system.set_params(&theta)?;
    let (gp, gm) = minus?;
    Ok(gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect())
}

/// Solution of `(H + delta I) x = b` by conjugate gradients.
#[derive(Debug, Clone)]
pub struct CgSolution {
    /// The solution x.
    pub x: Vec<f64>,
    /// Iterations used.
    pub iterations: usize,
    /// Final relative residual `|b - (H + delta I) x| / |b|`.
    pub relative_residual: f64,
}

/// Damped conjugate gradients with a Hessian-vector-product oracle.
///
/// Stops at the tolerance, at the iteration limit, or where the recurrence meets a
/// direction of non-positive curvature (possible with noisy finite-difference
/// products); the caller sees the final residual in every case.
pub fn conjugate_gradients(
    mut apply: impl FnMut(&[f64]) -> Result<Vec<f64>>,
    b: &[f64],
    damping: f64,
    tolerance: f64,
    max_iterations: usize,
) -> Result<CgSolution> {
    let n = b.len();
    let b_norm = norm(b);
    let mut x = vec![0.0; n];
    if b_norm == 0.0 {
        return Ok(CgSolution {
            x,
            iterations: 0,
            relative_residual: 0.0,
        });
    }
    let mut r = b.to_vec();
    let mut p = r.clone();
    let mut rr = dot(&r, &r);
    let mut iterations = 0;
    while iterations < max_iterations && rr.sqrt() > tolerance * b_norm {
        let mut ap = apply(&p)?;
        axpy(damping, &p, &mut ap);
        let curvature = dot(&p, &ap);
        if curvature <= 0.0 || !curvature.is_finite() {
            debug!(
                iterations,
                curvature, "CG met non-positive curvature; stopping"
            );
            if iterations == 0 && damping > 0.0 && curvature.is_finite() {
                // Nothing learnt about H along b: answer with the damping term alone,
                // x = b / delta (the Levenberg limit), and say the residual is unknown.
                for (xi, bi) in x.iter_mut().zip(b) {
                    *xi = bi / damping;
                }
                return Ok(CgSolution {
                    x,
                    iterations,
                    relative_residual: 1.0,
                });
            }
            break;
        }
        let alpha = rr / curvature;
        axpy(alpha, &p, &mut x);
        axpy(-alpha, &ap, &mut r);
        let rr_new = dot(&r, &r);
        let beta = rr_new / rr;
        rr = rr_new;
        for (pi, ri) in p.iter_mut().zip(&r) {
            *pi = ri + beta * *pi;
        }
        iterations += 1;
    }
    Ok(CgSolution {
        x,
        iterations,
        relative_residual: rr.sqrt() / b_norm,
    })
}

/// What the implicit function theorem gives at an equilibrium: the sensitivities
/// and the parameter responses `theta_lambda = -H^-1 gD`, `theta_gamma = -H^-1 gC`.
#[derive(Debug, Clone)]
pub struct IftSolution {
    /// The four susceptibilities `-g_a' (H + delta I)^-1 g_b`.
    pub sensitivities: Sensitivities,
    /// Functionals at the point.
    pub functionals: Functionals,
    /// `grad D`.
    pub grad_distortion: Vec<f64>,
    /// `grad C`.
    pub grad_classification: Vec<f64>,
    /// `(H + delta I)^-1 grad D`.
    pub h_inv_grad_distortion: Vec<f64>,
    /// `(H + delta I)^-1 grad C`.
    pub h_inv_grad_classification: Vec<f64>,
    /// The absolute damping delta used.
    pub damping: f64,
    /// CG iterations of the two solves.
    pub cg_iterations: usize,
    /// Worst relative CG residual of the two solves.
    pub cg_residual: f64,
}

/// Sensitivities by the implicit function theorem: `dD/dlambda = -gD' H^-1 gD`,
/// `dC/dgamma = -gC' H^-1 gC`, `dC/dlambda = -gC' H^-1 gD`, `dD/dgamma = -gD' H^-1 gC`,
/// with H the (damped) Hessian of J at the current parameters.
pub fn ift_sensitivities<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    multipliers: Multipliers,
    config: &IftConfig,
) -> Result<IftSolution> {
    let (functionals, grad_d) = system.gradient(Weights::only(Functional::Distortion))?;
    let (_, grad_c) = system.gradient(Weights::only(Functional::Classification))?;
    for (name, g) in [("grad D", &grad_d), ("grad C", &grad_c)] {
        if let Some(bad) = g.iter().find(|v| !v.is_finite()) {
            return Err(ThermoError::NonFinite {
                what: name.into(),
                lambda: multipliers.lambda,
                gamma: multipliers.gamma,
                value: *bad,
            });
        }
    }
    let mut damping = absolute_damping(system, multipliers, &grad_d, config)?;
    // Off equilibrium, or with noisy finite-difference products, H can look
    // indefinite; raise the damping tenfold (Levenberg style) a few times before giving up.
    let mut attempt = 0;
    let (x_d, x_c) = loop {
        let solved = solve_damped(system, multipliers, &grad_d, damping, config).and_then(|x_d| {
            solve_damped(system, multipliers, &grad_c, damping, config).map(|x_c| (x_d, x_c))
        });
        match solved {
            Ok(pair) => break pair,
            Err(ThermoError::CgNotConverged { .. }) if attempt < MAX_DAMPING_INCREASES => {
                attempt += 1;
                damping *= 10.0;
                warn!(
                    damping,
                    "conjugate gradients failed; retrying with more damping"
                );
            }
            Err(e) => return Err(e),
        }
    };
    let sensitivities = Sensitivities {
        dD_dlambda: -dot(&grad_d, &x_d.x),
        dD_dgamma: -dot(&grad_d, &x_c.x),
        dC_dlambda: -dot(&grad_c, &x_d.x),
        dC_dgamma: -dot(&grad_c, &x_c.x),
    };
    debug!(?sensitivities, damping, "IFT sensitivities");
    Ok(IftSolution {
        sensitivities,
        functionals,
        grad_distortion: grad_d,
        grad_classification: grad_c,
        h_inv_grad_distortion: x_d.x,
        h_inv_grad_classification: x_c.x,
        damping,
        cg_iterations: x_d.iterations + x_c.iterations,
        cg_residual: x_d.relative_residual.max(x_c.relative_residual),
    })
}

/// `delta = relative_damping * gD' H gD / |gD|^2`.
fn absolute_damping<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    multipliers: Multipliers,
    grad_d: &[f64],
    config: &IftConfig,
) -> Result<f64> {
    let gg = dot(grad_d, grad_d);
    if gg == 0.0 {
        return Ok(config.relative_damping);
    }
    let hg = hessian_vector_product(system, multipliers, grad_d, config.hvp)?;
    let scale = (dot(grad_d, &hg) / gg).abs();
    Ok(config.relative_damping * scale.max(f64::MIN_POSITIVE))
}

/// `(H + delta I)^-1 b` at the system's current parameters.
pub fn solve_damped<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    multipliers: Multipliers,
    b: &[f64],
    damping: f64,
    config: &IftConfig,
) -> Result<CgSolution> {
    let solution = conjugate_gradients(
        |v| hessian_vector_product(system, multipliers, v, config.hvp),
        b,
        damping,
        config.cg_tolerance,
        config.cg_max_iterations,
    )?;
    if !solution.relative_residual.is_finite()
        || solution.relative_residual > config.max_accepted_residual
    {
        return Err(ThermoError::CgNotConverged {
            iterations: solution.iterations,
            residual: solution.relative_residual,
        });
    }
    Ok(solution)
}

/// Settings of the finite-difference-on-the-surface estimator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurfaceDifferenceConfig {
    /// Half-width of the lambda difference, relative to lambda.
    pub relative_lambda_step: f64,
    /// Half-width of the gamma difference, relative to gamma (absolute where gamma is 0).
    pub relative_gamma_step: f64,
    /// Optimiser steps of each warm-started re-equilibration.
    pub equilibration_steps: usize,
    /// The stopping rule of each re-equilibration; overrides `equilibration_steps`.
    #[serde(default)]
    pub equilibrium: Option<StoppingRule>,
}

impl SurfaceDifferenceConfig {
    /// The rule of each re-equilibration: `equilibrium`, else `equilibration_steps` fixed steps.
    pub fn rule(&self) -> StoppingRule {
        self.equilibrium
            .unwrap_or(StoppingRule::fixed(self.equilibration_steps))
    }
}

impl Default for SurfaceDifferenceConfig {
    fn default() -> Self {
        Self {
            relative_lambda_step: 0.05,
            relative_gamma_step: 0.05,
            equilibration_steps: 2000,
            equilibrium: None,
        }
    }
}

/// Sensitivities by central differences of re-equilibrated functionals at
/// `lambda +/- dl` and `gamma +/- dg`, each warm-started from the current
/// parameters and equilibrated by [`SurfaceDifferenceConfig::rule`]; the parameters are
/// restored afterwards.
pub fn surface_difference_sensitivities<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    multipliers: Multipliers,
    config: &SurfaceDifferenceConfig,
) -> Result<Sensitivities> {
    let theta = system.params()?;
    let scale = |v: f64| if v == 0.0 { 1.0 } else { v.abs() };
    let dl = config.relative_lambda_step * scale(multipliers.lambda);
    let dg = config.relative_gamma_step * scale(multipliers.gamma);
    let rule = config.rule();
    let mut at = |m: Multipliers| -> Result<Functionals> {
        system.set_params(&theta)?;
        let f = system.equilibrate_until(m, &rule)?.functionals;
        f.check_finite(m)?;
        Ok(f)
    };
    let lp = at(Multipliers::new(multipliers.lambda + dl, multipliers.gamma))?;
    let lm = at(Multipliers::new(multipliers.lambda - dl, multipliers.gamma))?;
    let gp = at(Multipliers::new(multipliers.lambda, multipliers.gamma + dg))?;
    let gm = at(Multipliers::new(multipliers.lambda, multipliers.gamma - dg))?;
    system.set_params(&theta)?;
    Ok(Sensitivities {
        dD_dlambda: (lp.distortion - lm.distortion) / (2.0 * dl),
        dC_dlambda: (lp.classification - lm.classification) / (2.0 * dl),
        dD_dgamma: (gp.distortion - gm.distortion) / (2.0 * dg),
        dC_dgamma: (gp.classification - gm.classification) / (2.0 * dg),
    })
}
