//! `data inspect`: counts per class and split, pixel statistics and a grid of samples of a
//! dataset folder, with a typed summary.

use std::path::{Path, PathBuf};

use fep_data::{DatasetKind, GridOptions, Inspection, Split};
use serde::{Deserialize, Serialize};

use crate::Outcome;
use crate::error::Result;
use crate::io::{prepare_out_dir, write_json};

/// Where and how a folder is inspected.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectOptions {
    /// Dataset folder (default: the bundled MNIST subset).
    pub dir: Option<PathBuf>,
    /// Result directory for `summary.json` and `samples.png`.
    pub out: PathBuf,
    /// Overwrite an existing result directory.
    pub force: bool,
    /// Number of sample images in the grid.
    pub samples: usize,
}

/// One split of a dataset folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitRecord {
    /// Which split.
    pub split: Split,
    /// Number of examples.
    pub count: usize,
    /// Examples per class, by label.
    pub class_counts: Vec<usize>,
    /// Mean intensity / 255.
    pub pixel_mean: f64,
    /// Standard deviation of intensity / 255.
    pub pixel_std: f64,
    /// Share of non-zero pixel bytes.
    pub nonzero_fraction: f64,
    /// The first labels in file order.
    pub first_labels: Vec<u8>,
}

/// `summary.json` of `data inspect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// The folder.
    pub dir: PathBuf,
    /// The detected dataset.
    pub kind: DatasetKind,
    /// Train then test.
    pub splits: Vec<SplitRecord>,
}

impl DataSummary {
    /// The summary of an inspection.
    pub fn of(inspection: &Inspection) -> Self {
        Self {
            dir: inspection.dir.clone(),
            kind: inspection.kind,
            splits: inspection
                .splits
                .iter()
                .map(|s| SplitRecord {
                    split: s.split,
                    count: s.len,
                    class_counts: s.class_counts.clone(),
                    pixel_mean: s.pixel_stats.mean,
                    pixel_std: s.pixel_stats.std,
                    nonzero_fraction: s.pixel_stats.nonzero_fraction,
                    first_labels: s.first_labels.clone(),
                })
                .collect(),
        }
    }
}

fn sample_grid(inspection: &Inspection, path: &Path, samples: usize) -> Result<()> {
    let train = fep_data::load_dataset(inspection.kind, &inspection.dir, Split::Train)?;
    let indices: Vec<usize> = (0..samples.min(train.len())).collect();
    fep_data::write_png_grid(path, &train, &indices, GridOptions::default())?;
    Ok(())
}

/// Inspects the folder of `options`; returns the inspection (for its table) and the
/// written summary and sample grid.
pub fn inspect(options: &InspectOptions) -> Result<(Inspection, Outcome<DataSummary>)> {
    let dir = match &options.dir {
        Some(d) => d.clone(),
        None => fep_data::bundled_mnist_dir()?,
    };
    let inspection = fep_data::inspect(&dir)?;
    let out = prepare_out_dir(&options.out, options.force)?;
    let grid = out.join("samples.png");
    sample_grid(&inspection, &grid, options.samples)?;
    let summary = DataSummary::of(&inspection);
    let summary_path = out.join("summary.json");
    write_json(&summary_path, &summary)?;
    Ok((
        inspection,
        Outcome {
            summary,
            files: vec![grid, summary_path],
        },
    ))
}
