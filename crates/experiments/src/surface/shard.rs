//! One shard of the surface sweep: its slice of the grid trained point by point, each
//! point measured on the training data with fresh noise and written as soon as it is.

use std::path::PathBuf;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use fep_data::{Domains, ProbeSplit};
use fep_models::StandardErrors;
use fep_models::assemble::{SystemSpec, system_from_checkpoint};
use fep_models::system::DeepSystem;
use fep_thermo::surface::{Shard, SurfacePoint, Sweep, SweepPoint, shard_points, snake_order};

use super::config::{SurfaceConfig, SurfaceOptions, SweepConfig};
use super::records::{ShardRecord, shard_path};
use crate::error::Result;
use crate::io::{create_dir, write_jsonl, write_toml};
use crate::progress::bar;

/// Runs one shard of the sweep on backend B: every point of the shard's slice of the
/// boustrophedon order, each written to the shard file as soon as it is measured (a killed
/// shard keeps what it finished). Returns the shard file.
pub fn run_shard<B: AutodiffBackend>(
    device: &B::Device,
    cfg: &SurfaceConfig,
    options: &SurfaceOptions,
) -> Result<PathBuf> {
    let domains = Domains::load(&cfg.data, options.data_dir.as_deref())?;
    let points = shard_points(
        &snake_order(cfg.grid.lambdas.len(), cfg.grid.gammas.len()),
        options.shard,
    );
    let s = &cfg.sweep;
    let mut assembled = system_from_checkpoint::<B>(
        &cfg.source_checkpoint,
        device,
        &domains.source,
        None,
        &sweep_spec(cfg),
    )?;
    create_dir(&options.out.join("shards"))?;
    write_toml(&options.out.join("config.toml"), cfg)?;
    let file = shard_path(&options.out, options.shard);
    let progress = bar(points.len() as u64, "surface");
    let mut records = Vec::new();
    let mut sweep = Sweep::new(
        &mut assembled.system,
        &cfg.grid,
        points,
        s.first_point_steps,
        s.steps_per_point,
    )?
    .with_equilibrium(s.first_rule(), s.point_rule());
    let mut clock = Instant::now();
    while let Some(item) = sweep.next() {
        let record = measure_point(sweep.system(), &domains, s, item?, options.shard)?;
        progress.suspend(|| eprintln!("surface: {}", point_line(&record)));
        records.push(ShardRecord {
            wall_seconds: clock.elapsed().as_secs_f64(),
            ..record
        });
        write_jsonl(&file, &records)?;
        progress.inc(1);
        clock = Instant::now();
    }
    progress.finish_and_clear();
    Ok(file)
}

/// How the system around the source checkpoint samples, steps and measures in a sweep.
fn sweep_spec(cfg: &SurfaceConfig) -> SystemSpec {
    let s = &cfg.sweep;
    SystemSpec {
        batch_size: s.batch_size,
        learning_rate: s.learning_rate,
        seed: s.seed,
        probe_size: s.probe_size,
        probe_split: ProbeSplit::Validation,
        gradient_probe_size: None,
        binarization: cfg.data.binarization(s.seed),
    }
}

/// A swept point measured: the functionals on the training data with fresh noise (`samples`
/// draws per example) and their covariance, the probe's values, the test accuracy (its
/// wall time is filled in by the caller).
fn measure_point<B: AutodiffBackend>(
    system: &DeepSystem<B>,
    domains: &Domains,
    s: &SweepConfig,
    item: SweepPoint,
    shard: Shard,
) -> Result<ShardRecord> {
    let SweepPoint {
        i,
        j,
        point,
        equilibrium,
    } = item;
    let accuracy = system.evaluate(&domains.source.test)?.accuracy;
    let held_out = point.functionals;
    let measured = system.measure(&domains.source.train, s.samples, s.seed)?;
    let point = SurfacePoint::new(point.multipliers(), measured.functionals)
        .with_covariance(measured.noise_covariance);
    Ok(ShardRecord {
        shard: shard.index + 1,
        of: shard.count,
        i,
        j,
        point,
        standard_errors: standard_errors(&measured.noise_covariance),
        held_out,
        accuracy,
        seed: s.seed,
        examples: measured.examples,
        wall_seconds: 0.0,
        equilibrium,
    })
}

/// A measured point in one progress line.
fn point_line(r: &ShardRecord) -> String {
    let (p, f) = (&r.point, &r.point.functionals);
    format!(
        "lambda {:.3} gamma {:.3}  train R {:.3}  D {:.3} (+-{:.3})  C {:.4}  acc {:.2}%  ({} steps{})",
        p.lambda,
        p.gamma,
        f.rate,
        f.distortion,
        r.standard_errors.distortion,
        f.classification,
        100.0 * r.accuracy,
        r.equilibrium.steps,
        if r.equilibrium.met {
            ""
        } else {
            ", criterion not met"
        }
    )
}

/// Square roots of the diagonal of a covariance.
fn standard_errors(cov: &[[f64; 3]; 3]) -> StandardErrors {
    StandardErrors {
        rate: cov[0][0].max(0.0).sqrt(),
        distortion: cov[1][1].max(0.0).sqrt(),
        classification: cov[2][2].max(0.0).sqrt(),
    }
}
