//! The parts of a continuation (predictor, corrector, step control, gamma bounds) and
//! the `Process` iterator, on the quadratic toy system against its closed forms.

use fep_thermo::{
    AdaptiveStep, ConstraintKind, Continuation, Corrector, Functional, GammaBounds, HvpMethod,
    IftConfig, IntegratorKind, Multipliers, NewtonSecant, Predictor, PredictorCorrectorConfig,
    Process, ProcessPath, ProcessSnapshot, QuadraticSystem, StepControl, StepRecord, StoppingRule,
    Tangent, ThermoError, ThermodynamicSystem, TrustRegion, run_process,
};

fn ift() -> IftConfig {
    IftConfig {
        relative_damping: 1e-12,
        cg_tolerance: 1e-13,
        cg_max_iterations: 100,
        ..IftConfig::default()
    }
}

/// A started system: equilibrated at (lambda(0), gamma = 1) on p_{t(0)}.
fn started(path: &ProcessPath) -> (QuadraticSystem, Multipliers) {
    let mut sys = QuadraticSystem::example();
    let start = Multipliers::new(path.lambda(0.0), 1.0);
    sys.set_data_position(path.data(0.0)).unwrap();
    sys.equilibrate(start, 1).unwrap();
    (sys, start)
}

/// Tangent predictor, Newton-secant corrector, adaptive steps, exact equilibration.
fn newton(tolerance: f64, max_iterations: usize, step: AdaptiveStep) -> Continuation {
    Continuation {
        predictor: Predictor::Tangent {
            trust: TrustRegion::NONE,
        },
        corrector: Corrector::NewtonSecant(NewtonSecant {
            relative_tolerance: tolerance,
            max_iterations,
            ..NewtonSecant::default()
        }),
        step_control: StepControl::Adaptive(step),
        gamma_bounds: GammaBounds::default(),
        equilibrium: StoppingRule::fixed(1),
        ift: ift(),
    }
}

/// gamma with `G*(lambda, gamma, t) = g0` by bisection on the closed form.
fn exact_gamma(sys: &QuadraticSystem, which: Functional, g0: f64, lambda: f64, t: f64) -> f64 {
    let r = |gamma: f64| {
        sys.equilibrium_functionals(Multipliers::new(lambda, gamma), t)
            .unwrap()
            .get(which)
            - g0
    };
    let (mut lo, mut hi) = (1e-3, 30.0);
    assert!(r(lo) * r(hi) < 0.0, "no root for {which:?} at {lambda}");
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

fn steps_of(records: &[StepRecord]) -> Vec<f64> {
    records.windows(2).map(|w| w[1].s - w[0].s).collect()
}

#[test]
fn corrector_reaches_its_tolerance() {
    let path = ProcessPath::lambda_only(2.0, 1.0);
    let (mut sys, start) = started(&path);
    let c0 = sys.functionals().unwrap().classification;
    let constraint = ConstraintKind::IsoClassification.constraint();
    let tangent = Tangent::at(&mut sys, start, 0.0, &path, constraint, &ift()).unwrap();
    // A poor prediction: lambda moves to 1.4 and gamma stays.
    let trial = Multipliers::new(1.4, 1.0);
    let eq = sys
        .equilibrate_until(trial, &StoppingRule::fixed(1))
        .unwrap();
    let f = eq.functionals;
    assert!(((f.classification - c0) / c0).abs() > 1e-3);
    let newton = NewtonSecant {
        relative_tolerance: 1e-11,
        max_iterations: 20,
        ..NewtonSecant::default()
    };
    let out = newton
        .correct(
            &mut sys,
            constraint,
            c0,
            trial,
            eq,
            &tangent,
            GammaBounds::default(),
            &StoppingRule::fixed(1),
        )
        .unwrap();
    assert!(out.converged(), "{:?}", out.failure);
    assert!(out.iterations >= 1);
    assert!(((out.functionals.classification - c0) / c0).abs() <= 1e-11);
    let exact = exact_gamma(&sys, Functional::Classification, c0, 1.4, 0.0);
    assert!((out.multipliers.gamma - exact).abs() < 1e-8 * exact);
    assert_eq!(out.multipliers.lambda, 1.4);
}

#[test]
fn steps_grow_after_easy_corrections() {
    let path = ProcessPath::lambda_only(2.0, 1.0);
    let (mut sys, start) = started(&path);
    let step = AdaptiveStep {
        initial: 0.05,
        min: 1e-3,
        max: 0.5,
        growth: 2.0,
        grow_if_iterations_at_most: 100,
        ..AdaptiveStep::default()
    };
    let c = newton(1e-9, 20, step);
    let result = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &c,
        |_| {},
    )
    .unwrap();
    let steps = steps_of(&result.records);
    assert!((steps[0] - 0.05).abs() < 1e-15 && (steps[1] - 0.1).abs() < 1e-15);
    assert!((steps[2] - 0.2).abs() < 1e-15, "{steps:?}");
    assert!((result.records.last().unwrap().s - 1.0).abs() < 1e-12);
    assert!(result.records.iter().all(|r| r.converged));
    assert!(result.max_relative_drift <= 1e-9);
}

/// Relative error in C of the tangent predictor alone after a step h from the start.
fn predictor_error(path: &ProcessPath, h: f64) -> f64 {
    let (mut sys, start) = started(path);
    let c0 = sys.functionals().unwrap().classification;
    let constraint = ConstraintKind::IsoClassification.constraint();
    let tangent = Tangent::at(&mut sys, start, 0.0, path, constraint, &ift()).unwrap();
    let m = Multipliers::new(path.lambda(h), start.gamma + h * tangent.gamma_rate);
    let c = sys.equilibrium_functionals(m, 0.0).unwrap().classification;
    ((c - c0) / c0).abs()
}

#[test]
fn steps_halve_when_the_corrector_fails() {
    let path = ProcessPath::lambda_only(2.0, 0.5);
    let (e_half, e_quarter) = (predictor_error(&path, 0.5), predictor_error(&path, 0.25));
    assert!(e_quarter < 0.5 * e_half, "{e_quarter} vs {e_half}");
    // A tolerance that the predictor meets at h = 1/4 but not at h = 1/2, with no
    // Newton iteration allowed: the first step must be halved once.
    let tolerance = 0.5 * (e_half + e_quarter);
    let step = AdaptiveStep {
        initial: 0.5,
        min: 1e-3,
        max: 0.5,
        growth: 1.0,
        ..AdaptiveStep::default()
    };
    let (mut sys, start) = started(&path);
    let mut process = Process::new(
        &mut sys,
        start,
        path,
        ConstraintKind::IsoClassification,
        newton(tolerance, 0, step),
    )
    .unwrap();
    assert_eq!(process.next().unwrap().unwrap().s, 0.0);
    let first = process.next().unwrap().unwrap();
    assert_eq!(first.s, 0.25);
    assert!(first.converged && first.corrector_iterations == 0);
    assert!(first.relative_drift.abs() <= tolerance);
    // The halved state starts where the step started: lambda(0) and t(0).
    assert_eq!(first.lambda, path.lambda(0.25));
}

fn impossible(accept_unconverged: bool) -> Continuation {
    newton(
        1e-15,
        0,
        AdaptiveStep {
            initial: 0.1,
            min: 0.01,
            max: 0.1,
            accept_unconverged,
            ..AdaptiveStep::default()
        },
    )
}

#[test]
fn step_too_small_is_a_clear_error() {
    let path = ProcessPath::lambda_only(2.0, 1.0);
    let (mut sys, start) = started(&path);
    let theta0 = sys.params().unwrap();
    let err = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &impossible(false),
        |_| {},
    )
    .unwrap_err();
    match &err {
        ThermoError::StepTooSmall {
            step, min_step, s, ..
        } => {
            assert!(step < min_step && *min_step == 0.01 && *s == 0.0);
        }
        other => panic!("expected StepTooSmall, got {other}"),
    }
    let text = err.to_string();
    assert!(text.contains("fell below the minimum") && text.contains("Classification"));
    // The failed step was undone.
    assert_eq!(sys.params().unwrap(), theta0);
}

#[test]
fn accept_unconverged_flags_the_records() {
    let path = ProcessPath::lambda_only(2.0, 1.0);
    let (mut sys, start) = started(&path);
    let result = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &impossible(true),
        |_| {},
    )
    .unwrap();
    assert!((result.records.last().unwrap().s - 1.0).abs() < 1e-12);
    assert!(result.records[0].converged);
    assert!(result.records[1..].iter().all(|r| !r.converged));
    assert!(result.max_relative_drift > 0.0);
}

/// Iso-rate and iso-distortion (and iso-classification on moving data) hold their
/// functional, with gamma on the closed-form path.
#[test]
fn iso_paths_follow_their_closed_forms() {
    let cases = [
        (ConstraintKind::IsoRate, ProcessPath::lambda_only(2.0, 1.0)),
        (
            ConstraintKind::IsoDistortion,
            ProcessPath::lambda_only(2.0, 1.0),
        ),
        (
            ConstraintKind::IsoClassification,
            ProcessPath::transfer(2.0, 1.5),
        ),
    ];
    for (kind, path) in cases {
        let (mut sys, start) = started(&path);
        let c = newton(1e-10, 10, AdaptiveStep::default());
        let result = run_process(&mut sys, start, &path, kind, &c, |_| {}).unwrap();
        let which = kind.monitored();
        assert!(result.records.len() > 4);
        assert!((result.records.last().unwrap().s - 1.0).abs() < 1e-12);
        for r in &result.records {
            assert!(
                r.converged && r.relative_drift.abs() <= 1e-10,
                "{kind}: {r:?}"
            );
            let exact = exact_gamma(&sys, which, result.target, r.lambda, r.t);
            assert!(
                (r.gamma - exact).abs() <= 1e-7 * exact,
                "{kind}: gamma {} vs {exact} at s = {}",
                r.gamma,
                r.s
            );
        }
    }
}

/// Along iso-classification from lambda 2 to 0.5 gamma rises; with `max = 1.05`
/// Euler stops at the wall instead of passing it.
#[test]
fn euler_honours_gamma_bounds() {
    let path = ProcessPath::lambda_only(2.0, 0.5);
    let run = |bounds: GammaBounds| {
        let (mut sys, start) = started(&path);
        let mut c = Continuation::euler(10, 1, ift());
        c.gamma_bounds = bounds;
        run_process(
            &mut sys,
            start,
            &path,
            ConstraintKind::IsoClassification,
            &c,
            |_| {},
        )
        .unwrap()
    };
    let free = run(GammaBounds::default());
    let top = free.records.iter().map(|r| r.gamma).fold(0.0, f64::max);
    assert!(top > 1.2, "gamma only reached {top}");
    let walled = run(GammaBounds {
        min: 0.0,
        max: 1.05,
    });
    assert!(walled.records.iter().all(|r| r.gamma <= 1.05));
    assert_eq!(walled.records.last().unwrap().gamma, 1.05);
}

#[test]
fn process_iterator_protocol() {
    let path = ProcessPath::lambda_only(2.0, 1.0);
    let (mut sys, start) = started(&path);
    let mut process = Process::new(
        &mut sys,
        start,
        path,
        ConstraintKind::IsoClassification,
        Continuation::euler(4, 1, ift()),
    )
    .unwrap();
    assert!(process.records().is_empty());
    let c0 = process.target();
    let first = process.next().unwrap().unwrap();
    assert_eq!((first.s, first.lambda, first.gamma), (0.0, 2.0, 1.0));
    assert_eq!(first.functionals.classification, c0);
    assert_eq!(process.records().len(), 1);
    let mut seen = vec![first];
    while let Some(record) = process.next() {
        let record = record.unwrap();
        // The system is reachable between steps, at the point just recorded.
        let f = process.system_mut().functionals().unwrap();
        assert_eq!(f, record.functionals);
        assert_eq!(process.system().data_position(), record.t);
        seen.push(record);
    }
    assert_eq!(seen.len(), 5);
    assert!(process.next().is_none() && process.next().is_none());
    let result = process.finish();
    assert_eq!(result.records, seen);
    assert!((result.records[4].s - 1.0).abs() < 1e-15);

    // After an error: None.
    let (mut sys, start) = started(&path);
    let mut failing = Process::new(
        &mut sys,
        start,
        path,
        ConstraintKind::IsoClassification,
        impossible(false),
    )
    .unwrap();
    assert!(failing.next().unwrap().is_ok());
    assert!(matches!(
        failing.next(),
        Some(Err(ThermoError::StepTooSmall { .. }))
    ));
    assert!(failing.next().is_none());
    assert_eq!(failing.finish().records.len(), 1);
}

#[test]
fn process_validates_its_start() {
    let path = ProcessPath::lambda_only(2.0, 1.0);
    let (mut sys, _) = started(&path);
    let c = Continuation::euler(4, 1, ift());
    let wrong_lambda = Process::new(
        &mut sys,
        Multipliers::new(1.5, 1.0),
        path,
        ConstraintKind::FixedGamma,
        c,
    );
    assert!(matches!(wrong_lambda, Err(ThermoError::InvalidConfig(_))));
    let mut walled = c;
    walled.gamma_bounds.max = 0.5;
    let outside = Process::new(
        &mut sys,
        Multipliers::new(2.0, 1.0),
        path,
        ConstraintKind::FixedGamma,
        walled,
    );
    assert!(matches!(outside, Err(ThermoError::InvalidConfig(_))));
    let no_steps = Process::new(
        &mut sys,
        Multipliers::new(2.0, 1.0),
        path,
        ConstraintKind::FixedGamma,
        Continuation::euler(0, 1, ift()),
    );
    assert!(no_steps.is_err());
}

/// The run_process convenience and the iterator produce the same records, and the
/// predictor-corrector config maps onto the same continuation.
#[test]
fn run_process_equals_the_iterator() {
    let path = ProcessPath::transfer(2.0, 1.2);
    let cfg = PredictorCorrectorConfig {
        equilibrium: StoppingRule::fixed(1),
        relative_tolerance: 1e-8,
        ..Default::default()
    };
    let c = Continuation::predictor_corrector(&cfg, ift());
    assert_eq!(c.corrector, Corrector::NewtonSecant(cfg.newton_secant()));
    assert_eq!(c.step_control, StepControl::Adaptive(cfg.adaptive_step()));
    let (mut sys, start) = started(&path);
    let mut seen = Vec::new();
    let a = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &c,
        |r| seen.push(*r),
    )
    .unwrap();
    let (mut sys, start) = started(&path);
    let b: Vec<StepRecord> =
        Process::new(&mut sys, start, path, ConstraintKind::IsoClassification, c)
            .unwrap()
            .collect::<fep_thermo::Result<_>>()
            .unwrap();
    let strip = |v: &[StepRecord]| {
        v.iter()
            .map(|r| StepRecord {
                wall_seconds: 0.0,
                ..*r
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&a.records), strip(&b));
    assert_eq!(strip(&a.records), strip(&seen));
    // Every accepted point reports its equilibrations: the predictor's one fixed step and
    // one per corrector iteration (the start was equilibrated before the process).
    for (k, r) in a.records.iter().enumerate() {
        let expected = if k == 0 {
            0
        } else {
            1 + r.corrector_iterations
        };
        assert_eq!(r.equilibrium.steps, expected, "record {k}");
        assert!(!r.equilibrium.met && r.equilibrium.criterion.is_none());
    }
}

/// The warm start (Hold) with the Newton corrector holds C too; Hold without a
/// corrector on the naive path is the plain warm-started sweep in lambda.
#[test]
fn hold_predictor() {
    let path = ProcessPath::lambda_only(2.0, 1.0);
    let mut c = newton(1e-10, 20, AdaptiveStep::default());
    c.predictor = Predictor::Hold;
    let (mut sys, start) = started(&path);
    let held = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &c,
        |_| {},
    )
    .unwrap();
    assert!(held.max_relative_drift <= 1e-10);
    c.corrector = Corrector::None;
    let (mut sys, start) = started(&path);
    let naive = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::FixedGamma,
        &c,
        |_| {},
    )
    .unwrap();
    for r in &naive.records {
        assert_eq!(r.gamma, 1.0);
        let exact = sys
            .equilibrium_functionals(Multipliers::new(r.lambda, 1.0), 0.0)
            .unwrap();
        assert_eq!(r.functionals, exact);
    }
    assert!(naive.max_relative_drift > 1e-3);
    // First law along the naive path (trapezoidal work, fine steps: 1e-3 of dF).
    let df = naive.records.last().unwrap().free_energy - naive.records[0].free_energy;
    assert!(naive.first_law_residual().abs() < 1e-2 * df.abs());
}

#[test]
fn configs_parse_by_their_names() {
    assert_eq!(
        "euler".parse::<IntegratorKind>().unwrap(),
        IntegratorKind::Euler
    );
    assert_eq!(
        "predictor-corrector".parse::<IntegratorKind>().unwrap(),
        IntegratorKind::PredictorCorrector
    );
    assert!("rk4".parse::<IntegratorKind>().is_err());
    assert_eq!(
        IntegratorKind::PredictorCorrector.to_string(),
        "predictor-corrector"
    );
    #[derive(serde::Deserialize)]
    struct Doc {
        integrator: IntegratorKind,
        constraint: ConstraintKind,
        hvp: HvpMethod,
    }
    let doc: Doc = toml::from_str(
        r#"
integrator = "predictor-corrector"
constraint = "iso-rate"
hvp = { kind = "finite-difference", relative_step = 0.01 }
"#,
    )
    .unwrap();
    assert_eq!(doc.integrator, IntegratorKind::PredictorCorrector);
    assert_eq!(doc.constraint, ConstraintKind::IsoRate);
    assert_eq!(
        doc.constraint
            .to_string()
            .parse::<ConstraintKind>()
            .unwrap(),
        ConstraintKind::IsoRate
    );
    assert_eq!(
        doc.hvp,
        HvpMethod::FiniteDifference {
            relative_step: 0.01
        }
    );
    let exact: Result<HvpMethod, _> = toml::from_str(r#"kind = "exact""#);
    assert!(exact.is_err());
}

/// The predictor's trust region caps each gamma move at
/// `max_relative_gamma_step * max(|gamma|, 1)`.
#[test]
fn trust_region_caps_the_predicted_move() {
    let path = ProcessPath::lambda_only(2.0, 0.5);
    let mut c = Continuation::euler(4, 1, ift());
    c.predictor = Predictor::Tangent {
        trust: TrustRegion {
            max_relative_gamma_step: 0.01,
            max_relative_theta_step: f64::INFINITY,
        },
    };
    let (mut sys, start) = started(&path);
    let result = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &c,
        |_| {},
    )
    .unwrap();
    for w in result.records.windows(2) {
        let step = w[1].gamma - w[0].gamma;
        assert!(step > 0.0 && step <= 0.01 * w[0].gamma.max(1.0) * (1.0 + 1e-12));
    }
}

/// The corrector treats the gamma bounds as walls too.
#[test]
fn corrector_honours_gamma_bounds() {
    let path = ProcessPath::lambda_only(2.0, 0.5);
    let mut c = newton(
        1e-10,
        5,
        AdaptiveStep {
            accept_unconverged: true,
            min: 0.05,
            ..AdaptiveStep::default()
        },
    );
    c.gamma_bounds = GammaBounds { min: 0.9, max: 1.5 };
    let (mut sys, start) = started(&path);
    let result = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &c,
        |_| {},
    )
    .unwrap();
    assert!(
        result
            .records
            .iter()
            .all(|r| (0.9..=1.5).contains(&r.gamma))
    );
    let last = result.records.last().unwrap();
    assert_eq!(last.gamma, 1.5);
    assert!(!last.converged, "C cannot be held with gamma capped at 1.5");
    assert!(GammaBounds { min: 2.0, max: 1.0 }.validate().is_err());
}

/// A process stopped after two steps and resumed from its snapshot on a copy of the system
/// (as a killed run resumes from its checkpoint) yields exactly the records of the
/// uninterrupted process, with adaptive steps whose length the snapshot must carry.
#[test]
fn a_process_resumed_from_its_snapshot_continues_exactly() {
    let path = ProcessPath::transfer(2.0, 0.5).with_data_exponent(2.0);
    let continuation = newton(
        1e-4,
        4,
        AdaptiveStep {
            initial: 0.1,
            growth: 1.7,
            ..AdaptiveStep::default()
        },
    );
    let (mut sys, start) = started(&path);
    let whole = run_process(
        &mut sys,
        start,
        &path,
        ConstraintKind::IsoClassification,
        &continuation,
        |_| {},
    )
    .unwrap();
    assert!(whole.records.len() > 4, "{}", whole.records.len());
    let (mut sys, start) = started(&path);
    let mut first = Process::new(
        &mut sys,
        start,
        path,
        ConstraintKind::IsoClassification,
        continuation,
    )
    .unwrap();
    for _ in 0..3 {
        first.next().unwrap().unwrap();
    }
    // Through JSON, as the checkpoint stores it.
    let text = serde_json::to_string(&first.snapshot()).unwrap();
    let snapshot: ProcessSnapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(snapshot.records.len(), 3);
    assert_ne!(snapshot.steps.step, 0.1, "the step length has grown");
    drop(first);
    let mut copy = sys.clone();
    sys.set_data_position(0.0).unwrap(); // the original is gone: only the copy goes on
    let resumed = Process::resume(
        &mut copy,
        path,
        ConstraintKind::IsoClassification,
        continuation,
        snapshot,
    )
    .unwrap();
    let rest: Vec<StepRecord> = resumed.map(|r| r.unwrap()).collect();
    assert_eq!(rest.len(), whole.records.len() - 3);
    for (a, b) in rest.iter().zip(&whole.records[3..]) {
        assert_eq!(
            (a.s, a.lambda, a.gamma, a.functionals, a.work),
            (b.s, b.lambda, b.gamma, b.functionals, b.work)
        );
    }
}
