//! The surface identities on closed-form grids where they must hold and on grids
//! where they must fail; sweeping, sharding, assembly and the quadratic fit.

use fep_thermo::surface::checks;
use fep_thermo::{
    CheckSettings, CheckSummary, Functionals, GridCell, GridSpec, Multipliers, Place, QuadraticFit,
    QuadraticSystem, Shard, SurfaceChecks, SurfaceGrid, SurfacePoint, Sweep, ThermoError,
    assemble_grid, shard_points, snake_order,
};

fn range(a: f64, b: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| a + (b - a) * k as f64 / (n - 1) as f64)
        .collect()
}

fn fine_spec() -> GridSpec {
    GridSpec {
        lambdas: range(0.5, 2.5, 41),
        gammas: range(0.5, 2.0, 31),
    }
}

/// The closed-form equilibrium surface of the quadratic system (F concave).
fn concave_grid(spec: &GridSpec) -> SurfaceGrid {
    let sys = QuadraticSystem::example();
    SurfaceGrid::tabulate(spec, |m| {
        Ok(SurfacePoint::new(m, sys.equilibrium_functionals(m, 0.0)?))
    })
    .unwrap()
}

/// A grid from formulas for D, C and F.
fn synthetic(
    spec: &GridSpec,
    d: impl Fn(f64, f64) -> f64,
    c: impl Fn(f64, f64) -> f64,
    f: impl Fn(f64, f64) -> f64,
) -> SurfaceGrid {
    SurfaceGrid::tabulate(spec, |m| {
        Ok(SurfacePoint {
            lambda: m.lambda,
            gamma: m.gamma,
            functionals: Functionals {
                rate: 0.0,
                distortion: d(m.lambda, m.gamma),
                classification: c(m.lambda, m.gamma),
            },
            free_energy: f(m.lambda, m.gamma),
            covariance: None,
        })
    })
    .unwrap()
}

fn settings() -> CheckSettings {
    CheckSettings::default()
}

/// A realistic coarse grid: 6 x 5 nodes, uneven in lambda.
fn coarse_spec() -> GridSpec {
    GridSpec {
        lambdas: vec![0.5, 0.8, 1.2, 1.6, 2.0, 2.5],
        gammas: range(0.5, 2.0, 5),
    }
}

fn summary(grid: &SurfaceGrid) -> SurfaceChecks {
    grid.checks(settings()).unwrap()
}

#[test]
fn every_identity_holds_on_a_concave_closed_form_surface() {
    for spec in [coarse_spec(), fine_spec()] {
        let grid = concave_grid(&spec);
        let all = summary(&grid);
        for (name, c) in all.named() {
            assert!(c.checked > 0 && c.passed(), "{name}: {c:?}");
        }
        let (nl, ng) = spec.shape();
        assert_eq!(all.envelope_lambda.checked, (nl - 1) * ng);
        assert_eq!(all.envelope_gamma.checked, nl * (ng - 1));
        assert_eq!(all.maxwell.checked, nl * ng);
        assert_eq!(all.concavity.checked, nl * ng);
        assert_eq!(all.first_law.checked, (nl * ng - 1) + (nl - 1) * (ng - 1));
        assert_eq!(all.minimality.checked, 2 * ((nl - 1) * ng + nl * (ng - 1)));
        // The summary is exactly the individual checks.
        let s = settings();
        assert_eq!(all.maxwell, CheckSummary::of(&checks::maxwell(&grid, s)));
        assert_eq!(
            all.first_law,
            CheckSummary::of(&checks::first_law(&grid, s))
        );
    }
}

/// The grid's own error is real and the estimate covers it: with the second-order rules
/// of the lower order alone, the coarse grid's envelope residuals are far above roundoff,
/// and the reported (higher-order) residuals stay within their estimates.
#[test]
fn discretisation_estimates_cover_the_grid_error() {
    let grid = concave_grid(&coarse_spec());
    let places = checks::envelope_lambda(&grid, settings());
    let largest_estimate = places.iter().map(|p| p.discretisation).fold(0.0, f64::max);
    assert!(largest_estimate > 1e-4, "{largest_estimate}");
    for p in &places {
        assert!(
            p.residual.abs() <= p.discretisation.max(1e-9),
            "{p:?}: the higher-order residual exceeds its estimate"
        );
    }
    // Halving the spacing shrinks the estimates by at least 2^2.
    let fine = GridSpec {
        lambdas: range(0.5, 2.5, 11),
        gammas: range(0.5, 2.0, 9),
    };
    let finer = GridSpec {
        lambdas: range(0.5, 2.5, 21),
        gammas: range(0.5, 2.0, 17),
    };
    let est = |spec: &GridSpec| {
        summary(&concave_grid(spec))
            .envelope_lambda
            .max_discretisation
    };
    assert!(
        est(&fine) > 4.0 * est(&finer),
        "{} vs {}",
        est(&fine),
        est(&finer)
    );
}

/// Each identity fails on a surface perturbed against it, and only the identities the
/// perturbation touches fail (minimality compares every point's F with its neighbours'
/// functionals, so any perturbation of D, C or F may break it).
#[test]
fn each_identity_fails_on_a_surface_perturbed_against_it() {
    type Perturb = fn(&mut SurfacePoint);
    let cases: [(&str, Perturb, &[&str]); 7] = [
        // D shifted by a smooth function of lambda, F untouched.
        (
            "envelope_lambda",
            |p| p.functionals.distortion -= 0.05 * p.lambda * p.lambda,
            &["envelope_lambda", "first_law"],
        ),
        (
            "envelope_gamma",
            |p| p.functionals.classification -= 0.05 * p.gamma,
            &["envelope_gamma", "first_law"],
        ),
        // D depends on gamma: dD/dgamma != dC/dlambda.
        (
            "maxwell",
            |p| p.functionals.distortion += 0.05 * (p.gamma - 1.0).powi(2),
            &["maxwell", "envelope_lambda", "first_law", "concavity"],
        ),
        // D increasing in lambda somewhere.
        (
            "distortion_decreasing_in_lambda",
            |p| p.functionals.distortion += 0.5 * (4.0 * p.lambda).sin(),
            &[
                "distortion_decreasing_in_lambda",
                "envelope_lambda",
                "concavity",
                "first_law",
            ],
        ),
        (
            "classification_decreasing_in_gamma",
            |p| p.functionals.classification += 0.4 * p.gamma,
            &[
                "classification_decreasing_in_gamma",
                "envelope_gamma",
                "concavity",
                "first_law",
            ],
        ),
        // F shifted by a smooth function of both multipliers, D and C untouched.
        (
            "first_law",
            |p| p.free_energy += 0.02 * p.lambda * p.gamma,
            &["first_law", "envelope_lambda", "envelope_gamma"],
        ),
        // One point off its minimum: R (and so F) raised at one node.
        (
            "minimality",
            |p| {
                if (p.lambda - 1.2).abs() < 1e-9 && (p.gamma - 1.25).abs() < 1e-9 {
                    p.functionals.rate += 0.5;
                    p.free_energy += 0.5;
                }
            },
            &[
                "envelope_lambda",
                "envelope_gamma",
                "first_law",
                "concavity",
            ],
        ),
    ];
    for (target, perturb, may_fail) in cases {
        let mut grid = concave_grid(&coarse_spec());
        for row in &mut grid.points {
            for p in row {
                perturb(p);
            }
        }
        let all = summary(&grid);
        for (name, c) in all.named() {
            if name == target {
                assert!(!c.passed(), "{target}: not detected: {c:?}");
            } else if !may_fail.contains(&name) && name != "minimality" {
                assert!(c.passed(), "{target} perturbation: {name} fails: {c:?}");
            }
        }
    }
}

/// A convex F = lambda^2 + gamma^2 with its own envelope derivatives D = 2 lambda,
/// C = 2 gamma: signs and concavity fail, the envelope, Maxwell and first law hold.
#[test]
fn a_convex_free_energy_fails_signs_and_concavity() {
    let spec = GridSpec {
        lambdas: range(0.5, 2.0, 7),
        gammas: range(0.5, 2.0, 6),
    };
    let grid = synthetic(&spec, |l, _| 2.0 * l, |_, g| 2.0 * g, |l, g| l * l + g * g);
    let all = summary(&grid);
    assert_eq!(
        all.distortion_decreasing_in_lambda.violations,
        all.distortion_decreasing_in_lambda.checked
    );
    assert!(!all.classification_decreasing_in_gamma.passed());
    assert_eq!(all.concavity.violations, all.concavity.checked);
    assert!((all.concavity.max_residual - 2.0).abs() < 1e-9);
    for c in [
        all.envelope_lambda,
        all.envelope_gamma,
        all.maxwell,
        all.first_law,
    ] {
        assert!(c.passed() && c.max_residual < 1e-9, "{c:?}");
    }
}

/// D = gamma, C = 0, F = 0: `dD/dgamma = 1 != dC/dlambda = 0`, residual exactly 1 at
/// every node; the first law compares F (0) with the path integrals, which differ.
#[test]
fn a_non_integrable_d_c_field_fails_maxwell_and_the_first_law() {
    let spec = GridSpec {
        lambdas: range(0.0, 1.0, 3),
        gammas: range(0.0, 1.0, 5),
    };
    let grid = synthetic(&spec, |_, g| g, |_, _| 0.0, |_, _| 0.0);
    let m = CheckSummary::of(&checks::maxwell(&grid, settings()));
    assert_eq!((m.checked, m.violations), (15, 15));
    assert!((m.max_residual - 1.0).abs() < 1e-12);
    let places = checks::first_law(&grid, settings());
    // From (0, 0) to (1, 1): lambda first integrates D = 0 along gamma = 0, gamma first
    // integrates D = 1 along gamma = 1: the two paths disagree, F (0) matches the first.
    let to_corner: Vec<f64> = places
        .iter()
        .filter(|p| p.to == Some([1.0, 1.0]))
        .map(|p| p.residual)
        .collect();
    assert_eq!(to_corner.len(), 2);
    assert!(
        to_corner[0].abs() < 1e-12 && (to_corner[1] + 1.0).abs() < 1e-12,
        "{to_corner:?}"
    );
    // Maxwell and the first law measure different things.
    let fl = CheckSummary::of(&places);
    assert!(fl.max_residual != m.max_residual || fl.checked != m.checked);
}

/// Functionals with Gaussian noise of known covariance and F recomputed from them, as a
/// deep model measures them: residuals in units of their error estimate are about
/// standard normal (median of |N(0, 1)| = 0.674), few exceed 3; with the covariance
/// withheld the same surface fails.
#[test]
fn noise_is_propagated_through_every_residual() {
    let spec = coarse_spec();
    let sd = [0.02, 0.01, 0.005];
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut normal = move || {
        // Box-Muller on a xorshift stream.
        let mut uniform = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng >> 11) as f64 / (1u64 << 53) as f64
        };
        let (u, v) = (uniform().max(1e-300), uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let mut medians = Vec::new();
    let mut exceed = 0;
    let mut total = 0;
    let mut withheld_fail = 0;
    for _ in 0..8 {
        let mut grid = concave_grid(&spec);
        let mut bare = grid.clone();
        for (row, bare_row) in grid.points.iter_mut().zip(&mut bare.points) {
            for (p, b) in row.iter_mut().zip(bare_row) {
                let mut f = p.functionals;
                f.rate += sd[0] * normal();
                f.distortion += sd[1] * normal();
                f.classification += sd[2] * normal();
                let noisy = SurfacePoint::new(p.multipliers(), f);
                *b = noisy;
                *p = noisy.with_covariance([
                    [sd[0] * sd[0], 0.0, 0.0],
                    [0.0, sd[1] * sd[1], 0.0],
                    [0.0, 0.0, sd[2] * sd[2]],
                ]);
            }
        }
        for name in ["envelope_lambda", "envelope_gamma", "first_law"] {
            let places: Vec<Place> = grid
                .check_places(settings())
                .unwrap()
                .into_iter()
                .filter(|p| p.check == name)
                .collect();
            medians.push(CheckSummary::of(&places).median_ratio);
            exceed += places.iter().filter(|p| p.ratio > 3.0).count();
            total += places.len();
        }
        withheld_fail += usize::from(!summary(&bare).all_passed());
    }
    medians.sort_by(f64::total_cmp);
    let median = medians[medians.len() / 2];
    assert!(
        (0.4..1.0).contains(&median),
        "median ratio {median}: {medians:?}"
    );
    assert!(
        (exceed as f64) < 0.03 * total as f64,
        "{exceed} of {total} above 3"
    );
    assert_eq!(withheld_fail, 8);
}

#[test]
fn invalid_settings_are_refused() {
    let grid = concave_grid(&coarse_spec());
    for (factor, floor) in [(0.5, 1e-9), (3.0, 0.0), (f64::NAN, 1e-9)] {
        let err = grid
            .checks(CheckSettings { factor, floor })
            .unwrap_err()
            .to_string();
        assert!(err.contains("[checks]"), "{err}");
    }
}

#[test]
fn grid_spec_validation() {
    assert!(fine_spec().validate().is_ok());
    let short = GridSpec {
        lambdas: vec![1.0],
        gammas: vec![1.0, 2.0],
    };
    let err = short.validate().unwrap_err().to_string();
    assert!(
        err.contains("[grid] lambdas needs at least two values"),
        "{err}"
    );
    for gammas in [
        vec![1.0, 1.0],
        vec![2.0, 1.0],
        vec![-1.0, 1.0],
        vec![0.0, f64::NAN],
    ] {
        let bad = GridSpec {
            lambdas: vec![1.0, 2.0],
            gammas,
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("[grid] gammas must be finite, non-negative and strictly increasing"),
            "{err}"
        );
    }
}

#[test]
fn shard_spec_is_one_based_and_checked() {
    assert_eq!(
        "3/8".parse::<Shard>().unwrap(),
        Shard { index: 2, count: 8 }
    );
    assert_eq!(Shard { index: 2, count: 8 }.to_string(), "3/8");
    for bad in ["0/8", "9/8", "x/8", "3", "3/0"] {
        let err = bad.parse::<Shard>().unwrap_err();
        assert!(matches!(err, ThermoError::Shard(_)), "{bad}");
        assert!(err.to_string().starts_with("--shard"), "{err}");
    }
}

#[test]
fn snake_order_visits_neighbours_and_shards_partition_it() {
    let order = snake_order(3, 4);
    assert_eq!(order.len(), 12);
    for w in order.windows(2) {
        let d = w[0].0.abs_diff(w[1].0) + w[0].1.abs_diff(w[1].1);
        assert_eq!(d, 1, "{:?} -> {:?} is not a grid step", w[0], w[1]);
    }
    for n in 1..=13 {
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        for k in 0..n {
            let part = shard_points(&order, Shard { index: k, count: n });
            sizes.push(part.len());
            all.extend(part);
        }
        assert_eq!(all, order, "{n} shards cover the order exactly once");
        let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(hi - lo <= 1, "{n} shards: sizes {sizes:?}");
    }
}

/// Three shards sweep the quadratic system in snake order; the assembled grid is
/// the closed-form grid, point for point.
#[test]
fn sharded_sweep_assembles_the_closed_form_grid() {
    let spec = GridSpec {
        lambdas: range(0.5, 2.0, 4),
        gammas: range(0.5, 1.5, 3),
    };
    let order = snake_order(4, 3);
    let mut cells = Vec::new();
    for k in 0..3 {
        let shard = Shard { index: k, count: 3 };
        let mut sys = QuadraticSystem::example();
        let mut sweep = Sweep::new(&mut sys, &spec, shard_points(&order, shard), 5, 1).unwrap();
        assert_eq!(sweep.remaining(), 4);
        while let Some(item) = sweep.next() {
            let fep_thermo::SweepPoint {
                i,
                j,
                point,
                equilibrium,
            } = item.unwrap();
            assert_eq!(equilibrium.steps, if cells.len() % 4 == 0 { 5 } else { 1 });
            // The system sits at the point just measured.
            let theta = fep_thermo::ThermodynamicSystem::params(sweep.system()).unwrap();
            let exact = QuadraticSystem::example()
                .equilibrium(Multipliers::new(spec.lambdas[i], spec.gammas[j]), 0.0)
                .unwrap();
            assert_eq!(theta, exact.iter().copied().collect::<Vec<_>>());
            cells.push(GridCell {
                shard: k + 1,
                of: 3,
                i,
                j,
                point,
            });
        }
        assert!(sweep.next().is_none());
    }
    let grid = assemble_grid(&spec, &cells).unwrap();
    let truth = concave_grid(&spec);
    assert_eq!(grid.points, truth.points);
    // A missing point is named; a duplicate and a foreign point are refused.
    let err = assemble_grid(&spec, &cells[1..]).unwrap_err().to_string();
    assert!(
        err.contains("missing") && err.contains("(lambda 0.5, gamma 0.5)"),
        "{err}"
    );
    let mut dup = cells.clone();
    dup.push(cells[3]);
    assert!(
        assemble_grid(&spec, &dup)
            .unwrap_err()
            .to_string()
            .contains("twice")
    );
    let mut foreign = cells.clone();
    foreign[0].point.lambda = 7.0;
    let err = assemble_grid(&spec, &foreign).unwrap_err().to_string();
    assert!(err.contains("config"), "{err}");
    let mut outside = cells.clone();
    outside[0].i = 9;
    let err = assemble_grid(&spec, &outside).unwrap_err().to_string();
    assert!(err.contains("outside the 4 x 3 grid"), "{err}");
}

#[test]
fn sweep_rejects_nodes_off_the_grid_and_invalid_specs() {
    let spec = GridSpec {
        lambdas: vec![0.5, 1.0],
        gammas: vec![0.5, 1.0],
    };
    let mut sys = QuadraticSystem::example();
    assert!(Sweep::new(&mut sys, &spec, vec![(0, 0), (2, 0)], 1, 1).is_err());
    let bad = GridSpec {
        lambdas: vec![0.5, 1.0],
        gammas: vec![-1.0, 1.0],
    };
    assert!(Sweep::new(&mut sys, &bad, vec![(0, 0)], 1, 1).is_err());
}

#[test]
fn quadratic_fit_recovers_a_quadratic_and_refuses_a_singular_grid() {
    let truth = QuadraticFit {
        coefficients: [1.0, -2.0, 0.5, 0.25, -0.1, 0.3],
    };
    let spec = GridSpec {
        lambdas: vec![0.5, 1.0, 2.0, 3.0],
        gammas: vec![0.5, 1.0, 1.5],
    };
    let grid = synthetic(&spec, |_, _| 0.0, |_, _| 0.0, |l, g| truth.eval(l, g));
    let fit = QuadraticFit::fit(&grid, |p| p.free_energy).unwrap();
    for (a, b) in fit.coefficients.iter().zip(&truth.coefficients) {
        assert!((a - b).abs() < 1e-9, "{fit:?}");
    }
    assert!((fit.eval(1.7, 0.9) - truth.eval(1.7, 0.9)).abs() < 1e-9);
    let thin = GridSpec {
        lambdas: vec![0.5, 1.0, 2.0],
        gammas: vec![0.5, 1.0],
    };
    let grid = synthetic(&thin, |_, _| 0.0, |_, _| 0.0, |l, g| truth.eval(l, g));
    let err = QuadraticFit::fit(&grid, |p| p.free_energy).unwrap_err();
    assert!(matches!(err, ThermoError::SingularFit(_)), "{err}");
}

#[test]
fn surface_point_json_is_flat() {
    let p = SurfacePoint::new(
        Multipliers::new(1.0, 2.0),
        Functionals {
            rate: 0.5,
            distortion: 1.5,
            classification: 0.25,
        },
    );
    let json = serde_json_like(&p);
    for key in [
        "lambda",
        "gamma",
        "rate",
        "distortion",
        "classification",
        "free_energy",
    ] {
        assert!(json.contains(&format!("{key} = ")), "{json}");
    }
    assert!(!json.contains("functionals"));
    let back: SurfacePoint = toml::from_str(&json).unwrap();
    assert_eq!(back, p);
}

/// TOML stands in for JSON here (the crate has no JSON dependency); flattening is
/// format-independent in serde.
fn serde_json_like(p: &SurfacePoint) -> String {
    toml::to_string(p).unwrap()
}
