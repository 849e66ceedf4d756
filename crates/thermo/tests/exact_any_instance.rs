//! The trained exact model against the closed form on random instances of the
//! documented shape (common::normal_instance), near-critical ones included.

mod common;

use std::time::Instant;

use common::{B, normal_instance};
use fep_thermo::exact::{ClosedForm, ExactConfig, ExactSystem};
use fep_thermo::{
    ConstraintKind, Continuation, IftConfig, Multipliers, PredictorCorrectorConfig, ProcessPath,
    StoppingRule, run_process,
};

fn closed_form(config: &ExactConfig) -> ClosedForm {
    ClosedForm::new(
        &config.source_moments().unwrap(),
        config.model.sigma0,
        config.model.sigmac,
    )
    .unwrap()
}

/// Measurement, not a check: prints the equilibria of many instances.
#[test]
#[ignore = "survey for the defaults (minutes); run with --ignored --nocapture"]
fn survey() {
    let rule: Option<StoppingRule> = std::env::var("FEP_RULE")
        .ok()
        .map(|s| toml::from_str(&s).unwrap());
    let initial: Option<usize> = std::env::var("FEP_INITIAL")
        .ok()
        .map(|s| s.parse().unwrap());
    for (seed, n, m) in [
        (102u64, 3usize, 3usize),
        (0, 3, 1),
        (1u64, 3usize, 2usize),
        (2, 6, 3),
        (3, 4, 1),
        (4, 8, 8),
        (5, 8, 2),
        (6, 5, 5),
        (7, 7, 4),
        (8, 2, 1),
    ] {
        let mut config = normal_instance(seed, n, m);
        config.training.equilibrium = rule;
        if let Some(i) = initial {
            config.training.initial_steps = i;
        }
        let cf = closed_form(&config);
        for (l, g) in [(2.5, 0.4), (2.0, 1.0), (0.5, 1.0)] {
            let mult = Multipliers::new(l, g);
            let mut system = ExactSystem::<B>::from_config(&config, &Default::default()).unwrap();
            let clock = Instant::now();
            let eq = system.train(mult).unwrap();
            let secs = clock.elapsed().as_secs_f64();
            let e = cf.point(mult).unwrap();
            let q = cf.spectrum(mult).unwrap();
            let f = eq.functionals;
            let dq = q
                .iter()
                .map(|q| (q - 0.5).abs())
                .fold(f64::INFINITY, f64::min);
            println!(
                "seed {seed} n {n} m {m} ({l},{g}) {secs:.2}s  steps {} lbfgs {} |g| {:.2e} met {}  dR {:+.4} dD {:+.4} dC {:+.4} dF/F {:+.2e} min|q-1/2| {dq:.3}",
                eq.report.steps,
                eq.report.quasi_newton_iterations,
                eq.report.criterion.unwrap_or(f64::NAN),
                eq.report.met,
                f.rate - e.functionals.rate,
                f.distortion - e.functionals.distortion,
                f.classification - e.functionals.classification,
                (f.lagrangian(mult) - e.free_energy) / e.free_energy,
            );
        }
    }
}

/// lambda from 2 to 0.5 on the closed form's iso-classification curve through
/// (lambda, gamma) = (2, 1): `(lambda, gamma, sorted q_i)` at `points` lambdas.
fn exact_path(cf: &ClosedForm, points: usize) -> Vec<(f64, f64, Vec<f64>)> {
    let c0 = cf
        .point(Multipliers::new(2.0, 1.0))
        .unwrap()
        .functionals
        .classification;
    (0..points)
        .map(|k| {
            let l = 2.0 - 1.5 * k as f64 / (points - 1) as f64;
            let g = cf.gamma_for_classification(l, c0).unwrap();
            let mut q = cf.spectrum(Multipliers::new(l, g)).unwrap();
            q.sort_by(f64::total_cmp);
            (l, g, q)
        })
        .collect()
}

/// How many eigenvalues `q_i` cross 1/2 along the exact path.
fn crossings(cf: &ClosedForm) -> usize {
    let path = exact_path(cf, 61);
    path.windows(2)
        .map(|w| {
            w[0].2
                .iter()
                .zip(&w[1].2)
                .filter(|(a, b)| (**a - 0.5) * (**b - 0.5) < 0.0)
                .count()
        })
        .sum()
}

#[test]
#[ignore = "scan of seeds for near-critical instances (closed form only); --nocapture"]
fn scan_for_near_critical_instances() {
    for (n, m) in [(3usize, 1usize), (3, 2), (4, 1), (4, 2), (5, 2), (6, 3)] {
        for seed in 0..60u64 {
            let cf = closed_form(&normal_instance(seed, n, m));
            let c = crossings(&cf);
            if c > 0 {
                println!("n {n} m {m} seed {seed}: {c} crossing(s)");
            }
        }
    }
}

/// Trains a fresh model of `config` at each of `points` with the default rule and checks
/// R, D, C within 0.01 nats of the closed form, F within 1e-3 relative, the rule met.
fn check_instances(instances: &[(u64, usize, usize)], points: &[(f64, f64)]) {
    for &(seed, n, m) in instances {
        let config = normal_instance(seed, n, m);
        let cf = closed_form(&config);
        for &(l, g) in points {
            let mult = Multipliers::new(l, g);
            let mut system = ExactSystem::<B>::from_config(&config, &Default::default()).unwrap();
            let eq = system.train(mult).unwrap();
            let exact = cf.point(mult).unwrap();
            let (f, e) = (eq.functionals, exact.functionals);
            let at = format!(
                "seed {seed}, n {n}, m {m}, (lambda, gamma) = ({l}, {g}): {:?}",
                eq.report
            );
            assert!(eq.report.met, "{at}");
            for (name, a, b) in [
                ("R", f.rate, e.rate),
                ("D", f.distortion, e.distortion),
                ("C", f.classification, e.classification),
            ] {
                assert!((a - b).abs() < 0.01, "{at}: {name} {a} vs {b}");
            }
            let rel = (f.lagrangian(mult) - exact.free_energy) / exact.free_energy;
            assert!(rel.abs() < 1e-3, "{at}: F off by {rel:e} relative");
        }
    }
}

/// n from 2 to 5, m from 1 to n.
#[test]
fn small_random_instances_reach_the_closed_form() {
    check_instances(
        &[(101, 2, 1), (102, 3, 3), (103, 4, 2), (104, 5, 1)],
        &[(2.5, 0.4), (0.5, 1.0)],
    );
}

/// n from 6 to 8, m from 1 to n, the n = 6, m = 3 shape among them.
#[test]
fn large_random_instances_reach_the_closed_form() {
    check_instances(
        &[(2, 6, 3), (202, 7, 7), (203, 8, 1), (204, 8, 5)],
        &[(2.5, 0.4)],
    );
}

/// The predictor-corrector iso-classification path from (2, 1) to lambda = 0.5, each
/// re-equilibration by the default rule, against `ClosedForm::gamma_for_classification`.
fn check_iso_path(seed: u64, n: usize, m: usize, require_crossing: bool) {
    let config = normal_instance(seed, n, m);
    let cf = closed_form(&config);
    let c = crossings(&cf);
    if require_crossing {
        let path = exact_path(&cf, 61);
        let closest = path
            .iter()
            .flat_map(|(_, _, q)| q.iter().map(|q| (q - 0.5).abs()))
            .fold(f64::INFINITY, f64::min);
        assert!(
            c >= 1 && closest < 0.02,
            "seed {seed} n {n} m {m}: {c} crossings of q = 1/2, closest |q - 1/2| = {closest}"
        );
    }
    let start = Multipliers::new(2.0, 1.0);
    let pc = PredictorCorrectorConfig {
        initial_step: 0.1,
        max_step: 0.2,
        equilibrium: config.training.equilibrium_rule(),
        ..PredictorCorrectorConfig::default()
    };
    let mut system = ExactSystem::<B>::from_config(&config, &Default::default()).unwrap();
    assert!(system.train(start).unwrap().report.met);
    let result = run_process(
        &mut system,
        start,
        &ProcessPath::lambda_only(2.0, 0.5),
        ConstraintKind::IsoClassification,
        &Continuation::predictor_corrector(&pc, IftConfig::default()),
        |_| {},
    )
    .unwrap();
    let c0 = result.target;
    assert!(
        result
            .records
            .last()
            .is_some_and(|r| (r.lambda - 0.5).abs() < 1e-12)
    );
    for r in &result.records {
        let exact = cf.gamma_for_classification(r.lambda, c0).unwrap();
        let at = format!(
            "seed {seed} n {n} m {m} lambda {:.4}: gamma {} vs exact {exact}; {:?}",
            r.lambda, r.gamma, r.equilibrium
        );
        assert!(((r.gamma - exact) / exact).abs() < 0.02, "{at}");
        assert!(r.s == 0.0 || r.equilibrium.met, "{at}");
    }
}

/// A near-critical instance: a q_i crosses 1/2 along the path.
#[test]
fn iso_classification_follows_the_exact_path_across_a_critical_point() {
    check_iso_path(0, 3, 1, true);
}

/// The n = 6, m = 3 shape.
#[test]
fn iso_classification_follows_the_exact_path_on_a_larger_instance() {
    check_iso_path(2, 6, 3, false);
}
