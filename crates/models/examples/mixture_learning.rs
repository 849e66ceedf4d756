//! How fast equilibration on the mixture `p_t = (1 - t) p_source + t p_target` learns the
//! unseen target digits: Adam steps on `(1 - t) J(source batch) + t J(target batch)` at fixed
//! (lambda, gamma, t) from a trained source model, printing C on 500 training and 500 held-out
//! examples of each domain every 30 steps. It backs the transfer diagnosis in
//! `docs/DEEP_MODELS.md`.
//!
//! ```sh
//! cargo run --release -p fep-models --example mixture_learning -- \
//!     runs/train-source/checkpoint.ckpt T GAMMA LEARNING_RATE STEPS [BATCH] [LAMBDA]
//! ```
//!
//! LAMBDA defaults to the checkpoint's.

use std::path::PathBuf;
use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use fep_data::{Binarization, Mnist, Split};
use fep_models::checkpoint;
use fep_models::system::{DeepSystem, EquilibrationSettings};
use fep_models::train::Trainer;
use fep_thermo::{Multipliers, ThermodynamicSystem};

type B = Autodiff<Flex>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        return Err(
            "usage: mixture_learning CHECKPOINT T GAMMA LEARNING_RATE STEPS [BATCH] [LAMBDA]"
                .into(),
        );
    }
    let checkpoint_path = PathBuf::from(&args[0]);
    let t: f64 = args[1].parse()?;
    let gamma: f64 = args[2].parse()?;
    let lr: f64 = args[3].parse()?;
    let steps: usize = args[4].parse()?;
    let batch: usize = args.get(5).map(|b| b.parse()).transpose()?.unwrap_or(32);

    let device = Default::default();
    let dir = fep_data::bundled_mnist_dir()?;
    let train = Mnist::load_dir(&dir, Split::Train)?;
    let source = train.filter_classes(&[0, 1, 2, 3, 4]);
    let target = train.filter_classes(&[5, 6, 7, 8, 9]);
    // The last 500 examples of each domain are held out, as in the runner's data config.
    let split = |d: &fep_data::ImageDataset| {
        let cut = d.len() - 500;
        let fit = d.select(&(0..cut).collect::<Vec<_>>())?;
        let held = d.select(&(cut..d.len()).collect::<Vec<_>>())?;
        Ok::<_, fep_data::DataError>((fit, held))
    };
    let (source_fit, source_held) = split(&source)?;
    let (target_fit, target_held) = split(&target)?;

    let (model, header) = checkpoint::load_model::<B>(&checkpoint_path, &device)?;
    let mut cfg = header.train.clone();
    cfg.learning_rate = lr;
    cfg.batch_size = batch;
    // An optional 7th argument overrides the source's lambda.
    let lambda: f64 = args
        .get(6)
        .map(|l| l.parse())
        .transpose()?
        .unwrap_or(cfg.lambda);
    let trainer = Trainer::new(model, cfg, device)?;
    let settings = EquilibrationSettings {
        learning_rate: lr,
        binarization: Binarization::Dynamic { seed: 1 },
    };
    let mut system = DeepSystem::new(
        trainer,
        Arc::new(source_fit.clone()),
        Arc::new(target_fit.clone()),
        &source_held,
        &target_held,
        settings,
    )?;
    system.set_data_position(t)?;
    let m = Multipliers::new(lambda, gamma);
    println!("t {t}  lambda {lambda}  gamma {gamma}  lr {lr}  batch {batch} per domain");
    println!("steps  C_t(held-out)  source C train/held acc | target C train/held acc");
    let start = std::time::Instant::now();
    for round in 1..=steps.div_ceil(30) {
        system.train_steps(m, 30)?;
        let f = system.functionals()?;
        let s_fit = system.evaluate(&source_fit.take(500))?;
        let t_fit = system.evaluate(&target_fit.take(500))?;
        let s_held = system.evaluate(&source_held)?;
        let t_held = system.evaluate(&target_held)?;
        println!(
            "{:5}  {:.4}  {:.4}/{:.4} {:.1}% | {:.3}/{:.3} {:.1}%  ({:.0} s)",
            round * 30,
            f.classification,
            s_fit.functionals.classification,
            s_held.functionals.classification,
            100.0 * s_held.accuracy,
            t_fit.functionals.classification,
            t_held.functionals.classification,
            100.0 * t_held.accuracy,
            start.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
