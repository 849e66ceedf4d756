//! Versioned result files. Every `summary.json` of the process experiments and the
//! surface carries a `format` field; a file of an older format is brought to the current
//! one by one explicit upgrade step per version, on the JSON value, before it is read into
//! its typed summary. The typed summaries themselves hold no fallbacks for older files.
//!
//! | format | what changed |
//! |---|---|
//! | 1 (no `format` field) | the first layout: held-constraint fields added over time (`c0_test`, `controller_max_relative_drift`, `test_samples`), `[baselines]` as one boolean per method, wall time of ours under `process`, the surface's `equilibrium` optional |
//! | 2 | `format` field; `[baselines] methods = [...]`; wall times keyed by method (`iso_classification` for ours); every held-constraint field present (`test_samples = 0`: not measured on the test splits); the largest drift's standard error, paired with the start (`max_relative_drift_se`, 0 in upgraded files), and the test examples it is measured on (`test_examples`, source and target); the probe's relative standard error of C0 (`probe_relative_se`, null in upgraded files) |

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::error::{ExperimentError, Result};
use crate::io::read_json;

/// The format this version of fep writes.
pub const SUMMARY_FORMAT: u32 = 2;

/// A summary with a versioned layout.
pub trait Versioned: DeserializeOwned {
    /// Brings `value`, of format `from`, to format `from + 1`; an error names what cannot
    /// be upgraded.
    fn upgrade_step(value: &mut Map<String, Value>, from: u32) -> std::result::Result<(), String>;
}

/// Reads the summary at `path`, upgraded to [`SUMMARY_FORMAT`]; an error names the file
/// (a newer format than this fep writes, a step that cannot be taken, a malformed file).
pub fn read_summary<T: Versioned>(path: &Path) -> Result<T> {
    let value: Value = read_json(path)?;
    upgrade::<T>(value)
        .and_then(|v| serde_json::from_value(v).map_err(|e| format!("not the expected JSON: {e}")))
        .map_err(|reason| ExperimentError::Format {
            path: path.to_path_buf(),
            reason,
        })
}

/// `value` brought to [`SUMMARY_FORMAT`].
pub fn upgrade<T: Versioned>(value: Value) -> std::result::Result<Value, String> {
    let Value::Object(mut map) = value else {
        return Err("not a JSON object".into());
    };
    let mut format = match map.get("format") {
        None => 1,
        Some(v) => v
            .as_u64()
            .and_then(|f| u32::try_from(f).ok())
            .ok_or_else(|| format!("`format` is {v}, not a version number"))?,
    };
    if format > SUMMARY_FORMAT {
        return Err(format!(
            "format {format} was written by a newer fep (this one reads up to {SUMMARY_FORMAT})"
        ));
    }
    while format < SUMMARY_FORMAT {
        T::upgrade_step(&mut map, format)?;
        format += 1;
        map.insert("format".into(), json!(format));
    }
    Ok(Value::Object(map))
}

/// Format 1 -> 2 of the fields every process summary shares: the held constraint's
/// fields that format 1 could lack (0: not measured), and `[baselines]` booleans as a
/// methods list.
pub(crate) fn process_summary_1_to_2(map: &mut Map<String, Value>) -> Result2 {
    // Format 2 reports the drift's standard error and the test examples (not in format 1).
    map.entry("max_relative_drift_se").or_insert(json!(0));
    map.entry("test_examples").or_insert(json!([0, 0]));
    map.entry("probe_relative_se").or_insert(Value::Null);
    if !map.contains_key("test_samples") {
        // Not measured on the test splits: `max_relative_drift` was the controller's.
        map.insert("test_samples".into(), json!(0));
        map.insert("c0_test".into(), json!(0));
        drift_was_the_controllers(map);
        for key in ["final", "naive"] {
            if let Some(Value::Object(m)) = map.get_mut(key) {
                drift_was_the_controllers(m);
            }
        }
        if let Some(Value::Object(baselines)) = map.get_mut("baselines") {
            for m in baselines.values_mut().filter_map(Value::as_object_mut) {
                drift_was_the_controllers(m);
            }
        }
    }
    if let Some(Value::Object(baselines)) =
        map.get_mut("config").and_then(|c| c.get_mut("baselines"))
    {
        let mut methods = Vec::new();
        for stem in [
            "fine_tune",
            "paper_heuristic",
            "schedule_only",
            "fine_tune_at_end",
        ] {
            // Format 1 ran a baseline unless its flag was false.
            match baselines.remove(stem) {
                Some(Value::Bool(false)) => {}
                None | Some(Value::Bool(true)) => methods.push(json!(stem)),
                Some(other) => return Err(format!("[baselines] {stem} is {other}, not a flag")),
            }
        }
        baselines.insert("methods".into(), Value::Array(methods));
    }
    Ok(())
}

/// A format-1 record not measured on the test splits: its `max_relative_drift` was the
/// controller's own.
fn drift_was_the_controllers(map: &mut Map<String, Value>) {
    if !map.contains_key("controller_max_relative_drift")
        && let Some(d) = map.get("max_relative_drift").cloned()
    {
        map.insert("controller_max_relative_drift".into(), d);
    }
}

/// The result of one upgrade step.
pub(crate) type Result2 = std::result::Result<(), String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Doc {
        format: u32,
        value: f64,
    }

    impl Versioned for Doc {
        fn upgrade_step(map: &mut Map<String, Value>, from: u32) -> Result2 {
            assert_eq!(from, 1);
            let old = map.remove("old").ok_or("no `old` field")?;
            map.insert("value".into(), old);
            Ok(())
        }
    }

    #[test]
    fn each_format_is_upgraded_once_and_newer_ones_are_refused() {
        let doc: Doc =
            serde_json::from_value(upgrade::<Doc>(json!({"old": 2.5})).unwrap()).unwrap();
        assert_eq!((doc.format, doc.value), (SUMMARY_FORMAT, 2.5));
        let current = json!({"format": SUMMARY_FORMAT, "value": 1.0});
        assert_eq!(upgrade::<Doc>(current.clone()).unwrap(), current);
        let newer = upgrade::<Doc>(json!({"format": SUMMARY_FORMAT + 1, "value": 1.0}));
        assert!(newer.unwrap_err().contains("newer fep"));
        assert!(
            upgrade::<Doc>(json!({"value": 1.0}))
                .unwrap_err()
                .contains("`old`")
        );
        assert!(upgrade::<Doc>(json!({"format": "two"})).is_err());
        assert!(upgrade::<Doc>(json!([1])).is_err());
    }

    #[test]
    fn format_1_baseline_flags_become_a_methods_list() {
        let mut map = json!({"config": {"baselines": {"fine_tune": true, "paper_heuristic": false, "gamma_increment": 0.1}}})
            .as_object()
            .cloned()
            .unwrap();
        process_summary_1_to_2(&mut map).unwrap();
        assert_eq!(
            map["config"]["baselines"],
            json!({"methods": ["fine_tune", "schedule_only", "fine_tune_at_end"], "gamma_increment": 0.1})
        );
        assert_eq!(map["test_samples"], json!(0));
    }
}
