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

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::atomic::rename_durable;
use crate::dataset::DatasetKind;
use crate::error::{DataError, MirrorFailure};
use crate::input::GZIP_MAGIC;

pub use crate::atomic::{atomic_write, atomic_write_with};

/// The manifest shipped in the repository, compiled into the crate.
const BUNDLED_MANIFEST: &str = include_str!("../../../datasets/manifest.toml");

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

fn is_safe_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.ends_with(".part")
}

fn member_base_name(member: &str) -> Option<&str> {
    let base = member.rsplit('/').next()?;
    is_safe_file_name(base).then_some(base)
}

/// Which manifest checksum a file matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChecksumMatch {
    /// SHA-256 of the file as published.
    Sha256,
    /// MD5 of the file as published.
    Md5,
    /// SHA-256 of the gzip-decompressed content.
    ContentSha256,
    /// MD5 of the gzip-decompressed content.
    ContentMd5,
}

/// SHA-256 and MD5 (lower-case hex) and size of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// Bytes hashed.
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Lower-case hex MD5.
    pub md5: String,
}

/// Hashes everything `reader` yields.
pub fn digest_reader(mut reader: impl Read) -> io::Result<Digests> {
    let mut sha = Sha256::new();
    let mut md5 = md5::Context::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        sha.update(&buf[..n]);
        md5.consume(&buf[..n]);
        size += n as u64;
    }
    Ok(Digests {
        size,
        sha256: hex::encode(sha.finalize()),
        md5: hex::encode(md5.finalize().0),
    })
}

/// Hashes a file.
pub fn digest_file(path: impl AsRef<Path>) -> Result<Digests, DataError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    digest_reader(BufReader::new(file)).map_err(|e| DataError::io(path, e))
}

/// Checks `path` against the checksums of `entry`; succeeds when any of them matches.
///
/// The published-file checksums (`sha256`, `md5`) are tried first; if none matches and the
/// entry has content checksums and the file starts with the gzip magic, the decompressed
/// stream is hashed and compared with `content_sha256` / `content_md5`.
pub fn verify_file(
    path: impl AsRef<Path>,
    entry: &ManifestFile,
) -> Result<ChecksumMatch, DataError> {
    let path = path.as_ref();
    let raw = digest_file(path)?;
    if entry.sha256.as_deref() == Some(raw.sha256.as_str()) {
        return Ok(ChecksumMatch::Sha256);
    }
    if entry.md5.as_deref() == Some(raw.md5.as_str()) {
        return Ok(ChecksumMatch::Md5);
    }
    let mut details = vec![format!(
        "file ({} bytes) has sha256 {} md5 {}",
        raw.size, raw.sha256, raw.md5
    )];
    if let Some(s) = &entry.sha256 {
        details.push(format!("expected sha256 {s}"));
    }
    if let Some(m) = &entry.md5 {
        details.push(format!("expected md5 {m}"));
    }
    if entry.content_sha256.is_some() || entry.content_md5.is_some() {
        match content_digests(path)? {
            Some(Ok(content)) => {
                if entry.content_sha256.as_deref() == Some(content.sha256.as_str()) {
                    return Ok(ChecksumMatch::ContentSha256);
                }
                if entry.content_md5.as_deref() == Some(content.md5.as_str()) {
                    return Ok(ChecksumMatch::ContentMd5);
                }
                details.push(format!(
                    "decompressed content ({} bytes) has sha256 {} md5 {}",
                    content.size, content.sha256, content.md5
                ));
                if let Some(s) = &entry.content_sha256 {
                    details.push(format!("expected content sha256 {s}"));
                }
                if let Some(m) = &entry.content_md5 {
                    details.push(format!("expected content md5 {m}"));
                }
            }
            Some(Err(e)) => details.push(format!("content not checked: invalid gzip ({e})")),
            None => details.push("content not checked: not gzip".to_string()),
        }
    }
    Err(DataError::ChecksumMismatch {
        path: path.to_path_buf(),
        details: details.join("; "),
    })
}

/// Digests of the decompressed content: `None` if the file is not gzip, `Some(Err)` if the
/// gzip stream is corrupt.
fn content_digests(path: &Path) -> Result<Option<io::Result<Digests>>, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let is_gzip = matches!(file.read_exact(&mut magic), Ok(()) if magic == GZIP_MAGIC);
    if !is_gzip {
        return Ok(None);
    }
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    Ok(Some(digest_reader(MultiGzDecoder::new(BufReader::new(
        file,
    )))))
}

/// Something that happened during [`fetch`], for progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchEvent {
    /// The file was already present and verified; nothing is downloaded.
    AlreadyPresent {
        /// File name.
        file: String,
        /// Where it is.
        path: PathBuf,
    },
    /// A transfer started (after the server answered).
    Started {
        /// File name.
        file: String,
        /// URL being downloaded.
        url: String,
        /// Bytes already on disk from an earlier attempt (resumed transfer), else 0.
        resumed_from: u64,
        /// Total size if known.
        total: Option<u64>,
    },
    /// More bytes arrived.
    Progress {
        /// File name.
        file: String,
        /// Bytes on disk so far (including any resumed part).
        downloaded: u64,
        /// Total size if known.
        total: Option<u64>,
    },
    /// The download finished and is being verified.
    Verifying {
        /// File name.
        file: String,
    },
    /// One mirror failed; the next one will be tried.
    MirrorFailed {
        /// File name.
        file: String,
        /// What went wrong.
        failure: MirrorFailure,
    },
    /// The file is verified and in place.
    Done {
        /// File name.
        file: String,
        /// Final path.
        path: PathBuf,
        /// Which checksum matched.
        checksum: ChecksumMatch,
    },
    /// An archive member was extracted.
    Unpacked {
        /// Archive name.
        archive: String,
        /// Extracted file.
        path: PathBuf,
    },
}

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

fn fetch_file(
    agent: &ureq::Agent,
    entry: &ManifestFile,
    dir: &Path,
    mirrors: &[String],
    progress: &mut impl FnMut(&FetchEvent),
) -> Result<FetchedFile, DataError> {
    let path = dir.join(&entry.name);
    let part = part_path(&path);
    if path.is_file()
        && let Ok(checksum) = verify_file(&path, entry)
    {
        progress(&FetchEvent::AlreadyPresent {
            file: entry.name.clone(),
            path: path.clone(),
        });
        return Ok(FetchedFile {
            name: entry.name.clone(),
            path,
            checksum,
            url: None,
            failures: Vec::new(),
        });
    }
    let mut failures = Vec::new();
    for mirror in mirrors {
        let url = mirror_url(mirror, &entry.name);
        let mut fresh_retry_done = false;
        loop {
            let resumed = file_len(&part) > 0;
            let outcome = download_to_part(agent, &url, &part, entry, progress);
            let reason = match outcome {
                Err(reason) => reason,
                Ok(()) => {
                    progress(&FetchEvent::Verifying {
                        file: entry.name.clone(),
                    });
                    match verify_file(&part, entry) {
                        Ok(checksum) => {
                            rename_durable(&part, &path)?;
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
                        Err(e) => {
                            remove_if_exists(&part)?;
                            if resumed && !fresh_retry_done {
                                // The bad bytes may be an earlier attempt's: retry this
                                // mirror once from scratch before giving up on it.
                                fresh_retry_done = true;
                                continue;
                            }
                            match e {
                                DataError::ChecksumMismatch { details, .. } => {
                                    format!("checksum mismatch ({details})")
                                }
                                other => other.to_string(),
                            }
                        }
                    }
                }
            };
            let failure = MirrorFailure {
                mirror: mirror.clone(),
                url: url.clone(),
                reason,
            };
            progress(&FetchEvent::MirrorFailed {
                file: entry.name.clone(),
                failure: failure.clone(),
            });
            failures.push(failure);
            break;
        }
    }
    Err(DataError::AllMirrorsFailed {
        file: entry.name.clone(),
        failures,
    })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn remove_if_exists(path: &Path) -> Result<(), DataError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DataError::io(path, e)),
    }
}

/// Parses `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let total = total.trim().parse().ok();
    Some((start, total))
}

/// Downloads `url` into `part`, resuming from its current length when possible. On error the
/// bytes received so far stay in `part` (for a later resume) and a reason is returned.
fn download_to_part(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    entry: &ManifestFile,
    progress: &mut impl FnMut(&FetchEvent),
) -> Result<(), String> {
    let mut offset = file_len(part);
    for attempt in 0..2 {
        let mut request = agent.get(url);
        if offset > 0 {
            request = request.header("Range", format!("bytes={offset}-"));
        }
        let response = request.call().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_range = header("content-range");
        // `server_total`: the full size as announced by the server, which the transfer must
        // reach; the manifest size is only a hint for progress display (a mirror serving the
        // same content recompressed has another size and is still accepted by checksum).
        let (append, server_total) = match status {
            200 => (false, response.body().content_length()),
            206 if offset > 0 => match content_range.as_deref().and_then(parse_content_range) {
                Some((start, total)) if start == offset => (true, total),
                _ => {
                    // A range we did not ask for: start over without Range.
                    remove_if_exists(part).map_err(|e| e.to_string())?;
                    offset = 0;
                    continue;
                }
            },
            416 if offset > 0 && attempt == 0 => {
                let total = content_range
                    .as_deref()
                    .and_then(parse_content_range_unsatisfied);
                if total == Some(offset) {
                    // The part is already complete; let verification decide.
                    return Ok(());
                }
                remove_if_exists(part).map_err(|e| e.to_string())?;
                offset = 0;
                continue;
            }
            _ => {
                let reason = response
                    .status()
                    .canonical_reason()
                    .unwrap_or("unexpected status");
                return Err(format!("HTTP {status} {reason}"));
            }
        };
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(part)
            .map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        let total = server_total.or(entry.size);
        let mut done = if append { offset } else { 0 };
        progress(&FetchEvent::Started {
            file: entry.name.clone(),
            url: url.to_string(),
            resumed_from: done,
            total,
        });
        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        let result = loop {
            match reader.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    if let Err(e) = file.write_all(&buf[..n]) {
                        break Err(format!("cannot write {}: {e}", part.display()));
                    }
                    done += n as u64;
                    progress(&FetchEvent::Progress {
                        file: entry.name.clone(),
                        downloaded: done,
                        total,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(format!("transfer interrupted after {done} bytes: {e}")),
            }
        };
        // Keep what arrived (even on error) durable for a later resume.
        let synced = file.flush().and_then(|()| file.sync_all());
        result?;
        synced.map_err(|e| format!("cannot write {}: {e}", part.display()))?;
        if let Some(total) = server_total
            && done != total
        {
            return Err(format!("received {done} of {total} bytes"));
        }
        return Ok(());
    }
    Err("server kept answering with unusable ranges".to_string())
}

/// Parses the total of `Content-Range: bytes */TOTAL` (a 416 answer).
fn parse_content_range_unsatisfied(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let total = rest.strip_prefix("*/")?;
    total.trim().parse().ok()
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
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */200"), None);
        assert_eq!(parse_content_range_unsatisfied("bytes */200"), Some(200));
    }

    #[test]
    fn url_joining() {
        assert_eq!(mirror_url("http://a/b/", "f.gz"), "http://a/b/f.gz");
        assert_eq!(mirror_url("http://a/b", "f.gz"), "http://a/b/f.gz");
    }
}
