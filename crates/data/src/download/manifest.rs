//! The download manifest: per dataset, mirrors and the checksums of every file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dataset::DatasetKind;
use crate::error::DataError;

/// The manifest shipped in the repository, compiled into the crate.
const BUNDLED_MANIFEST: &str = include_str!("../../../../datasets/manifest.toml");

/// The download manifest: per dataset, mirrors and per-file checksums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version; this crate reads version 1.
    pub schema: u32,
    /// Datasets by name (`"mnist"`, `"cifar10"`).
    pub datasets: BTreeMap<String, ManifestDataset>,
}

/// One dataset of the [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestDataset {
    /// Human-readable description.
    #[serde(default)]
    pub description: String,
    /// Base URLs tried in order; a file's URL is the base joined with its name.
    pub mirrors: Vec<String>,
    /// The files to download.
    pub files: Vec<ManifestFile>,
    /// Archive to unpack after download, if any.
    #[serde(default)]
    pub unpack: Option<ManifestUnpack>,
}

/// One downloadable file and the checksums that identify it. A download is accepted when
/// any of the listed checksums matches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// File name, both on the mirror and on disk.
    pub name: String,
    /// Size in bytes of the published file (informative).
    #[serde(default)]
    pub size: Option<u64>,
    /// Lower-case hex MD5 of the published file.
    #[serde(default)]
    pub md5: Option<String>,
    /// Lower-case hex SHA-256 of the published file.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes of the gzip-decompressed content (informative).
    #[serde(default)]
    pub content_size: Option<u64>,
    /// Lower-case hex MD5 of the gzip-decompressed content.
    #[serde(default)]
    pub content_md5: Option<String>,
    /// Lower-case hex SHA-256 of the gzip-decompressed content.
    #[serde(default)]
    pub content_sha256: Option<String>,
}

/// An archive to unpack after it has been downloaded and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestUnpack {
    /// Name of the archive (one of the dataset's files).
    pub archive: String,
    /// Archive format; only `"tar.gz"` is supported.
    pub format: String,
    /// Paths inside the archive to extract; each is written under its base name.
    pub members: Vec<String>,
}

impl Manifest {
    /// The manifest shipped in `datasets/manifest.toml`.
    pub fn bundled() -> Result<Manifest, DataError> {
        Self::from_toml_str(BUNDLED_MANIFEST, "bundled datasets/manifest.toml")
    }

    /// Reads and validates a manifest file.
    pub fn load(path: impl AsRef<Path>) -> Result<Manifest, DataError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| DataError::Manifest {
            origin: path.display().to_string(),
            reason: "not UTF-8".to_string(),
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Parses and validates manifest TOML; `origin` names it in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Manifest, DataError> {
        let manifest: Manifest = toml::from_str(text).map_err(|e| DataError::Manifest {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        manifest.validate().map_err(|reason| DataError::Manifest {
            origin: origin.to_string(),
            reason,
        })?;
        Ok(manifest)
    }

    /// Serialises the manifest as TOML.
    pub fn to_toml_string(&self) -> Result<String, DataError> {
        toml::to_string(self).map_err(|e| DataError::Manifest {
            origin: "manifest".to_string(),
            reason: e.to_string(),
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.schema != 1 {
            return Err(format!("unsupported schema {} (expected 1)", self.schema));
        }
        for (name, ds) in &self.datasets {
            if ds.files.is_empty() {
                return Err(format!("dataset `{name}` lists no files"));
            }
            for file in &ds.files {
                file.validate()
                    .map_err(|e| format!("dataset `{name}`, file `{}`: {e}", file.name))?;
            }
            if let Some(unpack) = &ds.unpack {
                if unpack.format != "tar.gz" {
                    return Err(format!(
                        "dataset `{name}`: unsupported archive format `{}`",
                        unpack.format
                    ));
                }
                if !ds.files.iter().any(|f| f.name == unpack.archive) {
                    return Err(format!(
                        "dataset `{name}`: archive `{}` is not one of its files",
                        unpack.archive
                    ));
                }
                let mut seen = BTreeSet::new();
                for member in &unpack.members {
                    let base = member_base_name(member)
                        .ok_or_else(|| format!("dataset `{name}`: bad member `{member}`"))?;
                    if !seen.insert(base.to_string()) {
                        return Err(format!("dataset `{name}`: duplicate member name `{base}`"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The entry for `kind`.
    pub fn dataset(&self, kind: DatasetKind) -> Result<&ManifestDataset, DataError> {
        self.datasets
            .get(kind.name())
            .ok_or_else(|| DataError::UnknownDataset {
                name: kind.name().to_string(),
                known: self.datasets.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }
}

impl ManifestFile {
    fn validate(&self) -> Result<(), String> {
        if !is_safe_file_name(&self.name) {
            return Err("name must be a plain file name".to_string());
        }
        let sums = [
            (&self.sha256, 64, "sha256"),
            (&self.md5, 32, "md5"),
            (&self.content_sha256, 64, "content_sha256"),
            (&self.content_md5, 32, "content_md5"),
        ];
        let mut any = false;
        for (value, len, what) in sums {
            if let Some(v) = value {
                any = true;
                if v.len() != len || !v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                    return Err(format!("{what} must be {len} lower-case hex digits"));
                }
            }
        }
        if !any {
            return Err("no checksum given".to_string());
        }
        Ok(())
    }
}

pub(crate) fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.ends_with(".part")
}

pub(crate) fn member_base_name(member: &str) -> Option<&str> {
    let base = member.rsplit('/').next()?;
    is_safe_file_name(base).then_some(base)
}
