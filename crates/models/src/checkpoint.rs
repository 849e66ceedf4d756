//! Checkpoints: model, Adam state, run position and settings in one file, written
//! atomically (temporary file, then rename) so that a crash never leaves a torn file.
//!
//! Layout: the magic `FEPCKPT2`, then three sections, each its length (little-endian u64),
//! its bytes and their SHA-256: a JSON header, the model record and the optimiser record
//! (both Burn named MessagePack at full precision), then the magic `FEPEND01`. A section
//! whose bytes do not match their checksum is refused on load with the file and the
//! section named. Files of the first layout (`FEPCKPT1`, no checksums) still load. The
//! random state is the position itself (noise and shuffles are keyed by seed and
//! step/epoch).

use std::path::Path;

use burn::module::Module;
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::model::FepModel;
use crate::train::{TrainConfig, TrainState, Trainer};

const MAGIC: &[u8; 8] = b"FEPCKPT2";
/// The first layout, without checksums (read only).
const MAGIC_V1: &[u8; 8] = b"FEPCKPT1";
/// Bytes of a section's SHA-256.
const DIGEST: usize = 32;

fn sha256(bytes: &[u8]) -> [u8; DIGEST] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
const END: &[u8; 8] = b"FEPEND01";

/// The JSON header of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointHeader {
    /// Format version (1).
    pub version: u32,
    /// Model shapes.
    pub model: ModelConfig,
    /// Run settings (includes the seed).
    pub train: TrainConfig,
    /// Position of the run.
    pub state: TrainState,
    /// Free-form metadata of the writer (data, device, metrics).
    #[serde(default)]
    pub extra: serde_json::Value,
}

fn recorder() -> NamedMpkBytesRecorder<FullPrecisionSettings> {
    NamedMpkBytesRecorder::default()
}

/// Writes the trainer's model, optimiser and position to `path` atomically.
pub fn save<B: AutodiffBackend>(
    trainer: &Trainer<B>,
    path: &Path,
    extra: serde_json::Value,
) -> Result<()> {
    let err = |reason: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let header = CheckpointHeader {
        version: 1,
        model: trainer.model().config().clone(),
        train: trainer.config.clone(),
        state: trainer.state,
        extra,
    };
    let header = serde_json::to_vec(&header).map_err(|e| err(e.to_string()))?;
    let model: Vec<u8> =
        Recorder::<B>::record(&recorder(), trainer.model().clone().into_record(), ())
            .map_err(|e| err(format!("encoding the model: {e}")))?;
    let optim: Vec<u8> = Recorder::<B>::record(&recorder(), trainer.optimizer.to_record(), ())
        .map_err(|e| err(format!("encoding the optimiser: {e}")))?;
    let mut bytes = Vec::with_capacity(32 + header.len() + model.len() + optim.len());
    bytes.extend_from_slice(MAGIC);
    for section in [&header, &model, &optim] {
        bytes.extend_from_slice(&(section.len() as u64).to_le_bytes());
        bytes.extend_from_slice(section);
        bytes.extend_from_slice(&sha256(section));
    }
    bytes.extend_from_slice(END);
    fep_data::atomic_write(path, &bytes)?;
    Ok(())
}

struct Sections {
    header: CheckpointHeader,
    model: Vec<u8>,
    optim: Vec<u8>,
}

fn read_sections(path: &Path) -> Result<Sections> {
    let err = |reason: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            err("file not found".into())
        } else {
            err(e.to_string())
        }
    })?;
    let checksums = match bytes.get(..8) {
        Some(m) if m == MAGIC => true,
        Some(m) if m == MAGIC_V1 => false,
        _ => return Err(err("not a fep checkpoint (bad magic bytes)".into())),
    };
    if bytes.len() < 16 {
        return Err(err("truncated after the magic bytes".into()));
    }
    let mut pos = 8;
    let mut sections = Vec::new();
    for name in ["header", "model", "optimiser"] {
        if pos + 8 > bytes.len() {
            return Err(err(format!(
                "truncated before the {name} section ({} bytes)",
                bytes.len()
            )));
        }
        let len = u64::from_le_bytes(bytes[pos..pos + 8].try_into().expect("8 bytes")) as usize;
        pos += 8;
        if len > bytes.len() - pos {
            return Err(err(format!(
                "truncated: the {name} section needs {len} bytes, {} remain",
                bytes.len() - pos
            )));
        }
        let section = &bytes[pos..pos + len];
        pos += len;
        if checksums {
            let Some(stored) = bytes.get(pos..pos + DIGEST) else {
                return Err(err(format!(
                    "truncated in the checksum of the {name} section"
                )));
            };
            if stored != sha256(section) {
                return Err(err(format!(
                    "the {name} section does not match its checksum: the file is corrupt \
                     (overwritten or damaged bytes); restore it or train again"
                )));
            }
            pos += DIGEST;
        }
        sections.push(section.to_vec());
    }
    if bytes.len() != pos + 8 || &bytes[pos..] != END {
        return Err(err(
            "truncated or trailing bytes after the last section".into()
        ));
    }
    let optim = sections.pop().expect("three sections");
    let model = sections.pop().expect("three sections");
    let header: CheckpointHeader = serde_json::from_slice(&sections[0])
        .map_err(|e| err(format!("header is not valid JSON: {e}")))?;
    if header.version != 1 {
        return Err(err(format!(
            "unsupported checkpoint version {}",
            header.version
        )));
    }
    Ok(Sections {
        header,
        model,
        optim,
    })
}

/// The header of a checkpoint without loading the tensors.
pub fn read_header(path: &Path) -> Result<CheckpointHeader> {
    Ok(read_sections(path)?.header)
}

/// A trainer restored from `path`: model, Adam state and position. `train` overrides
/// the stored run settings when given (for example more epochs).
pub fn load<B: AutodiffBackend>(
    path: &Path,
    train: Option<TrainConfig>,
    device: &B::Device,
) -> Result<Trainer<B>> {
    let err = |reason: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let s = read_sections(path)?;
    let model = FepModel::<B>::new(&s.header.model, device)?;
    let record = Recorder::<B>::load(&recorder(), s.model, device).map_err(|e| {
        err(format!(
            "model record does not fit a {} model: {e}",
            s.header.model.architecture.name()
        ))
    })?;
    let model = model.load_record(record);
    let config = train.unwrap_or(s.header.train);
    let mut trainer = Trainer::new(model, config, device.clone())?;
    let optim_record = Recorder::<B>::load(&recorder(), s.optim, device)
        .map_err(|e| err(format!("optimiser record: {e}")))?;
    trainer.optimizer = trainer.optimizer.load_record(optim_record);
    trainer.state = s.header.state;
    Ok(trainer)
}

/// Only the model of a checkpoint (for processes that start from a trained source).
pub fn load_model<B: AutodiffBackend>(
    path: &Path,
    device: &B::Device,
) -> Result<(FepModel<B>, CheckpointHeader)> {
    let err = |reason: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason,
    };
    let s = read_sections(path)?;
    let model = FepModel::<B>::new(&s.header.model, device)?;
    let record = Recorder::<B>::load(&recorder(), s.model, device)
        .map_err(|e| err(format!("model record does not fit: {e}")))?;
    Ok((model.load_record(record), s.header))
}
