//! Checksums of downloaded files against the manifest, of the file as published or of its
//! gzip-decompressed content.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::manifest::ManifestFile;
use crate::error::DataError;
use crate::input::GZIP_MAGIC;

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
