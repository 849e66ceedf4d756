//! Assembling examples into Burn tensors.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::binarize::Binarization;
use crate::dataset::ImageDataset;
use crate::error::DataError;

/// A batch of images and labels on a device.
#[derive(Debug, Clone)]
pub struct ImageBatch<B: Backend> {
    /// `[batch, channels, height, width]` floats: `p / 255` in [0, 1], or {0, 1} if binarised.
    pub images: Tensor<B, 4>,
    /// `[batch]` class indices.
    pub labels: Tensor<B, 1, Int>,
    /// For each row, the index in its dataset it was built from.
    pub indices: Vec<usize>,
}

impl ImageDataset {
    /// The examples at `indices` as a batch on `device`, binarised with `binarization` for
    /// `epoch`. Trainers that shuffle themselves call this directly. Out-of-range indices are
    /// an error; an empty index list gives an empty batch.
    pub fn batch<B: Backend>(
        &self,
        indices: &[usize],
        binarization: Binarization,
        epoch: u64,
        device: &B::Device,
    ) -> Result<ImageBatch<B>, DataError> {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            let (image, label) = match (self.image(i), self.label(i)) {
                (Some(image), Some(label)) => (image, label),
                _ => {
                    return Err(DataError::IndexOutOfRange {
                        index: i,
                        len: self.len(),
                    });
                }
            };
            binarization.extend_into(image, epoch, i, &mut pixels);
            labels.push(i64::from(label));
        }
        Ok(to_batch(
            pixels,
            labels,
            indices.to_vec(),
            self.shape(),
            device,
        ))
    }
}

pub(crate) fn to_batch<B: Backend>(
    pixels: Vec<f32>,
    labels: Vec<i64>,
    indices: Vec<usize>,
    shape: [usize; 3],
    device: &B::Device,
) -> ImageBatch<B> {
    let n = labels.len();
    let [c, h, w] = shape;
    let images = Tensor::<B, 4>::from_data(TensorData::new(pixels, [n, c, h, w]), device);
    let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), device);
    ImageBatch {
        images,
        labels,
        indices,
    }
}
