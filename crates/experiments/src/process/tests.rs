//! The transfer driver at the library level, on a tiny deep model of the bundled data:
//! every method spends the process's budget, the table lists the methods in order, a
//! finished method is read back instead of run again, and a new method plugs in as one
//! function behind [`MethodRun`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_models::system::DeepSystem;

use super::baselines::{MethodContext, runner, spend_the_rest};
use super::method::Method;
use super::rows::TraceRow;
use super::setup::{TRANSFER, setup};
use super::transfer::{run_method, transfer};
use super::{ProcessOptions, TransferSummary};
use crate::error::Result;
use crate::train_source::{TrainSourceOptions, train_source};

type B = burn::backend::Autodiff<burn::backend::Flex>;

const TRAIN: &str = r#"
[data]
kind = "mnist"
source_classes = [0, 1]
validation_size = 64
train_limit = 256
test_limit = 64
binarization = "dynamic"
[model]
architecture = "mnist-small"
latent_dim = 4
num_classes = 10
[training]
lambda = 2.0
gamma = 2.0
epochs = 2
batch_size = 32
learning_rate = 3e-3
num_z = 1
seed = 3
eval_batch_size = 128
"#;

/// A transfer from `checkpoint` to two digits disjoint from the source's, sized for a
/// test, with every baseline.
fn tiny_transfer(checkpoint: &Path) -> String {
    format!(
        r#"
source_checkpoint = "{}"
[data]
kind = "mnist"
source_classes = [0, 1]
target_classes = [2, 3]
validation_size = 64
train_limit = 256
test_limit = 64
binarization = "dynamic"
[process]
lambda_end = 1.5
steps = 2
equilibration_steps = 8
learning_rate = 5e-4
batch_size = 32
relative_tolerance = 0.2
max_corrector_iterations = 2
probe_size = 48
gradient_probe_size = 24
test_samples = 2
seed = 4
[ift]
relative_damping = 1e-2
cg_tolerance = 1e-3
cg_max_iterations = 2
max_accepted_residual = 1000.0
hvp = {{ kind = "finite-difference", relative_step = 1e-3 }}
"#,
        checkpoint.display()
    )
}

/// A trained tiny source and the transfer options around it, in `dir`.
fn prepared(dir: &Path) -> ProcessOptions {
    let train = dir.join("train.toml");
    std::fs::write(&train, TRAIN).expect("write the training config");
    let source = dir.join("source");
    let trained = train_source::<B>(
        &Default::default(),
        &TrainSourceOptions {
            config: train,
            out: source.clone(),
            ..TrainSourceOptions::default()
        },
    )
    .expect("the tiny source trains");
    let config = dir.join("transfer.toml");
    std::fs::write(&config, tiny_transfer(&trained.summary.checkpoint))
        .expect("write the transfer config");
    ProcessOptions {
        config: Some(config),
        out: Some(dir.join("transfer")),
        ..ProcessOptions::default()
    }
}

/// A sixth method as a test would add one: one function behind [`super::MethodRun`]. It
/// trains at the source's multipliers on the target for the whole budget at once.
fn all_at_once<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    let steps = c.budget.optimizer_steps as usize;
    let row = spend_the_rest(
        system,
        c.domains(),
        c.start,
        steps,
        c.budget,
        &Instant::now(),
    )?;
    Ok(vec![row])
}

/// A method that stops at half the budget: the driver refuses it.
fn half_the_budget<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    let steps = (c.budget.optimizer_steps / 2) as usize;
    let row = spend_the_rest(
        system,
        c.domains(),
        c.start,
        steps,
        c.budget,
        &Instant::now(),
    )?;
    Ok(vec![row])
}

/// A method that must not run (its result was recorded before).
fn must_not_run<B: AutodiffBackend>(
    _: &mut DeepSystem<B>,
    _: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    panic!("a finished method ran again")
}

fn files_of(out: &Path, method: Method) -> [PathBuf; 3] {
    [
        out.join(format!("{}.jsonl", method.trace_stem())),
        out.join(format!("{}.csv", method.trace_stem())),
        out.join(format!("models/{}.ckpt", method.stem())),
    ]
}

#[test]
fn every_method_spends_the_budget_and_the_table_lists_them_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = prepared(dir.path());
    let outcome = transfer::<B>(&Default::default(), &options).expect("the transfer runs");
    let s: &TransferSummary = &outcome.summary;
    let order: Vec<Method> = s.methods().iter().map(|(m, _)| *m).collect();
    let mut expected = vec![Method::IsoClassification];
    expected.extend(Method::BASELINES);
    assert_eq!(
        order, expected,
        "ours first, then the baselines in table order"
    );
    let budget = s.budget.optimizer_steps;
    assert_eq!(s.process.optimizer_steps, Some(budget));
    for (method, result) in s.methods() {
        let spent = result
            .optimizer_steps
            .expect("every method counts its steps");
        if method == Method::ScheduleOnly {
            // Its own path may take more equilibration steps than ours; never fewer.
            assert!(spent >= budget, "{method}: {spent} < {budget}");
        } else {
            assert_eq!(spent, budget, "{method}");
        }
        assert!(s.wall_seconds.by_method.contains_key(&method), "{method}");
        let drift = result.max_relative_drift.expect("every method has a path");
        assert!(drift.is_finite(), "{method}");
        for file in files_of(&outcome_dir(&options), method) {
            assert!(file.is_file(), "{method}: {} missing", file.display());
        }
    }
    let trace: Vec<TraceRow> =
        crate::io::read_jsonl(&outcome_dir(&options).join("fine_tune.jsonl")).expect("trace");
    assert_eq!(
        trace
            .iter()
            .map(|r| r.equilibrium.steps as u64)
            .sum::<u64>(),
        budget,
        "fine-tuning's phases add up to the budget"
    );
}

fn outcome_dir(options: &ProcessOptions) -> PathBuf {
    options.out.clone().expect("an output folder")
}

#[test]
fn a_new_method_is_one_function_and_a_finished_one_is_read_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = prepared(dir.path());
    options.no_baselines = true;
    let device = Default::default();
    // Ours first: it sets the budget. Then the driver's pieces by hand, as `transfer` runs
    // them, with the resume state kept.
    let ours = transfer::<B>(&device, &options).expect("the process runs");
    let budget = ours.summary.budget;
    options.force = true;
    let setup = setup(&options, &TRANSFER).expect("setup");
    let start = ours.summary.start;
    let context = MethodContext {
        setup: &setup,
        start,
        end: ours.summary.end.unwrap_or(start),
        path: fep_thermo::ProcessPath::transfer(start.lambda, 1.5),
        budget: super::baselines::BaselineBudget {
            optimizer_steps: budget.optimizer_steps,
            average_last: 0,
            c0: super::measure::HeldValues {
                probe: ours.summary.held.c0,
                test: ours.summary.held.c0_test,
            },
            test: setup.cfg.process.test_measure(),
        },
    };
    let done = run_method::<B>(&device, &context, Method::FineTune, all_at_once::<B>)
        .expect("the trivial method runs");
    assert_eq!(done.result.optimizer_steps, Some(budget.optimizer_steps));
    assert_eq!(done.rows.len(), 1);
    for file in files_of(&setup.out, Method::FineTune) {
        assert!(file.is_file(), "{} missing", file.display());
    }
    // Resumed: the recorded result comes back and the method does not run again.
    let again =
        run_method::<B>(&device, &context, Method::FineTune, must_not_run::<B>).expect("read back");
    assert_eq!(again.result, done.result);
    assert_eq!(again.rows, done.rows);
    // A method that does not spend the budget is refused, naming itself.
    let err = run_method::<B>(
        &device,
        &context,
        Method::PaperHeuristic,
        half_the_budget::<B>,
    )
    .expect_err("half the budget is refused")
    .to_string();
    assert!(
        err.contains("paper heuristic") && err.contains("budget"),
        "{err}"
    );
    assert!(runner::<B>(Method::IsoClassification).is_none());
    assert!(Method::BASELINES.iter().all(|m| runner::<B>(*m).is_some()));
}
