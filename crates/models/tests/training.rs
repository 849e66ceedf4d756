//! Shapes of the architectures, single training steps on the CPU, exact resume from a
//! checkpoint, the NaN guard, and the thermodynamic system of a deep model.

use std::sync::Arc;

mod common;

use burn::module::{AutodiffModule, Module};
use burn::tensor::{Int, Tensor, TensorData};
use fep_data::{Binarization, Cifar10, ImageBatch, ImageDataset, Mnist, Split};
use fep_models::checkpoint;
use fep_models::system::{DeepSystem, EquilibrationSettings};
use fep_models::train::{ShuffledImages, TrainConfig, Trainer};
use fep_models::{Architecture, DecoderKind, FepModel, ModelConfig, ModelError, PriorKind};
use fep_thermo::{
    IftConfig, Multipliers, StationarityTest, StoppingRule, ThermodynamicSystem, ift_sensitivities,
};

use common::{Inner, TestBackend as B, device as dev};

fn mnist_train() -> ImageDataset {
    Mnist::load_dir(fep_data::bundled_mnist_dir().unwrap(), Split::Train).expect("bundled MNIST")
}

fn config(lambda: f64, gamma: f64, epochs: u64, batch: usize, num_z: usize) -> TrainConfig {
    TrainConfig {
        lambda,
        gamma,
        epochs,
        batch_size: batch,
        learning_rate: 1e-3,
        schedule: Default::default(),
        grad_clip_norm: Some(100.0),
        num_z,
        seed: 5,
        eval_batch_size: 64,
        micro_batch: None,
    }
}

/// A model initialised from the backend's generator seeded with `seed`. The generator is
/// global and tests run in parallel: seeding and drawing happen under one lock, so no other
/// test draws in between.
fn seeded_model(cfg: &ModelConfig, seed: u64) -> FepModel<B> {
    FepModel::<B>::seeded(cfg, seed, &dev()).unwrap()
}

fn params_of<M: Module<B>>(m: &M) -> Vec<f64> {
    fep_thermo::burn_params::flatten_params(m)
}

#[test]
fn architectures_have_the_documented_shapes() {
    let device = dev();
    for (arch, decoder, prior, channels, side, per_channel) in [
        (
            Architecture::MnistSmall,
            DecoderKind::Bernoulli,
            PriorKind::StandardNormal,
            1,
            28,
            1,
        ),
        (
            Architecture::MnistPaper,
            DecoderKind::Gaussian {
                sigma: 0.5f64.sqrt(),
            },
            PriorKind::Mixture { components: 3 },
            1,
            28,
            1,
        ),
        (
            Architecture::CifarResnet,
            DecoderKind::DiscretizedLogistic,
            PriorKind::Vamp { pseudo_inputs: 4 },
            3,
            32,
            2,
        ),
    ] {
        let classifier = if arch == Architecture::MnistSmall {
            fep_models::ClassifierKind::Mlp { hidden: 32 }
        } else {
            fep_models::ClassifierKind::Linear
        };
        let cfg = ModelConfig {
            architecture: arch,
            latent_dim: 16,
            num_classes: 10,
            decoder,
            prior,
            classifier,
        };
        let model = FepModel::<Inner>::new(&cfg, &device).unwrap();
        let x = Tensor::<Inner, 4>::zeros([2, channels, side, side], &device);
        let (mean, log_var) = model.encoder.forward(x.clone());
        assert_eq!(mean.dims(), [2, 16], "{arch:?}");
        assert_eq!(log_var.dims(), [2, 16], "{arch:?}");
        let out = model.decoder.forward(mean);
        assert_eq!(
            out.dims(),
            [2, channels * per_channel, side, side],
            "{arch:?}"
        );
        assert_eq!(
            model.reconstruct(x.clone()).dims(),
            [2, channels, side, side]
        );
        assert_eq!(
            model.sample(Tensor::zeros([3, 16], &device)).dims(),
            [3, channels, side, side]
        );
        let labels =
            Tensor::<Inner, 1, Int>::from_data(TensorData::new(vec![1i64, 7], [2]), &device);
        let f = model.functionals(x, labels, Tensor::zeros([3, 2, 16], &device));
        for v in [f.rate, f.distortion, f.classification] {
            assert_eq!(v.dims(), [2]);
            assert!(v.into_data().iter::<f64>().all(f64::is_finite), "{arch:?}");
        }
    }
    // The paper's encoder: the parameter count of the layers listed in the models issue.
    let paper =
        FepModel::<Inner>::new(&ModelConfig::new(Architecture::MnistPaper), &device).unwrap();
    let conv = 64 * 16 + 64 + 128 * 64 * 16 + 128 + 256 * 128 * 9 + 256 + 1024 * 256 * 16 + 1024;
    // BatchNorm: scale and shift (learnt) plus running mean and variance (state).
    let bn = 4 * (128 + 256);
    let fc = 1024 * 512 + 512 + 2 * (512 * 16 + 16);
    assert_eq!(paper.encoder.num_params(), conv + bn + fc);
}

fn one_step(cfg: ModelConfig, data: ImageDataset, binarization: Binarization) {
    let device = dev();
    let model = seeded_model(&cfg, 1);
    let mut trainer = Trainer::new(model, config(2.0, 2.0, 1, 4, 2), dev()).unwrap();
    let before = params_of(trainer.model());
    let batch = data
        .batch::<B>(&[0, 1, 2, 3], binarization, 0, &device)
        .unwrap();
    let report = trainer.step(batch, 2.0, 2.0, 1e-3).unwrap();
    assert!(report.loss.is_finite() && report.loss > 0.0, "{report:?}");
    let after = params_of(trainer.model());
    let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
    assert!(
        moved > before.len() / 2,
        "only {moved} of {} parameters moved",
        before.len()
    );
    assert_eq!(trainer.state.step, 1);
}

#[test]
fn one_training_step_of_mnist_paper_on_the_cpu() {
    let cfg = ModelConfig {
        decoder: DecoderKind::Gaussian {
            sigma: 0.5f64.sqrt(),
        },
        ..ModelConfig::new(Architecture::MnistPaper)
    };
    one_step(cfg, mnist_train().take(8), Binarization::None);
}

#[test]
fn one_training_step_of_cifar_resnet_on_the_fixture() {
    let data = Cifar10::load_dir(fep_data::bundled_cifar_dir().unwrap(), Split::Train).unwrap();
    assert_eq!(data.len(), 15);
    let cfg = ModelConfig {
        decoder: DecoderKind::DiscretizedLogistic,
        prior: PriorKind::Mixture { components: 4 },
        ..ModelConfig::new(Architecture::CifarResnet)
    };
    one_step(cfg, data, Binarization::None);
}

fn small_run(data: &ImageDataset) -> (ShuffledImages, Trainer<B>) {
    let device = dev();
    let model = seeded_model(&ModelConfig::new(Architecture::MnistSmall), 5);
    let trainer = Trainer::new(model, config(2.0, 2.0, 4, 32, 1), device).unwrap();
    let shuffled = ShuffledImages {
        dataset: Arc::new(data.clone()),
        binarization: Binarization::Dynamic { seed: 5 },
        seed: 5,
    };
    (shuffled, trainer)
}

#[test]
fn resume_continues_exactly() {
    let data = mnist_train().take(160);
    let test = Mnist::load_dir(fep_data::bundled_mnist_dir().unwrap(), Split::Test)
        .unwrap()
        .take(64);
    let bin = Binarization::Dynamic { seed: 5 };

    // 4 epochs straight.
    let (shuffled, mut straight) = small_run(&data);
    for _ in 0..4 {
        straight.train_epoch(&shuffled, 4, |_| {}).unwrap();
    }
    let straight_metrics = straight.evaluate(&test, bin).unwrap();

    // 2 epochs, checkpoint, a fresh process loads it, 2 more epochs.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.ckpt");
    let (shuffled, mut first) = small_run(&data);
    for _ in 0..2 {
        first.train_epoch(&shuffled, 4, |_| {}).unwrap();
    }
    checkpoint::save(&first, &path, serde_json::json!({"note": "test"})).unwrap();
    drop(first);
    let mut resumed = checkpoint::load::<B>(&path, None, &dev()).unwrap();
    assert_eq!(resumed.state.epoch, 2);
    assert_eq!(resumed.state.step, 10);
    for _ in 0..2 {
        resumed.train_epoch(&shuffled, 4, |_| {}).unwrap();
    }
    let resumed_metrics = resumed.evaluate(&test, bin).unwrap();
    if common::BITWISE_REPRODUCIBLE {
        assert_eq!(params_of(straight.model()), params_of(resumed.model()));
        assert_eq!(straight_metrics, resumed_metrics);
    } else {
        // Four Adam steps move a parameter by about 4e-3 (learning rate 1e-3): the resumed
        // run must agree far below that, to float rounding of the kernels' sums.
        let gap =
            common::max_abs_difference(&params_of(straight.model()), &params_of(resumed.model()));
        assert!(gap < 1e-4, "resumed parameters differ by {gap}");
        let (a, b) = (straight_metrics.neg_elbo, resumed_metrics.neg_elbo);
        assert!((a - b).abs() < 1e-4 * a.abs(), "-ELBO {a} vs {b}");
    }

    // A checkpoint cut short is refused with the file named.
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.ckpt");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = checkpoint::load::<B>(&cut, None, &dev())
        .err()
        .expect("truncated file rejected");
    let msg = err.to_string();
    assert!(
        msg.contains("cut.ckpt") && msg.contains("truncated"),
        "{msg}"
    );
    let missing = checkpoint::load::<B>(&dir.path().join("nope.ckpt"), None, &dev())
        .err()
        .unwrap();
    assert!(missing.to_string().contains("not found"), "{missing}");

    // Overwritten model bytes (the length intact) are refused on load, naming the
    // section, where they used to load and fail later as a non-finite rate.
    let header_len = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
    let model_start = 16 + header_len + 32 + 8;
    for (name, at) in [("model", model_start + 100), ("header", 20)] {
        let mut flipped = bytes.clone();
        for b in &mut flipped[at..at + 8] {
            *b ^= 0xA5;
        }
        let bad = dir.path().join(format!("flipped-{name}.ckpt"));
        std::fs::write(&bad, &flipped).unwrap();
        let err = checkpoint::load::<B>(&bad, None, &dev())
            .err()
            .expect("refused");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("flipped-{name}.ckpt"))
                && msg.contains(&format!("the {name} section does not match its checksum")),
            "{msg}"
        );
        assert!(checkpoint::load_model::<B>(&bad, &dev()).is_err());
    }

    // The first layout (FEPCKPT1: the same sections without checksums) still loads.
    let mut v1 = b"FEPCKPT1".to_vec();
    let mut pos = 8;
    for _ in 0..3 {
        let len = u64::from_le_bytes(bytes[pos..pos + 8].try_into().unwrap()) as usize;
        v1.extend_from_slice(&bytes[pos..pos + 8 + len]);
        pos += 8 + len + 32;
    }
    v1.extend_from_slice(&bytes[pos..]);
    assert_eq!(v1.len(), bytes.len() - 3 * 32);
    let old = dir.path().join("v1.ckpt");
    std::fs::write(&old, &v1).unwrap();
    let loaded = checkpoint::load::<B>(&old, None, &dev()).unwrap();
    assert_eq!(
        params_of(loaded.model()),
        params_of(checkpoint::load::<B>(&path, None, &dev()).unwrap().model())
    );
}

#[test]
fn nan_in_the_loss_stops_with_the_step_named_and_keeps_the_checkpoint() {
    let data = mnist_train().take(64);
    let (shuffled, mut trainer) = small_run(&data);
    trainer.train_epoch(&shuffled, 1, |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("good.ckpt");
    checkpoint::save(&trainer, &path, serde_json::Value::Null).unwrap();
    let saved = std::fs::read(&path).unwrap();
    let before = params_of(trainer.model());

    let device = dev();
    let mut pixels = vec![0.5f32; 4 * 784];
    pixels[100] = f32::NAN;
    let batch = ImageBatch::<B> {
        images: Tensor::from_data(TensorData::new(pixels, [4, 1, 28, 28]), &device),
        labels: Tensor::from_data(TensorData::new(vec![0i64, 1, 2, 3], [4]), &device),
        indices: vec![0, 1, 2, 3],
    };
    let err = trainer
        .step(batch, 2.0, 2.0, 1e-3)
        .expect_err("NaN detected");
    match &err {
        ModelError::NonFinite { step, .. } => assert_eq!(*step, 2),
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("step 2"), "{err}");
    assert_eq!(
        params_of(trainer.model()),
        before,
        "no update from a NaN loss"
    );
    assert_eq!(std::fs::read(&path).unwrap(), saved, "checkpoint intact");
    assert!(checkpoint::load::<B>(&path, None, &device).is_ok());
}

#[test]
fn deep_system_feeds_the_ift_estimator() {
    let data = mnist_train();
    let source = data.filter_classes(&[0, 1, 2, 3, 4]).take(256);
    let target = data.filter_classes(&[5, 6, 7, 8, 9]).take(256);
    let (shuffled, mut trainer) = small_run(&source);
    trainer.config.learning_rate = 3e-3;
    for _ in 0..6 {
        trainer.train_epoch(&shuffled, 6, |_| {}).unwrap();
    }
    let settings = EquilibrationSettings {
        learning_rate: 1e-4,
        binarization: Binarization::Static,
    };
    let mut system = DeepSystem::new(
        trainer,
        Arc::new(source.clone()),
        Arc::new(target.clone()),
        &source.take(64),
        &target.take(64),
        settings,
    )
    .unwrap();
    let m = Multipliers::new(2.0, 2.0);
    // Functionals are deterministic and linear along the data path.
    let f0 = system.functionals().unwrap();
    assert_eq!(f0, system.functionals().unwrap());
    system.set_data_position(1.0).unwrap();
    let f1 = system.functionals().unwrap();
    system.set_data_position(0.25).unwrap();
    let ft = system.functionals().unwrap();
    assert!(
        (ft.classification - (0.75 * f0.classification + 0.25 * f1.classification)).abs() < 1e-4
    );
    assert!(
        f1.classification > f0.classification,
        "unseen digits are harder: {f0:?} {f1:?}"
    );
    // The gradient agrees with a finite difference of the functionals along it.
    system.set_data_position(0.0).unwrap();
    let (fg, g) = system
        .gradient(fep_thermo::Weights::only(
            fep_thermo::Functional::Classification,
        ))
        .unwrap();
    assert!((fg.classification - f0.classification).abs() < 1e-9);
    let theta = system.params().unwrap();
    let gn: f64 = g.iter().map(|v| v * v).sum::<f64>().sqrt();
    let h = 1e-2 / gn;
    let shifted: Vec<f64> = theta.iter().zip(&g).map(|(t, gi)| t + h * gi).collect();
    system.set_params(&shifted).unwrap();
    let fp = system.functionals().unwrap();
    system.set_params(&theta).unwrap();
    let predicted = h * gn * gn;
    let measured = fp.classification - f0.classification;
    assert!(
        (measured - predicted).abs() < 0.2 * predicted.abs(),
        "{measured} vs {predicted}"
    );
    // One IFT sensitivity with truncated CG.
    let ift = IftConfig {
        relative_damping: 1e-2,
        cg_max_iterations: 4,
        max_accepted_residual: 1.0,
        ..IftConfig::default()
    };
    let sol = ift_sensitivities(&mut system, m, &ift).unwrap();
    let s = sol.sensitivities;
    assert!(s.dC_dgamma < 0.0, "C falls as gamma rises: {s:?}");
    assert!(s.dD_dlambda < 0.0, "D falls as lambda rises: {s:?}");
    assert!(system.work().probe_gradients > 4);
    assert_eq!(
        system.params().unwrap(),
        theta,
        "parameters restored after the HVPs"
    );
}

#[test]
fn micro_batches_give_the_same_step() {
    let data = mnist_train().take(64);
    let device = dev();
    let idx: Vec<usize> = (0..64).collect();
    let mut params = Vec::new();
    for micro in [None, Some(16), Some(40)] {
        let model = seeded_model(&ModelConfig::new(Architecture::MnistSmall), 9);
        let mut cfg = config(2.0, 2.0, 1, 64, 2);
        cfg.micro_batch = micro;
        let mut trainer = Trainer::new(model, cfg, dev()).unwrap();
        let batch = data
            .batch::<B>(&idx, Binarization::Static, 0, &device)
            .unwrap();
        let report = trainer.step(batch, 2.0, 2.0, 1e-3).unwrap();
        params.push((report.loss, params_of(trainer.model())));
    }
    let (loss0, p0) = &params[0];
    for (loss, p) in &params[1..] {
        assert!(
            (loss - loss0).abs() < 1e-3 * loss0.abs(),
            "{loss} vs {loss0}"
        );
        let max = p
            .iter()
            .zip(p0)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        // One Adam step moves each parameter by about the learning rate; summation order
        // may flip the sign of a near-zero gradient, nothing more.
        let differing = p
            .iter()
            .zip(p0)
            .filter(|(a, b)| (*a - *b).abs() > 1e-6)
            .count();
        assert!(
            differing < p.len() / 100,
            "{differing} of {} parameters differ (max {max})",
            p.len()
        );
    }
}

#[test]
fn stationary_equilibration_stops_on_the_test_and_reports_it() {
    let data = mnist_train();
    let source = data.filter_classes(&[0, 1, 2, 3, 4]).take(256);
    let (shuffled, mut trainer) = small_run(&source);
    trainer.config.learning_rate = 3e-3;
    for _ in 0..4 {
        trainer.train_epoch(&shuffled, 4, |_| {}).unwrap();
    }
    let settings = EquilibrationSettings {
        learning_rate: 1e-4,
        binarization: Binarization::Static,
    };
    let probe = source.take(64);
    let mut system = DeepSystem::new(
        trainer,
        Arc::new(source.clone()),
        Arc::new(source.clone()),
        &probe,
        &probe,
        settings,
    )
    .unwrap();
    let m = Multipliers::new(2.0, 2.0);
    // Near the trained point with a small learning rate: the window means are stationary.
    let test = StationarityTest {
        window: 8,
        consecutive: 2,
        z: 3.0,
        min_steps: 16,
        max_steps: 200,
    };
    let before = system.work().optimizer_steps;
    let eq = system
        .equilibrate_until(m, &StoppingRule::Stationary(test))
        .unwrap();
    let r = eq.report;
    assert!(r.met, "{r:?}");
    assert!(r.steps >= 24 && r.steps % 8 == 0 && r.steps <= 200, "{r:?}");
    assert!(r.criterion.is_some_and(|c| c <= 3.0), "{r:?}");
    assert_eq!(system.work().optimizer_steps - before, r.steps as u64);
    assert_eq!(eq.functionals, system.functionals().unwrap());
    // An impossible test (no change allowed at all) runs out of budget and says so.
    let strict = StationarityTest {
        z: 0.0,
        max_steps: 24,
        ..test
    };
    let eq = system
        .equilibrate_until(m, &StoppingRule::Stationary(strict))
        .unwrap();
    assert!(!eq.report.met, "{:?}", eq.report);
    assert_eq!(eq.report.steps, 24);
    // Fixed steps measure nothing; a malformed test is an error, not a panic.
    let fixed = system
        .equilibrate_until(m, &StoppingRule::fixed(5))
        .unwrap();
    assert_eq!(fixed.report, fep_thermo::EquilibriumReport::unmeasured(5));
    let bad = StationarityTest { window: 1, ..test };
    assert!(
        system
            .equilibrate_until(m, &StoppingRule::Stationary(bad))
            .is_err()
    );
}

/// Measurement apart from training: its means agree with the fixed-noise evaluation of
/// the same model on the same data within their noise, its standard errors are the
/// spread over examples, the noise-only covariance is below it, and it is a function of
/// its seed.
#[test]
fn measurement_with_fresh_noise_has_honest_standard_errors() {
    use fep_models::measure;
    let data = mnist_train().take(256);
    let (_, trainer) = small_run(&data);
    let model = trainer.model().valid();
    let eval = fep_models::train::evaluate(&model, &data, Binarization::Static, 8, 64, 11, &dev())
        .unwrap();
    let m = measure(&model, &data, Binarization::Static, 8, 64, 3, &dev()).unwrap();
    assert_eq!((m.examples, m.samples, m.seed), (256, 8, 3));
    // Two estimates of the same functionals on the same data, each with 8 draws.
    for (ours, theirs, var) in [
        (
            m.functionals.rate,
            eval.functionals.rate,
            m.noise_covariance[0][0],
        ),
        (
            m.functionals.distortion,
            eval.functionals.distortion,
            m.noise_covariance[1][1],
        ),
        (
            m.functionals.classification,
            eval.functionals.classification,
            m.noise_covariance[2][2],
        ),
    ] {
        let se = (2.0 * var).sqrt();
        // Plus the f32 rounding of the network (the two passes batch the images
        // differently, and the CPU kernels block their GEMMs by batch): the rate has no
        // noise, so it must agree to that rounding.
        assert!(
            (ours - theirs).abs() < 5.0 * se + 1e-6 * theirs.abs(),
            "{ours} vs {theirs}, se {se}"
        );
    }
    assert!((m.neg_elbo - m.functionals.rate - m.functionals.distortion).abs() < 1e-9);
    // With the standard normal prior the rate is a closed-form KL: no noise at all.
    assert_eq!(
        ModelConfig::new(Architecture::MnistSmall).prior,
        PriorKind::StandardNormal
    );
    assert_eq!(m.noise_covariance[0][0], 0.0);
    for q in 0..3 {
        assert!(q == 0 || m.noise_covariance[q][q] > 0.0, "{q}: {m:?}");
        assert!(m.noise_covariance[q][q] <= m.covariance[q][q], "{q}: {m:?}");
    }
    assert!((m.standard_errors.distortion - m.covariance[1][1].sqrt()).abs() < 1e-15);
    let again = measure(&model, &data, Binarization::Static, 8, 64, 3, &dev()).unwrap();
    assert_eq!(again, m);
    let other = measure(&model, &data, Binarization::Static, 8, 64, 4, &dev()).unwrap();
    assert_ne!(other.functionals, m.functionals);
    // One draw cannot separate noise from data: the noise covariance is the full one.
    let one = measure(&model, &data, Binarization::Static, 1, 64, 3, &dev()).unwrap();
    assert_eq!(one.noise_covariance, one.covariance);
    let err = measure(&model, &data, Binarization::Static, 0, 64, 3, &dev()).unwrap_err();
    assert!(err.to_string().contains("samples >= 1"), "{err}");
}

/// With a gradient probe of k examples, the functionals the corrector tests its
/// constraint on come from the other examples of the probe only: replacing the first k
/// examples changes nothing, and without the split it does.
#[test]
fn functionals_are_measured_on_examples_disjoint_from_the_gradient_probe() {
    let data = mnist_train().take(300);
    let build = |probe: &ImageDataset| {
        let (_, trainer) = small_run(&data);
        DeepSystem::new(
            trainer,
            Arc::new(data.clone()),
            Arc::new(data.clone()),
            probe,
            probe,
            EquilibrationSettings {
                learning_rate: 1e-4,
                binarization: Binarization::Static,
            },
        )
        .unwrap()
    };
    let a = data.select(&(0..100).collect::<Vec<_>>()).unwrap();
    let swapped: Vec<usize> = (200..232).chain(32..100).collect();
    let b = data.select(&swapped).unwrap();
    let (mut sa, mut sb) = (build(&a), build(&b));
    // The same parameters in both (initialisation is not what is tested).
    let theta = sa.params().unwrap();
    sb.set_params(&theta).unwrap();
    assert_ne!(sa.functionals().unwrap(), sb.functionals().unwrap());
    sa.set_gradient_probe_size(Some(32));
    sb.set_gradient_probe_size(Some(32));
    assert_eq!(sa.functionals().unwrap(), sb.functionals().unwrap());
    // The gradients, on the first 32 examples, do see the swap.
    let w = fep_thermo::Weights {
        rate: 1.0,
        distortion: 2.0,
        classification: 2.0,
    };
    assert_ne!(sa.gradient(w).unwrap().1, sb.gradient(w).unwrap().1);
}
