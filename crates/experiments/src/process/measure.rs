//! Measuring a model apart from its controller: both test splits, every example, K fresh
//! noise draws each (`fep_models::measure`), C mixed at the row's data position; and the
//! rows of the baselines, which have no controller of their own.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::Domains;
use fep_models::system::DeepSystem;
use fep_thermo::{EquilibriumReport, Multipliers, ThermodynamicSystem};

use super::rows::{SplitMeasurement, TestRow, TraceRow};
use crate::error::Result;

/// How rows are measured on the test splits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestMeasure {
    /// Noise draws per example (K).
    pub samples: usize,
    /// Seed of the draws (a stream of its own: never the probe's or training's noise).
    pub seed: u64,
}

/// The system's current model on both test splits, C mixed at data position `t`; the
/// drift against `c0` (none yet at the start: 0).
pub(crate) fn measure_on_test<B: AutodiffBackend>(
    system: &DeepSystem<B>,
    domains: &Domains,
    t: f64,
    how: TestMeasure,
    c0: Option<f64>,
) -> Result<TestRow> {
    let source = system.measure(&domains.source.test, how.samples, how.seed)?;
    let target = match &domains.target {
        Some(d) => Some(system.measure(&d.test, how.samples, how.seed)?),
        None => None,
    };
    let (cs, ss) = (
        source.functionals.classification,
        source.standard_errors.classification,
    );
    let (ct, st) = target.as_ref().map_or((cs, ss), |m| {
        (
            m.functionals.classification,
            m.standard_errors.classification,
        )
    });
    let classification = (1.0 - t) * cs + t * ct;
    let classification_se = ((1.0 - t).powi(2) * ss * ss + t * t * st * st).sqrt();
    let c0 = c0.unwrap_or(classification);
    Ok(TestRow {
        source: (&source).into(),
        target: target.as_ref().map(SplitMeasurement::from),
        classification,
        classification_se,
        relative_drift: (classification - c0) / c0,
    })
}

/// Source and target test accuracies of a test row (the source's twice without a target).
pub(crate) fn accuracies(test: &TestRow) -> (f64, f64) {
    let source = test.source.accuracy;
    (source, test.target.map_or(source, |t| t.accuracy))
}

/// Where a baseline's row is measured.
pub(crate) struct RowAt {
    /// Data position.
    pub t: f64,
    /// Multipliers.
    pub m: Multipliers,
    /// Adam steps trained since the previous row (a fixed budget, not a measured
    /// equilibrium).
    pub trained: usize,
}

/// The held values a baseline's drifts are measured against: C0 on the controller's
/// probe and on the test splits (both of the common start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeldValues {
    /// On the probe.
    pub probe: f64,
    /// On the test splits with fresh noise.
    pub test: f64,
}

/// A baseline's row at `at`: C on the probe of p_t, and the row on the test splits.
pub(crate) fn baseline_row<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    at: RowAt,
    c0: HeldValues,
    how: TestMeasure,
    clock: &Instant,
) -> Result<TraceRow> {
    let RowAt { t, m, trained } = at;
    system.set_data_position(t)?;
    let f = system.functionals()?;
    let test = measure_on_test(system, domains, t, how, Some(c0.test))?;
    let (sa, ta) = accuracies(&test);
    Ok(TraceRow {
        t,
        lambda: m.lambda,
        gamma: m.gamma,
        probe: f,
        controller_relative_drift: (f.classification - c0.probe) / c0.probe,
        source_accuracy: sa,
        target_accuracy: ta,
        test,
        corrector_iterations: 0,
        converged: true,
        equilibrium: EquilibriumReport::unmeasured(trained),
        optimizer_steps: system.work().optimizer_steps,
        checkpoint: None,
        wall_seconds: clock.elapsed().as_secs_f64(),
    })
}
