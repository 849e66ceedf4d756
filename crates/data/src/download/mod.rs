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
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::MultiGzDecoder;

mod manifest;
mod verify;

use manifest::member_base_name;
pub use manifest::{Manifest, ManifestDataset, ManifestFile, ManifestUnpack};
pub use verify::{ChecksumMatch, Digests, digest_file, digest_reader, verify_file};

use crate::atomic::rename_durable;
use crate::dataset::DatasetKind;
use crate::error::{DataError, MirrorFailure};

pub use crate::atomic::{atomic_write, atomic_write_with};

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
