//! Equilibrium reached on a measured criterion.
//!
//! Every number of the project is "the model at equilibrium at (lambda, gamma)", the
//! minimiser `theta*(lambda, gamma) = argmin J`, `J = R + lambda D + gamma C`. A
//! [`StoppingRule`] says when an equilibration may stop, and every equilibration returns
//! what it measured ([`EquilibriumReport`]): the optimiser steps it took, the final value
//! of its criterion, and whether the criterion was met before the budget ran out.
//!
//! * [`StoppingRule::GradientNorm`], for deterministic objectives (the exact model): the
//!   norm of `grad J` below a tolerance, optionally finished by a quasi-Newton method
//!   where first-order steps crawl (near a critical point of the surface, where a
//!   latent direction switches on or off, the Hessian is nearly singular);
//! * [`StoppingRule::Stationary`], for stochastic optimisation (deep models): the window
//!   means of R, D and C over the optimiser's minibatches differ from the previous
//!   window's by less than `z` combined standard errors, `consecutive` windows in a row;
//! * [`StoppingRule::FixedSteps`]: a fixed number of steps, equilibrium assumed, not
//!   measured (reported as not met).

use crate::error::{Result, ThermoError};
use crate::system::{Functionals, Multipliers, ThermodynamicSystem};
use crate::vector::norm;

mod lbfgs;
pub mod rule;

pub use rule::{Equilibrium, EquilibriumReport, FINISH_FACTOR, StationarityTest, StoppingRule};

/// Equilibrates `system` at `m` by `rule` through the trait's plain `equilibrate` and
/// `gradient`, for [`ThermodynamicSystem::equilibrate_until`] of deterministic systems. Fixed steps and
/// the gradient-norm rule work for every system; the stationarity test needs the
/// optimiser's minibatch measurements, which only the system itself has, so here it is an
/// error.
pub fn equilibrate_by_rule<S: ThermodynamicSystem + ?Sized>(
    system: &mut S,
    m: Multipliers,
    rule: &StoppingRule,
) -> Result<Equilibrium> {
    match *rule {
        StoppingRule::FixedSteps { steps } => {
            let functionals = system.equilibrate(m, steps)?;
            Ok(Equilibrium {
                functionals,
                report: EquilibriumReport::unmeasured(steps),
            })
        }
        StoppingRule::GradientNorm {
            tolerance,
            check_every,
            max_steps,
            quasi_newton_iterations,
        } => {
            if check_every == 0 || tolerance.is_nan() || tolerance <= 0.0 {
                return Err(ThermoError::InvalidConfig(format!(
                    "the gradient-norm rule needs check_every > 0 and tolerance > 0, got {check_every} and {tolerance}"
                )));
            }
            let weights = m.lagrangian_weights();
            let mut steps = 0;
            let (functionals, g) = loop {
                let (functionals, gradient) = system.gradient(weights)?;
                functionals.check_finite(m)?;
                let g = norm(&gradient);
                if g <= tolerance || steps >= max_steps {
                    break (functionals, g);
                }
                let chunk = check_every.min(max_steps - steps);
                system.equilibrate(m, chunk)?;
                steps += chunk;
            };
            let target = FINISH_FACTOR * tolerance;
            if g <= target || quasi_newton_iterations == 0 {
                return Ok(Equilibrium {
                    functionals,
                    report: EquilibriumReport {
                        steps,
                        quasi_newton_iterations: 0,
                        criterion: Some(g),
                        met: g <= tolerance,
                    },
                });
            }
            let done = lbfgs::finish(system, m, target, quasi_newton_iterations)?;
            Ok(Equilibrium {
                functionals: done.functionals,
                report: EquilibriumReport {
                    steps,
                    quasi_newton_iterations: done.iterations,
                    criterion: Some(done.gradient_norm),
                    met: done.gradient_norm <= tolerance,
                },
            })
        }
        StoppingRule::Stationary(_) => Err(ThermoError::InvalidConfig(
            "the stationarity test needs the optimiser's minibatch measurements, which this system does not report; use the gradient-norm rule or fixed steps".into(),
        )),
    }
}

/// Running window statistics of the stationarity test.
#[derive(Debug, Clone, Default)]
pub struct StationarityMonitor {
    current: [Moments; 3],
    previous: Option<[(f64, f64); 3]>,
    passes: usize,
    steps: usize,
    last_statistic: Option<f64>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    n: usize,
    sum: f64,
    sum_sq: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    /// Mean and standard error of the mean (sample variance / n).
    fn mean_se(&self) -> (f64, f64) {
        let n = self.n.max(1) as f64;
        let mean = self.sum / n;
        let var = if self.n > 1 {
            ((self.sum_sq - n * mean * mean) / (n - 1.0)).max(0.0)
        } else {
            0.0
        };
        (mean, (var / n).sqrt())
    }
}

impl StationarityMonitor {
    /// Records the minibatch functionals of one optimiser step; returns `true` when the
    /// test declares equilibrium after this step.
    pub fn push(&mut self, test: &StationarityTest, f: Functionals) -> bool {
        for (m, x) in self
            .current
            .iter_mut()
            .zip([f.rate, f.distortion, f.classification])
        {
            m.push(x);
        }
        self.steps += 1;
        if self.current[0].n < test.window.max(2) {
            return false;
        }
        let now = self.current.map(|m| m.mean_se());
        self.current = Default::default();
        if let Some(prev) = self.previous {
            let statistic = now
                .iter()
                .zip(&prev)
                .map(|(&(m1, s1), &(m0, s0))| {
                    let se = (s1 * s1 + s0 * s0).sqrt();
                    let d = (m1 - m0).abs();
                    if se > 0.0 {
                        d / se
                    } else if d == 0.0 {
                        0.0
                    } else {
                        f64::INFINITY
                    }
                })
                .fold(0.0, f64::max);
            self.last_statistic = Some(statistic);
            if statistic <= test.z {
                self.passes += 1;
            } else {
                self.passes = 0;
            }
        }
        self.previous = Some(now);
        self.passes >= test.consecutive && self.steps >= test.min_steps
    }

    /// Optimiser steps recorded.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The statistic of the last completed window pair.
    pub fn statistic(&self) -> Option<f64> {
        self.last_statistic
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> Functionals {
        Functionals {
            rate: x,
            distortion: 2.0 * x,
            classification: -x,
        }
    }

    const TEST: StationarityTest = StationarityTest {
        window: 10,
        consecutive: 2,
        z: 2.0,
        min_steps: 0,
        max_steps: 1000,
    };

    #[test]
    fn a_stationary_sequence_passes_after_the_required_windows() {
        let mut m = StationarityMonitor::default();
        // Alternating +-1 around 5: every window has mean 5 and a positive standard error.
        let mut declared_at = None;
        for k in 0..100 {
            let x = 5.0 + if k % 2 == 0 { 1.0 } else { -1.0 };
            if m.push(&TEST, f(x)) {
                declared_at = Some(k + 1);
                break;
            }
        }
        // Windows end at 10, 20, 30; comparisons at 20 and 30 pass: declared at step 30.
        assert_eq!(declared_at, Some(30));
        assert_eq!(m.statistic(), Some(0.0));
    }

    #[test]
    fn a_drifting_sequence_never_passes() {
        let mut m = StationarityMonitor::default();
        for k in 0..1000 {
            // A steady descent with small noise: window means move by 10 standard errors.
            let x = 100.0 - 0.1 * k as f64 + if k % 2 == 0 { 0.01 } else { -0.01 };
            assert!(!m.push(&TEST, f(x)), "declared at step {k}");
        }
        assert!(m.statistic().is_some_and(|s| s > TEST.z));
    }

    #[test]
    fn min_steps_delays_the_verdict() {
        let test = StationarityTest {
            min_steps: 55,
            ..TEST
        };
        let mut m = StationarityMonitor::default();
        let mut declared_at = None;
        for k in 0..200 {
            let x = 5.0 + if k % 2 == 0 { 1.0 } else { -1.0 };
            if m.push(&test, f(x)) {
                declared_at = Some(k + 1);
                break;
            }
        }
        assert_eq!(declared_at, Some(60), "the first window end at or after 55");
    }

    #[test]
    fn reports_chain_steps_and_keep_the_last_verdict() {
        let a = EquilibriumReport {
            steps: 100,
            quasi_newton_iterations: 2,
            criterion: Some(3.0),
            met: false,
        };
        let b = EquilibriumReport {
            steps: 40,
            quasi_newton_iterations: 0,
            criterion: Some(0.5),
            met: true,
        };
        let c = a.then(b);
        assert_eq!(c.steps, 140);
        assert_eq!(c.quasi_newton_iterations, 2);
        assert_eq!(c.criterion, Some(0.5));
        assert!(c.met);
        assert!(!EquilibriumReport::unmeasured(7).met);
        let rule: StoppingRule =
            toml::from_str("rule = \"stationary\"\nwindow = 20\nconsecutive = 2\nz = 2.0\nmin_steps = 40\nmax_steps = 400")
                .expect("parses");
        assert_eq!(rule.max_steps(), 400);
        let fixed: StoppingRule =
            toml::from_str("rule = \"fixed-steps\"\nsteps = 80").expect("parses");
        assert_eq!(fixed, StoppingRule::fixed(80));
        assert!(
            toml::from_str::<StoppingRule>("rule = \"gradient-norm\"\ntolerance = 1e-4").is_err()
        );
    }
}
