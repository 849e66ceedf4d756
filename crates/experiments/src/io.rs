//! Config files in, result files out: typed TOML configs, result directories, and JSON,
//! JSON-lines and CSV written atomically (temp file + rename) from the same serde types,
//! so nothing already written is lost and every format carries the same columns.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ExperimentError, Result};

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ExperimentError {
    let path = path.to_path_buf();
    move |source| ExperimentError::Io {
        action,
        path,
        source,
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    fep_data::atomic_write(path, bytes)?;
    Ok(())
}

/// Reads a TOML config into `T`, naming the file in every error.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Config {
        path: path.to_path_buf(),
        reason: format!("cannot read it: {e}"),
    })?;
    toml::from_str(&text).map_err(|e| ExperimentError::Config {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Writes a config (the resolved settings of a run) as TOML, atomically.
pub fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = toml::to_string_pretty(value).map_err(|e| ExperimentError::Format {
        path: path.to_path_buf(),
        reason: format!("cannot serialise the config: {e}"),
    })?;
    write_atomically(path, text.as_bytes())
}

/// Prepares a result directory: refuses to reuse one that holds files unless `force`.
pub fn prepare_out_dir(dir: &Path, force: bool) -> Result<PathBuf> {
    if dir.exists() {
        let non_empty = std::fs::read_dir(dir)
            .map_err(io_error("read", dir))?
            .next()
            .is_some();
        if non_empty && !force {
            return Err(ExperimentError::Invalid(format!(
                "result directory {} already exists and is not empty; pass --force to overwrite its files or choose another --out",
                dir.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))?;
    Ok(dir.to_path_buf())
}

/// Creates a folder and its parents.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_error("create", dir))
}

fn to_json_text<T: Serialize>(path: &Path, value: &T, pretty: bool) -> Result<String> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    text.map_err(|e| ExperimentError::Format {
        path: path.to_path_buf(),
        reason: format!("cannot serialise: {e}"),
    })
}

/// Writes a value as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = to_json_text(path, value, true)?;
    text.push('\n');
    write_atomically(path, text.as_bytes())
}

/// Reads a JSON file into `T`, naming the file in every error.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_error("read", path))?;
    serde_json::from_str(&text).map_err(|e| ExperimentError::Format {
        path: path.to_path_buf(),
        reason: format!("not the expected JSON: {e}"),
    })
}

/// Writes one JSON object per line, atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&to_json_text(path, row, false)?);
        text.push('\n');
    }
    write_atomically(path, text.as_bytes())
}

/// Reads a JSON-lines file (blank lines skipped), naming the file and line in every error.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(io_error("read", path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| ExperimentError::Format {
                path: path.to_path_buf(),
                reason: format!("line {} is not a record: {e}", n + 1),
            })
        })
        .collect()
}

/// Flattens a JSON object into `(column, cell)` pairs: nested objects become
/// `parent_child` columns, booleans `true`/`false`, null an empty cell.
fn flatten_row(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) -> Result<(), String> {
    let name = |key: &str| {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}_{key}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten_row(&name(k), v, out)?;
            }
        }
        Value::Array(_) => return Err(format!("column `{prefix}` holds a list")),
        Value::Null => out.push((prefix.to_string(), String::new())),
        Value::Bool(b) => out.push((prefix.to_string(), b.to_string())),
        Value::Number(n) => out.push((prefix.to_string(), n.to_string())),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
    }
    Ok(())
}

/// Writes rows as CSV through the `csv` crate, atomically: the header is the (flattened)
/// field names of the serde type, in declaration order, the same names as the JSON-lines
/// file of the same rows. Every row must have the same columns.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let format = |reason: String| ExperimentError::Format {
        path: path.to_path_buf(),
        reason,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Option<Vec<String>> = None;
    for (n, row) in rows.iter().enumerate() {
        let value = serde_json::to_value(row).map_err(|e| format(format!("row {n}: {e}")))?;
        let mut cells = Vec::new();
        flatten_row("", &value, &mut cells).map_err(|e| format(format!("row {n}: {e}")))?;
        let names: Vec<String> = cells.iter().map(|(k, _)| k.clone()).collect();
        match &header {
            None => {
                writer
                    .write_record(&names)
                    .map_err(|e| format(e.to_string()))?;
                header = Some(names);
            }
            Some(h) if *h != names => {
                return Err(format(format!(
                    "row {n} has columns {names:?}, the first row {h:?}"
                )));
            }
            Some(_) => {}
        }
        writer
            .write_record(cells.iter().map(|(_, v)| v))
            .map_err(|e| format(e.to_string()))?;
    }
    let bytes = writer.into_inner().map_err(|e| format(e.to_string()))?;
    write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Inner {
        rate: f64,
        distortion: f64,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Row {
        t: f64,
        #[serde(flatten)]
        f: Inner,
        test: Inner,
        converged: bool,
    }

    #[test]
    fn csv_and_jsonl_share_columns_and_round_trip() {
        let dir = tempfile::tempdir().expect("temp dir");
        let rows = vec![
            Row {
                t: 0.0,
                f: Inner {
                    rate: 1.5,
                    distortion: 2.0,
                },
                test: Inner {
                    rate: 3.0,
                    distortion: 4.25,
                },
                converged: true,
            },
            Row {
                t: 0.5,
                f: Inner {
                    rate: -1.0,
                    distortion: 0.0,
                },
                test: Inner {
                    rate: 0.0,
                    distortion: 1e-9,
                },
                converged: false,
            },
        ];
        let csv_path = dir.path().join("rows.csv");
        write_csv(&csv_path, &rows).expect("csv");
        let text = std::fs::read_to_string(&csv_path).expect("read");
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("t,rate,distortion,test_rate,test_distortion,converged")
        );
        assert_eq!(lines.next(), Some("0.0,1.5,2.0,3.0,4.25,true"));
        assert_eq!(lines.next(), Some("0.5,-1.0,0.0,0.0,1e-9,false"));
        let jsonl = dir.path().join("rows.jsonl");
        write_jsonl(&jsonl, &rows).expect("jsonl");
        let back: Vec<Row> = read_jsonl(&jsonl).expect("read back");
        assert_eq!(back, rows);
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bad = dir.path().join("bad.jsonl");
        std::fs::write(&bad, "{\"t\": 1}\nnot json\n").expect("write");
        let err = read_jsonl::<serde_json::Value>(&bad).expect_err("line 2 is bad");
        assert!(err.to_string().contains("bad.jsonl") && err.to_string().contains("line 2"));
        let err = read_toml::<Row>(&dir.path().join("missing.toml")).expect_err("missing");
        assert!(err.to_string().contains("missing.toml"), "{err}");
        std::fs::write(dir.path().join("x"), "x").expect("write");
        let err = prepare_out_dir(dir.path(), false).expect_err("not empty");
        assert!(err.to_string().contains("--force"));
        assert!(prepare_out_dir(dir.path(), true).is_ok());
    }
}
