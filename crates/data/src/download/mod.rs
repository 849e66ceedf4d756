//! Downloading the full datasets for users who are online.
//!
//! [`fetch`] reads the shipped manifest (`datasets/manifest.toml`), and for each file of the
//! dataset tries the mirrors in order. A download goes to `<name>.part`; when a `.part` is
//! already there it is resumed with an HTTP `Range` request (a server that ignores the range
//! and answers 200 is handled by starting over). The finished `.part` is verified against the
//! manifest (the official archive checksums, or the checksums of the gzip-decompressed
//! content) and only then renamed atomically to its final name, so a file under the final name
//! is always complete and verified. A checksum mismatch deletes the `.part` and moves on to the
//! next mirror; if every mirror fails the error lists each one and why. Progress is reported
//! through a caller-supplied callback, so this crate does not depend on any terminal UI.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::MultiGzDecoder;

mod event;
mod manifest;
mod transfer;
mod verify;

pub use event::FetchEvent;
use manifest::member_base_name;
pub use manifest::{Manifest, ManifestDataset, ManifestFile, ManifestUnpack};
use transfer::{download_to_part, file_len, remove_if_exists};
pub use verify::{ChecksumMatch, Digests, digest_file, digest_reader, verify_file};

use crate::atomic::rename_durable;
use crate::dataset::DatasetKind;
use crate::error::{DataError, MirrorFailure};

pub use crate::atomic::{atomic_write, atomic_write_with};

/// A file obtained by [`fetch`].
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedFile {
    /// File name.
    pub name: String,
    /// Final path.
    pub path: PathBuf,
    /// Which checksum matched.
    pub checksum: ChecksumMatch,
    /// The URL it was downloaded from, or `None` if it was already present.
    pub url: Option<String>,
    /// Mirrors that failed before the one that worked.
    pub failures: Vec<MirrorFailure>,
}

/// The result of a successful [`fetch`].
#[derive(Debug, Clone, PartialEq)]
pub struct FetchReport {
    /// Target folder.
    pub dir: PathBuf,
    /// Each manifest file, verified.
    pub files: Vec<FetchedFile>,
    /// Files extracted from archives in this run.
    pub unpacked: Vec<PathBuf>,
}

/// Network settings for [`fetch_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOptions {
    /// Base URLs to try instead of the manifest's (empty: use the manifest's).
    pub mirrors: Vec<String>,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for a single read to deliver any data.
    pub read_timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            mirrors: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// Downloads `kind` into `dir` using the shipped manifest.
///
/// `mirrors` replaces the manifest's mirror list when non-empty. Files already present and
/// verified are not downloaded again. `progress` is called with every [`FetchEvent`].
pub fn fetch(
    kind: DatasetKind,
    dir: impl AsRef<Path>,
    mirrors: &[String],
    progress: impl FnMut(&FetchEvent),
) -> Result<FetchReport, DataError> {
    let manifest = Manifest::bundled()?;
    let options = FetchOptions {
        mirrors: mirrors.to_vec(),
        ..FetchOptions::default()
    };
    fetch_with(&manifest, kind, dir, &options, progress)
}

/// Downloads `kind` into `dir` using an explicit manifest and options.
pub fn fetch_with(
    manifest: &Manifest,
    kind: DatasetKind,
    dir: impl AsRef<Path>,
    options: &FetchOptions,
    mut progress: impl FnMut(&FetchEvent),
) -> Result<FetchReport, DataError> {
    let dir = dir.as_ref();
    let entry = manifest.dataset(kind)?;
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
    let mirrors: &[String] = if options.mirrors.is_empty() {
        &entry.mirrors
    } else {
        &options.mirrors
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(options.connect_timeout))
        .timeout_per_read(Some(options.read_timeout))
        .build()
        .into();
    let mut files = Vec::new();
    for file in &entry.files {
        files.push(fetch_file(&agent, file, dir, mirrors, &mut progress)?);
    }
    let mut unpacked = Vec::new();
    if let Some(unpack) = &entry.unpack {
        let archive = dir.join(&unpack.archive);
        unpacked = unpack_tar_gz(&archive, &unpack.members, dir, &mut progress)?;
    }
    Ok(FetchReport {
        dir: dir.to_path_buf(),
        files,
        unpacked,
    })
}

/// The `.part` file used while downloading `path`.
pub fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    path.with_file_name(name)
}

/// Joins a mirror base URL and a file name with exactly one `/`.
pub fn mirror_url(mirror: &str, name: &str) -> String {
    format!("{}/{}", mirror.trim_end_matches('/'), name)
}

/// The file `entry` at `path` when a copy is already there and verifies (reported as
/// [`FetchEvent::AlreadyPresent`]); `None` when it must be downloaded.
fn already_present(
    entry: &ManifestFile,
    path: &Path,
    progress: &mut impl FnMut(&FetchEvent),
) -> Option<FetchedFile> {
    if !path.is_file() {
        return None;
    }
    let checksum = verify_file(path, entry).ok()?;
    progress(&FetchEvent::AlreadyPresent {
        file: entry.name.clone(),
        path: path.to_path_buf(),
    });
    Some(FetchedFile {
        name: entry.name.clone(),
        path: path.to_path_buf(),
        checksum,
        url: None,
        failures: Vec::new(),
    })
}

/// Obtains the manifest file `entry` in `dir`: nothing to do when a verified copy is
/// already there, else the mirrors in order until one delivers a verified file (see
/// [`fetch_from_mirror`]); every mirror's failure is reported and, if all fail, listed in
/// the error.
fn fetch_file(
    agent: &ureq::Agent,
    entry: &ManifestFile,
    dir: &Path,
    mirrors: &[String],
    progress: &mut impl FnMut(&FetchEvent),
) -> Result<FetchedFile, DataError> {
    let path = dir.join(&entry.name);
    let part = part_path(&path);
    if let Some(present) = already_present(entry, &path, progress) {
        return Ok(present);
    }
    let mut failures = Vec::new();
    for mirror in mirrors {
        let url = mirror_url(mirror, &entry.name);
        match fetch_from_mirror(agent, entry, &url, &part, &path, progress)? {
            Ok(checksum) => {
                progress(&FetchEvent::Done {
                    file: entry.name.clone(),
                    path: path.clone(),
                    checksum,
                });
                return Ok(FetchedFile {
                    name: entry.name.clone(),
                    path,
                    checksum,
                    url: Some(url),
                    failures,
                });
            }
            Err(reason) => {
                let failure = MirrorFailure {
                    mirror: mirror.clone(),
                    url,
                    reason,
                };
                progress(&FetchEvent::MirrorFailed {
                    file: entry.name.clone(),
                    failure: failure.clone(),
                });
                failures.push(failure);
            }
        }
    }
    Err(DataError::AllMirrorsFailed {
        file: entry.name.clone(),
        failures,
    })
}

/// Downloads `entry` from `url` into `part`, verifies it and renames it to `path`:
/// `Ok(Ok(checksum))` once it is in place, `Ok(Err(reason))` when this mirror failed (the
/// next one is worth trying), `Err` when the local file system failed. A resumed part that
/// fails verification may hold an earlier attempt's bad bytes, so the mirror is then tried
/// once more from scratch before it counts as failed.
fn fetch_from_mirror(
    agent: &ureq::Agent,
    entry: &ManifestFile,
    url: &str,
    part: &Path,
    path: &Path,
    progress: &mut impl FnMut(&FetchEvent),
) -> Result<Result<ChecksumMatch, String>, DataError> {
    let mut fresh_retry_done = false;
    loop {
        let resumed = file_len(part) > 0;
        if let Err(reason) = download_to_part(agent, url, part, entry, progress) {
            return Ok(Err(reason));
        }
        progress(&FetchEvent::Verifying {
            file: entry.name.clone(),
        });
        match verify_file(part, entry) {
            Ok(checksum) => {
                rename_durable(part, path)?;
                return Ok(Ok(checksum));
            }
            Err(e) => {
                remove_if_exists(part)?;
                if resumed && !fresh_retry_done {
                    // The bad bytes may be an earlier attempt's: retry this
                    // mirror once from scratch before giving up on it.
                    fresh_retry_done = true;
                    continue;
                }
                return Ok(Err(match e {
                    DataError::ChecksumMismatch { details, .. } => {
                        format!("checksum mismatch ({details})")
                    }
                    other => other.to_string(),
                }));
            }
        }
    }
}

/// Extracts `members` of the gzip tar `archive` into `dir` under their base names. Members
/// already present are skipped (they are only ever written atomically, so an existing one is
/// complete). Returns the files written.
pub fn unpack_tar_gz(
    archive: &Path,
    members: &[String],
    dir: &Path,
    mut progress: impl FnMut(&FetchEvent),
) -> Result<Vec<PathBuf>, DataError> {
    let unpack_err = |reason: String| DataError::Unpack {
        archive: archive.to_path_buf(),
        reason,
    };
    let mut wanted: BTreeMap<&str, &str> = BTreeMap::new();
    for member in members {
        let base = member_base_name(member)
            .ok_or_else(|| unpack_err(format!("bad member name `{member}`")))?;
        if !dir.join(base).is_file() {
            wanted.insert(member.trim_start_matches("./"), base);
        }
    }
    let mut written = Vec::new();
    if wanted.is_empty() {
        return Ok(written);
    }
    let file = File::open(archive).map_err(|e| DataError::io(archive, e))?;
    let mut tar = tar::Archive::new(MultiGzDecoder::new(BufReader::new(file)));
    let entries = tar.entries().map_err(|e| unpack_err(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| unpack_err(e.to_string()))?;
        let name = {
            let path = entry.path().map_err(|e| unpack_err(e.to_string()))?;
            path.to_string_lossy().trim_start_matches("./").to_string()
        };
        let Some(base) = wanted.remove(name.as_str()) else {
            continue;
        };
        let out = dir.join(base);
        atomic_write_with(&out, |f| io::copy(&mut entry, f).map(|_| ()))
            .map_err(|e| unpack_err(format!("extracting `{name}` failed: {e}")))?;
        progress(&FetchEvent::Unpacked {
            archive: archive
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: out.clone(),
        });
        written.push(out);
        if wanted.is_empty() {
            break;
        }
    }
    if let Some((missing, _)) = wanted.into_iter().next() {
        return Err(unpack_err(format!("member `{missing}` not found")));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_manifest_parses() {
        let m = Manifest::bundled().unwrap();
        let mnist = m.dataset(DatasetKind::Mnist).unwrap();
        assert_eq!(mnist.files.len(), 4);
        assert!(mnist.mirrors.len() >= 2);
        let cifar = m.dataset(DatasetKind::Cifar10).unwrap();
        assert_eq!(
            cifar.files[0].md5.as_deref(),
            Some("c32a1d4ab5d03f1284b67883e8d87530")
        );
        assert_eq!(cifar.unpack.as_ref().unwrap().members.len(), 7);
        let again = Manifest::from_toml_str(&m.to_toml_string().unwrap(), "rt").unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn manifest_validation() {
        let bad = "schema = 1\n[datasets.x]\nmirrors=[]\n[[datasets.x.files]]\nname='a'\n";
        assert!(
            Manifest::from_toml_str(bad, "t")
                .unwrap_err()
                .to_string()
                .contains("no checksum")
        );
        let bad = "schema = 1\n[datasets.x]\nmirrors=[]\n[[datasets.x.files]]\nname='../a'\nmd5='00000000000000000000000000000000'\n";
        assert!(Manifest::from_toml_str(bad, "t").is_err());
        assert!(Manifest::from_toml_str("schema = 2\n[datasets]\n", "t").is_err());
    }

    #[test]
    fn url_joining() {
        assert_eq!(mirror_url("http://a/b/", "f.gz"), "http://a/b/f.gz");
        assert_eq!(mirror_url("http://a/b", "f.gz"), "http://a/b/f.gz");
    }
}
