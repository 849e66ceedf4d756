//! The baselines of the transfer, with the same Adam-step budget as the process:
//! plain fine-tuning on the target, and the authors' feedback heuristic.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::Domains;
use fep_models::system::DeepSystem;
use fep_thermo::{Multipliers, ThermodynamicSystem};

use super::config::BaselineSettings;
use super::trace::{RowAt, TraceRow, baseline_row};
use crate::error::Result;
use crate::progress::bar;

/// Plain fine-tuning on the target at the start's (lambda, gamma) with `budget` Adam steps
/// and a fresh optimiser. The trace's t is the fraction of the budget spent; C is measured
/// on the target probe at `checkpoints` evenly spaced points.
pub fn fine_tune<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    start: Multipliers,
    budget: u64,
    checkpoints: usize,
    c0: f64,
) -> Result<Vec<TraceRow>> {
    let clock = Instant::now();
    system.reset_optimizer();
    let at = |t, trained| RowAt {
        t,
        m: start,
        trained,
    };
    let mut rows = vec![baseline_row(system, domains, at(0.0, 0), c0, &clock)?];
    let progress = bar(checkpoints as u64, "fine-tune");
    let mut done = 0u64;
    for k in 1..=checkpoints {
        let until = budget * k as u64 / checkpoints as u64;
        system.set_data_position(1.0)?;
        let trained = (until - done) as usize;
        system.train_steps(start, trained)?;
        done = until;
        let mut row = baseline_row(system, domains, at(1.0, trained), c0, &clock)?;
        row.t = k as f64 / checkpoints as f64;
        rows.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(rows)
}

/// The authors' heuristic: for k = 0..n, r = (k+1)/n, retrain at p_r; then, while the mixed
/// C exceeds C0 (at most `max_adjustments` times), move lambda a fraction
/// (lambda - lambda_min)/(n - k) towards lambda_min, add `gamma_increment` to gamma, retrain.
/// Each (re)training is `steps_per_train` Adam steps with a fresh optimiser.
#[allow(clippy::too_many_arguments)]
pub fn paper_heuristic<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    start: Multipliers,
    lambda_min: f64,
    n: usize,
    steps_per_train: usize,
    settings: &BaselineSettings,
    c0: f64,
) -> Result<Vec<TraceRow>> {
    let clock = Instant::now();
    let mut m = start;
    let first = RowAt {
        t: 0.0,
        m,
        trained: 0,
    };
    let mut rows = vec![baseline_row(system, domains, first, c0, &clock)?];
    let progress = bar(n as u64, "paper heuristic");
    for (k, r) in paper_schedule(n).into_iter().enumerate() {
        system.set_data_position(r)?;
        system.reset_optimizer();
        system.train_steps(m, steps_per_train)?;
        let mut adjustments = 0;
        loop {
            let c = system.functionals()?.classification;
            if c < c0 || adjustments >= settings.max_adjustments {
                break;
            }
            m = heuristic_adjust(m, lambda_min, n, k, settings.gamma_increment);
            system.reset_optimizer();
            system.train_steps(m, steps_per_train)?;
            adjustments += 1;
        }
        let trained = steps_per_train * (1 + adjustments);
        let mut row = baseline_row(system, domains, RowAt { t: r, m, trained }, c0, &clock)?;
        row.corrector_iterations = adjustments;
        rows.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(rows)
}

/// The data positions of the authors' transfer loop: `r_k = (k + 1) / n`, k = 0..n.
pub fn paper_schedule(n: usize) -> Vec<f64> {
    (0..n).map(|k| (k + 1) as f64 / n as f64).collect()
}

/// One adjustment of the authors' controller at step k of n: lambda moves the fraction
/// `1 / (n - k)` of its distance to `lambda_min`, gamma grows by `increment`.
pub fn heuristic_adjust(
    m: Multipliers,
    lambda_min: f64,
    n: usize,
    k: usize,
    increment: f64,
) -> Multipliers {
    let remaining = n.saturating_sub(k).max(1) as f64;
    Multipliers::new(
        m.lambda - (m.lambda - lambda_min) / remaining,
        m.gamma + increment,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paper_schedule_runs_from_one_nth_to_one() {
        let s = paper_schedule(25);
        assert_eq!(s.len(), 25);
        assert!((s[0] - 0.04).abs() < 1e-12);
        assert!((s[24] - 1.0).abs() < 1e-12);
        assert!(s.windows(2).all(|w| (w[1] - w[0] - 0.04).abs() < 1e-12));
    }

    #[test]
    fn heuristic_controller_matches_hand_computation() {
        // Step k = 0 of 25 from (2, 2): lambda moves 1/25 of the way to 0.5.
        let m = heuristic_adjust(Multipliers::new(2.0, 2.0), 0.5, 25, 0, 0.1);
        assert!((m.lambda - (2.0 - 1.5 / 25.0)).abs() < 1e-12);
        assert!((m.gamma - 2.1).abs() < 1e-12);
        // At the last step it lands on lambda_min exactly.
        let m = heuristic_adjust(Multipliers::new(1.3, 4.0), 0.5, 25, 24, 0.1);
        assert!((m.lambda - 0.5).abs() < 1e-12);
        // Adjusting at every step walks lambda to lambda_min and adds 0.1 per step.
        let mut m = Multipliers::new(2.0, 2.0);
        for k in 0..25 {
            m = heuristic_adjust(m, 0.5, 25, k, 0.1);
        }
        assert!((m.lambda - 0.5).abs() < 1e-12);
        assert!((m.gamma - 4.5).abs() < 1e-9);
    }
}
