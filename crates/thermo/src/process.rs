//! Quasi-static processes: paths (lambda(s), gamma(s), t(s)) along which the model
//! stays at equilibrium, with gamma solved from a constraint.
//!
//! The path parameter s runs from 0 to 1; lambda and the data position t are
//! scheduled linearly in s, gamma is the unknown. With `theta' = -H^-1 (lambda' gD +
//! gamma' gC + t' (grad J_1 - grad J_0))` (DESIGN.md section 5) the total derivative
//! of a functional G along the path is `t' (G_1 - G_0) + grad G . theta'`; holding G
//! fixed gives `gamma' = [t' dG_t - lambda' gG.H^-1 gD - t' gG.H^-1 dgJ] / gG.H^-1 gC`.
//! Without data motion this is the iso-classification law
//! `gamma' = -(dC/dlambda / dC/dgamma) lambda'`.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use crate::error::{Result, ThermoError};
use crate::sensitivity::{IftConfig, ift_sensitivities, solve_damped};
use crate::system::{Functional, Functionals, Multipliers, ThermodynamicSystem};
use crate::vector::{axpy, dot};

/// What a process holds fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Constraint {
    /// Hold one functional at its starting value (iso-classification holds C).
    Iso(Functional),
    /// Hold gamma fixed (the naive path that lets the functionals drift).
    FixedGamma,
}

impl Constraint {
    /// Iso-classification: C constant.
    pub const ISO_CLASSIFICATION: Constraint = Constraint::Iso(Functional::Classification);
    /// Iso-distortion: D constant.
    pub const ISO_DISTORTION: Constraint = Constraint::Iso(Functional::Distortion);
    /// Iso-rate: R constant.
    pub const ISO_RATE: Constraint = Constraint::Iso(Functional::Rate);

    /// The functional the constraint monitors (C for the naive path, whose drift we report).
    pub fn monitored(&self) -> Functional {
        match self {
            Constraint::Iso(f) => *f,
            Constraint::FixedGamma => Functional::Classification,
        }
    }
}

/// The driven variables: lambda and the data position t, linear in s from start to end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessPath {
    /// lambda at s = 0.
    pub lambda_start: f64,
    /// lambda at s = 1.
    pub lambda_end: f64,
    /// Data position t at s = 0.
    pub data_start: f64,
    /// Data position t at s = 1.
    pub data_end: f64,
    /// `t(s) = t_0 + (t_1 - t_0) s^p`: p = 1 moves the data uniformly; p > 1 spends the
    /// early steps at tiny t, where a new target must be learnt before its weight grows.
    #[serde(default = "one")]
    pub data_exponent: f64,
}

fn one() -> f64 {
    1.0
}

impl ProcessPath {
    /// lambda from `a` to `b` on fixed data (t = 0).
    pub fn lambda_only(a: f64, b: f64) -> Self {
        Self {
            lambda_start: a,
            lambda_end: b,
            data_start: 0.0,
            data_end: 0.0,
            data_exponent: 1.0,
        }
    }

    /// Data from source (t = 0) to target (t = 1) while lambda moves from `a` to `b`.
    pub fn transfer(a: f64, b: f64) -> Self {
        Self {
            lambda_start: a,
            lambda_end: b,
            data_start: 0.0,
            data_end: 1.0,
            data_exponent: 1.0,
        }
    }

    /// lambda(s).
    pub fn lambda(&self, s: f64) -> f64 {
        self.lambda_start + s * (self.lambda_end - self.lambda_start)
    }

    /// The same path with `t(s) = t_0 + (t_1 - t_0) s^p`.
    pub fn with_data_exponent(mut self, p: f64) -> Self {
        self.data_exponent = p;
        self
    }

    /// t(s).
    pub fn data(&self, s: f64) -> f64 {
        self.data_start
            + s.clamp(0.0, 1.0).powf(self.data_exponent) * (self.data_end - self.data_start)
    }

    /// dt/ds at s.
    pub fn data_rate(&self, s: f64) -> f64 {
        let p = self.data_exponent;
        let ds = if p == 1.0 {
            1.0
        } else {
            p * s.clamp(0.0, 1.0).powf(p - 1.0)
        };
        ds * (self.data_end - self.data_start)
    }

    fn moves_data(&self) -> bool {
        self.data_end != self.data_start
    }
}

/// Settings of the predictor-corrector continuation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictorCorrectorConfig {
    /// First step in s.
    pub initial_step: f64,
    /// Smallest step before the integrator gives up with an error.
    pub min_step: f64,
    /// Largest step.
    pub max_step: f64,
    /// Accept a step when `|G - G0| <= tolerance |G0|`.
    pub relative_tolerance: f64,
    /// Newton iterations on gamma per step before the step is shrunk.
    pub max_corrector_iterations: usize,
    /// Optimiser steps of each re-equilibration.
    pub equilibration_steps: usize,
    /// Step growth after an easy step (at most 2 corrector iterations).
    pub growth: f64,
    /// Step shrink after a failed corrector.
    pub shrink: f64,
    /// gamma is never raised above this value (the corrector treats it as a wall).
    #[serde(default = "unbounded")]
    pub max_gamma: f64,
    /// gamma is never lowered below this value (0: J must weigh C non-negatively).
    #[serde(default)]
    pub min_gamma: f64,
    /// When the step cannot shrink further (`min_step`), accept the last corrector iterate
    /// and flag the record (`converged = false`) instead of stopping with an error: the
    /// trace then shows honestly how far the constraint drifted.
    #[serde(default)]
    pub accept_unconverged: bool,
    /// Trust region of the predictor and of each Newton update: gamma moves by at most
    /// this fraction of `max(gamma, 1)` (the move is scaled down otherwise).
    #[serde(default = "unbounded")]
    pub max_relative_gamma_step: f64,
    /// Trust region: the parameters move by at most this fraction of `|theta|` per
    /// predictor or Newton update (deep networks: the damped tangent can be far off).
    #[serde(default = "unbounded")]
    pub max_relative_theta_step: f64,
}

fn unbounded() -> f64 {
    f64::INFINITY
}

/// The largest factor in (0, 1] that keeps a move `(dgamma, dtheta)` inside the trust region.
fn trust_scale(
    cfg: &PredictorCorrectorConfig,
    gamma: f64,
    dgamma: f64,
    theta: &[f64],
    dtheta: &[f64],
) -> f64 {
    let mut scale: f64 = 1.0;
    let g_cap = cfg.max_relative_gamma_step * gamma.abs().max(1.0);
    if dgamma.abs() > g_cap {
        scale = scale.min(g_cap / dgamma.abs());
    }
    let t_norm = dot(theta, theta).sqrt();
    let d_norm = dot(dtheta, dtheta).sqrt();
    let t_cap = cfg.max_relative_theta_step * t_norm.max(1.0);
    if d_norm > t_cap {
        scale = scale.min(t_cap / d_norm);
    }
    scale
}

impl Default for PredictorCorrectorConfig {
    fn default() -> Self {
        Self {
            initial_step: 0.1,
            min_step: 1e-3,
            max_step: 0.25,
            relative_tolerance: 1e-4,
            max_corrector_iterations: 6,
            equilibration_steps: 300,
            growth: 1.5,
            shrink: 0.5,
            max_relative_gamma_step: f64::INFINITY,
            max_relative_theta_step: f64::INFINITY,
            accept_unconverged: false,
            max_gamma: f64::INFINITY,
            min_gamma: 0.0,
        }
    }
}

/// Settings of the paper's Euler scheme.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EulerConfig {
    /// Number of equal steps in s.
    pub steps: usize,
    /// Optimiser steps after each tangent step.
    pub equilibration_steps: usize,
}

impl Default for EulerConfig {
    fn default() -> Self {
        Self {
            steps: 20,
            equilibration_steps: 300,
        }
    }
}

/// A process integrator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Integrator {
    /// Tangent step, then K equilibration steps; no correction (the paper's scheme).
    Euler(EulerConfig),
    /// Tangent predictor, Newton corrector on gamma, adaptive step.
    PredictorCorrector(PredictorCorrectorConfig),
}

/// One recorded point of a process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Path parameter s in [0, 1].
    pub s: f64,
    /// Data position t.
    pub t: f64,
    /// Multiplier lambda.
    pub lambda: f64,
    /// Multiplier gamma.
    pub gamma: f64,
    /// Rate R (nats).
    pub rate: f64,
    /// Distortion D (nats).
    pub distortion: f64,
    /// Classification loss C (nats).
    pub classification: f64,
    /// `F = R + lambda D + gamma C` measured at the point.
    pub free_energy: f64,
    /// Value of the monitored functional.
    pub constraint_value: f64,
    /// `(G - G0) / |G0|` of the monitored functional.
    pub relative_drift: f64,
    /// Work `integral D dlambda + C dgamma` from the start (trapezoidal).
    pub work: f64,
    /// Corrector iterations of this step (0 for Euler and the naive path).
    pub corrector_iterations: usize,
    /// Whether the corrector met its tolerance (always true for Euler and fixed gamma).
    pub converged: bool,
    /// Wall time since the start of the process, seconds.
    pub wall_seconds: f64,
}

/// The result of a process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessResult {
    /// Value of the monitored functional at the start (c0 for iso-classification).
    pub target: f64,
    /// Every accepted point, the start included.
    pub records: Vec<StepRecord>,
    /// Largest `|G - G0| / |G0|` along the path.
    pub max_relative_drift: f64,
}

impl ProcessResult {
    /// First-law residual `(F(end) - F(start)) - integral(D dlambda + C dgamma)` on fixed data.
    pub fn first_law_residual(&self) -> f64 {
        let (first, last) = (self.records[0], self.records[self.records.len() - 1]);
        (last.free_energy - first.free_energy) - last.work
    }
}

/// Run a quasi-static process from the system's current (equilibrated) state at
/// `start`, where `start.lambda` must equal `path.lambda(0)`. `on_step` sees each
/// accepted record as it is made (progress bars, logs).
pub fn run_process<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    start: Multipliers,
    path: &ProcessPath,
    constraint: Constraint,
    integrator: &Integrator,
    ift: &IftConfig,
    mut on_step: impl FnMut(&StepRecord),
) -> Result<ProcessResult> {
    if (start.lambda - path.lambda(0.0)).abs() > 1e-12 * start.lambda.abs().max(1.0) {
        return Err(ThermoError::InvalidConfig(format!(
            "process starts at lambda = {} but the path starts at {}",
            start.lambda,
            path.lambda(0.0)
        )));
    }
    let clock = Instant::now();
    system.set_data_position(path.data(0.0))?;
    let f0 = system.functionals()?;
    f0.check_finite(start)?;
    let monitored = constraint.monitored();
    let target = f0.get(monitored);
    let mut tracker = Tracker {
        target,
        monitored,
        records: Vec::new(),
        clock,
    };
    tracker.push(0.0, path.data(0.0), start, f0, 0, true, &mut on_step);
    match integrator {
        Integrator::Euler(cfg) => run_euler(
            system,
            start,
            path,
            constraint,
            cfg,
            ift,
            &mut tracker,
            &mut on_step,
        )?,
        Integrator::PredictorCorrector(cfg) => run_predictor_corrector(
            system,
            start,
            path,
            constraint,
            cfg,
            ift,
            &mut tracker,
            &mut on_step,
        )?,
    }
    let max_relative_drift = tracker
        .records
        .iter()
        .map(|r| r.relative_drift.abs())
        .fold(0.0, f64::max);
    Ok(ProcessResult {
        target,
        records: tracker.records,
        max_relative_drift,
    })
}

struct Tracker {
    target: f64,
    monitored: Functional,
    records: Vec<StepRecord>,
    clock: Instant,
}

impl Tracker {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        s: f64,
        t: f64,
        m: Multipliers,
        f: Functionals,
        corrector_iterations: usize,
        converged: bool,
        on_step: &mut impl FnMut(&StepRecord),
    ) {
        let work = match self.records.last() {
            None => 0.0,
            Some(prev) => {
                prev.work
                    + 0.5 * (prev.distortion + f.distortion) * (m.lambda - prev.lambda)
                    + 0.5 * (prev.classification + f.classification) * (m.gamma - prev.gamma)
            }
        };
        let value = f.get(self.monitored);
        let record = StepRecord {
            s,
            t,
            lambda: m.lambda,
            gamma: m.gamma,
            rate: f.rate,
            distortion: f.distortion,
            classification: f.classification,
            free_energy: f.lagrangian(m),
            constraint_value: value,
            relative_drift: (value - self.target) / self.target.abs().max(f64::MIN_POSITIVE),
            work,
            corrector_iterations,
            converged,
            wall_seconds: self.clock.elapsed().as_secs_f64(),
        };
        info!(
            s = format!("{s:.4}"),
            lambda = format!("{:.4}", m.lambda),
            gamma = format!("{:.4}", m.gamma),
            drift = format!("{:+.2e}", record.relative_drift),
            "process step"
        );
        on_step(&record);
        self.records.push(record);
    }
}

/// The tangent of the equilibrium path at the current point.
struct Tangent {
    /// d gamma / ds.
    gamma_rate: f64,
    /// d theta / ds.
    theta_rate: Vec<f64>,
    /// d theta / d gamma at fixed lambda and t.
    theta_per_gamma: Vec<f64>,
    /// dG/dgamma of the monitored functional at fixed lambda and t.
    monitored_per_gamma: f64,
}

fn tangent<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    m: Multipliers,
    s: f64,
    path: &ProcessPath,
    constraint: Constraint,
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
        let delta = Functionals {
            rate: f1.rate - f0.rate,
            distortion: f1.distortion - f0.distortion,
            classification: f1.classification - f0.classification,
        };
        (delta, x)
    } else {
        (Functionals::default(), vec![0.0; sol.grad_distortion.len()])
    };
    let x_d = &sol.h_inv_grad_distortion;
    let x_c = &sol.h_inv_grad_classification;
    let monitored = constraint.monitored();
    let g = sol.gradient_of(monitored, m);
    let g_xc = dot(&g, x_c);
    let gamma_rate = match constraint {
        Constraint::FixedGamma => 0.0,
        Constraint::Iso(which) => {
            if g_xc == 0.0 {
                return Err(ThermoError::NoRoot(format!(
                    "the {which:?} functional does not respond to gamma here; the constraint cannot be held"
                )));
            }
            (t_rate * data_delta.get(which) - lambda_rate * dot(&g, x_d) - t_rate * dot(&g, &x_t))
                / g_xc
        }
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

#[allow(clippy::too_many_arguments)]
fn run_euler<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    start: Multipliers,
    path: &ProcessPath,
    constraint: Constraint,
    cfg: &EulerConfig,
    ift: &IftConfig,
    tracker: &mut Tracker,
    on_step: &mut impl FnMut(&StepRecord),
) -> Result<()> {
    if cfg.steps == 0 {
        return Err(ThermoError::InvalidConfig(
            "Euler needs at least one step".into(),
        ));
    }
    let ds = 1.0 / cfg.steps as f64;
    let mut m = start;
    for k in 0..cfg.steps {
        let s = k as f64 * ds;
        let s_next = (k + 1) as f64 * ds;
        let tan = tangent(system, m, s, path, constraint, ift)?;
        let mut theta = system.params()?;
        axpy(ds, &tan.theta_rate, &mut theta);
        system.set_params(&theta)?;
        m = Multipliers::new(path.lambda(s_next), m.gamma + tan.gamma_rate * ds);
        system.set_data_position(path.data(s_next))?;
        let f = system.equilibrate(m, cfg.equilibration_steps)?;
        f.check_finite(m)?;
        tracker.push(s_next, path.data(s_next), m, f, 0, true, on_step);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn run_predictor_corrector<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    start: Multipliers,
    path: &ProcessPath,
    constraint: Constraint,
    cfg: &PredictorCorrectorConfig,
    ift: &IftConfig,
    tracker: &mut Tracker,
    on_step: &mut impl FnMut(&StepRecord),
) -> Result<()> {
    if !(cfg.min_step > 0.0 && cfg.min_step <= cfg.initial_step && cfg.initial_step <= cfg.max_step)
    {
        return Err(ThermoError::InvalidConfig(format!(
            "predictor-corrector steps must satisfy 0 < min_step <= initial_step <= max_step, got {} {} {}",
            cfg.min_step, cfg.initial_step, cfg.max_step
        )));
    }
    let target = tracker.target;
    let tolerance = cfg.relative_tolerance * target.abs().max(f64::MIN_POSITIVE);
    let mut m = start;
    let mut s = 0.0;
    let mut step = cfg.initial_step;
    while s < 1.0 - 1e-12 {
        let h = step.min(1.0 - s);
        let theta_start = system.params()?;
        let tan = tangent(system, m, s, path, constraint, ift)?;
        let s_next = s + h;
        let mut theta = theta_start.clone();
        let dtheta: Vec<f64> = tan.theta_rate.iter().map(|v| v * h).collect();
        let scale = trust_scale(cfg, m.gamma, tan.gamma_rate * h, &theta_start, &dtheta);
        if scale < 1.0 {
            debug!(scale, "predictor scaled into the trust region");
        }
        axpy(scale, &dtheta, &mut theta);
        system.set_params(&theta)?;
        system.set_data_position(path.data(s_next))?;
        let mut trial = Multipliers::new(
            path.lambda(s_next),
            (m.gamma + scale * tan.gamma_rate * h)
                .clamp(cfg.min_gamma, cfg.max_gamma.max(cfg.min_gamma)),
        );
        let mut f = system.equilibrate(trial, cfg.equilibration_steps)?;
        f.check_finite(trial)?;
        let mut iterations = 0;
        let mut failure = None;
        if let Constraint::Iso(which) = constraint {
            // Newton on gamma with the slope from the tangent, refined by secants.
            let mut slope = tan.monitored_per_gamma;
            let mut previous: Option<(f64, f64)> = None;
            loop {
                let residual = f.get(which) - target;
                debug!(
                    iterations,
                    gamma = trial.gamma,
                    value = f.get(which),
                    target,
                    "corrector"
                );
                if residual.abs() <= tolerance {
                    break;
                }
                if iterations >= cfg.max_corrector_iterations {
                    failure = Some(format!(
                        "{which:?} still off by {:.3e} (relative) after {iterations} corrector iterations",
                        residual / target.abs()
                    ));
                    break;
                }
                if let Some((g_prev, r_prev)) = previous {
                    let secant = (residual - r_prev) / (trial.gamma - g_prev);
                    if secant.is_finite() && secant * slope > 0.0 {
                        slope = secant;
                    }
                }
                previous = Some((trial.gamma, residual));
                // A Newton step on gamma, at most doubling or halving gamma's scale.
                let limit = trial.gamma.abs().max(0.1);
                let mut delta_gamma = (-residual / slope).clamp(-0.5 * limit, limit);
                let mut theta = system.params()?;
                let dtheta: Vec<f64> = tan
                    .theta_per_gamma
                    .iter()
                    .map(|v| v * delta_gamma)
                    .collect();
                let mut scale = trust_scale(cfg, trial.gamma, delta_gamma, &theta, &dtheta);
                if delta_gamma > 0.0 && trial.gamma + scale * delta_gamma > cfg.max_gamma {
                    scale = ((cfg.max_gamma - trial.gamma) / delta_gamma).max(0.0);
                }
                if delta_gamma < 0.0 && trial.gamma + scale * delta_gamma < cfg.min_gamma {
                    scale = ((cfg.min_gamma - trial.gamma) / delta_gamma).max(0.0);
                }
                delta_gamma *= scale;
                axpy(scale, &dtheta, &mut theta);
                system.set_params(&theta)?;
                trial.gamma += delta_gamma;
                f = system.equilibrate(trial, cfg.equilibration_steps)?;
                f.check_finite(trial)?;
                iterations += 1;
            }
        }
        match failure {
            None => {
                s = s_next;
                m = trial;
                tracker.push(s, path.data(s), m, f, iterations, true, on_step);
                if iterations <= 2 {
                    step = (step * cfg.growth).min(cfg.max_step);
                }
            }
            Some(reason) if cfg.accept_unconverged && step * cfg.shrink < cfg.min_step => {
                warn!(
                    s = s_next,
                    reason, "corrector did not converge; accepting the step flagged"
                );
                s = s_next;
                m = trial;
                tracker.push(s, path.data(s), m, f, iterations, false, on_step);
            }
            Some(reason) => {
                system.set_params(&theta_start)?;
                system.set_data_position(path.data(s))?;
                step *= cfg.shrink;
                debug!(step, reason, "corrector failed; shrinking the step");
                if step < cfg.min_step {
                    return Err(ThermoError::StepTooSmall {
                        step,
                        min_step: cfg.min_step,
                        s,
                        lambda: m.lambda,
                        gamma: m.gamma,
                        reason,
                    });
                }
            }
        }
    }
    Ok(())
}
