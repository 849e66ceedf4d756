//! The interpolating data distribution `p_t = (1 - t) p_source + t p_target`.

use std::sync::Arc;

use burn::data::dataset::Dataset;
use burn::tensor::backend::Backend;
use rand::Rng;

use crate::batch::{ImageBatch, to_batch};
use crate::binarize::{Binarization, keyed_rng};
use crate::dataset::{ImageDataset, ImageItem};
use crate::error::DataError;

/// Where one example of a mixture epoch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MixtureDraw {
    /// `true` if drawn from the target dataset, `false` for the source.
    pub from_target: bool,
    /// Index into the chosen dataset.
    pub index: usize,
}

/// Per-position random numbers of one epoch (independent of `t`).
#[derive(Debug, Clone, Copy)]
struct Slot {
    u: f64,
    source_index: usize,
    target_index: usize,
}

/// A seeded epoch of samples from `p_t = (1 - t) p_source + t p_target`.
///
/// Each of the `epoch_len` positions of an epoch independently comes from the target with
/// probability `t` and from the source otherwise, and its example is drawn uniformly from the
/// chosen dataset. Position `i` of epoch `e` uses a ChaCha8 stream keyed by `(seed, e)` that
/// yields `u_i ~ U[0, 1)` and one candidate index in each dataset; the position takes the
/// target candidate iff `u_i < t`. So an epoch is reproducible from `(seed, epoch, t)`,
/// `t = 0` gives only source examples, `t = 1` only target ones, and the draws are coupled
/// across `t` (common random numbers): raising `t` only turns source draws into target draws.
/// `t` may be changed between epochs with [`MixtureDataset::set_t`].
#[derive(Debug, Clone)]
pub struct MixtureDataset {
    source: Arc<ImageDataset>,
    target: Arc<ImageDataset>,
    seed: u64,
    epoch: u64,
    t: f64,
    slots: Vec<Slot>,
}

impl MixtureDataset {
    /// A mixture of `epoch_len` examples per epoch at weight `t`, starting at epoch 0.
    /// Both datasets must be non-empty with the same image shape; `t` must lie in [0, 1].
    pub fn new(
        source: Arc<ImageDataset>,
        target: Arc<ImageDataset>,
        epoch_len: usize,
        t: f64,
        seed: u64,
    ) -> Result<Self, DataError> {
        if source.shape() != target.shape() {
            return Err(DataError::ShapeMismatch {
                what: "mixing source and target datasets".to_string(),
                expected: source.shape(),
                found: target.shape(),
            });
        }
        if source.is_empty() || target.is_empty() {
            return Err(DataError::InvalidArgument {
                reason: format!(
                    "mixture needs non-empty datasets (source {}, target {})",
                    source.len(),
                    target.len()
                ),
            });
        }
        check_t(t)?;
        let mut mixture = Self {
            source,
            target,
            seed,
            epoch: 0,
            t,
            slots: Vec::new(),
        };
        mixture.slots = mixture.draw_slots(epoch_len);
        Ok(mixture)
    }

    fn draw_slots(&self, epoch_len: usize) -> Vec<Slot> {
        let mut rng = keyed_rng(self.seed, self.epoch, 0, *b"fepmixtr");
        let (ns, nt) = (self.source.len(), self.target.len());
        (0..epoch_len)
            .map(|_| Slot {
                u: rng.random::<f64>(),
                source_index: rng.random_range(0..ns),
                target_index: rng.random_range(0..nt),
            })
            .collect()
    }

    /// The mixture weight of the target.
    pub fn t(&self) -> f64 {
        self.t
    }

    /// Changes the mixture weight (takes effect immediately; call between epochs).
    pub fn set_t(&mut self, t: f64) -> Result<(), DataError> {
        check_t(t)?;
        self.t = t;
        Ok(())
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Moves to `epoch`, drawing its samples afresh from `(seed, epoch)`.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.slots = self.draw_slots(self.slots.len());
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Examples per epoch.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether an epoch has no examples.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// `[channels, height, width]` of the images.
    pub fn shape(&self) -> [usize; 3] {
        self.source.shape()
    }

    /// The source dataset (`t = 0`).
    pub fn source(&self) -> &ImageDataset {
        &self.source
    }

    /// The target dataset (`t = 1`).
    pub fn target(&self) -> &ImageDataset {
        &self.target
    }

    /// Where position `position` of the current epoch comes from.
    pub fn draw(&self, position: usize) -> Option<MixtureDraw> {
        let slot = self.slots.get(position)?;
        Some(if slot.u < self.t {
            MixtureDraw {
                from_target: true,
                index: slot.target_index,
            }
        } else {
            MixtureDraw {
                from_target: false,
                index: slot.source_index,
            }
        })
    }

    /// All draws of the current epoch, in order.
    pub fn draws(&self) -> Vec<MixtureDraw> {
        (0..self.len()).filter_map(|i| self.draw(i)).collect()
    }

    /// Share of the current epoch drawn from the target (about `t`).
    pub fn target_fraction(&self) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let n = self.slots.iter().filter(|s| s.u < self.t).count();
        n as f64 / self.len() as f64
    }

    fn pick(&self, position: usize) -> Option<(&[u8], u8)> {
        let draw = self.draw(position)?;
        let dataset = if draw.from_target {
            &self.target
        } else {
            &self.source
        };
        Some((dataset.image(draw.index)?, dataset.label(draw.index)?))
    }

    /// The examples at epoch `positions` as a batch. Dynamic binarisation is keyed by the
    /// current epoch and the position, so it is reproducible too.
    pub fn batch<B: Backend>(
        &self,
        positions: &[usize],
        binarization: Binarization,
        device: &B::Device,
    ) -> Result<ImageBatch<B>, DataError> {
        let image_len: usize = self.shape().iter().product();
        let mut pixels = Vec::with_capacity(positions.len() * image_len);
        let mut labels = Vec::with_capacity(positions.len());
        for &p in positions {
            let (image, label) = self.pick(p).ok_or(DataError::IndexOutOfRange {
                index: p,
                len: self.len(),
            })?;
            binarization.extend_into(image, self.epoch, p, &mut pixels);
            labels.push(i64::from(label));
        }
        Ok(to_batch(
            pixels,
            labels,
            positions.to_vec(),
            self.shape(),
            device,
        ))
    }
}

impl Dataset<ImageItem> for MixtureDataset {
    fn get(&self, index: usize) -> Option<ImageItem> {
        let (image, label) = self.pick(index)?;
        Some(ImageItem {
            pixels: image.to_vec(),
            label,
            index,
            shape: self.shape(),
        })
    }

    fn len(&self) -> usize {
        self.slots.len()
    }
}

fn check_t(t: f64) -> Result<(), DataError> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        Err(DataError::InvalidArgument {
            reason: format!("mixture weight t = {t} is outside [0, 1]"),
        })
    }
}
