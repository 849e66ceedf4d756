//! Where the models of a run go: atomically written fep checkpoints that record the
//! method, the classes, the data position and the multipliers.

use std::path::PathBuf;

use burn::tensor::backend::AutodiffBackend;
use fep_data::DataConfig;
use fep_models::system::DeepSystem;
use fep_thermo::Multipliers;

use crate::error::Result;

/// Where and how the models of a run are saved.
#[derive(Debug, Clone)]
pub struct ModelSaver {
    /// The output folder (checkpoints are saved under it, paths relative to it).
    pub out: PathBuf,
    /// The data of the run (its classes go into the checkpoint).
    pub data: DataConfig,
    /// Save the path's model after every step (`--save-steps`).
    pub every_step: bool,
}

impl ModelSaver {
    /// Saves the system's model to `<out>/<name>` (atomically), recording the method,
    /// the classes, the data position and the multipliers.
    pub fn save<B: AutodiffBackend>(
        &self,
        system: &DeepSystem<B>,
        name: &str,
        method: &str,
        t: f64,
        m: Multipliers,
    ) -> Result<PathBuf> {
        let path = self.out.join(name);
        if let Some(dir) = path.parent() {
            crate::io::create_dir(dir)?;
        }
        let extra = serde_json::json!({
            "method": method,
            "source_classes": self.data.source_classes,
            "target_classes": self.data.target_classes,
            "data_position": t,
            "lambda": m.lambda,
            "gamma": m.gamma,
        });
        fep_models::checkpoint::save(system.trainer(), &path, extra)?;
        Ok(path)
    }
}
