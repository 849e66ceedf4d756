//! Seeds as independent jobs, saved models that `evaluate` reproduces, on tiny configs of
//! the bundled data.

use std::path::Path;

use fep_experiments::evaluate::{EvalSplit, EvaluateOptions, evaluate};
use fep_experiments::io::read_jsonl;
use fep_experiments::process::{ProcessOptions, TraceRow, iso_classification};
use fep_experiments::seeds::{SeededExperiment, SeedsOptions, aggregate_iso, run_seeds};
use fep_thermo::Shard;

type B = burn::backend::Autodiff<burn::backend::Flex>;

const TRAIN: &str = r#"
[data]
kind = "mnist"
source_classes = [0, 1]
validation_size = 100
train_limit = 256
test_limit = 120
binarization = "dynamic"
[model]
architecture = "mnist-small"
latent_dim = 4
num_classes = 10
[training]
lambda = 2.0
gamma = 2.0
epochs = 3
batch_size = 32
learning_rate = 3e-3
num_z = 1
seed = 1
eval_batch_size = 128
"#;

const ISO: &str = r#"
source_checkpoint = "unused.ckpt"
[data]
kind = "mnist"
source_classes = [0, 1]
validation_size = 100
train_limit = 256
test_limit = 120
binarization = "dynamic"
[process]
integrator = "predictor-corrector"
lambda_end = 1.5
steps = 2
equilibration_steps = 4
learning_rate = 3e-4
batch_size = 32
probe_size = 100
gradient_probe_size = 32
test_samples = 3
seed = 5
[ift]
relative_damping = 1e-2
cg_tolerance = 1e-3
cg_max_iterations = 3
max_accepted_residual = 1000.0
hvp = { kind = "finite-difference", relative_step = 1e-3 }
"#;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Two seeds as two job-array tasks: each writes its own seed folder (source training
/// and process), the aggregate holds both with mean and sample sd of the per-seed values;
/// each seed deals its splits again with its own seed; every process saves its models, and
/// `evaluate` on the saved model with the trace's data, dealing, K and seed reproduces the
/// trace's last row.
#[test]
fn seeds_run_as_shards_aggregate_and_saved_models_reproduce_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let train = write(dir.path(), "train.toml", TRAIN);
    let iso = write(dir.path(), "iso.toml", ISO);
    let out = dir.path().join("iso-seeds");
    for k in 0..2 {
        let options = SeedsOptions {
            process: ProcessOptions {
                config: Some(iso.clone()),
                out: Some(out.clone()),
                save_steps: true,
                ..ProcessOptions::default()
            },
            train_config: train.clone(),
            first: 5,
            count: 2,
            shard: Shard { index: k, count: 2 },
            deal_per_seed: true,
        };
        let file = run_seeds::<B>(
            &Default::default(),
            SeededExperiment::IsoClassification,
            &options,
        )
        .expect("seed task");
        assert_eq!(file, out.join("aggregate.json"));
    }
    let a = aggregate_iso(&out).unwrap();
    assert_eq!(a.seeds, vec![5, 6]);
    assert_eq!(a.max_relative_drift.values.len(), 2);
    let (x, y) = (
        a.max_relative_drift.values[0],
        a.max_relative_drift.values[1],
    );
    assert!((a.max_relative_drift.mean - 0.5 * (x + y)).abs() < 1e-12);
    assert!((a.max_relative_drift.sd - (x - y).abs() / 2f64.sqrt()).abs() < 1e-12);
    assert_ne!(x, y, "different seeds give different runs");
    // The per-seed band is the trace's own drifts against 3%, and the chart with bands
    // over seeds is written.
    for (band, seed) in a.bands.iter().zip([5u64, 6]) {
        assert_eq!(band.seed, seed);
        let rows: Vec<TraceRow> =
            read_jsonl(&out.join(format!("seed-{seed}/trace.jsonl"))).unwrap();
        let drifts: Vec<f64> = rows.iter().map(|r| r.test.relative_drift).collect();
        assert_eq!(band.points, rows.len());
        // A point is outside when beyond the band by more than two of its standard errors.
        assert_eq!(
            band.outside.len(),
            rows.iter()
                .filter(|r| r.test.relative_drift.abs() > 0.03 + 2.0 * r.test.relative_drift_se)
                .count()
        );
        let worst = drifts.iter().fold(0.0f64, |w, d| w.max(d.abs()));
        assert_eq!(band.worst.1.abs(), worst);
        assert!(
            (worst - a.max_relative_drift.values[(seed - 5) as usize]).abs() < 1e-12,
            "the worst point of the band is the summary's max drift"
        );
        assert!(band.describe("s").starts_with(&format!("seed {seed}: ")));
        // The path's mean drift and its bound, and what the summary says of the controller.
        let after = &rows[1..];
        let mean = after.iter().map(|r| r.test.relative_drift).sum::<f64>() / after.len() as f64;
        assert!((band.mean_drift - mean).abs() < 1e-12);
        let largest_se = after
            .iter()
            .map(|r| r.test.relative_drift_se)
            .fold(0.0, f64::max);
        assert!(band.mean_drift_se_bound > 0.0 && band.mean_drift_se_bound <= largest_se);
        let summary: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(format!("seed-{seed}/summary.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            band.probe_relative_se,
            summary["probe_relative_se"].as_f64()
        );
        assert!(band.probe_relative_se.is_some_and(|se| se > 0.0));
        assert_eq!(
            band.unconverged_steps as u64,
            summary["unconverged_steps"].as_u64().unwrap()
        );
        let c0 = rows[0].test.classification;
        let mut se: Vec<f64> = rows.iter().map(|r| r.test.classification_se / c0).collect();
        se.sort_by(f64::total_cmp);
        assert_eq!(band.relative_standard_error, se[se.len() / 2]);
        assert!(band.relative_standard_error > 0.0);
    }
    // Each seed dealt its splits with its own seed, in source training and process alike.
    for seed in [5u64, 6] {
        for file in ["summary.json", "train-source/summary.json"] {
            let path = out.join(format!("seed-{seed}/{file}"));
            let summary: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(
                summary["config"]["data"]["resplit_seed"].as_u64(),
                Some(seed),
                "{}",
                path.display()
            );
        }
    }
    for f in ["seeds_drift.png", "seeds_drift.svg"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }

    let seed_dir = out.join("seed-6");
    for f in [
        "train-source/checkpoint.ckpt",
        "models/iso_classification.ckpt",
        "models/naive.ckpt",
        "steps/step-000.ckpt",
        "steps/step-002.ckpt",
    ] {
        assert!(seed_dir.join(f).is_file(), "{f} missing");
    }
    let rows: Vec<TraceRow> = read_jsonl(&seed_dir.join("trace.jsonl")).unwrap();
    let last = rows.last().unwrap();
    assert_eq!(last.checkpoint.as_deref(), Some("steps/step-002.ckpt"));
    let test = last.test;
    let evaluated = evaluate::<B>(
        &Default::default(),
        &EvaluateOptions {
            checkpoint: seed_dir.join("models/iso_classification.ckpt"),
            data_dir: None,
            kind: fep_data::DatasetKind::Mnist,
            classes: None,
            split: EvalSplit::Test,
            validation_size: 100,
            resplit_seed: Some(6),
            samples: 3,
            seed: 6,
            binarization: fep_data::BinarizationKind::Dynamic,
            limit: None,
            dump_inputs: None,
        },
    )
    .unwrap();
    // The test split here is the full bundled one (no test_limit): the same model on
    // more data agrees within the standard errors of both.
    let m = &evaluated.measurement;
    let se = (m.standard_errors.classification.powi(2)
        + test.source.standard_errors.classification.powi(2))
    .sqrt();
    assert!(
        (m.functionals.classification - test.source.functionals.classification).abs() < 3.0 * se,
        "{m:?} vs {test:?}"
    );
    assert_eq!(evaluated.classes, vec![0, 1]);
    assert_eq!(evaluated.multipliers[0], last.lambda);

    // A process on another dealing than its source's is refused before it starts: the
    // source's training images would overlap its test split.
    let err = iso_classification::<B>(
        &Default::default(),
        &ProcessOptions {
            config: Some(iso.clone()),
            source: Some(seed_dir.join("train-source/checkpoint.ckpt")),
            out: Some(dir.path().join("mismatch")),
            resplit_seed: Some(5),
            ..ProcessOptions::default()
        },
    )
    .expect_err("seed 6's source on dealing 5");
    let message = err.to_string();
    assert!(
        message.contains("seed-6/train-source/checkpoint.ckpt")
            && message.contains("resplit_seed = 6")
            && message.contains("resplit_seed = 5"),
        "{message}"
    );
    assert!(!dir.path().join("mismatch").exists(), "nothing written");
}
