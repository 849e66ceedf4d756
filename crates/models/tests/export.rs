//! Safetensors export and import: the round trip is the identity for every architecture
//! (checked against Burn's own view of the parameters and against the model's outputs), the
//! file is the official format (read and written by hand here), the reference model has
//! the names and shapes of `benchmarks/peers/torch_reference.py`, and bad files are refused
//! with the tensor named.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use common::{TestBackend, device};
use fep_data::{Binarization, ImageDataset, Split};
use fep_models::export::{
    ExportError, ExportMetadata, HostData, HostTensor, TensorFile, file, model_file,
    model_from_file,
};
use fep_models::train::{TrainConfig, Trainer};
use fep_models::{
    Architecture, ClassifierKind, DecoderKind, FepModel, ModelConfig, ModelError, PriorKind,
    checkpoint, measure,
};

type B = TestBackend;

/// Every float tensor of a module as Burn sees it, in visiting order: shape and bits.
struct Bits(Vec<(Vec<usize>, Vec<u32>)>);

impl<Bk: Backend> ModuleVisitor<Bk> for Bits {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Bk, D>>) {
        let t = param.val();
        let dims = t.dims().to_vec();
        let values = t.into_data().convert::<f32>().into_vec::<f32>().unwrap();
        self.0
            .push((dims, values.iter().map(|v| v.to_bits()).collect()));
    }
}

fn bits<Bk: Backend>(model: &FepModel<Bk>) -> Vec<(Vec<usize>, Vec<u32>)> {
    let mut b = Bits(Vec::new());
    model.visit(&mut b);
    b.0
}

fn config(
    architecture: Architecture,
    decoder: DecoderKind,
    prior: PriorKind,
    classifier: ClassifierKind,
) -> ModelConfig {
    ModelConfig {
        architecture,
        latent_dim: 4,
        num_classes: 10,
        decoder,
        prior,
        classifier,
    }
}

/// Every architecture, each decoder, prior and classifier at least once.
fn configs() -> Vec<ModelConfig> {
    use Architecture::*;
    let gaussian = DecoderKind::Gaussian {
        sigma: std::f64::consts::FRAC_1_SQRT_2,
    };
    let mlp = ClassifierKind::Mlp { hidden: 8 };
    vec![
        config(
            MnistSmall,
            DecoderKind::Bernoulli,
            PriorKind::StandardNormal,
            ClassifierKind::Linear,
        ),
        config(
            MnistSmall,
            gaussian,
            PriorKind::Mixture { components: 3 },
            mlp,
        ),
        config(
            MnistPaper,
            gaussian,
            PriorKind::StandardNormal,
            ClassifierKind::Linear,
        ),
        config(
            MnistPaper,
            DecoderKind::Bernoulli,
            PriorKind::Vamp { pseudo_inputs: 2 },
            mlp,
        ),
        config(
            CifarResnet,
            DecoderKind::DiscretizedLogistic,
            PriorKind::Mixture { components: 2 },
            mlp,
        ),
    ]
}

fn images(config: &ModelConfig, n: usize) -> Tensor<B, 4> {
    let [c, h, w] = config.architecture.image_shape();
    Tensor::random([n, c, h, w], Distribution::Uniform(0.0, 1.0), &device())
}

/// A model of `config` whose BatchNorm running statistics have moved off their initial
/// values (one training-mode forward pass), so that the round trip checks them too.
fn model_with_statistics(config: &ModelConfig, seed: u64) -> FepModel<B> {
    let model = FepModel::<B>::seeded(config, seed, &device()).unwrap();
    let noise = Tensor::random([1, 3, config.latent_dim], Distribution::Default, &device());
    let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 2], [3]), &device());
    let _ = model.functionals(images(config, 3), labels, noise);
    model
}

fn metadata(config: &ModelConfig) -> ExportMetadata {
    ExportMetadata {
        model: config.clone(),
        lambda: 0.25,
        gamma: 0.5,
        seed: 7,
        fep_version: "test".into(),
        source_classes: Some(vec![0, 1, 2, 3, 4]),
        training: None,
    }
}

fn round_trip(model: &FepModel<B>, meta: &ExportMetadata) -> (FepModel<B>, ExportMetadata) {
    let path = Path::new("memory.safetensors");
    let bytes = file::serialize(&model_file(model, meta).unwrap(), path).unwrap();
    model_from_file::<B>(file::deserialize(&bytes, path).unwrap(), path, &device()).unwrap()
}

#[test]
fn export_then_import_is_the_identity_for_every_architecture() {
    for (i, config) in configs().iter().enumerate() {
        let model = model_with_statistics(config, 11 + i as u64);
        let meta = metadata(config);
        let exported = model_file(&model, &meta).unwrap();
        let values: usize = exported
            .tensors
            .values()
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        assert_eq!(
            values,
            model.num_params(),
            "{config:?}: every parameter and statistic"
        );
        let (back, back_meta) = round_trip(&model, &meta);
        assert_eq!(back_meta, meta);
        assert_eq!(back.config(), config);
        let (a, b) = (bits(&model), bits(&back));
        assert_eq!(a.len(), b.len());
        for (k, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(x == y, "{config:?}: tensor {k} of shape {:?} differs", x.0);
        }
        if config.architecture == Architecture::MnistPaper {
            let stats = exported.tensors.get("bn_conv2.running_var").unwrap();
            let HostData::F32(v) = &stats.data else {
                panic!("F32")
            };
            assert!(
                v.iter().any(|&s| s != 1.0),
                "running statistics were updated"
            );
        }
        // Evaluation (BatchNorm on its running statistics) gives the same bits.
        let x = images(config, 2).inner();
        let (m1, v1) = model.valid().encoder.forward(x.clone());
        let (m2, v2) = back.valid().encoder.forward(x);
        assert_eq!(m1.into_data(), m2.into_data());
        assert_eq!(v1.into_data(), v2.into_data());
    }
}

fn f32s(t: &HostTensor) -> &[f32] {
    match &t.data {
        HostData::F32(v) => v,
        HostData::I64(_) => panic!("not F32"),
    }
}

#[test]
fn the_reference_model_has_torch_reference_names_shapes_and_linear_layout() {
    let config = ModelConfig::new(Architecture::MnistSmall); // 16-d latent, linear classifier
    let model = FepModel::<B>::seeded(&config, 3, &device()).unwrap();
    let tensors = model_file(&model, &metadata(&config)).unwrap().tensors;
    // benchmarks/peers/torch_reference.py, class Reference, state_dict shapes.
    let expected: BTreeMap<&str, Vec<usize>> = [
        ("enc1.weight", vec![32, 1, 4, 4]),
        ("enc1.bias", vec![32]),
        ("enc2.weight", vec![64, 32, 4, 4]),
        ("enc2.bias", vec![64]),
        ("enc_fc.weight", vec![32, 3136]),
        ("enc_fc.bias", vec![32]),
        ("dec_fc.weight", vec![3136, 16]),
        ("dec_fc.bias", vec![3136]),
        ("dec1.weight", vec![64, 32, 4, 4]),
        ("dec1.bias", vec![32]),
        ("dec2.weight", vec![32, 1, 4, 4]),
        ("dec2.bias", vec![1]),
        ("cls.weight", vec![10, 16]),
        ("cls.bias", vec![10]),
    ]
    .into_iter()
    .collect();
    let got: BTreeMap<&str, Vec<usize>> = tensors
        .iter()
        .map(|(k, t)| (k.as_str(), t.shape.clone()))
        .collect();
    assert_eq!(got, expected);
    // nn.Linear computes z W^T + b with W [out, in]: the logits by hand from the file equal
    // Burn's classifier.
    let z: Vec<f32> = (0..16).map(|i| (i as f32 - 7.5) / 4.0).collect();
    let (w, b) = (f32s(&tensors["cls.weight"]), f32s(&tensors["cls.bias"]));
    let by_hand: Vec<f32> = (0..10)
        .map(|o| b[o] + (0..16).map(|i| w[o * 16 + i] * z[i]).sum::<f32>())
        .collect();
    let zt = Tensor::<B, 2>::from_data(TensorData::new(z, [1, 16]), &device());
    let burn = model
        .classifier
        .forward(zt)
        .into_data()
        .into_vec::<f32>()
        .unwrap();
    for (h, g) in by_hand.iter().zip(&burn) {
        assert!((h - g).abs() <= 1e-5 * (1.0 + g.abs()), "{h} vs {g}");
    }
}

/// A safetensors file written byte by byte as the format's specification says.
fn hand_made_file() -> Vec<u8> {
    let header = r#"{"__metadata__":{"k":"v"},"b":{"dtype":"I64","shape":[2],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]}}"#;
    let mut header = header.as_bytes().to_vec();
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    for v in [-3i64, 5] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for v in [1.0f32, -2.5, 0.125, 1e-30] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

#[test]
fn files_are_the_official_safetensors_format() {
    let path = Path::new("hand.safetensors");
    let read = file::deserialize(&hand_made_file(), path).unwrap();
    assert_eq!(read.metadata.get("k").map(String::as_str), Some("v"));
    assert_eq!(
        read.tensors["a"],
        HostTensor::f32(vec![2, 2], vec![1.0, -2.5, 0.125, 1e-30])
    );
    assert_eq!(read.tensors["b"], HostTensor::i64(vec![2], vec![-3, 5]));
    // Written back: the header parses as the specification's JSON and the data are the
    // little-endian values at the offsets it names.
    let bytes = file::serialize(&read, path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert_eq!(header["__metadata__"]["k"], "v");
    assert_eq!(header["a"]["dtype"], "F32");
    assert_eq!(header["a"]["shape"], serde_json::json!([2, 2]));
    let [s, e] = [0, 1].map(|i| header["a"]["data_offsets"][i].as_u64().unwrap() as usize);
    let a: Vec<f32> = bytes[8 + n + s..8 + n + e]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(a, vec![1.0, -2.5, 0.125, 1e-30]);
}

fn import_error(file: TensorFile) -> String {
    let err = model_from_file::<B>(file, Path::new("bad.safetensors"), &device()).unwrap_err();
    assert!(matches!(err, ModelError::Export(_)), "{err}");
    err.to_string()
}

#[test]
fn bad_files_are_refused_naming_the_tensor() {
    let config = configs()[0].clone();
    let model = FepModel::<B>::seeded(&config, 5, &device()).unwrap();
    let good = model_file(&model, &metadata(&config)).unwrap();

    let mut renamed = good.clone();
    let t = renamed.tensors.remove("enc2.weight").unwrap();
    renamed.tensors.insert("enc2.kernel".into(), t);
    let msg = import_error(renamed);
    assert!(
        msg.contains("missing tensor `enc2.weight`") && msg.contains("enc2.kernel"),
        "{msg}"
    );

    let mut reshaped = good.clone();
    let t = reshaped.tensors.get_mut("enc_fc.weight").unwrap();
    t.shape = vec![t.shape[1], t.shape[0]]; // Burn's layout instead of PyTorch's
    let msg = import_error(reshaped);
    assert!(msg.contains("`enc_fc.weight` has shape [3136, 8]"), "{msg}");

    let mut retyped = good.clone();
    retyped
        .tensors
        .insert("cls.bias".into(), HostTensor::i64(vec![10], vec![0; 10]));
    let msg = import_error(retyped);
    assert!(msg.contains("`cls.bias` is I64, expected F32"), "{msg}");

    let mut extra = good.clone();
    extra
        .tensors
        .insert("cls.scale".into(), HostTensor::f32(vec![1], vec![1.0]));
    let msg = import_error(extra);
    assert!(msg.contains("unexpected tensor `cls.scale`"), "{msg}");

    // A PyTorch state_dict saved as is carries BatchNorm counters: ignored. Elsewhere, the
    // name is unknown.
    let paper = crate::config(
        Architecture::MnistPaper,
        DecoderKind::Bernoulli,
        PriorKind::StandardNormal,
        ClassifierKind::Linear,
    );
    let paper_model = FepModel::<B>::seeded(&paper, 5, &device()).unwrap();
    let mut counted = model_file(&paper_model, &metadata(&paper)).unwrap();
    let counter = HostTensor::i64(vec![], vec![12]);
    counted
        .tensors
        .insert("bn_conv2.num_batches_tracked".into(), counter.clone());
    model_from_file::<B>(counted, Path::new("torch.safetensors"), &device()).unwrap();
    let mut counted = good.clone();
    counted
        .tensors
        .insert("enc1.num_batches_tracked".into(), counter);
    let msg = import_error(counted);
    assert!(
        msg.contains("unexpected tensor `enc1.num_batches_tracked`"),
        "{msg}"
    );

    let mut no_model = good.clone();
    no_model.metadata.remove("model");
    let msg = import_error(no_model);
    assert!(msg.contains("no `model` entry"), "{msg}");

    let mut half = hand_made_file();
    half.truncate(half.len() - 4);
    let err = file::deserialize(&half, Path::new("half.safetensors")).unwrap_err();
    assert!(matches!(err, ExportError::Format { .. }), "{err}");

    let f16 = br#"{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}"#;
    let mut bytes = (f16.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(f16);
    bytes.extend_from_slice(&[0; 4]);
    let err = file::deserialize(&bytes, Path::new("f16.safetensors")).unwrap_err();
    assert!(err.to_string().contains("tensor `w` is F16"), "{err}");
}

fn dataset(n: usize) -> ImageDataset {
    let images: Vec<u8> = (0..n * 784)
        .map(|i| ((i * 37 + i / 784 * 11) % 256) as u8)
        .collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let names = (0..10).map(|c| c.to_string()).collect();
    ImageDataset::new(Split::Test, [1, 28, 28], images, labels, names).unwrap()
}

#[test]
fn import_of_an_exported_checkpoint_evaluates_exactly_alike() {
    let dir = tempfile::tempdir().unwrap();
    let config = configs()[1].clone();
    let train = TrainConfig {
        lambda: 0.25,
        gamma: 0.25,
        epochs: 1,
        batch_size: 4,
        learning_rate: 1e-3,
        schedule: Default::default(),
        grad_clip_norm: None,
        num_z: 1,
        seed: 3,
        eval_batch_size: 5,
        micro_batch: None,
    };
    let model = FepModel::<B>::seeded(&config, 3, &device()).unwrap();
    let trainer = Trainer::new(model, train.clone(), device()).unwrap();
    let ckpt = dir.path().join("source.ckpt");
    checkpoint::save(
        &trainer,
        &ckpt,
        serde_json::json!({"source_classes": [0, 1]}),
    )
    .unwrap();
    let st = dir.path().join("model.safetensors");
    let meta = fep_models::export::export_checkpoint::<B>(&ckpt, &st, &device()).unwrap();
    assert_eq!((meta.lambda, meta.gamma, meta.seed), (0.25, 0.25, 3));
    assert_eq!(meta.source_classes, Some(vec![0, 1]));
    let back = dir.path().join("imported.ckpt");
    let settings = fep_models::export::ImportSettings {
        model: config.clone(),
        train,
        extra: serde_json::Map::new(),
    };
    fep_models::export::import_to_checkpoint::<B>(&st, settings, &back, &device()).unwrap();
    let data = dataset(12);
    let eval = |path: &Path| {
        let (m, _) = checkpoint::load_model::<B>(path, &device()).unwrap();
        measure(
            &m.valid(),
            &data,
            Binarization::Dynamic { seed: 1 },
            2,
            5,
            9,
            &device(),
        )
        .unwrap()
    };
    assert_eq!(eval(&ckpt), eval(&back));
    // The imported checkpoint resumes like any other.
    let resumed = checkpoint::load::<B>(&back, None, &device()).unwrap();
    assert_eq!(resumed.state.step, 0);
    // A config describing another model is refused.
    let mut other = config.clone();
    other.latent_dim = 5;
    let settings = fep_models::export::ImportSettings {
        model: other,
        train: resumed.config.clone(),
        extra: serde_json::Map::new(),
    };
    let err = fep_models::export::import_to_checkpoint::<B>(&st, settings, &back, &device());
    assert!(err.is_err());
}
