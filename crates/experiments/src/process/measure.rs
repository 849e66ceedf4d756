//! Measuring a model apart from its controller: both test splits, every example, K fresh
//! noise draws each (`fep_models::measure`), C mixed at the row's data position; and the
//! rows of the baselines, which have no controller of their own.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::Domains;
use fep_models::system::DeepSystem;
use fep_thermo::{EquilibriumReport, Multipliers, ThermodynamicSystem};

use super::rows::{SplitMeasurement, TestRow, TestStart, TraceRow};
use crate::error::{Result, invalid};

/// How rows are measured on the test splits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestMeasure {
    /// Noise draws per example (K).
    pub samples: usize,
    /// Seed of the draws (a stream of its own: never the probe's or training's noise).
    pub seed: u64,
}

/// The system's current model on both test splits, C mixed at data position `t`, and the
/// drift `(C - C0) / C0` against `start` with its standard error, paired on the same
/// examples and draws (none yet at the start: drift 0). Also returns each source test
/// example's C (the start of a trace keeps them).
///
/// With `s_i` and `s0_i` the C of source example i now and at the start (n_s of them) and
/// `T_j` that of target example j (n_t), the numerator `C - C0` is
/// `mean_i a_i + mean_j b_j` with `a_i = (1 - t) s_i - s0_i`, `b_j = t T_j`, so its
/// variance is `var(a) / n_s + var(b) / n_t`; without a target `a_i = s_i - s0_i`.
pub(crate) fn measure_on_test<B: AutodiffBackend>(
    system: &DeepSystem<B>,
    domains: &Domains,
    t: f64,
    how: TestMeasure,
    start: Option<&TestStart>,
) -> Result<(TestRow, Vec<f64>)> {
    let (source, per_source) =
        system.measure_per_example(&domains.source.test, how.samples, how.seed)?;
    let target = match &domains.target {
        Some(d) => Some(system.measure_per_example(&d.test, how.samples, how.seed)?),
        None => None,
    };
    let (cs, ss) = (
        source.functionals.classification,
        source.standard_errors.classification,
    );
    let (ct, st) = target.as_ref().map_or((cs, ss), |(m, _)| {
        (
            m.functionals.classification,
            m.standard_errors.classification,
        )
    });
    let classification = (1.0 - t) * cs + t * ct;
    let classification_se = ((1.0 - t).powi(2) * ss * ss + t * t * st * st).sqrt();
    let (relative_drift, relative_drift_se) = match start {
        None => (0.0, 0.0),
        Some(start) => {
            let per_target = target.as_ref().map(|(_, v)| v.as_slice());
            let se = paired_drift_se(start, &per_source, per_target, t)?;
            ((classification - start.c0) / start.c0, se / start.c0)
        }
    };
    let row = TestRow {
        source: (&source).into(),
        target: target.as_ref().map(|(m, _)| SplitMeasurement::from(m)),
        classification,
        classification_se,
        relative_drift,
        relative_drift_se,
    };
    Ok((row, per_source))
}

/// The standard error of `C - C0` paired on the source test examples (see
/// [`measure_on_test`]).
pub(crate) fn paired_drift_se(
    start: &TestStart,
    source: &[f64],
    target: Option<&[f64]>,
    t: f64,
) -> Result<f64> {
    if start.source.len() != source.len() {
        return Err(invalid(format!(
            "the source test split has {} examples now and had {} at the start of the trace",
            source.len(),
            start.source.len()
        )));
    }
    let weight = if target.is_some() { 1.0 - t } else { 1.0 };
    let a: Vec<f64> = source
        .iter()
        .zip(&start.source)
        .map(|(s, s0)| weight * s - s0)
        .collect();
    let b: Vec<f64> = target.map_or_else(Vec::new, |v| v.iter().map(|c| t * c).collect());
    Ok((variance_of_mean(&a) + variance_of_mean(&b)).sqrt())
}

/// `var(x) / n` with the sample variance (0 for fewer than two values).
fn variance_of_mean(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.len() < 2 {
        return 0.0;
    }
    let mean = x.iter().sum::<f64>() / n;
    x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / ((n - 1.0) * n)
}

/// The controller's probe at a point of the path, apart from what the corrector saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ProbeDrift {
    /// The standard error of the drift of C on the probe of p_t as an estimate of the
    /// drift on fresh examples, relative to C0.
    pub relative_se: f64,
    /// C on the source domain's probe.
    pub source: f64,
    /// C on the target domain's probe (where t > 0).
    pub target: Option<f64>,
}

/// The controller's probe at data position `t`: C on each domain's probe, and the standard
/// error of the drift of C on p_t as an estimate of the drift on fresh examples, relative
/// to C0: the system's probe now, paired with `start` (its C of every source probe example
/// at the start) on the same examples and fixed draws, by the formula of
/// [`measure_on_test`].
pub(crate) fn probe_drift<B: AutodiffBackend>(
    system: &DeepSystem<B>,
    start: &TestStart,
    t: f64,
) -> Result<ProbeDrift> {
    let (source, target) = system.probe_classification_per_example()?;
    let mean = |c: &[f64]| c.iter().sum::<f64>() / c.len().max(1) as f64;
    Ok(ProbeDrift {
        relative_se: paired_drift_se(start, &source, target.as_deref(), t)? / start.c0,
        source: mean(&source),
        target: target.as_deref().map(mean),
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
/// probe and on the test splits (both of the common start: the source checkpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct HeldValues {
    /// On the probe.
    pub probe: f64,
    /// On the test splits with fresh noise, with each source example's C.
    pub test: TestStart,
}

/// A baseline's row at `at`: C on the probe of p_t, and the row on the test splits.
pub(crate) fn baseline_row<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    at: RowAt,
    c0: &HeldValues,
    how: TestMeasure,
    clock: &Instant,
) -> Result<TraceRow> {
    let RowAt { t, m, trained } = at;
    system.set_data_position(t)?;
    let f = system.functionals()?;
    let (test, _) = measure_on_test(system, domains, t, how, Some(&c0.test))?;
    let (sa, ta) = accuracies(&test);
    Ok(TraceRow {
        t,
        lambda: m.lambda,
        gamma: m.gamma,
        probe: f,
        controller_relative_drift: (f.classification - c0.probe) / c0.probe,
        controller_relative_drift_se: None,
        controller_source_classification: None,
        controller_target_classification: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> TestStart {
        TestStart {
            c0: 2.0,
            source: vec![1.0, 2.0, 3.0],
        }
    }

    /// `C - C0 = mean_i ((1 - t) s_i - s0_i) + mean_j t T_j`, worked by hand: at t = 0.5,
    /// a = (-0.25, -1, -1.25) with var(a)/3 = 0.0902777..., b = (1, 2) with var(b)/2 = 0.25.
    #[test]
    fn the_paired_standard_error_matches_the_hand_computation() {
        let se = paired_drift_se(&start(), &[1.5, 2.0, 3.5], Some(&[2.0, 4.0]), 0.5)
            .expect("same examples");
        assert!(
            (se * se - (0.270_833_333_333_333_3 / 3.0 + 0.25)).abs() < 1e-12,
            "{se}"
        );
        // Without a target the pairs are the source examples alone: a = (0.5, 0, 0.5).
        let se = paired_drift_se(&start(), &[1.5, 2.0, 3.5], None, 0.7).expect("same examples");
        assert!((se - 1.0 / 6.0).abs() < 1e-12, "{se}");
        // An unchanged model has no drift and no error, however spread its examples are.
        let se = paired_drift_se(&start(), &[1.0, 2.0, 3.0], None, 0.0).expect("same examples");
        assert_eq!(se, 0.0);
    }

    #[test]
    fn pairs_need_the_same_examples() {
        let err = paired_drift_se(&start(), &[1.0, 2.0], None, 0.0).expect_err("two of three");
        assert!(err.to_string().contains("had 3"), "{err}");
    }
}
