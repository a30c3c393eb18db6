//! Every change a project makes to its folder goes through a [`Storage`]: creating, writing,
//! syncing, truncating, renaming and removing files. [`OsStorage`] is the real file system;
//! tests put in one that fails the Nth write, sync or rename (with `ENOSPC`, `EIO`, `EACCES`…)
//! to check that a failing disk never costs an acknowledged edit and never leaves a partial
//! file where a complete one was. Reads go straight to the file system.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;
use std::sync::Arc;

/// The file operations of a project. Each default method is the real one; an implementation
/// overrides the ones it wants to fail and calls [`OsStorage`]'s for the rest. `path` names
/// the file an operation on an open `file` is about, for the implementation's bookkeeping.
pub trait Storage: fmt::Debug + Send + Sync {
    /// Creates `path` (truncating an existing file) for writing.
    fn create(&self, path: &Path) -> io::Result<File> {
        File::create(path)
    }

    /// Opens an existing `path` for appending.
    fn open_append(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().append(true).open(path)
    }

    /// Writes all of `bytes` to `file`. A failure may leave part of them written.
    fn write(&self, path: &Path, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        let _ = path;
        file.write_all(bytes)
    }

    /// Makes `file`'s data (and the size needed to read it back) durable.
    fn sync(&self, path: &Path, file: &File) -> io::Result<()> {
        let _ = path;
        file.sync_data()
    }

    /// Cuts `file` to `len` bytes.
    fn set_len(&self, path: &Path, file: &File, len: u64) -> io::Result<()> {
        let _ = path;
        file.set_len(len)
    }

    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    /// Makes renames and new files in `dir` durable (a no-op where folders cannot be opened).
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            let _ = dir;
            Ok(())
        }
    }

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct OsStorage;

impl Storage for OsStorage {}

/// A shared handle on a storage (the compaction thread writes through it too).
pub type SharedStorage = Arc<dyn Storage>;

/// The real file system, shared.
pub fn os_storage() -> SharedStorage {
    Arc::new(OsStorage)
}

/// Writes `bytes` to `path` through `path.tmp`, synced before the rename; the caller syncs
/// the folder. On failure the temporary file is removed (best effort) and `path` is
/// untouched: a file is either its old complete self or its new complete self.
pub(crate) fn write_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let written = (|| {
        let mut file = storage.create(&tmp)?;
        storage.write(&tmp, &mut file, bytes)?;
        storage.sync(&tmp, &file)?;
        drop(file);
        storage.rename(&tmp, path)
    })();
    if written.is_err()
        && let Err(e) = storage.remove_file(&tmp)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::debug!("could not remove the temporary file {tmp:?}: {e}");
    }
    written
}
