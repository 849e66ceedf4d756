//! In-memory labelled image datasets.

use std::fmt;
use std::str::FromStr;

use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// Which part of a dataset: the official training or test records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training records (MNIST `train-*`, CIFAR-10 `data_batch_1..5.bin`).
    Train,
    /// Test records (MNIST `t10k-*`, CIFAR-10 `test_batch.bin`).
    Test,
}

impl Split {
    /// Both splits, train first.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];

    /// Lower-case name, `"train"` or `"test"`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

/// `Display` as the lower-case `name()`.
macro_rules! display_by_name {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    )*};
}

display_by_name!(Split, DatasetKind);

impl FromStr for Split {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "train" | "training" => Ok(Split::Train),
            "test" | "t10k" => Ok(Split::Test),
            other => Err(DataError::InvalidArgument {
                reason: format!("unknown split `{other}` (expected `train` or `test`)"),
            }),
        }
    }
}

/// The datasets this crate knows how to read and download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// MNIST handwritten digits: 1 x 28 x 28 grayscale, labels 0..=9, IDX files.
    Mnist,
    /// CIFAR-10 natural images: 3 x 32 x 32 RGB, 10 classes, binary batch files.
    Cifar10,
}

impl DatasetKind {
    /// Both kinds.
    pub const ALL: [DatasetKind; 2] = [DatasetKind::Mnist, DatasetKind::Cifar10];

    /// The manifest / command-line name: `"mnist"` or `"cifar10"`.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::Cifar10 => "cifar10",
        }
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "mnist" => Ok(DatasetKind::Mnist),
            "cifar10" | "cifar-10" | "cifar" => Ok(DatasetKind::Cifar10),
            other => Err(DataError::InvalidArgument {
                reason: format!("unknown dataset `{other}` (expected `mnist` or `cifar10`)"),
            }),
        }
    }
}

/// Pixel statistics of a dataset, over every byte of every image and channel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelStats {
    /// Number of pixel bytes summarised.
    pub count: u64,
    /// Mean intensity divided by 255, in [0, 1].
    pub mean: f64,
    /// Standard deviation of intensity / 255.
    pub std: f64,
    /// Share of bytes that are not zero, in [0, 1].
    pub nonzero_fraction: f64,
    /// Smallest byte value.
    pub min: u8,
    /// Largest byte value.
    pub max: u8,
}

impl PixelStats {
    /// Computes the statistics of a byte slice (all zeros for an empty slice).
    pub fn of(pixels: &[u8]) -> Self {
        let mut hist = [0u64; 256];
        for &p in pixels {
            hist[usize::from(p)] += 1;
        }
        let count = pixels.len() as u64;
        if count == 0 {
            return Self {
                count,
                mean: 0.0,
                std: 0.0,
                nonzero_fraction: 0.0,
                min: 0,
                max: 0,
            };
        }
        let n = count as f64;
        let mut sum = 0.0f64;
        let mut sum_sq = 0.0f64;
        for (v, &c) in hist.iter().enumerate() {
            let x = v as f64 / 255.0;
            sum += x * c as f64;
            sum_sq += x * x * c as f64;
        }
        let mean = sum / n;
        let var = (sum_sq / n - mean * mean).max(0.0);
        let min = hist.iter().position(|&c| c > 0).unwrap_or(0) as u8;
        let max = hist.iter().rposition(|&c| c > 0).unwrap_or(0) as u8;
        Self {
            count,
            mean,
            std: var.sqrt(),
            nonzero_fraction: (count - hist[0]) as f64 / n,
            min,
            max,
        }
    }
}

/// One example as handed out by [`Dataset::get`]: its pixels, label and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    /// `channels * height * width` bytes, channel-major then row-major.
    pub pixels: Vec<u8>,
    /// Class index.
    pub label: u8,
    /// Index of the example in the dataset it was taken from (for a
    /// [`crate::MixtureDataset`], its position in the epoch). Seeds dynamic binarisation.
    pub index: usize,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
}

/// A labelled image dataset held in memory.
///
/// Images are stored contiguously as `u8` in `[n, channels, height, width]` order (for CIFAR-10
/// the three colour planes R, G, B; for MNIST one grayscale plane). Labels are class indices
/// below [`ImageDataset::num_classes`]. The fields are private so the lengths always agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDataset {
    split: Split,
    channels: usize,
    height: usize,
    width: usize,
    images: Vec<u8>,
    labels: Vec<u8>,
    class_names: Vec<String>,
}

impl ImageDataset {
    /// Builds a dataset from raw parts, checking that `images` holds exactly
    /// `labels.len() * channels * height * width` bytes, that the image shape is non-empty,
    /// and that every label is a valid index into `class_names`.
    pub fn new(
        split: Split,
        shape: [usize; 3],
        images: Vec<u8>,
        labels: Vec<u8>,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        let [channels, height, width] = shape;
        let image_len = channels
            .checked_mul(height)
            .and_then(|v| v.checked_mul(width))
            .filter(|&v| v > 0)
            .ok_or_else(|| DataError::InvalidArgument {
                reason: format!("image shape {shape:?} is empty or too large"),
            })?;
        if class_names.is_empty() || class_names.len() > 256 {
            return Err(DataError::InvalidArgument {
                reason: format!("{} class names (need 1..=256)", class_names.len()),
            });
        }
        if labels.len().checked_mul(image_len) != Some(images.len()) {
            return Err(DataError::InvalidArgument {
                reason: format!(
                    "{} pixel bytes do not make {} images of shape {shape:?}",
                    images.len(),
                    labels.len()
                ),
            });
        }
        if let Some(index) = labels
            .iter()
            .position(|&l| usize::from(l) >= class_names.len())
        {
            return Err(DataError::InvalidArgument {
                reason: format!(
                    "label {} of example {index} is not below {} classes",
                    labels[index],
                    class_names.len()
                ),
            });
        }
        Ok(Self {
            split,
            channels,
            height,
            width,
            images,
            labels,
            class_names,
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no examples (possible after filtering).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Which split the examples come from.
    pub fn split(&self) -> Split {
        self.split
    }

    /// Colour channels per image (1 for MNIST, 3 for CIFAR-10).
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Rows per image.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Columns per image.
    pub fn width(&self) -> usize {
        self.width
    }

    /// `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Bytes per image, `channels * height * width`.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// All pixel bytes, `[n, channels, height, width]` row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// All labels, one per example.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Class names, indexed by label (digits `"0"`..`"9"` for MNIST).
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// Number of classes (labels are below this).
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The pixels of example `index`, or `None` past the end.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let n = self.image_len();
        let start = index.checked_mul(n)?;
        self.images.get(start..start.checked_add(n)?)
    }

    /// The label of example `index`, or `None` past the end.
    pub fn label(&self, index: usize) -> Option<u8> {
        self.labels.get(index).copied()
    }

    /// Example `index` as an owned [`ImageItem`], or `None` past the end.
    pub fn item(&self, index: usize) -> Option<ImageItem> {
        Some(ImageItem {
            pixels: self.image(index)?.to_vec(),
            label: self.label(index)?,
            index,
            shape: self.shape(),
        })
    }

    /// Keeps only examples whose label is in `classes` (in their original order). Labels keep
    /// their values, so keeping digits 5-9 yields labels 5..=9, not 0..=4. The result may be
    /// empty.
    pub fn filter_classes(&self, classes: &[u8]) -> ImageDataset {
        let mut keep = [false; 256];
        for &c in classes {
            keep[usize::from(c)] = true;
        }
        let indices: Vec<usize> = (0..self.len())
            .filter(|&i| keep[usize::from(self.labels[i])])
            .collect();
        self.gather(&indices)
    }

    /// The examples at `indices`, in that order (repeats allowed).
    pub fn select(&self, indices: &[usize]) -> Result<ImageDataset, DataError> {
        if let Some(&index) = indices.iter().find(|&&i| i >= self.len()) {
            return Err(DataError::IndexOutOfRange {
                index,
                len: self.len(),
            });
        }
        Ok(self.gather(indices))
    }

    /// The same examples labelled as coming from `split`.
    pub(crate) fn with_split(mut self, split: Split) -> ImageDataset {
        self.split = split;
        self
    }

    /// The first `n` examples (all of them if `n >= len`).
    pub fn take(&self, n: usize) -> ImageDataset {
        let indices: Vec<usize> = (0..n.min(self.len())).collect();
        self.gather(&indices)
    }

    fn gather(&self, indices: &[usize]) -> ImageDataset {
        let n = self.image_len();
        let mut images = Vec::with_capacity(indices.len() * n);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            images.extend_from_slice(&self.images[i * n..(i + 1) * n]);
            labels.push(self.labels[i]);
        }
        ImageDataset {
            split: self.split,
            channels: self.channels,
            height: self.height,
            width: self.width,
            images,
            labels,
            class_names: self.class_names.clone(),
        }
    }

    /// Number of examples of each class, indexed by label (length [`Self::num_classes`]).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0usize; self.num_classes()];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Statistics over all pixel bytes: mean/255, std/255, share of non-zero bytes, range.
    pub fn pixel_stats(&self) -> PixelStats {
        PixelStats::of(&self.images)
    }

    /// Mean intensity / 255 of each channel (R, G, B for CIFAR-10).
    pub fn channel_means(&self) -> Vec<f64> {
        let plane = self.height * self.width;
        let mut sums = vec![0u64; self.channels];
        for image in self.images.chunks_exact(self.image_len()) {
            for (c, sum) in sums.iter_mut().enumerate() {
                *sum += image[c * plane..(c + 1) * plane]
                    .iter()
                    .map(|&p| u64::from(p))
                    .sum::<u64>();
            }
        }
        let denom = (self.len() * plane) as f64 * 255.0;
        sums.into_iter()
            .map(|s| if denom > 0.0 { s as f64 / denom } else { 0.0 })
            .collect()
    }
}

impl Dataset<ImageItem> for ImageDataset {
    fn get(&self, index: usize) -> Option<ImageItem> {
        self.item(index)
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// The digit names `"0"`..`"9"` used as MNIST class names.
pub fn mnist_class_names() -> Vec<String> {
    (0..10).map(|d| d.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ImageDataset {
        ImageDataset::new(
            Split::Train,
            [1, 2, 2],
            vec![0, 0, 0, 0, 255, 255, 255, 255, 0, 255, 0, 255],
            vec![3, 7, 3],
            mnist_class_names(),
        )
        .unwrap()
    }

    #[test]
    fn filter_keeps_label_values() {
        let ds = tiny();
        let f = ds.filter_classes(&[3]);
        assert_eq!(f.labels(), &[3, 3]);
        assert_eq!(f.image(1).unwrap(), &[0, 255, 0, 255]);
        assert!(ds.filter_classes(&[9]).is_empty());
    }

    #[test]
    fn stats_and_counts() {
        let ds = tiny();
        let s = ds.pixel_stats();
        assert!((s.mean - 0.5).abs() < 1e-12);
        assert!((s.nonzero_fraction - 0.5).abs() < 1e-12);
        assert_eq!((s.min, s.max), (0, 255));
        assert_eq!(ds.class_counts()[3], 2);
        assert_eq!(ds.class_counts()[7], 1);
    }

    #[test]
    fn new_rejects_inconsistent_parts() {
        assert!(
            ImageDataset::new(
                Split::Test,
                [1, 2, 2],
                vec![0; 3],
                vec![0],
                mnist_class_names()
            )
            .is_err()
        );
        assert!(
            ImageDataset::new(
                Split::Test,
                [1, 2, 2],
                vec![0; 4],
                vec![10],
                mnist_class_names()
            )
            .is_err()
        );
        assert!(
            ImageDataset::new(Split::Test, [0, 2, 2], vec![], vec![], mnist_class_names()).is_err()
        );
    }

    #[test]
    fn dataset_trait_get() {
        let ds = tiny();
        assert_eq!(Dataset::len(&ds), 3);
        assert_eq!(ds.get(1).unwrap().label, 7);
        assert!(ds.get(3).is_none());
        assert!(ds.select(&[5]).is_err());
    }
}
