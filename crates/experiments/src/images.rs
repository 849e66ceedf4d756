//! Image grids of a model: test images beside their reconstructions, and samples from
//! the prior, as PNG.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use fep_data::{Binarization, GridOptions, ImageDataset, Split};
use fep_models::FepModel;

use crate::error::Result;

/// Host bytes `[N, C, H, W]` of images in [0, 1].
fn to_bytes<B: Backend>(images: Tensor<B, 4>) -> (Vec<u8>, [usize; 4]) {
    let dims = images.dims();
    let bytes = images
        .into_data()
        .iter::<f64>()
        .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    (bytes, dims)
}

/// Writes a PNG grid of float images `[N, C, H, W]` in [0, 1], `columns` per row.
pub fn write_image_grid<B: Backend>(
    path: &Path,
    images: Tensor<B, 4>,
    columns: usize,
) -> Result<()> {
    let (bytes, [n, c, h, w]) = to_bytes(images);
    let ds = ImageDataset::new(
        Split::Test,
        [c, h, w],
        bytes,
        vec![0; n],
        fep_data::mnist_class_names(),
    )?;
    let options = GridOptions {
        columns,
        ..GridOptions::default()
    };
    fep_data::write_png_grid(path, &ds, &(0..n).collect::<Vec<_>>(), options)?;
    Ok(())
}

/// Reconstructions (originals in odd rows, reconstructions below) and samples from the prior.
pub fn write_model_images<B: Backend>(
    model: &FepModel<B>,
    test: &ImageDataset,
    binarization: Binarization,
    seed: u64,
    dir: &Path,
    device: &B::Device,
) -> Result<(PathBuf, PathBuf)> {
    let columns = 10;
    let n = (2 * columns).min(test.len());
    let idx: Vec<usize> = (0..n).collect();
    let batch = test.batch::<B>(&idx, binarization, 0, device)?;
    let recon = model.reconstruct(batch.images.clone());
    let mut rows = Vec::new();
    for r in 0..n.div_ceil(columns) {
        let len = columns.min(n - r * columns);
        rows.push(batch.images.clone().narrow(0, r * columns, len));
        rows.push(recon.clone().narrow(0, r * columns, len));
    }
    let recon_path = dir.join("reconstructions.png");
    write_image_grid(&recon_path, Tensor::cat(rows, 0), columns)?;
    let latent = model.config().latent_dim;
    let noise =
        fep_models::noise::standard_normal(seed, fep_models::noise::SAMPLE_STREAM, 0, 40 * latent);
    let noise = Tensor::<B, 2>::from_data(TensorData::new(noise, [40, latent]), device);
    let samples_path = dir.join("samples.png");
    write_image_grid(&samples_path, model.sample(noise), columns)?;
    Ok((recon_path, samples_path))
}
