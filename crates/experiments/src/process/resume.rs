//! What a process experiment keeps in `<out>/resume/` so that a run killed at any moment
//! (`kill -9`, a lost node) continues with `--resume` and ends with the same results as an
//! uninterrupted run:
//!
//! * `config.json`: the resolved config the run started with; a resume with another
//!   config is refused;
//! * `<path>.ckpt`: after every accepted step of a path (the process, the naive path, the
//!   schedule-only ablation), a checkpoint of the system's trainer (model, Adam state,
//!   step count) whose header carries the process's snapshot ([`ProcessSnapshot`]), the
//!   system's state ([`SystemState`]) and the trace rows so far;
//! * `<method>.done.json`: the result and trace of every finished baseline (a baseline
//!   killed midway runs again from its start, which is where it begins anyway: the
//!   source checkpoint).
//!
//! Every file is written atomically (temporary file, then rename), so the folder always
//! holds a consistent last step. The folder is removed when the run has written its
//! summary.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use fep_models::system::{DeepSystem, SystemState};
use fep_thermo::ProcessSnapshot;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::rows::{TestStart, TraceRow};
use crate::error::{ExperimentError, Result, invalid};
use crate::io::{create_dir, read_json, write_json};

/// The resume folder of one run.
#[derive(Debug, Clone)]
pub struct ResumeStore {
    dir: PathBuf,
}

/// A path's state after its last accepted step, as read back from `<path>.ckpt`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PathProgress {
    /// The continuation's state.
    pub snapshot: ProcessSnapshot,
    /// The system's state beyond its trainer.
    pub system: SystemState,
    /// The trace rows so far.
    pub rows: Vec<TraceRow>,
    /// The start on the test splits (the first row's), which later rows are paired with.
    pub test_start: Option<TestStart>,
    /// The probe's relative standard error of C0 (paths that hold C).
    pub probe_relative_se: Option<f64>,
    /// C of every source probe example at the start, with which the controller's drift
    /// is paired (paths that hold C).
    #[serde(default)]
    pub probe_start: Option<TestStart>,
}

impl ResumeStore {
    /// The store of the run in `out`. Without `resume` any earlier state is cleared and
    /// `config` recorded; with `resume` the folder must exist and hold the same config.
    pub fn open<C: Serialize>(out: &Path, config: &C, resume: bool) -> Result<Self> {
        let dir = out.join("resume");
        let recorded = dir.join("config.json");
        let current = serde_json::to_value(config)
            .map_err(|e| invalid(format!("cannot serialise the config: {e}")))?;
        if resume {
            if !recorded.is_file() {
                let finished = out.join("summary.json").is_file();
                return Err(invalid(format!(
                    "nothing to resume in {}: {}; run without --resume (and with --force to overwrite)",
                    out.display(),
                    if finished {
                        "the run has finished (summary.json is there)"
                    } else {
                        "no resume/config.json (the run never started here)"
                    }
                )));
            }
            let before: serde_json::Value = read_json(&recorded)?;
            if before != current {
                return Err(invalid(format!(
                    "{} was started with another config than this one (compare {} with the \
                     config given); resume with the same config, or start again with --force",
                    out.display(),
                    recorded.display()
                )));
            }
        } else {
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|source| ExperimentError::Io {
                    action: "clear the earlier run's resume state in",
                    path: dir.clone(),
                    source,
                })?;
            }
            create_dir(&dir)?;
            write_json(&recorded, &current)?;
        }
        Ok(Self { dir })
    }

    fn checkpoint(&self, path: &str) -> PathBuf {
        self.dir.join(format!("{path}.ckpt"))
    }

    fn done(&self, method: &str) -> PathBuf {
        self.dir.join(format!("{method}.done.json"))
    }

    /// Saves the system and the path's progress after an accepted step.
    pub(crate) fn save_step<B: AutodiffBackend>(
        &self,
        path: &str,
        system: &DeepSystem<B>,
        progress: &PathProgress,
    ) -> Result<()> {
        let extra = serde_json::to_value(progress)
            .map_err(|e| invalid(format!("cannot serialise the progress of {path}: {e}")))?;
        fep_models::checkpoint::save(
            system.trainer(),
            &self.checkpoint(path),
            serde_json::json!({ "resume": extra }),
        )?;
        Ok(())
    }

    /// Restores `system` to the path's last saved step and returns its progress, or
    /// `None` (system untouched) when the path has not saved a step.
    pub(crate) fn load_step<B: AutodiffBackend>(
        &self,
        path: &str,
        system: &mut DeepSystem<B>,
    ) -> Result<Option<PathProgress>> {
        let file = self.checkpoint(path);
        if !file.is_file() {
            return Ok(None);
        }
        let header = fep_models::checkpoint::read_header(&file)?;
        let progress: PathProgress = serde_json::from_value(header.extra["resume"].clone())
            .map_err(|e| ExperimentError::Format {
                path: file.clone(),
                reason: format!("not the resume state of a process: {e}"),
            })?;
        let config = system.trainer().config.clone();
        let device = system.trainer().device.clone();
        let trainer = fep_models::checkpoint::load::<B>(&file, Some(config), &device)?;
        system.restore(trainer, progress.system)?;
        tracing::debug!(
            "{path}: restored after step {} from {}",
            progress.rows.len().saturating_sub(1),
            file.display()
        );
        Ok(Some(progress))
    }

    /// Records a finished method.
    pub(crate) fn save_done<T: Serialize>(&self, method: &str, value: &T) -> Result<()> {
        write_json(&self.done(method), value)
    }

    /// A finished method's record, if it finished before.
    pub(crate) fn load_done<T: DeserializeOwned>(&self, method: &str) -> Result<Option<T>> {
        let file = self.done(method);
        if file.is_file() {
            tracing::info!("{method}: finished before the interruption, not run again");
            Ok(Some(read_json(&file)?))
        } else {
            Ok(None)
        }
    }

    /// Removes the folder once the run has written its summary.
    pub fn finish(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).map_err(|source| ExperimentError::Io {
            action: "remove the finished run's resume state",
            path: self.dir.clone(),
            source,
        })
    }
}
