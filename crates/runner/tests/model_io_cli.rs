//! `fep export`, `fep import` and `fep evaluate --dump-inputs` as a user runs them, on a tiny
//! model over the bundled MNIST: the file is safetensors with the PyTorch names and the
//! configuration in its metadata (read by hand here), the dump holds what the evaluation
//! measured, the imported checkpoint evaluates exactly as the original and resumes training,
//! and mistakes are refused with a message naming them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fep<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fep"))
        .args(args)
        .current_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("run fep")
}

fn ok(o: Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const TINY: &str = r#"
[data]
kind = "mnist"
source_classes = [0, 1]
validation_size = 64
train_limit = 256
test_limit = 128
binarization = "dynamic"

[model]
architecture = "mnist-small"
latent_dim = 4
classifier = { kind = "mlp", hidden = 8 }

[training]
lambda = 1.0
gamma = 1.0
epochs = 1
batch_size = 32
seed = 3
eval_batch_size = 40
"#;

/// The JSON header of a safetensors file and the offset of its data.
fn header(path: &Path) -> (serde_json::Value, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn evaluate(ckpt: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["evaluate", "--checkpoint", ckpt.to_str().unwrap()];
    args.extend(["--limit", "50", "--samples", "2", "--json"]);
    args.extend(extra);
    serde_json::from_str(&ok(fep(&args))).unwrap()
}

#[test]
fn export_import_and_the_evaluation_dump() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    let config = d("train.toml");
    std::fs::write(&config, TINY).unwrap();
    let cfg = config.to_str().unwrap();
    let src = d("src");
    ok(fep(&[
        "train-source",
        "--config",
        cfg,
        "--out",
        src.to_str().unwrap(),
    ]));
    let ckpt = src.join("checkpoint.ckpt");
    let st = d("model.safetensors");
    let (ckpt_s, st_s) = (ckpt.to_str().unwrap(), st.to_str().unwrap());

    ok(fep(&["export", "--checkpoint", ckpt_s, "--out", st_s]));
    let (h, _) = header(&st);
    let meta = &h["__metadata__"];
    assert_eq!(meta["architecture"], "mnist-small");
    assert_eq!(meta["latent_dim"], "4");
    assert_eq!(meta["lambda"], "1");
    assert_eq!(meta["seed"], "3");
    assert_eq!(meta["classifier"], r#"{"kind":"mlp","hidden":8}"#);
    assert_eq!(h["enc_fc.weight"]["shape"], serde_json::json!([8, 3136]));
    assert_eq!(h["cls_hidden.weight"]["shape"], serde_json::json!([8, 4]));
    assert_eq!(h["dec1.weight"]["dtype"], "F32");
    let again = fep(&["export", "--checkpoint", ckpt_s, "--out", st_s]);
    assert!(!again.status.success(), "an existing file needs --force");

    let dump = d("inputs.safetensors");
    let measured = evaluate(&ckpt, &["--dump-inputs", dump.to_str().unwrap()]);
    let (h, data) = header(&dump);
    assert_eq!(h["images"]["shape"], serde_json::json!([2, 50, 1, 28, 28]));
    assert_eq!(h["eps"]["shape"], serde_json::json!([2, 50, 4]));
    assert_eq!(h["indices"]["dtype"], "I64");
    let recorded: serde_json::Value =
        serde_json::from_str(h["__metadata__"]["measurement"].as_str().unwrap()).unwrap();
    assert_eq!(recorded["rate"], measured["rate"]);
    // fep's per-example C, averaged by hand, is the reported C (up to f32 storage).
    let [s, e] = [0, 1].map(|i| h["classification"]["data_offsets"][i].as_u64().unwrap() as usize);
    let c: Vec<f64> = data[s..e]
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
        .collect();
    let mean = c.iter().sum::<f64>() / c.len() as f64;
    let reported = measured["classification"].as_f64().unwrap();
    assert!(
        (mean - reported).abs() <= 1e-6 * reported.abs(),
        "{mean} vs {reported}"
    );

    let back = d("imported/checkpoint.ckpt");
    let back_s = back.to_str().unwrap();
    ok(fep(&[
        "import",
        "--safetensors",
        st_s,
        "--config",
        cfg,
        "--out",
        back_s,
    ]));
    assert_eq!(evaluate(&back, &[]), {
        let mut m = evaluate(&ckpt, &[]);
        m["checkpoint"] = back_s.into();
        m
    });
    let imported = d("imported");
    let resumed = fep(&[
        "train-source",
        "--config",
        cfg,
        "--out",
        imported.to_str().unwrap(),
        "--resume",
    ]);
    ok(resumed);
    assert!(
        imported.join("summary.json").is_file(),
        "the imported weights trained on"
    );

    let other = d("other.toml");
    std::fs::write(&other, TINY.replace("latent_dim = 4", "latent_dim = 5")).unwrap();
    let o = fep(&[
        "import",
        "--safetensors",
        st_s,
        "--config",
        other.to_str().unwrap(),
        "--out",
        d("x.ckpt").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("latent_dim: 4"),
        "{err}"
    );
}
