//! The baselines and ablations of the transfer, each a [`MethodRun`] with exactly the
//! Adam-step budget of the process and the same tail averaging of its iterates: plain
//! fine-tuning on the target (at the start's multipliers, or at the end point of our
//! path), the authors' feedback heuristic as they wrote it, and our schedule with gamma
//! fixed. A new method is a [`Method`] variant and one function here.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::Domains;
use fep_models::system::DeepSystem;
use fep_thermo::{ConstraintKind, Multipliers, ProcessPath, ThermodynamicSystem};

use super::config::BaselineSettings;
use super::measure::{HeldValues, RowAt, TestMeasure, baseline_row};
use super::method::Method;
use super::observer::{PathRun, trace_path};
use super::rows::TraceRow;
use super::setup::Setup;
use crate::error::Result;
use crate::progress::bar;

/// What every method starts from and may use: the experiment, the source's multipliers,
/// where our path ended and along which path, and the shared budget.
pub struct MethodContext<'a> {
    pub(crate) setup: &'a Setup,
    /// (lambda, gamma) of the source checkpoint.
    pub start: Multipliers,
    /// (lambda, gamma) where our path ended.
    pub end: Multipliers,
    /// Our path: lambda(s) and the data schedule t(s).
    pub path: ProcessPath,
    /// The budget and the held values.
    pub budget: BaselineBudget,
}

impl MethodContext<'_> {
    /// The source and target domains.
    pub fn domains(&self) -> &Domains {
        &self.setup.domains
    }

    /// Steps of our path (the baselines' number of training phases).
    pub fn steps(&self) -> usize {
        self.setup.cfg.process.steps
    }
}

/// A method's run: from the source checkpoint's model in `system` to its end, spending
/// exactly `context.budget.optimizer_steps` Adam steps; its trace, the start included.
pub type MethodRun<B> = fn(&mut DeepSystem<B>, &MethodContext<'_>) -> Result<Vec<TraceRow>>;

/// The runner of a baseline; `None` for ours, which is the process itself.
pub fn runner<B: AutodiffBackend>(method: Method) -> Option<MethodRun<B>> {
    match method {
        Method::IsoClassification => None,
        Method::FineTune => Some(fine_tune_at_start::<B>),
        Method::PaperHeuristic => Some(paper_heuristic_run::<B>),
        Method::ScheduleOnly => Some(schedule_only::<B>),
        Method::FineTuneAtEnd => Some(fine_tune_at_end::<B>),
    }
}

/// [`Method::FineTune`]: fine-tuning on the target at the source's multipliers.
fn fine_tune_at_start<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    fine_tune(system, c, c.start, "fine-tune")
}

/// [`Method::FineTuneAtEnd`]: fine-tuning on the target where our path ended.
fn fine_tune_at_end<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    fine_tune(system, c, c.end, "fine-tune at end")
}

/// [`Method::PaperHeuristic`]: the authors' loop towards our `lambda_end`.
fn paper_heuristic_run<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    let cfg = &c.setup.cfg;
    paper_heuristic(
        system,
        c.domains(),
        c.start,
        cfg.process.lambda_end,
        c.steps(),
        &cfg.baselines,
        &c.budget,
    )
}

/// [`Method::ScheduleOnly`]: our path with gamma fixed (the paper's Euler scheme), then
/// the rest of the budget at its end point on p_1.
fn schedule_only<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    let run = PathRun {
        label: "schedule only",
        resume_key: Method::ScheduleOnly.trace_stem(),
        path: c.path,
        constraint: ConstraintKind::FixedGamma,
        saves_steps: false,
    };
    let mut rows = trace_path(c.setup, system, c.start, run)?.rows;
    let spent = system.work().optimizer_steps;
    if spent < c.budget.optimizer_steps {
        let clock = Instant::now();
        let m = rows
            .last()
            .map_or(c.start, |r| Multipliers::new(r.lambda, r.gamma));
        let rest = (c.budget.optimizer_steps - spent) as usize;
        rows.push(spend_the_rest(
            system,
            c.domains(),
            m,
            rest,
            &c.budget,
            &clock,
        )?);
    }
    Ok(rows)
}

/// What every baseline shares with the process: the budget of Adam steps, how many of
/// the last iterates of each training phase are averaged (the process's equilibrations
/// return the mean of their last window), the held values and the test measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineBudget {
    /// Adam steps in all (the process's).
    pub optimizer_steps: u64,
    /// Iterates averaged at the end of each training phase (0: the last iterate).
    pub average_last: usize,
    /// C0 on the probe and on the test splits.
    pub c0: HeldValues,
    /// How rows are measured on the test splits.
    pub test: TestMeasure,
}

/// Plain fine-tuning on the target at `at` with the whole budget and a fresh optimiser.
/// The trace's t is the fraction of the budget spent; rows at as many evenly spaced
/// points as our path has steps (each a training phase ending in the tail average).
pub fn fine_tune<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
    at: Multipliers,
    label: &str,
) -> Result<Vec<TraceRow>> {
    let (domains, checkpoints, budget) = (c.domains(), c.steps(), &c.budget);
    let clock = Instant::now();
    system.reset_optimizer();
    let row_at = |t, trained| RowAt { t, m: at, trained };
    let mut rows = vec![baseline_row(
        system,
        domains,
        row_at(0.0, 0),
        &budget.c0,
        budget.test,
        &clock,
    )?];
    let progress = bar(checkpoints as u64, label);
    let mut done = 0u64;
    for k in 1..=checkpoints {
        let until = budget.optimizer_steps * k as u64 / checkpoints as u64;
        system.set_data_position(1.0)?;
        let trained = (until - done) as usize;
        system.train_steps_averaged(at, trained, budget.average_last.min(trained))?;
        done = until;
        let mut row = baseline_row(
            system,
            domains,
            row_at(1.0, trained),
            &budget.c0,
            budget.test,
            &clock,
        )?;
        row.t = k as f64 / checkpoints as f64;
        rows.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(rows)
}

/// The authors' heuristic, as written: for k = 0..n, r = (k+1)/n, retrain at p_r; then,
/// while the mixed C (on the probe) is not below C0, move lambda a fraction
/// (lambda - lambda_min)/(n - k) towards lambda_min, add `gamma_increment` to gamma, and
/// retrain. Each (re)training is `budget / 2n` Adam steps (one adjustment per step on
/// average) with a fresh optimiser; the loop stops early only when the budget left is
/// needed for the later steps' first trainings (or at the optional cap); what is left at
/// the end is spent training at the final point on p_1, so the heuristic spends exactly
/// the budget.
pub fn paper_heuristic<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    start: Multipliers,
    lambda_min: f64,
    n: usize,
    settings: &BaselineSettings,
    budget: &BaselineBudget,
) -> Result<Vec<TraceRow>> {
    let clock = Instant::now();
    let per_train = ((budget.optimizer_steps as usize) / (2 * n.max(1))).max(1);
    let average = budget.average_last.min(per_train);
    let mut left = budget.optimizer_steps as usize;
    let mut m = start;
    let first = RowAt {
        t: 0.0,
        m,
        trained: 0,
    };
    let mut rows = vec![baseline_row(
        system,
        domains,
        first,
        &budget.c0,
        budget.test,
        &clock,
    )?];
    let progress = bar(n as u64, "paper heuristic");
    for (k, r) in paper_schedule(n).into_iter().enumerate() {
        system.set_data_position(r)?;
        system.reset_optimizer();
        let first_training = per_train.min(left);
        system.train_steps_averaged(m, first_training, average.min(first_training))?;
        left -= first_training;
        let reserve = per_train * (n - k - 1);
        let mut adjustments = 0;
        loop {
            let c = system.functionals()?.classification;
            let capped = settings
                .max_adjustments
                .is_some_and(|cap| adjustments >= cap);
            if c < budget.c0.probe || capped || left < per_train + reserve {
                break;
            }
            m = heuristic_adjust(m, lambda_min, n, k, settings.gamma_increment);
            system.reset_optimizer();
            system.train_steps_averaged(m, per_train, average)?;
            left -= per_train;
            adjustments += 1;
        }
        let trained = first_training + per_train * adjustments;
        let mut row = baseline_row(
            system,
            domains,
            RowAt { t: r, m, trained },
            &budget.c0,
            budget.test,
            &clock,
        )?;
        row.corrector_iterations = adjustments;
        rows.push(row);
        progress.inc(1);
    }
    progress.finish_and_clear();
    if left > 0 {
        rows.push(spend_the_rest(system, domains, m, left, budget, &clock)?);
    }
    Ok(rows)
}

/// Trains the budget a method has left at its final multipliers on p_1 (fresh optimiser,
/// the same tail averaging) and measures the row: methods that finish early spend exactly
/// the budget.
pub fn spend_the_rest<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    domains: &Domains,
    m: Multipliers,
    steps: usize,
    budget: &BaselineBudget,
    clock: &Instant,
) -> Result<TraceRow> {
    system.set_data_position(1.0)?;
    system.reset_optimizer();
    system.train_steps_averaged(m, steps, budget.average_last.min(steps))?;
    baseline_row(
        system,
        domains,
        RowAt {
            t: 1.0,
            m,
            trained: steps,
        },
        &budget.c0,
        budget.test,
        clock,
    )
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
