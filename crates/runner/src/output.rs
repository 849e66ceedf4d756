//! Result directories and atomic files: nothing already written is lost.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

/// Prepare a result directory: refuse to reuse one that holds files unless `force`.
pub fn prepare_out_dir(dir: &Path, force: bool) -> Result<PathBuf> {
    if dir.exists() {
        let non_empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read result directory {}", dir.display()))?
            .next()
            .is_some();
        if non_empty && !force {
            bail!(
                "result directory {} already exists and is not empty; pass --force to overwrite its files or choose another --out",
                dir.display()
            );
        }
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create result directory {}", dir.display()))?;
    Ok(dir.to_path_buf())
}

/// Write a value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    fep_data::atomic_write(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Write one JSON object per line, atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&serde_json::to_string(row)?);
        text.push('\n');
    }
    fep_data::atomic_write(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Write rows as CSV with the given header, atomically.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<f64>]) -> Result<()> {
    let mut text = header.join(",");
    text.push('\n');
    for row in rows {
        let line: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    fep_data::atomic_write(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
