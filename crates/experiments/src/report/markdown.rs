//! Markdown helpers of the report: percentages, labels, and figures copied beside it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{ExperimentError, Result};

pub(super) fn copy_figure(src: &Path, figures: &Path, name: &str) -> Result<Option<String>> {
    if !src.is_file() {
        return Ok(None);
    }
    let bytes = std::fs::read(src).map_err(|source| ExperimentError::Io {
        action: "read",
        path: src.to_path_buf(),
        source,
    })?;
    fep_data::atomic_write(figures.join(name), &bytes)?;
    Ok(Some(format!("figures/{name}")))
}

pub(super) fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

pub(super) fn opt_pct(x: Option<f64>) -> String {
    x.map(pct).unwrap_or_else(|| "-".into())
}

pub(super) fn label(device: &str, data: (&Path, Option<u64>), seed: u64, wall: f64) -> String {
    let dealt = data.1.map_or(String::new(), |k| {
        format!(
            " (each domain's official training and test images pooled and dealt again, seed {k})"
        )
    });
    format!(
        "backend `{device}`, data `{}`{dealt}, seed {seed}, wall time {wall:.0} s",
        data.0.display()
    )
}

pub(super) struct Figures<'a> {
    pub(super) runs: &'a Path,
    pub(super) dir: PathBuf,
}

impl Figures<'_> {
    /// Copies `<runs>/<experiment>/<file>` as `figures/<name>` and links it with `caption`.
    pub(super) fn embed(
        &self,
        md: &mut String,
        experiment: &str,
        file: &str,
        name: &str,
        caption: &str,
    ) -> Result<()> {
        let src = self.runs.join(experiment).join(file);
        if let Some(rel) = copy_figure(&src, &self.dir, name)? {
            writeln!(md, "![{caption}]({rel})\n").map_err(fmt_error)?;
        }
        Ok(())
    }
}

pub(super) fn fmt_error(e: std::fmt::Error) -> ExperimentError {
    ExperimentError::Invalid(format!("formatting the report: {e}"))
}
