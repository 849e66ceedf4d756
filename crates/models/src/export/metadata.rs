//! The model configuration carried in a safetensors file's `__metadata__` (a string ->
//! string map; structured values are JSON strings).
//!
//! | key | value |
//! |---|---|
//! | `format` | [`FORMAT`] |
//! | `fep_version` | version of the fep that wrote the file |
//! | `model` | the whole `ModelConfig` as JSON (what import builds) |
//! | `architecture` | `mnist-small`, `mnist-paper` or `cifar-resnet` |
//! | `image_shape` | `[channels, height, width]` as JSON |
//! | `latent_dim`, `num_classes` | integers |
//! | `decoder` | JSON, e.g. `{"kind":"gaussian","sigma":0.7071067811865476}` |
//! | `decoder_kind`, `decoder_sigma` | `bernoulli` / `gaussian` / `discretized-logistic`; sigma for a Gaussian decoder |
//! | `prior`, `classifier` | JSON, e.g. `{"kind":"standard-normal"}`, `{"kind":"mlp","hidden":64}` |
//! | `lambda`, `gamma` | the multipliers the model sits at (where a process left it, else where it was trained) |
//! | `seed` | the training seed |
//! | `source_classes` | JSON list of the classes it was trained on, if recorded |
//! | `training` | the run's `TrainConfig` as JSON, if known |
//! | `batchnorm_eps`, `leaky_relu_slope` | constants of the networks |

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;

use super::error::ExportError;
use crate::checkpoint::CheckpointHeader;
use crate::config::{DecoderKind, ModelConfig};
use crate::train::TrainConfig;

/// The layout version written in `format`.
pub const FORMAT: &str = "fep-pytorch-1";

/// What the metadata of an exported model says.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportMetadata {
    /// Shapes of the model.
    pub model: ModelConfig,
    /// Multiplier of D the model sits at.
    pub lambda: f64,
    /// Multiplier of C the model sits at.
    pub gamma: f64,
    /// Training seed.
    pub seed: u64,
    /// The fep version that wrote the file.
    pub fep_version: String,
    /// Classes the model was trained on, if recorded.
    pub source_classes: Option<Vec<u8>>,
    /// The run settings, if known.
    pub training: Option<TrainConfig>,
}

/// The multipliers a process recorded with its model (its `lambda`, `gamma`), if any.
fn recorded_multipliers(extra: &serde_json::Value) -> Option<(f64, f64)> {
    Some((
        extra.get("lambda")?.as_f64()?,
        extra.get("gamma")?.as_f64()?,
    ))
}

impl ExportMetadata {
    /// The metadata of a checkpoint's model: `(lambda, gamma)` where a process left it
    /// (recorded in the header's `extra`), else where it was trained.
    pub fn from_header(header: &CheckpointHeader) -> Self {
        let (lambda, gamma) = recorded_multipliers(&header.extra)
            .unwrap_or((header.train.lambda, header.train.gamma));
        let source_classes = header
            .extra
            .get("source_classes")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        Self {
            model: header.model.clone(),
            lambda,
            gamma,
            seed: header.train.seed,
            fep_version: env!("CARGO_PKG_VERSION").to_string(),
            source_classes,
            training: Some(header.train.clone()),
        }
    }

    /// The string map written to the file.
    pub fn to_map(&self) -> HashMap<String, String> {
        let m = &self.model;
        let mut map = HashMap::new();
        let mut put = |k: &str, v: String| {
            map.insert(k.to_string(), v);
        };
        put("format", FORMAT.into());
        put("fep_version", self.fep_version.clone());
        put("model", json(m));
        put("architecture", m.architecture.name().into());
        put("image_shape", json(&m.architecture.image_shape().to_vec()));
        put("latent_dim", m.latent_dim.to_string());
        put("num_classes", m.num_classes.to_string());
        put("decoder", json(&m.decoder));
        let kind = match m.decoder {
            DecoderKind::Bernoulli => "bernoulli",
            DecoderKind::Gaussian { sigma } => {
                put("decoder_sigma", sigma.to_string());
                "gaussian"
            }
            DecoderKind::DiscretizedLogistic => "discretized-logistic",
        };
        put("decoder_kind", kind.into());
        put("prior", json(&m.prior));
        put("classifier", json(&m.classifier));
        put("lambda", self.lambda.to_string());
        put("gamma", self.gamma.to_string());
        put("seed", self.seed.to_string());
        if let Some(c) = &self.source_classes {
            put("source_classes", json(c));
        }
        if let Some(t) = &self.training {
            put("training", json(t));
        }
        put("batchnorm_eps", "1e-5".into());
        put("leaky_relu_slope", "0.2".into());
        map
    }

    /// Parses the metadata of `file`: `model`, `lambda`, `gamma` and `seed` are required.
    pub fn from_map(map: &HashMap<String, String>, file: &Path) -> Result<Self, ExportError> {
        let bad = |reason: String| ExportError::Metadata {
            file: file.to_path_buf(),
            reason,
        };
        if let Some(f) = map.get("format").filter(|f| f.as_str() != FORMAT) {
            return Err(bad(format!(
                "format `{f}` is not {FORMAT}, the one this fep reads"
            )));
        }
        let get = |key: &str| {
            map.get(key).ok_or_else(|| {
                bad(format!(
                    "no `{key}` entry (a file written by `fep export` has one)"
                ))
            })
        };
        fn parse<T: DeserializeOwned>(key: &str, v: &str) -> Result<T, String> {
            serde_json::from_str(v).map_err(|e| format!("`{key}` = `{v}`: {e}"))
        }
        let model: ModelConfig = parse("model", get("model")?).map_err(bad)?;
        model.validate().map_err(|e| bad(format!("`model`: {e}")))?;
        let optional = |key: &str| map.get(key).map(String::as_str);
        Ok(Self {
            lambda: parse("lambda", get("lambda")?).map_err(bad)?,
            gamma: parse("gamma", get("gamma")?).map_err(bad)?,
            seed: parse("seed", get("seed")?).map_err(bad)?,
            fep_version: optional("fep_version").unwrap_or("unknown").to_string(),
            source_classes: optional("source_classes")
                .map(|v| parse("source_classes", v))
                .transpose()
                .map_err(bad)?,
            training: optional("training")
                .map(|v| parse("training", v))
                .transpose()
                .map_err(bad)?,
            model,
        })
    }
}

/// JSON of a value (serialising these plain types cannot fail).
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
