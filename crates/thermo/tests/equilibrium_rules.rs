//! The stopping rules of `equilibrate_by_rule`, and the L-BFGS finish of the gradient-norm
//! rule, on systems with known minimisers whose own optimiser steps are useless or crawl.

use fep_thermo::{
    Functionals, Multipliers, QuadraticSystem, QuadraticTerm, StoppingRule, ThermoError,
    ThermodynamicSystem, Weights, equilibrate_by_rule,
};
use nalgebra::{DMatrix, DVector};

/// A quadratic system whose optimiser does nothing: only the finish can equilibrate it.
struct Frozen(QuadraticSystem);

impl ThermodynamicSystem for Frozen {
    fn num_params(&self) -> usize {
        self.0.num_params()
    }
    fn params(&self) -> fep_thermo::Result<Vec<f64>> {
        self.0.params()
    }
    fn set_params(&mut self, theta: &[f64]) -> fep_thermo::Result<()> {
        self.0.set_params(theta)
    }
    fn data_position(&self) -> f64 {
        self.0.data_position()
    }
    fn set_data_position(&mut self, t: f64) -> fep_thermo::Result<()> {
        self.0.set_data_position(t)
    }
    fn functionals(&mut self) -> fep_thermo::Result<Functionals> {
        self.0.functionals()
    }
    fn gradient(&mut self, w: Weights) -> fep_thermo::Result<(Functionals, Vec<f64>)> {
        self.0.gradient(w)
    }
    fn equilibrate_until(
        &mut self,
        m: Multipliers,
        rule: &StoppingRule,
    ) -> fep_thermo::Result<fep_thermo::Equilibrium> {
        fep_thermo::equilibrate_by_rule(self, m, rule)
    }
    fn equilibrate(&mut self, _: Multipliers, _: usize) -> fep_thermo::Result<Functionals> {
        self.0.functionals()
    }
}

/// `R = (1 - x)^2`, `D = 100 (y - x^2)^2`, `C = 0`: at lambda = 1, J is Rosenbrock's
/// function, minimal at (1, 1), whose curved valley makes gradient descent crawl. The
/// optimiser is plain gradient descent with step 1e-3. `fail_after` makes the gradient
/// fail after that many calls (a model error).
struct Rosenbrock {
    theta: [f64; 2],
    calls: usize,
    fail_after: usize,
}

impl Rosenbrock {
    fn new() -> Self {
        Self {
            theta: [-1.2, 1.0],
            calls: 0,
            fail_after: usize::MAX,
        }
    }
    fn values(&self) -> Functionals {
        let [x, y] = self.theta;
        Functionals {
            rate: (1.0 - x).powi(2),
            distortion: 100.0 * (y - x * x).powi(2),
            classification: 0.0,
        }
    }
}

impl ThermodynamicSystem for Rosenbrock {
    fn num_params(&self) -> usize {
        2
    }
    fn params(&self) -> fep_thermo::Result<Vec<f64>> {
        Ok(self.theta.to_vec())
    }
    fn set_params(&mut self, theta: &[f64]) -> fep_thermo::Result<()> {
        self.theta = [theta[0], theta[1]];
        Ok(())
    }
    fn data_position(&self) -> f64 {
        0.0
    }
    fn set_data_position(&mut self, _: f64) -> fep_thermo::Result<()> {
        Ok(())
    }
    fn functionals(&mut self) -> fep_thermo::Result<Functionals> {
        Ok(self.values())
    }
    fn gradient(&mut self, w: Weights) -> fep_thermo::Result<(Functionals, Vec<f64>)> {
        self.calls += 1;
        if self.calls > self.fail_after {
            return Err(ThermoError::model("the device went away"));
        }
        let [x, y] = self.theta;
        let dr = [-2.0 * (1.0 - x), 0.0];
        let dd = [-400.0 * x * (y - x * x), 200.0 * (y - x * x)];
        let g = (0..2)
            .map(|i| w.rate * dr[i] + w.distortion * dd[i])
            .collect();
        Ok((self.values(), g))
    }
    fn equilibrate_until(
        &mut self,
        m: Multipliers,
        rule: &StoppingRule,
    ) -> fep_thermo::Result<fep_thermo::Equilibrium> {
        fep_thermo::equilibrate_by_rule(self, m, rule)
    }
    fn equilibrate(&mut self, m: Multipliers, steps: usize) -> fep_thermo::Result<Functionals> {
        for _ in 0..steps {
            let (_, g) = self.gradient(m.lagrangian_weights())?;
            self.theta[0] -= 1e-3 * g[0];
            self.theta[1] -= 1e-3 * g[1];
        }
        Ok(self.values())
    }
}

fn gradient_rule(tolerance: f64, max_steps: usize, quasi_newton_iterations: usize) -> StoppingRule {
    StoppingRule::GradientNorm {
        tolerance,
        check_every: 50,
        max_steps,
        quasi_newton_iterations,
    }
}

/// An ill-conditioned quadratic (condition number 1e4) whose optimiser does nothing.
fn ill_conditioned() -> Frozen {
    let n = 6;
    let a = DMatrix::from_diagonal(&DVector::from_fn(n, |i, _| 10f64.powi(-(i as i32) + 1)));
    let p = DMatrix::from_fn(n, n, |i, j| {
        if i == j {
            1.0
        } else {
            0.1 / (1 + i + j) as f64
        }
    });
    let q = DMatrix::identity(n, n) * 0.01;
    let d = QuadraticTerm::fixed(p, DVector::from_fn(n, |i, _| 1.0 + i as f64), 1.0);
    let c = QuadraticTerm::fixed(q, DVector::from_fn(n, |i, _| -(i as f64)), 0.5);
    Frozen(QuadraticSystem::new(a, d, c).expect("valid quadratic system"))
}

#[test]
fn the_finish_equilibrates_a_system_whose_optimiser_does_nothing() {
    let m = Multipliers::new(0.01, 0.5);
    let mut system = ill_conditioned();
    let exact = system.0.equilibrium(m, 0.0).unwrap();
    let eq = equilibrate_by_rule(&mut system, m, &gradient_rule(1e-10, 200, 500)).unwrap();
    let r = eq.report;
    assert!(r.met, "{r:?}");
    assert_eq!(r.steps, 200);
    assert!(r.quasi_newton_iterations > 0 && r.quasi_newton_iterations <= 500);
    assert!(r.criterion.is_some_and(|g| g <= 1e-10), "{r:?}");
    let theta = DVector::from_vec(system.params().unwrap());
    assert!(
        (&theta - &exact).amax() < 1e-6,
        "theta {theta} vs theta* {exact}"
    );
    let f = system.0.equilibrium_functionals(m, 0.0).unwrap();
    assert!((eq.functionals.lagrangian(m) - f.lagrangian(m)).abs() < 1e-10);

    // Without the finish the criterion is measured and reported as missed.
    let mut system = ill_conditioned();
    let eq = equilibrate_by_rule(&mut system, m, &gradient_rule(1e-10, 200, 0)).unwrap();
    assert!(!eq.report.met && eq.report.quasi_newton_iterations == 0);
    assert!(eq.report.criterion.is_some_and(|g| g > 1e-10));
}

#[test]
fn the_finish_takes_over_where_gradient_descent_crawls() {
    let m = Multipliers::new(1.0, 0.0);
    // First-order steps alone: 2000 steps of gradient descent stay far from (1, 1).
    let mut slow = Rosenbrock::new();
    let eq = equilibrate_by_rule(&mut slow, m, &gradient_rule(1e-8, 2000, 0)).unwrap();
    assert!(!eq.report.met, "{:?}", eq.report);
    assert!((slow.theta[0] - 1.0).abs() > 1e-3, "{:?}", slow.theta);

    let mut system = Rosenbrock::new();
    let eq = equilibrate_by_rule(&mut system, m, &gradient_rule(1e-8, 500, 200)).unwrap();
    let r = eq.report;
    assert!(r.met, "{r:?}");
    assert_eq!(r.steps, 500);
    assert!(
        r.quasi_newton_iterations > 0 && r.quasi_newton_iterations < 200,
        "{r:?}"
    );
    assert!(
        (system.theta[0] - 1.0).abs() < 1e-6 && (system.theta[1] - 1.0).abs() < 1e-6,
        "{:?}",
        system.theta
    );
    assert!(eq.functionals.lagrangian(m) < 1e-12);
}

#[test]
fn a_met_tolerance_skips_the_finish_and_a_model_error_propagates() {
    let m = Multipliers::new(1.0, 0.0);
    // Already at the minimum (|grad J| = 0, below the finish's target): nothing to do.
    let mut system = Rosenbrock::new();
    system.theta = [1.0, 1.0];
    let eq = equilibrate_by_rule(&mut system, m, &gradient_rule(1e-8, 500, 200)).unwrap();
    assert_eq!((eq.report.steps, eq.report.quasi_newton_iterations), (0, 0));
    assert!(eq.report.met);

    // A model error inside the finish is the error of the equilibration.
    let mut system = Rosenbrock::new();
    system.fail_after = 20 + 5;
    let e = equilibrate_by_rule(&mut system, m, &gradient_rule(1e-8, 1, 200)).unwrap_err();
    assert!(matches!(e, ThermoError::Model(_)), "{e}");
    assert!(e.to_string().contains("device went away"), "{e}");
}

#[test]
fn fixed_steps_and_invalid_rules() {
    let m = Multipliers::new(1.0, 0.0);
    let mut system = Rosenbrock::new();
    let eq = equilibrate_by_rule(&mut system, m, &StoppingRule::fixed(10)).unwrap();
    assert_eq!(eq.report.steps, 10);
    assert!(!eq.report.met && eq.report.criterion.is_none());
    assert_eq!(system.calls, 10);
    let e = equilibrate_by_rule(&mut system, m, &gradient_rule(0.0, 10, 10)).unwrap_err();
    assert!(matches!(e, ThermoError::InvalidConfig(_)), "{e}");
}
