//! Assembling examples into Burn tensors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};

use crate::binarize::Binarization;
use crate::dataset::{ImageDataset, ImageItem};
use crate::error::DataError;

/// A batch of images and labels on a device.
#[derive(Debug, Clone)]
pub struct ImageBatch<B: Backend> {
    /// `[batch, channels, height, width]` floats: `p / 255` in [0, 1], or {0, 1} if binarised.
    pub images: Tensor<B, 4>,
    /// `[batch]` class indices.
    pub labels: Tensor<B, 1, Int>,
    /// For each row, the [`ImageItem::index`] it was built from.
    pub indices: Vec<usize>,
}

/// Builds [`ImageBatch`]es, usable as a Burn [`Batcher`] or directly by index.
///
/// The epoch used for dynamic binarisation is shared between clones (an `Arc<AtomicU64>`),
/// so a trainer can call [`ImageBatcher::set_epoch`] on its copy while a data loader holds
/// another one.
#[derive(Debug, Clone)]
pub struct ImageBatcher {
    binarization: Binarization,
    shape: [usize; 3],
    epoch: Arc<AtomicU64>,
}

impl ImageBatcher {
    /// A batcher for images of `shape = [channels, height, width]`.
    pub fn new(binarization: Binarization, shape: [usize; 3]) -> Self {
        Self {
            binarization,
            shape,
            epoch: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A batcher for the images of `dataset`.
    pub fn for_dataset(dataset: &ImageDataset, binarization: Binarization) -> Self {
        Self::new(binarization, dataset.shape())
    }

    /// The binarisation applied.
    pub fn binarization(&self) -> Binarization {
        self.binarization
    }

    /// `[channels, height, width]` of the images.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Sets the epoch that keys dynamic binarisation (visible to all clones).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// The batch of `dataset` examples at `indices` (in that order), without a data loader.
    pub fn batch_indices<B: Backend>(
        &self,
        dataset: &ImageDataset,
        indices: &[usize],
        device: &B::Device,
    ) -> Result<ImageBatch<B>, DataError> {
        if dataset.shape() != self.shape {
            return Err(DataError::ShapeMismatch {
                what: "batching a dataset".to_string(),
                expected: self.shape,
                found: dataset.shape(),
            });
        }
        dataset.batch(indices, self.binarization, self.epoch(), device)
    }
}

impl<B: Backend> Batcher<B, ImageItem, ImageBatch<B>> for ImageBatcher {
    /// Stacks `items` into a batch.
    ///
    /// # Panics
    /// If an item's shape differs from the batcher's: the trait has no error channel, and such
    /// items cannot come from one [`ImageDataset`], so this is a programming error.
    fn batch(&self, items: Vec<ImageItem>, device: &B::Device) -> ImageBatch<B> {
        let epoch = self.epoch();
        let image_len: usize = self.shape.iter().product();
        let mut pixels = Vec::with_capacity(items.len() * image_len);
        let mut labels = Vec::with_capacity(items.len());
        let mut indices = Vec::with_capacity(items.len());
        for item in &items {
            assert!(
                item.shape == self.shape && item.pixels.len() == image_len,
                "ImageBatcher for shape {:?} got an item of shape {:?} with {} bytes",
                self.shape,
                item.shape,
                item.pixels.len()
            );
            self.binarization
                .extend_into(&item.pixels, epoch, item.index, &mut pixels);
            labels.push(i64::from(item.label));
            indices.push(item.index);
        }
        to_batch(pixels, labels, indices, self.shape, device)
    }
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
