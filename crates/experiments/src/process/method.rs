//! The methods of the transfer experiment as data: each has a name for tables, a stem for
//! its files, and (the baselines) a runner in [`super::baselines`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// A way to carry the source model to the target. Results, traces, wall times and resume
/// state are keyed by it; its serde name (`fine_tune`, ...) is the key in `summary.json`
/// and in the config's `[baselines] methods` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Ours: the iso-classification process along `p_t`, C held by the corrector.
    IsoClassification,
    /// Plain fine-tuning on the target at the source's (lambda, gamma).
    FineTune,
    /// The authors' feedback heuristic on gamma and lambda, as they wrote it.
    PaperHeuristic,
    /// Ablation: our data schedule t(s) and lambda path with gamma fixed (the effect of
    /// the schedule without holding C).
    ScheduleOnly,
    /// Ablation: fine-tuning on the target at the (lambda, gamma) where our path ended
    /// (the effect of gamma without the path).
    FineTuneAtEnd,
}

impl Method {
    /// Every baseline and ablation, in table order.
    pub const BASELINES: [Method; 4] = [
        Method::FineTune,
        Method::PaperHeuristic,
        Method::ScheduleOnly,
        Method::FineTuneAtEnd,
    ];

    /// The name in tables and chart legends.
    pub fn name(self) -> &'static str {
        match self {
            Method::IsoClassification => "iso-classification (ours)",
            Method::FineTune => "fine-tune",
            Method::PaperHeuristic => "paper heuristic",
            Method::ScheduleOnly => "schedule only (gamma fixed)",
            Method::FineTuneAtEnd => "fine-tune at our end point",
        }
    }

    /// The identifier in files and keys (`models/<stem>.ckpt`, the resume state).
    pub fn stem(self) -> &'static str {
        match self {
            Method::IsoClassification => "iso_classification",
            Method::FineTune => "fine_tune",
            Method::PaperHeuristic => "paper_heuristic",
            Method::ScheduleOnly => "schedule_only",
            Method::FineTuneAtEnd => "fine_tune_at_end",
        }
    }

    /// Whether its trace follows a data path in t (fine-tuning's t is the budget spent).
    pub fn follows_a_path(self) -> bool {
        !matches!(self, Method::FineTune | Method::FineTuneAtEnd)
    }

    /// The stem of its trace (`<stem>.jsonl`, `<stem>.csv`): ours is `trace`.
    pub fn trace_stem(self) -> &'static str {
        match self {
            Method::IsoClassification => "trace",
            other => other.stem(),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serde_name_is_the_stem_and_names_are_distinct() {
        let all = [Method::IsoClassification]
            .into_iter()
            .chain(Method::BASELINES)
            .collect::<Vec<_>>();
        for m in &all {
            let json = serde_json::to_string(m).expect("serialises");
            assert_eq!(json, format!("\"{}\"", m.stem()));
            let back: Method = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, *m);
        }
        let mut names: Vec<_> = all.iter().map(|m| m.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        let mut stems: Vec<_> = all.iter().map(|m| m.trace_stem()).collect();
        stems.sort();
        stems.dedup();
        assert_eq!(stems.len(), all.len());
    }
}
