//! The surface identities on closed-form grids where they must hold and on grids
//! where they must fail; sweeping, sharding, assembly and the quadratic fit.

use fep_thermo::surface::checks;
use fep_thermo::{
    Functionals, GridCell, GridSpec, Multipliers, QuadraticFit, QuadraticSystem, Shard,
    SurfaceGrid, SurfacePoint, Sweep, ThermoError, assemble_grid, shard_points, snake_order,
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
        })
    })
    .unwrap()
}

const TOL: f64 = 1e-3;

#[test]
fn every_identity_holds_on_a_concave_closed_form_surface() {
    let grid = concave_grid(&fine_spec());
    let all = grid.checks(TOL);
    for (name, c) in [
        ("D decreasing", all.distortion_decreasing_in_lambda),
        ("C decreasing", all.classification_decreasing_in_gamma),
        ("envelope lambda", all.envelope_lambda),
        ("envelope gamma", all.envelope_gamma),
        ("Maxwell", all.maxwell),
        ("concavity", all.concavity),
        ("first law", all.first_law_loop),
    ] {
        assert!(c.checked > 0 && c.passed(), "{name}: {c:?}");
        assert!(c.max_residual < TOL, "{name}: {c:?}");
    }
    assert_eq!(all.concavity.checked, 39 * 29);
    assert_eq!(all.maxwell.checked, 40 * 30);
    assert_eq!(all.envelope_lambda.checked, 40 * 31);
    // The summary is exactly the individual checks.
    assert_eq!(all.maxwell, checks::maxwell(&grid, TOL));
    assert_eq!(all.concavity, checks::concavity(&grid, TOL));
    assert_eq!(all.envelope_gamma, checks::envelope_gamma(&grid, TOL));
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
    assert!(!checks::distortion_decreasing_in_lambda(&grid, TOL).passed());
    assert!(!checks::classification_decreasing_in_gamma(&grid, TOL).passed());
    let concavity = checks::concavity(&grid, TOL);
    assert_eq!(concavity.violations, concavity.checked);
    assert!((concavity.max_residual - 2.0).abs() < 1e-9);
    assert!(checks::envelope_lambda(&grid, 1e-9).passed());
    assert!(checks::envelope_gamma(&grid, 1e-9).passed());
    assert!(checks::maxwell(&grid, 1e-9).passed());
    assert!(checks::first_law_loop(&grid, 1e-9).passed());
}

#[test]
fn a_non_monotone_distortion_fails() {
    let spec = fine_spec();
    let mut grid = concave_grid(&spec);
    for row in &mut grid.points {
        for p in row {
            p.functionals.distortion += 0.5 * (4.0 * p.lambda).sin();
        }
    }
    let c = checks::distortion_decreasing_in_lambda(&grid, TOL);
    assert!(c.violations > 0 && c.violations < c.checked, "{c:?}");
}

/// F shifted by lambda / 2 no longer integrates D: the lambda envelope fails by 1/2,
/// the gamma envelope and the identities among D and C still hold.
#[test]
fn a_free_energy_inconsistent_with_d_fails_the_envelope() {
    let spec = fine_spec();
    let mut grid = concave_grid(&spec);
    for row in &mut grid.points {
        for p in row {
            p.free_energy += 0.5 * p.lambda;
        }
    }
    let c = checks::envelope_lambda(&grid, TOL);
    assert_eq!(c.violations, c.checked);
    assert!((c.max_residual - 0.5).abs() < TOL);
    assert!(checks::envelope_gamma(&grid, TOL).passed());
    assert!(checks::maxwell(&grid, TOL).passed());
    assert!(checks::first_law_loop(&grid, TOL).passed());
}

/// D = gamma, C = 0: `dD/dgamma = 1 != dC/dlambda = 0`, and the work around a cell of
/// area A is `-A`.
#[test]
fn a_non_integrable_d_c_field_fails_maxwell_and_the_first_law() {
    let spec = GridSpec {
        lambdas: range(0.0, 1.0, 3),
        gammas: range(0.0, 1.0, 5),
    };
    let grid = synthetic(&spec, |_, g| g, |_, _| 0.0, |_, _| 0.0);
    let m = checks::maxwell(&grid, TOL);
    assert_eq!((m.checked, m.violations), (8, 8));
    assert!((m.max_residual - 1.0).abs() < 1e-12);
    let loop_ = checks::first_law_loop(&grid, TOL);
    assert_eq!(loop_.violations, 8);
    assert!((loop_.max_residual - 0.5 * 0.25).abs() < 1e-12);
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
