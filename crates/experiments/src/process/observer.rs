//! A traced path: a `fep-thermo` [`Process`] run step by step on a deep system, every
//! accepted point measured on the test splits apart from the controller, saved for
//! `--resume` and (with `--save-steps`) as a model. Both process experiments and the
//! schedule-only ablation run their paths through [`trace_path`].

use burn::tensor::backend::AutodiffBackend;
use fep_models::system::DeepSystem;
use fep_thermo::{
    ConstraintKind, Multipliers, Process, ProcessPath, StepRecord, ThermodynamicSystem,
};

use super::measure::{accuracies, measure_on_test, probe_drift};
use super::resume::PathProgress;
use super::rows::{TestRow, TestStart, TraceRow, Traced, max_drift};
use super::setup::Setup;
use crate::error::{Result, ResultExt};
use crate::progress::bar;

/// One path of a process experiment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PathRun<'a> {
    /// Name in progress lines, errors and saved models.
    pub label: &'a str,
    /// Name of its state in the resume folder.
    pub resume_key: &'a str,
    /// lambda(s) and t(s).
    pub path: ProcessPath,
    /// What is held along it (the continuation follows from it: a corrector for a held
    /// functional, the paper's Euler scheme with gamma fixed).
    pub constraint: ConstraintKind,
    /// Save the model after every step (`--save-steps`; the processes, not the ablations).
    pub saves_steps: bool,
}

/// Runs `run` on `system` from `start` (or from its last saved step with `--resume`) and
/// measures every accepted point on the test splits.
pub(crate) fn trace_path<B: AutodiffBackend>(
    setup: &Setup,
    system: &mut DeepSystem<B>,
    start: Multipliers,
    run: PathRun,
) -> Result<Traced> {
    let label = run.label;
    let (mut process, mut rows, mut start, probe) = begin(setup, system, start, &run)?;
    let progress = bar(1000, label);
    while let Some(record) = process.next() {
        let r = record.context_with(|| format!("{label} process"))?;
        let (test, per_source) = measure_on_test(
            process.system(),
            &setup.domains,
            r.t,
            setup.cfg.process.test_measure(),
            start.as_ref(),
        )
        .context_with(|| "measuring a process step on the test splits".into())?;
        start.get_or_insert(TestStart {
            c0: test.classification,
            source: per_source,
        });
        progress.set_position((r.s * 1000.0).round() as u64);
        let mut row = trace_row(&r, test, &run, process.system());
        if let Some(p) = &probe {
            let drift = probe_drift(process.system(), &p.start, r.t)
                .context_with(|| "pairing the probe's drift with its start".into())?;
            row.controller_relative_drift_se = Some(drift.relative_se);
            row.controller_source_classification = Some(drift.source);
            row.controller_target_classification = drift.target;
        }
        progress.suspend(|| eprintln!("{label}: {}", step_line(&r, &row)));
        if run.saves_steps && setup.saver.every_step {
            let name = format!("steps/step-{:03}.ckpt", rows.len());
            let m = Multipliers::new(r.lambda, r.gamma);
            setup.saver.save(process.system(), &name, label, r.t, m)?;
            row.checkpoint = Some(name);
        }
        rows.push(row);
        let state = PathProgress {
            snapshot: process.snapshot(),
            system: process.system().state(),
            rows: rows.clone(),
            test_start: start.clone(),
            probe_relative_se: probe.as_ref().map(|p| p.relative_se),
            probe_start: probe.as_ref().map(|p| p.start.clone()),
        };
        setup
            .resume
            .save_step(run.resume_key, process.system(), &state)?;
    }
    progress.finish_and_clear();
    let result = process.finish();
    Ok(Traced {
        c0_test: start.as_ref().map_or(f64::NAN, |s| s.c0),
        test_start: start,
        probe_relative_se: probe.as_ref().map(|p| p.relative_se),
        max_relative_drift: max_drift(&rows),
        rows,
        c0: result.target,
        controller_max_relative_drift: result.max_relative_drift,
    })
}

/// What a path carries from its beginning: the process, the rows so far, the start on the
/// test splits and, where C is held, the probe at the start.
type Begun<'a, B> = (
    Process<'a, DeepSystem<B>>,
    Vec<TraceRow>,
    Option<TestStart>,
    Option<ProbeStart>,
);

/// The controller's probe at the start of a path that holds C.
struct ProbeStart {
    /// The standard error of C0 on the probe as an estimate of C on fresh examples,
    /// relative to C0.
    relative_se: f64,
    /// C0 on the probe and C of each source probe example: what every later drift on the
    /// probe is paired with.
    start: TestStart,
}

/// The process of `run` from `start`, or from its last saved step where the resume folder
/// holds one; a fresh path that holds C first measures how finely its probe resolves C0.
fn begin<'a, B: AutodiffBackend>(
    setup: &Setup,
    system: &'a mut DeepSystem<B>,
    start: Multipliers,
    run: &PathRun,
) -> Result<Begun<'a, B>> {
    let label = run.label;
    let continuation = setup
        .cfg
        .process
        .continuation(run.constraint, &setup.cfg.ift);
    Ok(match setup.resume.load_step(run.resume_key, system)? {
        Some(p) => {
            eprintln!(
                "{label}: resumed after step {} of the interrupted run (s = {:.3})",
                p.rows.len().saturating_sub(1),
                p.snapshot.s
            );
            let process =
                Process::resume(system, run.path, run.constraint, continuation, p.snapshot)
                    .context_with(|| format!("resuming the {label} process"))?;
            let probe = p
                .probe_relative_se
                .zip(p.probe_start)
                .map(|(relative_se, start)| ProbeStart { relative_se, start });
            (process, p.rows, p.test_start, probe)
        }
        None => {
            let probe = match run.constraint {
                ConstraintKind::FixedGamma => None,
                _ => Some(probe_resolution(setup, system)?),
            };
            let process = Process::new(system, start, run.path, run.constraint, continuation)
                .context_with(|| format!("{label} process"))?;
            (process, Vec::new(), None, probe)
        }
    })
}

/// The controller's probe at the start: the standard error of C0 relative to C0, checked
/// against the settings ([`ProcessSettings::check_probe`](super::ProcessSettings::check_probe)),
/// and C of each source probe example.
fn probe_resolution<B: AutodiffBackend>(
    setup: &Setup,
    system: &mut DeepSystem<B>,
) -> Result<ProbeStart> {
    let se = system.probe_classification_se()?;
    let c0 = system
        .functionals()
        .context_with(|| "measuring C0 on the probe".into())?
        .classification;
    let relative_se = se / c0;
    let (source, _) = system.probe_classification_per_example()?;
    // The examples the probe holds (probe_size caps them at the split's size).
    setup.cfg.process.check_probe(relative_se, source.len())?;
    Ok(ProbeStart {
        relative_se,
        start: TestStart { c0, source },
    })
}

/// The row of an accepted point: the controller's record beside the test measurement.
fn trace_row<B: AutodiffBackend>(
    r: &StepRecord,
    test: TestRow,
    run: &PathRun,
    system: &DeepSystem<B>,
) -> TraceRow {
    let (source_accuracy, target_accuracy) = accuracies(&test);
    TraceRow {
        t: if run.path.moves_data() { r.t } else { r.s },
        lambda: r.lambda,
        gamma: r.gamma,
        probe: r.functionals,
        controller_relative_drift: r.relative_drift,
        controller_relative_drift_se: None,
        controller_source_classification: None,
        controller_target_classification: None,
        source_accuracy,
        target_accuracy,
        test,
        corrector_iterations: r.corrector_iterations,
        converged: r.converged,
        equilibrium: r.equilibrium,
        optimizer_steps: system.work().optimizer_steps,
        checkpoint: None,
        wall_seconds: r.wall_seconds,
    }
}

/// A step in one progress line.
fn step_line(r: &StepRecord, row: &TraceRow) -> String {
    let f = r.functionals;
    let test = &row.test;
    let (sa, ta) = accuracies(test);
    let probe_se = row
        .controller_relative_drift_se
        .map_or(String::new(), |se| format!(" +- {:.2}", 100.0 * se));
    format!(
        "s {:.3}  t {:.3}  lambda {:.3}  gamma {:.3}  R {:.3}  D {:.3}  C {:.4} (probe drift {:+.2}{probe_se}%, test drift {:+.2} +- {:.2}%)  acc source {:.2}% target {:.2}%",
        r.s,
        r.t,
        r.lambda,
        r.gamma,
        f.rate,
        f.distortion,
        f.classification,
        100.0 * r.relative_drift,
        100.0 * test.relative_drift,
        100.0 * test.relative_drift_se,
        100.0 * sa,
        100.0 * ta
    )
}
