//! The thermodynamics crate against the closed forms of the linear-Gaussian model
//! (docs/THEORY.md, section "The exact linear-Gaussian model"), on random positive definite covariances and random W.

mod common;

use common::{B, example_config, random_config, sized};
use fep_thermo::exact::{ClosedForm, ExactSystem, JointMoments, transfer_gamma};
use fep_thermo::{
    ConstraintKind, Continuation, IftConfig, Multipliers, PredictorCorrectorConfig, ProcessPath,
    StoppingRule, SurfaceDifferenceConfig, ThermodynamicSystem, ift_sensitivities, run_process,
    surface_difference_sensitivities,
};

fn closed_form(config: &fep_thermo::exact::ExactConfig) -> ClosedForm {
    ClosedForm::new(
        &config.source_moments().unwrap(),
        config.model.sigma0,
        config.model.sigmac,
    )
    .unwrap()
}

/// The Daleckii-Krein derivatives equal central differences of the closed-form
/// functionals (an independent check of the closed form itself).
#[test]
fn closed_form_sensitivities_match_differences_of_the_closed_form() {
    for seed in 0..6u64 {
        let n = 2 + (seed as usize % 5);
        let cf = closed_form(&random_config(seed, n, 2));
        for (l, g) in [(0.5, 1.0), (2.0, 1.0), (1.3, 0.4)] {
            let m = Multipliers::new(l, g);
            let s = cf.sensitivities(m).unwrap();
            let h = 1e-5;
            let at = |l: f64, g: f64| cf.point(Multipliers::new(l, g)).unwrap().functionals;
            let (lp, lm) = (at(l + h, g), at(l - h, g));
            let (gp, gm) = (at(l, g + h), at(l, g - h));
            let fd = [
                (lp.distortion - lm.distortion) / (2.0 * h),
                (gp.distortion - gm.distortion) / (2.0 * h),
                (lp.classification - lm.classification) / (2.0 * h),
                (gp.classification - gm.classification) / (2.0 * h),
            ];
            let ours = [s.dD_dlambda, s.dD_dgamma, s.dC_dlambda, s.dC_dgamma];
            for (a, b) in ours.iter().zip(fd) {
                assert!(
                    (a - b).abs() < 1e-6 * b.abs().max(1.0),
                    "seed {seed}: {a} vs {b}"
                );
            }
            // Envelope dF/dlambda = D*, dF/dgamma = C* and concavity.
            let f = |l: f64, g: f64| cf.point(Multipliers::new(l, g)).unwrap().free_energy;
            let p = cf.point(m).unwrap().functionals;
            assert!(((f(l + h, g) - f(l - h, g)) / (2.0 * h) - p.distortion).abs() < 1e-6);
            assert!(((f(l, g + h) - f(l, g - h)) / (2.0 * h) - p.classification).abs() < 1e-6);
            assert!(s.dD_dlambda <= 0.0 && s.dC_dgamma <= 0.0 && s.determinant() >= -1e-12);
            assert!(s.maxwell_residual().abs() < 1e-9);
        }
    }
}

/// Hand-computed check of the closed form for Sigma = diag(2, 1), W = [1 0]:
/// Q is diagonal, q_1 = 2 (lambda/(2 s0^2) + gamma/(2 sc^2)), q_2 = lambda/(2 s0^2).
#[test]
fn closed_form_matches_a_hand_computed_diagonal_case() {
    let (s0, sc, noise) = (0.5_f64, 0.7_f64, 0.3_f64);
    let sigma = nalgebra::DMatrix::from_row_slice(2, 2, &[2.0, 0.0, 0.0, 1.0]);
    let w = nalgebra::DMatrix::from_row_slice(1, 2, &[1.0, 0.0]);
    let cf = ClosedForm::new(&JointMoments::linear_gaussian(&sigma, &w, noise), s0, sc).unwrap();
    let (l, g) = (1.0, 2.0);
    let q1 = 2.0 * (l / (2.0 * s0 * s0) + g / (2.0 * sc * sc));
    let q2 = l / (2.0 * s0 * s0);
    let e1 = 2.0 / (2.0 * q1);
    let e2 = 1.0 / (2.0 * q2);
    let two_pi = 2.0 * std::f64::consts::PI;
    let rate = 0.5 * (2.0 * q1).ln() + 0.5 * (2.0 * q2).ln();
    let distortion = (two_pi * s0 * s0).ln() + (e1 + e2) / (2.0 * s0 * s0);
    let classification = 0.5 * (two_pi * sc * sc).ln() + (e1 + noise * noise) / (2.0 * sc * sc);
    let p = cf.point(Multipliers::new(l, g)).unwrap();
    assert!((p.functionals.rate - rate).abs() < 1e-12);
    assert!((p.functionals.distortion - distortion).abs() < 1e-12);
    assert!((p.functionals.classification - classification).abs() < 1e-12);
}

/// Gradient training reaches the closed-form (R, D, C) within 0.01 nats and F
/// within 1e-3 relative, for lambda below and above 1.
#[test]
fn trained_model_reaches_the_closed_form_equilibrium() {
    for (seed, n, m) in sized(&[(11u64, 2usize, 1usize), (12, 4, 2), (13, 6, 3)]) {
        let config = random_config(seed, n, m);
        let cf = closed_form(&config);
        let mut system = ExactSystem::<B>::from_config(&config, &Default::default()).unwrap();
        for (l, g) in sized(&[(0.5, 1.0), (2.0, 1.0), (1.0, 3.0)]) {
            let mult = Multipliers::new(l, g);
            let trained = system.train(mult).unwrap().functionals;
            let exact = cf.point(mult).unwrap();
            let e = exact.functionals;
            for (name, a, b) in [
                ("R", trained.rate, e.rate),
                ("D", trained.distortion, e.distortion),
                ("C", trained.classification, e.classification),
            ] {
                assert!(
                    (a - b).abs() < 0.01,
                    "seed {seed} n {n} ({l},{g}) {name}: {a} vs {b}"
                );
            }
            let f = trained.lagrangian(mult);
            assert!(
                ((f - exact.free_energy) / exact.free_energy).abs() < 1e-3,
                "F {f} vs {}",
                exact.free_energy
            );
        }
    }
}

/// IFT and finite-difference-on-the-surface sensitivities within 5% (or 0.01
/// absolute) of the closed-form derivatives; Maxwell residuals reported.
#[test]
fn estimated_sensitivities_match_the_closed_form() {
    for (seed, n) in sized(&[(21u64, 2usize), (22, 4), (23, 6)]) {
        let config = random_config(seed, n, 2);
        let cf = closed_form(&config);
        let mut system = ExactSystem::<B>::from_config(&config, &Default::default()).unwrap();
        for (l, g) in sized(&[(0.5, 1.0), (2.0, 1.0)]) {
            let mult = Multipliers::new(l, g);
            system.train(mult).unwrap();
            let exact = cf.sensitivities(mult).unwrap();
            let ift = ift_sensitivities(&mut system, mult, &IftConfig::default()).unwrap();
            let fd = surface_difference_sensitivities(
                &mut system,
                mult,
                &SurfaceDifferenceConfig::default(),
            )
            .unwrap();
            for (name, s) in [("ift", ift.sensitivities), ("finite difference", fd)] {
                for (a, b) in [
                    (s.dD_dlambda, exact.dD_dlambda),
                    (s.dD_dgamma, exact.dD_dgamma),
                    (s.dC_dlambda, exact.dC_dlambda),
                    (s.dC_dgamma, exact.dC_dgamma),
                ] {
                    let ok = (a - b).abs() <= 0.05 * b.abs() || (a - b).abs() <= 0.01;
                    assert!(ok, "seed {seed} n {n} ({l},{g}) {name}: {a} vs exact {b}");
                }
                println!(
                    "n={n} ({l},{g}) {name}: max rel deviation {:.2e}, Maxwell residual {:.2e}",
                    s.max_relative_deviation(&exact, 0.2),
                    s.maxwell_residual()
                );
            }
        }
    }
}

/// The first random problem (from `base_seed` on) whose exact iso-classification
/// path from `start` to `lambda_end` keeps every eigenvalue q_i of
/// `Sigma^(1/2) Q Sigma^(1/2)` at least 0.1 away from the activation threshold 1/2.
/// Near the threshold a latent direction switches on and gradient training slows
/// down critically (the objective is flat there), so the trained model lags the
/// closed form by more than the tolerances below.
fn away_from_activation(
    base_seed: u64,
    n: usize,
    start: Multipliers,
    lambda_end: f64,
) -> (u64, fep_thermo::exact::ExactConfig) {
    for seed in base_seed..base_seed + 1000 {
        let config = random_config(seed, n, 2);
        let cf = closed_form(&config);
        let c0 = cf.point(start).unwrap().functionals.classification;
        let ok = (0..=10).all(|k| {
            let lambda = start.lambda + (lambda_end - start.lambda) * k as f64 / 10.0;
            cf.gamma_for_classification(lambda, c0).is_ok_and(|gamma| {
                cf.spectrum(Multipliers::new(lambda, gamma))
                    .unwrap()
                    .iter()
                    .all(|q| (q - 0.5).abs() > 0.1)
            })
        });
        if ok {
            return (seed, config);
        }
    }
    panic!("no well-separated problem found");
}

/// Iso-classification from (2, 1) to lambda = 0.5: the predictor-corrector holds C
/// within 0.1% of c0 with gamma within 2% of the exact path; first law within 1%;
/// the Euler scheme's drift is measured and reported.
#[test]
fn iso_classification_follows_the_exact_path() {
    for (base_seed, n) in [(31u64, 2usize), (32, 4)] {
        let start = Multipliers::new(2.0, 1.0);
        let (seed, config) = away_from_activation(base_seed, n, start, 0.5);
        let cf = closed_form(&config);
        let path = ProcessPath::lambda_only(2.0, 0.5);
        // Steps of at most 0.06 in s keep the trapezoidal work integral of the
        // first-law check accurate to well under 1%.
        let pc = PredictorCorrectorConfig {
            equilibrium: StoppingRule::fixed(1000),
            initial_step: 0.06,
            max_step: 0.06,
            ..Default::default()
        };
        let mut system = ExactSystem::<B>::from_config(&config, &Default::default()).unwrap();
        system.train(start).unwrap();
        let theta0 = system.params().unwrap();
        let result = run_process(
            &mut system,
            start,
            &path,
            ConstraintKind::IsoClassification,
            &Continuation::predictor_corrector(&pc, IftConfig::default()),
            |_| {},
        )
        .unwrap();
        let c0 = result.target;
        assert!(
            result.records.len() >= 5,
            "too few steps: {}",
            result.records.len()
        );
        assert!((result.records.last().unwrap().lambda - 0.5).abs() < 1e-9);
        for r in &result.records {
            assert!(
                ((r.functionals.classification - c0) / c0).abs() <= 1e-3,
                "drift at {r:?}"
            );
            let gamma_exact = cf.gamma_for_classification(r.lambda, c0).unwrap();
            assert!(
                ((r.gamma - gamma_exact) / gamma_exact).abs() <= 0.02,
                "seed {seed} n {n}: gamma {} vs exact {gamma_exact} at lambda {}",
                r.gamma,
                r.lambda
            );
        }
        let first = result.records[0];
        let last = *result.records.last().unwrap();
        let delta_f = last.free_energy - first.free_energy;
        assert!(
            result.first_law_residual().abs() < 0.01 * delta_f.abs(),
            "first law: residual {} vs dF {delta_f}",
            result.first_law_residual()
        );
        // Along iso-classification R' = -lambda D': R rises while D falls... or the reverse.
        assert!(
            (last.functionals.rate - first.functionals.rate)
                * (last.functionals.distortion - first.functionals.distortion)
                < 0.0
        );

        system.set_params(&theta0).unwrap();
        let euler = run_process(
            &mut system,
            start,
            &path,
            ConstraintKind::IsoClassification,
            &Continuation::euler(20, 300, IftConfig::default()),
            |_| {},
        )
        .unwrap();
        // Both against the exact path: the largest relative deviation of gamma from the
        // closed form's gamma(lambda) holding C0.
        let deviation = |records: &[fep_thermo::StepRecord]| {
            records
                .iter()
                .map(|r| {
                    let exact = cf.gamma_for_classification(r.lambda, c0).unwrap();
                    ((r.gamma - exact) / exact).abs()
                })
                .fold(0.0, f64::max)
        };
        let (pc_dev, euler_dev) = (deviation(&result.records), deviation(&euler.records));
        println!(
            "n={n}: predictor-corrector max drift {:.2e}, gamma off the exact path by {:.2e}, in {} steps; Euler max drift {:.2e}, gamma off by {:.2e}, in {} steps",
            result.max_relative_drift,
            pc_dev,
            result.records.len() - 1,
            euler.max_relative_drift,
            euler_dev,
            euler.records.len() - 1
        );
        // Euler follows the tangent without correcting: it drifts off C0 by more than the
        // predictor-corrector (measured: 2.4e-4 against 9e-5 for n = 2 and 4), and stays
        // near the exact path only because the exact model's sensitivities are accurate.
        assert!(euler.max_relative_drift > 1.5 * result.max_relative_drift);
        assert!(euler_dev < 0.05, "Euler off the exact path by {euler_dev}");

        // The naive path (gamma fixed) lets C drift far more.
        system.set_params(&theta0).unwrap();
        let naive = run_process(
            &mut system,
            start,
            &path,
            ConstraintKind::FixedGamma,
            &Continuation::euler(20, 300, IftConfig::default()),
            |_| {},
        )
        .unwrap();
        assert!(naive.max_relative_drift > 10.0 * result.max_relative_drift);
    }
}

/// Transfer between two exact datasets with C held: gamma within 2% of the exact
/// transfer path at every step.
#[test]
fn transfer_follows_the_exact_transfer_path() {
    let config = random_config(41, 3, 2);
    let source = config.source_moments().unwrap();
    let target = config.target_moments().unwrap().unwrap();
    let (s0, sc) = (config.model.sigma0, config.model.sigmac);
    let start = Multipliers::new(2.0, 1.0);
    let path = ProcessPath::transfer(2.0, 1.0);
    let pc = PredictorCorrectorConfig {
        equilibrium: StoppingRule::fixed(1000),
        ..Default::default()
    };
    let mut system = ExactSystem::<B>::from_config(&config, &Default::default()).unwrap();
    system.train(start).unwrap();
    let result = run_process(
        &mut system,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &Continuation::predictor_corrector(&pc, IftConfig::default()),
        |_| {},
    )
    .unwrap();
    let c0 = result.target;
    assert!((result.records.last().unwrap().t - 1.0).abs() < 1e-12);
    for r in &result.records {
        let exact = transfer_gamma(&source, &target, r.t, r.lambda, c0, s0, sc).unwrap();
        assert!(
            ((r.gamma - exact) / exact).abs() <= 0.02,
            "t {}: gamma {} vs exact {exact}",
            r.t,
            r.gamma
        );
        assert!(((r.functionals.classification - c0) / c0).abs() <= 1e-3);
    }
}

/// The example configuration of the issue parses and is usable.
#[test]
fn example_config_round_trip() {
    let config = example_config();
    assert_eq!(config.model.latent_dim, 2);
    let cf = closed_form(&config);
    assert!(
        cf.point(Multipliers::new(1.0, 1.0))
            .unwrap()
            .free_energy
            .is_finite()
    );
}

/// The closed-form surface at `fep exact surface`'s default grid (lambda 0.5:3:6, gamma
/// 0.25:3:6) passes every identity with the default settings; shifted against each
/// identity it fails it.
#[test]
fn closed_form_surface_passes_every_check_at_the_default_grid_and_fails_when_perturbed() {
    use fep_thermo::{CheckSettings, GridSpec, SurfaceGrid, SurfacePoint};
    let cf = closed_form(&example_config());
    let spec = GridSpec {
        lambdas: (0..6).map(|k| 0.5 + 0.5 * k as f64).collect(),
        gammas: (0..6).map(|k| 0.25 + 0.55 * k as f64).collect(),
    };
    let grid = SurfaceGrid::tabulate(&spec, |m| {
        Ok(SurfacePoint::new(m, cf.point(m)?.functionals))
    })
    .unwrap();
    let checks = grid.checks(CheckSettings::default()).unwrap();
    for (name, c) in checks.named() {
        assert!(c.checked > 0 && c.passed(), "{name}: {c:?}");
    }
    type Perturb = fn(&mut SurfacePoint);
    let cases: [(&str, Perturb); 4] = [
        // D shifted by a smooth function of lambda (F untouched).
        ("envelope_lambda", |p| {
            p.functionals.distortion -= 0.05 * p.lambda
        }),
        ("envelope_gamma", |p| {
            p.functionals.classification -= 0.05 * p.gamma
        }),
        ("maxwell", |p| p.functionals.distortion += 0.1 * p.gamma),
        ("first_law", |p| p.free_energy += 0.05 * p.lambda * p.gamma),
    ];
    for (target, perturb) in cases {
        let mut bad = grid.clone();
        bad.points.iter_mut().flatten().for_each(perturb);
        let c = bad.checks(CheckSettings::default()).unwrap();
        let (_, summary) = c.named().into_iter().find(|(n, _)| *n == target).unwrap();
        assert!(!summary.passed(), "{target} not detected: {summary:?}");
    }
    // Convexity: D increasing in lambda and C in gamma, by a bowl added to both.
    let mut bowl = grid.clone();
    bowl.points.iter_mut().flatten().for_each(|p| {
        p.functionals.distortion += 2.0 * p.lambda;
        p.functionals.classification += 2.0 * p.gamma;
        p.free_energy += p.lambda * p.lambda + p.gamma * p.gamma;
    });
    let c = bowl.checks(CheckSettings::default()).unwrap();
    assert!(!c.concavity.passed() && !c.distortion_decreasing_in_lambda.passed());
    assert!(!c.classification_decreasing_in_gamma.passed());
}
