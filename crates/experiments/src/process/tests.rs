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
use super::rows::{TestStart, TraceRow};
use super::setup::{TRANSFER, setup};
use super::transfer::{run_method, transfer};
use super::{ProcessOptions, TransferSummary};
use crate::error::Result;
use crate::train_source::{TrainSourceOptions, train_source};

type B = burn::backend::Autodiff<burn::backend::Flex>;

/// The shipped config `experiments/<name>`, shrunk for a test by `edits` (`section.key`
/// to a TOML value).
fn shipped(name: &str, edits: &[(&str, toml::Value)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("a shipped config");
    let mut doc: toml::Table = toml::from_str(&text).expect("valid TOML");
    for (key, value) in edits {
        let table = match key.split_once('.') {
            Some((section, _)) => doc
                .get_mut(section)
                .and_then(toml::Value::as_table_mut)
                .expect("the section exists"),
            None => &mut doc,
        };
        let field = key.rsplit('.').next().expect("a key");
        table.insert(field.to_string(), value.clone());
    }
    toml::to_string(&doc).expect("serialises")
}

/// `{ rule = "fixed-steps", steps = n }`.
fn fixed_steps(n: i64) -> toml::Value {
    let mut rule = toml::Table::new();
    rule.insert("rule".into(), toml::Value::String("fixed-steps".into()));
    rule.insert("steps".into(), toml::Value::Integer(n));
    toml::Value::Table(rule)
}

/// Two digits each way, a few hundred images: the data of every config here.
fn tiny_data() -> Vec<(&'static str, toml::Value)> {
    let classes = |c: [i64; 2]| toml::Value::Array(c.map(toml::Value::Integer).to_vec());
    vec![
        ("data.source_classes", classes([0, 1])),
        ("data.target_classes", classes([2, 3])),
        ("data.validation_size", toml::Value::Integer(64)),
        ("data.train_limit", toml::Value::Integer(256)),
        ("data.test_limit", toml::Value::Integer(64)),
    ]
}

/// A trained tiny source and the transfer options around it, in `dir`.
fn prepared(dir: &Path) -> ProcessOptions {
    let int = toml::Value::Integer;
    let mut edits = tiny_data();
    edits.retain(|(k, _)| *k != "data.target_classes");
    edits.extend([
        ("model.latent_dim", int(4)),
        ("training.epochs", int(2)),
        ("training.eval_batch_size", int(128)),
    ]);
    let train = dir.join("train.toml");
    std::fs::write(&train, shipped("train-source.toml", &edits)).expect("write the config");
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
    let checkpoint = trained.summary.checkpoint.display().to_string();
    let mut edits = tiny_data();
    edits.extend([
        ("source_checkpoint", toml::Value::String(checkpoint)),
        ("process.steps", int(2)),
        ("process.equilibration_steps", int(8)),
        ("process.equilibrium", fixed_steps(8)),
        ("process.relative_tolerance", toml::Value::Float(0.2)),
        ("process.max_corrector_iterations", int(2)),
        ("process.probe_size", int(48)),
        ("process.gradient_probe_size", int(24)),
        ("process.test_samples", int(2)),
        ("ift.cg_max_iterations", int(2)),
    ]);
    let config = dir.join("transfer.toml");
    std::fs::write(&config, shipped("transfer-iso-classification.toml", &edits))
        .expect("write the config");
    ProcessOptions {
        config: Some(config),
        out: Some(dir.join("transfer")),
        ..ProcessOptions::default()
    }
}

/// Trains at the source's multipliers on the target for `fraction` of the budget at once.
fn at_once<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
    fraction: f64,
) -> Result<Vec<TraceRow>> {
    let steps = (fraction * c.budget.optimizer_steps as f64).round() as usize;
    let row = spend_the_rest(
        system,
        c.domains(),
        c.start,
        steps,
        &c.budget,
        &Instant::now(),
    )?;
    Ok(vec![row])
}

/// A sixth method as a test would add one: one function behind [`super::MethodRun`], the
/// whole budget at the source's multipliers on the target.
fn all_at_once<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    at_once(system, c, 1.0)
}

/// A method that stops at half the budget: the driver refuses it.
fn half_the_budget<B: AutodiffBackend>(
    system: &mut DeepSystem<B>,
    c: &MethodContext<'_>,
) -> Result<Vec<TraceRow>> {
    at_once(system, c, 0.5)
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
fn a_probe_that_cannot_resolve_the_tolerance_is_refused_before_any_step() {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = prepared(dir.path());
    let config = options.config.clone().expect("a config");
    let text = std::fs::read_to_string(&config).expect("read");
    // probe_size asks for more than the (at most 64) held-out examples: the message names
    // what the probe holds.
    assert!(text.contains("probe_size = 48"), "{text}");
    let strict = text
        .replace("probe_size = 48", "probe_size = 1000")
        .replace("[process]", "[process]\nmax_probe_relative_se = 0.001");
    std::fs::write(&config, strict).expect("write");
    let err = transfer::<B>(&Default::default(), &options)
        .expect_err("a probe of at most 64 images cannot resolve 0.1%")
        .to_string();
    assert!(err.contains("resolves C0 only to"), "{err}");
    let named: usize = err
        .split("probe (")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no example count in: {err}"));
    assert!(
        named <= 64,
        "names the probe it holds, not the 1000 asked: {err}"
    );
    assert!(err.contains("probe_size"), "{err}");
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
    // The start on the test splits, measured from the source checkpoint as every trace's
    // first row is.
    let source = setup.assemble::<B>(&device, true).expect("assemble").system;
    let how = setup.cfg.process.test_measure();
    let (row, per_source) =
        super::measure::measure_on_test(&source, &setup.domains, 0.0, how, None).expect("measure");
    assert!((row.classification - ours.summary.held.c0_test).abs() < 1e-12);
    let test_start = TestStart {
        c0: row.classification,
        source: per_source,
    };
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
                test: test_start,
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
