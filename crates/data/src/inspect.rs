//! Summaries of a dataset folder: per split, the class counts and pixel statistics.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cifar::Cifar10;
use crate::dataset::{DatasetKind, ImageDataset, PixelStats, Split};
use crate::error::DataError;
use crate::mnist::Mnist;

/// Loads `split` of a `kind` dataset from `dir`.
pub fn load_dataset(
    kind: DatasetKind,
    dir: impl AsRef<Path>,
    split: Split,
) -> Result<ImageDataset, DataError> {
    match kind {
        DatasetKind::Mnist => Mnist::load_dir(dir, split),
        DatasetKind::Cifar10 => Cifar10::load_dir(dir, split),
    }
}

/// Tells from the files present whether `dir` holds MNIST or CIFAR-10.
pub fn detect_kind(dir: impl AsRef<Path>) -> Result<DatasetKind, DataError> {
    let dir = dir.as_ref();
    if Mnist::is_mnist_dir(dir) {
        Ok(DatasetKind::Mnist)
    } else if Cifar10::is_cifar_dir(dir) {
        Ok(DatasetKind::Cifar10)
    } else if !dir.is_dir() {
        Err(DataError::Missing {
            path: dir.to_path_buf(),
            also_tried: Vec::new(),
        })
    } else {
        Err(DataError::UnknownLayout {
            dir: dir.to_path_buf(),
        })
    }
}

/// Summary of one split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitSummary {
    /// Which split.
    pub split: Split,
    /// Number of examples.
    pub len: usize,
    /// Examples per class, indexed by label.
    pub class_counts: Vec<usize>,
    /// Statistics over all pixel bytes.
    pub pixel_stats: PixelStats,
    /// Mean / 255 per channel.
    pub channel_means: Vec<f64>,
    /// The first labels (up to 10), in file order.
    pub first_labels: Vec<u8>,
}

impl SplitSummary {
    /// Summarises a loaded dataset.
    pub fn of(dataset: &ImageDataset) -> Self {
        Self {
            split: dataset.split(),
            len: dataset.len(),
            class_counts: dataset.class_counts(),
            pixel_stats: dataset.pixel_stats(),
            channel_means: dataset.channel_means(),
            first_labels: dataset.labels().iter().take(10).copied().collect(),
        }
    }
}

/// Summary of a dataset folder, both splits.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    /// The folder.
    pub dir: PathBuf,
    /// The detected dataset.
    pub kind: DatasetKind,
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Class names, by label.
    pub class_names: Vec<String>,
    /// Train then test.
    pub splits: Vec<SplitSummary>,
}

/// Loads both splits of the dataset in `dir` (kind detected from the files) and summarises
/// them: counts per class and split, mean intensity / 255 and share of non-zero pixels.
pub fn inspect(dir: impl AsRef<Path>) -> Result<Inspection, DataError> {
    let dir = dir.as_ref();
    let kind = detect_kind(dir)?;
    let mut splits = Vec::new();
    let mut shape = [0; 3];
    let mut class_names = Vec::new();
    for split in Split::ALL {
        let ds = load_dataset(kind, dir, split)?;
        shape = ds.shape();
        class_names = ds.class_names().to_vec();
        splits.push(SplitSummary::of(&ds));
    }
    Ok(Inspection {
        dir: dir.to_path_buf(),
        kind,
        shape,
        class_names,
        splits,
    })
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [c, h, w] = self.shape;
        writeln!(
            f,
            "{} in {} ({c}x{h}x{w} per image)",
            self.kind,
            self.dir.display()
        )?;
        for s in &self.splits {
            writeln!(
                f,
                "  {:<5} {:>6} examples, mean/255 {:.4}, std/255 {:.4}, non-zero {:.2} %",
                s.split.name(),
                s.len,
                s.pixel_stats.mean,
                s.pixel_stats.std,
                100.0 * s.pixel_stats.nonzero_fraction
            )?;
            if s.channel_means.len() > 1 {
                let means: Vec<String> =
                    s.channel_means.iter().map(|m| format!("{m:.4}")).collect();
                writeln!(f, "        channel means/255 {}", means.join(" "))?;
            }
            let first: Vec<String> = s.first_labels.iter().map(|l| l.to_string()).collect();
            writeln!(f, "        first labels {}", first.join(" "))?;
        }
        writeln!(f, "  per class:")?;
        for (label, name) in self.class_names.iter().enumerate() {
            write!(f, "    {label} {name:<12}")?;
            for s in &self.splits {
                let n = s.class_counts.get(label).copied().unwrap_or(0);
                write!(f, " {}={n:<6}", s.split.name())?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
