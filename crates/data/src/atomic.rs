//! Crash-safe file writes: a reader sees either the old file or the complete new one.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Writes `bytes` to `path` atomically.
///
/// The data goes to a temporary file in the same directory, which is flushed and fsynced and
/// then renamed over `path` (an atomic replace on POSIX file systems); finally the directory
/// is fsynced so the rename itself is durable. On any error the temporary file is removed and
/// `path` is left untouched. Missing parent directories are created.
pub fn atomic_write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<(), DataError> {
    atomic_write_with(path, |file| file.write_all(bytes))
}

/// Like [`atomic_write`], but the content is produced by `write`, which receives the open
/// temporary file (for streaming large outputs such as checkpoints).
pub fn atomic_write_with<F>(path: impl AsRef<Path>, write: F) -> Result<(), DataError>
where
    F: FnOnce(&mut File) -> io::Result<()>,
{
    let path = path.as_ref();
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| DataError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
        })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| DataError::io(&dir, e))?;
    let io_err = |e| DataError::io(path, e);
    write(tmp.as_file_mut()).map_err(io_err)?;
    tmp.as_file_mut().flush().map_err(io_err)?;
    tmp.as_file().sync_all().map_err(io_err)?;
    tmp.persist(path)
        .map_err(|e| DataError::io(path, e.error))?;
    sync_dir(&dir);
    Ok(())
}

/// Renames `from` to `to` (same file system) and fsyncs the directory of `to`.
pub(crate) fn rename_durable(from: &Path, to: &Path) -> Result<(), DataError> {
    std::fs::rename(from, to).map_err(|e| DataError::io(to, e))?;
    sync_dir(&parent_dir(to));
    Ok(())
}

/// The directory containing `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Best-effort fsync of a directory (makes a rename durable on POSIX; a no-op elsewhere).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.bin");
        atomic_write(&path, b"first").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        atomic_write(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.bin")]);
    }

    #[test]
    fn failing_writer_keeps_old_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keep.txt");
        atomic_write(&path, b"old").unwrap();
        let err = atomic_write_with(&path, |f| {
            f.write_all(b"half")?;
            Err(io::Error::other("disk on fire"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("keep.txt"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
