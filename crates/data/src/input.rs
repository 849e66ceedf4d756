//! Opening a file that may or may not be gzip-compressed.
//!
//! Compression is detected from the content (the gzip magic bytes `1f 8b`), never from the
//! file name. Read errors are classified: inside a gzip stream they become
//! [`DataError::Gzip`], otherwise [`DataError::Io`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use crate::error::DataError;

/// The two magic bytes that open every gzip member (RFC 1952).
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A byte stream, transparently decompressed when it is gzip.
pub(crate) struct Input<R: BufRead> {
    inner: InputKind<R>,
    path: PathBuf,
}

enum InputKind<R: BufRead> {
    Raw(R),
    Gzip(Box<MultiGzDecoder<R>>),
}

impl<R: BufRead> Input<R> {
    /// Wraps `reader`, peeking at its first bytes to detect gzip. Fails with
    /// [`DataError::Empty`] when the stream has no bytes at all.
    pub(crate) fn new(mut reader: R, path: &Path) -> Result<Self, DataError> {
        let head = reader
            .fill_buf()
            .map_err(|e| DataError::io(path, e))?
            .to_vec();
        if head.is_empty() {
            return Err(DataError::Empty {
                path: path.to_path_buf(),
            });
        }
        // A one-byte first fill could hide the second magic byte; BufReader and slices
        // return everything they have, so `head` holds at least 2 bytes whenever the
        // stream does (unless the underlying reader is pathological, which only costs
        // gzip detection, never safety).
        let is_gzip = head.len() >= 2 && head[..2] == GZIP_MAGIC;
        let inner = if is_gzip {
            InputKind::Gzip(Box::new(MultiGzDecoder::new(reader)))
        } else {
            InputKind::Raw(reader)
        };
        Ok(Self {
            inner,
            path: path.to_path_buf(),
        })
    }

    /// Whether the stream is being decompressed.
    pub(crate) fn is_gzip(&self) -> bool {
        matches!(self.inner, InputKind::Gzip(_))
    }

    /// The path used in error messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Converts a read error into the matching [`DataError`].
    pub(crate) fn error(&self, source: io::Error) -> DataError {
        if self.is_gzip() {
            DataError::Gzip {
                path: self.path.clone(),
                source,
            }
        } else {
            DataError::io(&self.path, source)
        }
    }

    /// Reads until `buf` is full or the stream ends; returns the number of bytes read.
    pub(crate) fn read_full(&mut self, buf: &mut [u8]) -> Result<usize, DataError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.error(e)),
            }
        }
        Ok(filled)
    }

    /// Reads at most `limit` bytes into a new vector. Memory grows with the bytes actually
    /// present, never with `limit` alone (at most 1 MiB is reserved ahead).
    pub(crate) fn read_up_to(&mut self, limit: u64) -> Result<Vec<u8>, DataError> {
        const PREALLOC_CAP: u64 = 1 << 20;
        let reserve = usize::try_from(limit.min(PREALLOC_CAP)).unwrap_or(0);
        let mut out = Vec::with_capacity(reserve);
        let path = self.path.clone();
        let is_gzip = self.is_gzip();
        let mut limited = Read::take(&mut *self, limit);
        if let Err(e) = limited.read_to_end(&mut out) {
            return Err(if is_gzip {
                DataError::Gzip { path, source: e }
            } else {
                DataError::io(path, e)
            });
        }
        Ok(out)
    }

    /// Reads and discards the rest of the stream, returning how many bytes it had.
    pub(crate) fn count_rest(&mut self) -> Result<u64, DataError> {
        match io::copy(self, &mut io::sink()) {
            Ok(n) => Ok(n),
            Err(e) => Err(self.error(e)),
        }
    }
}

impl<R: BufRead> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            InputKind::Raw(r) => r.read(buf),
            InputKind::Gzip(r) => r.read(buf),
        }
    }
}

/// Opens `path` for reading, detecting gzip. Missing files give [`DataError::Missing`],
/// zero-byte files [`DataError::Empty`].
pub(crate) fn open(path: &Path) -> Result<Input<BufReader<File>>, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if let Ok(meta) = file.metadata()
        && meta.is_dir()
    {
        return Err(DataError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "is a directory, not a file"),
        });
    }
    Input::new(BufReader::with_capacity(1 << 16, file), path)
}

/// Wraps an in-memory byte slice; `name` is used in error messages.
pub(crate) fn from_bytes<'a>(bytes: &'a [u8], name: &Path) -> Result<Input<&'a [u8]>, DataError> {
    Input::new(bytes, name)
}
