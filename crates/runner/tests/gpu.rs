//! GPU-marked tests: run only with `--features cuda` (or `wgpu`) and `--ignored` on a
//! machine with a GPU (`scripts/test-wgpu.sh` on Mesa's software Vulkan device;
//! `scripts/gpu-check.sh` runs them when `gpu-prepare --tests` carried them). They check
//! that the GPU backend reproduces the exact model's closed forms, trains a deep model, and
//! compiles and tunes no kernel in a warm training step.
#![cfg(any(feature = "cuda", feature = "wgpu"))]

use std::process::Command;

fn backend() -> String {
    std::env::var("FEP_TEST_BACKEND").unwrap_or_else(|_| "cuda".into())
}

fn fep(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fep"))
        .args(["--backend", &backend()])
        .args(args)
        .current_dir(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("run fep")
}

/// Kernels compiled and autotune runs (CubeCL's own logs: one `[Compiling kernel]` line
/// per compilation, one `Fastest result` line per tuned key) of `fep bench reference` with
/// `steps` training steps and no warm-up, in a fresh folder with fresh caches.
fn compiled_and_tuned(steps: usize) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("cubecl.toml"),
        format!(
            r#"
[compilation.logger]
level = "basic"
file = "{0}/compilation.log"
append = true

[autotune]
cache = {{ file = "{0}/autotune-cache" }}

[autotune.logger]
level = "minimal"
file = "{0}/autotune.log"
append = true
"#,
            d.display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_fep"))
        .args([
            "--backend",
            &backend(),
            "bench",
            "reference",
            "--batch",
            "64",
        ])
        .args([
            "--warmup",
            "0",
            "--reps",
            "1",
            "--steps",
            &steps.to_string(),
        ])
        .args(["--json", d.join("bench.json").to_str().unwrap()])
        .current_dir(d)
        .output()
        .expect("run fep");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = |file: &str, marker: &str| -> Vec<String> {
        std::fs::read_to_string(d.join(file))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(marker))
            .map(str::to_string)
            .collect()
    };
    (
        lines("compilation.log", "[Compiling kernel]"),
        lines("autotune.log", "Fastest result"),
    )
}

/// A warm training step compiles and tunes nothing: twelve steps compile and tune exactly
/// what six steps do (a kernel whose source changed from step to step, a shape or a
/// constant baked into a fused kernel, would be compiled again). The first steps are not
/// warm: measured on wgpu (llvmpipe), two steps compile 145 kernels and six 151, the six
/// more being fused element-wise kernels that Burn's fusion builds once it has seen the
/// step's operations a few times.
#[test]
#[ignore = "needs a GPU (or a software Vulkan device for wgpu)"]
fn warm_training_steps_compile_and_tune_no_kernel() {
    let (compiled_6, tuned_6) = compiled_and_tuned(6);
    let (compiled_12, tuned_12) = compiled_and_tuned(12);
    assert!(
        !compiled_6.is_empty(),
        "no compilation logged: was cubecl.toml read?"
    );
    let extra = |a: &[String], b: &[String]| -> Vec<String> {
        let mut rest = a.to_vec();
        for x in b {
            if let Some(i) = rest.iter().position(|y| y == x) {
                rest.remove(i);
            }
        }
        rest
    };
    assert_eq!(
        compiled_12.len(),
        compiled_6.len(),
        "kernels compiled in steps 7-12: {:?}",
        extra(&compiled_12, &compiled_6)
    );
    assert_eq!(
        tuned_12.len(),
        tuned_6.len(),
        "autotune runs in steps 7-12: {:?}",
        extra(&tuned_12, &tuned_6)
    );
}

#[test]
#[ignore = "needs a GPU"]
fn exact_model_on_the_gpu_matches_the_closed_form() {
    let o = fep(&[
        "exact",
        "solve",
        "--config",
        "experiments/exact.toml",
        "--lambda",
        "2",
        "--gamma",
        "1",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The tolerances of the flex tests (crates/thermo/tests/exact_model.rs): functionals
    // within 0.01 and F within 0.1%, sensitivities within 5% or 0.01.
    for key in ["rate", "distortion", "classification"] {
        let a = v["closed_form"][key].as_f64().unwrap();
        let b = v["trained"][key].as_f64().unwrap();
        assert!((a - b).abs() < 0.01, "{key}: {a} vs {b}");
    }
    let (fa, fb) = (
        v["closed_form"]["free_energy"].as_f64().unwrap(),
        v["trained"]["free_energy"].as_f64().unwrap(),
    );
    assert!(((fa - fb) / fa).abs() < 1e-3, "F: {fa} vs {fb}");
    let exact = &v["sensitivities"]["closed_form"];
    for estimator in ["ift", "finite_difference"] {
        for key in ["dD_dlambda", "dD_dgamma", "dC_dlambda", "dC_dgamma"] {
            let b = exact[key].as_f64().unwrap();
            let a = v["sensitivities"][estimator][key].as_f64().unwrap();
            assert!(
                (a - b).abs() <= 0.05 * b.abs() || (a - b).abs() <= 0.01,
                "{estimator} {key}: {a} vs closed form {b}"
            );
        }
    }
}

/// A deep model on the backend: a few training steps, then a two-step iso-classification
/// whose C, measured on the test split apart from the controller, stays near C0.
#[test]
#[ignore = "needs a GPU (or a software Vulkan device for wgpu)"]
fn deep_model_trains_and_runs_a_two_step_iso_classification() {
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.toml");
    std::fs::write(
        &train,
        r#"
[data]
kind = "mnist"
source_classes = [0, 1]
validation_size = 64
train_limit = 256
test_limit = 64
binarization = "dynamic"
[model]
architecture = "mnist-small"
classifier = { kind = "linear" }
[training]
lambda = 2.0
gamma = 2.0
epochs = 3
batch_size = 32
learning_rate = 3e-3
num_z = 1
seed = 3
eval_batch_size = 64
"#,
    )
    .unwrap();
    let src = dir.path().join("src");
    let o = fep(&[
        "train-source",
        "--config",
        train.to_str().unwrap(),
        "--out",
        src.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("summary.json")).unwrap()).unwrap();
    let accuracy = summary["test"]["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.9,
        "two digits after 24 steps: accuracy {accuracy}"
    );

    let iso = dir.path().join("iso.toml");
    std::fs::write(
        &iso,
        format!(
            r#"
source_checkpoint = "{}"
[data]
kind = "mnist"
source_classes = [0, 1]
validation_size = 64
train_limit = 256
test_limit = 64
binarization = "dynamic"
[process]
lambda_end = 1.5
steps = 2
equilibration_steps = 8
equilibrium = {{ rule = "stationary", window = 4, consecutive = 2, z = 2.0, min_steps = 8, max_steps = 16 }}
learning_rate = 3e-4
batch_size = 32
relative_tolerance = 0.05
max_corrector_iterations = 3
accept_unconverged = true
probe_size = 48
gradient_probe_size = 24
seed = 4
[ift]
relative_damping = 1e-2
cg_tolerance = 1e-3
cg_max_iterations = 2
max_accepted_residual = 10.0
hvp = {{ kind = "finite-difference", relative_step = 1e-3 }}
"#,
            src.join("checkpoint.ckpt").display()
        ),
    )
    .unwrap();
    let out = dir.path().join("iso");
    let o = fep(&[
        "iso-classification",
        "--config",
        iso.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let rows = std::fs::read_to_string(out.join("trace.jsonl")).unwrap();
    assert!(rows.lines().count() >= 3, "start plus two steps");
    let last: serde_json::Value = serde_json::from_str(rows.lines().last().unwrap()).unwrap();
    assert!(
        (last["lambda"].as_f64().unwrap() - 1.5).abs() < 1e-9,
        "{last}"
    );
    let drift = s["max_relative_drift"].as_f64().unwrap();
    assert!(drift.is_finite() && drift < 0.5, "test-set drift {drift}");
}

#[test]
#[ignore = "needs a GPU"]
fn bench_runs_on_the_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let o = fep(&[
        "bench",
        "--arch",
        "mnist-small",
        "--batch",
        "64",
        "--steps",
        "2",
        "--reps",
        "1",
        "--warmup",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert!(
        v["models"][0]["train_steps_per_second"]["median"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}
