//! Conjugate gradients, Hessian-vector products, IFT sensitivities and the tangent
//! law, against the closed forms of the quadratic toy system.

use fep_thermo::process::constraint::Constraint;
use fep_thermo::sensitivity::{conjugate_gradients, hessian_vector_product};
use fep_thermo::{
    ConstraintKind, Functional, HvpMethod, IftConfig, Multipliers, ProcessPath, QuadraticSystem,
    Tangent, ThermodynamicSystem, ift_sensitivities,
};
use nalgebra::{DMatrix, DVector};
use proptest::prelude::*;

/// Tight IFT settings: on a quadratic the finite-difference products are exact up to
/// rounding, so only the damping biases the answer.
fn tight() -> IftConfig {
    IftConfig {
        relative_damping: 1e-12,
        cg_tolerance: 1e-13,
        cg_max_iterations: 100,
        ..IftConfig::default()
    }
}

fn apply(a: &DMatrix<f64>) -> impl FnMut(&[f64]) -> fep_thermo::Result<Vec<f64>> + '_ {
    move |v| {
        Ok((a * DVector::from_column_slice(v))
            .iter()
            .copied()
            .collect())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// CG on `(A + delta I) x = b`, A = L L' + 0.5 I, equals a Cholesky solve.
    #[test]
    fn cg_matches_a_direct_solve(
        n in 2usize..7,
        entries in prop::collection::vec(-1.0f64..1.0, 36),
        rhs in prop::collection::vec(-1.0f64..1.0, 6),
        damping in prop_oneof![Just(0.0), 0.01f64..1.0],
    ) {
        let l = DMatrix::from_fn(n, n, |i, j| entries[i * 6 + j]);
        let a = &l * l.transpose() + DMatrix::identity(n, n) * 0.5;
        let b: Vec<f64> = rhs[..n].to_vec();
        let sol = conjugate_gradients(apply(&a), &b, damping, 1e-13, 200).unwrap();
        let damped = &a + DMatrix::identity(n, n) * damping;
        let direct = damped.cholesky().unwrap().solve(&DVector::from_column_slice(&b));
        let scale = direct.norm().max(1e-12);
        for (x, y) in sol.x.iter().zip(direct.iter()) {
            prop_assert!((x - y).abs() <= 1e-9 * scale, "{:?} vs {}", sol.x, direct);
        }
        prop_assert!(sol.relative_residual <= 1e-12 || b.iter().all(|v| *v == 0.0));
        prop_assert!(sol.iterations <= n + 2);
    }

    /// IFT sensitivities equal the closed form `-g_a' H^-1 g_b`, Maxwell included.
    #[test]
    fn ift_matches_the_closed_form(
        lambda in 0.3f64..3.0,
        gamma in 0.3f64..3.0,
        t in 0.0f64..1.0,
    ) {
        let mut sys = QuadraticSystem::example();
        let m = Multipliers::new(lambda, gamma);
        sys.set_data_position(t).unwrap();
        sys.equilibrate(m, 1).unwrap();
        let ift = ift_sensitivities(&mut sys, m, &tight()).unwrap();
        let exact = sys.sensitivities(m, t).unwrap();
        let dev = ift.sensitivities.max_relative_deviation(&exact, 1e-3);
        prop_assert!(dev < 1e-8, "{:?} vs {exact:?}", ift.sensitivities);
        prop_assert!(ift.sensitivities.maxwell_residual().abs() < 1e-9);
        prop_assert!(exact.dD_dlambda < 0.0 && exact.dC_dgamma < 0.0 && exact.determinant() > 0.0);
    }
}

#[test]
fn cg_stops_at_negative_curvature_with_the_levenberg_answer() {
    let h = DMatrix::from_row_slice(2, 2, &[-2.0, 0.0, 0.0, 1.0]);
    let b = [1.0, 0.0];
    // b' (H + 0.5 I) b = -1.5 < 0 at the first iteration: x = b / delta.
    let sol = conjugate_gradients(apply(&h), &b, 0.5, 1e-12, 50).unwrap();
    assert_eq!(sol.iterations, 0);
    assert_eq!(sol.x, vec![2.0, 0.0]);
    assert_eq!(sol.relative_residual, 1.0);
    // Without damping there is no Levenberg answer: x stays 0, residual 1.
    let sol = conjugate_gradients(apply(&h), &b, 0.0, 1e-12, 50).unwrap();
    assert_eq!((sol.iterations, sol.x.clone()), (0, vec![0.0, 0.0]));
    assert_eq!(sol.relative_residual, 1.0);
    // Negative curvature met later: CG stops there and reports its residual.
    let h = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, -3.0]);
    let sol = conjugate_gradients(apply(&h), &[1.0, 0.1], 0.0, 1e-12, 50).unwrap();
    assert!(sol.iterations >= 1 && sol.iterations < 50);
    assert!(sol.relative_residual > 1e-12 && sol.relative_residual.is_finite());
}

#[test]
fn finite_difference_hessian_vector_product_is_exact_on_a_quadratic() {
    let mut sys = QuadraticSystem::example();
    let m = Multipliers::new(1.3, 0.7);
    sys.set_params(&[0.3, -0.2]).unwrap();
    let v = [0.4, 1.1];
    let hv = hessian_vector_product(
        &mut sys,
        m,
        &v,
        HvpMethod::FiniteDifference {
            relative_step: 1e-3,
        },
    )
    .unwrap();
    let exact = sys.hessian(m) * DVector::from_column_slice(&v);
    for (a, b) in hv.iter().zip(exact.iter()) {
        assert!((a - b).abs() < 1e-10, "{hv:?} vs {exact}");
    }
    assert_eq!(
        sys.params().unwrap(),
        vec![0.3, -0.2],
        "parameters restored"
    );
}

/// gamma(s) with `G*(lambda(s), gamma, t(s)) = g0` by bisection on the closed form.
fn closed_form_gamma(
    sys: &QuadraticSystem,
    path: &ProcessPath,
    which: Functional,
    g0: f64,
    s: f64,
) -> f64 {
    let r = |gamma: f64| {
        sys.equilibrium_functionals(Multipliers::new(path.lambda(s), gamma), path.data(s))
            .unwrap()
            .get(which)
            - g0
    };
    let (mut lo, mut hi) = (1e-3, 30.0);
    assert!(
        r(lo) * r(hi) < 0.0,
        "no sign change for {which:?} at s = {s}"
    );
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if r(mid) * r(lo) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The tangent law gamma' equals a central difference of the closed-form path
/// gamma(s), for each held functional, on fixed and on moving data.
#[test]
fn tangent_law_matches_the_closed_form_path() {
    let paths = [
        ProcessPath::lambda_only(2.0, 1.0),
        ProcessPath::transfer(2.0, 1.5),
        ProcessPath::transfer(1.5, 1.5).with_data_exponent(2.0),
    ];
    let kinds = [
        ConstraintKind::IsoClassification,
        ConstraintKind::IsoDistortion,
        ConstraintKind::IsoRate,
    ];
    for path in paths {
        for kind in kinds {
            if path.moves_data() && kind == ConstraintKind::IsoDistortion {
                // The example's target raises D beyond what gamma can compensate.
                continue;
            }
            let mut sys = QuadraticSystem::example();
            let start = Multipliers::new(path.lambda(0.0), 1.0);
            let which = kind.monitored();
            let g0 = sys
                .equilibrium_functionals(start, path.data(0.0))
                .unwrap()
                .get(which);
            let s0 = 0.4;
            let gamma = |s: f64| closed_form_gamma(&sys, &path, which, g0, s);
            let h = 1e-4;
            let fd = (gamma(s0 + h) - gamma(s0 - h)) / (2.0 * h);
            let m = Multipliers::new(path.lambda(s0), gamma(s0));
            sys.set_data_position(path.data(s0)).unwrap();
            sys.equilibrate(m, 1).unwrap();
            let constraint: &dyn Constraint = kind.constraint();
            let tangent = Tangent::at(&mut sys, m, s0, &path, constraint, &tight()).unwrap();
            assert!(
                (tangent.gamma_rate - fd).abs() <= 1e-6 * fd.abs().max(1e-3),
                "{kind} on {path:?}: gamma' {} vs finite difference {fd}",
                tangent.gamma_rate
            );
            // Holding G: its total derivative along the tangent vanishes, and the
            // data position is left where it was.
            assert_eq!(sys.data_position(), path.data(s0));
        }
    }
}

/// The naive path's tangent keeps gamma fixed.
#[test]
fn fixed_gamma_tangent_does_not_move_gamma() {
    let mut sys = QuadraticSystem::example();
    let m = Multipliers::new(2.0, 1.0);
    sys.equilibrate(m, 1).unwrap();
    let path = ProcessPath::lambda_only(2.0, 1.0);
    let tangent = Tangent::at(
        &mut sys,
        m,
        0.0,
        &path,
        ConstraintKind::FixedGamma.constraint(),
        &tight(),
    )
    .unwrap();
    assert_eq!(tangent.gamma_rate, 0.0);
    // theta' = -lambda' H^-1 g_D: compare with the closed-form d theta*/d lambda.
    let eps = 1e-6;
    let a = sys
        .equilibrium(Multipliers::new(2.0 + eps, 1.0), 0.0)
        .unwrap();
    let b = sys
        .equilibrium(Multipliers::new(2.0 - eps, 1.0), 0.0)
        .unwrap();
    let dtheta = (a - b) / (2.0 * eps) * (path.lambda_end - path.lambda_start);
    for (x, y) in tangent.theta_rate.iter().zip(dtheta.iter()) {
        assert!((x - y).abs() < 1e-6, "{:?} vs {dtheta}", tangent.theta_rate);
    }
}
