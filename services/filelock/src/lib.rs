//! One writer per file. A role holds an exclusive `flock` on `<file>.lock` for as long as it
//! writes `<file>`, so a second `serve` on the same data folder, or a `replay` that would swap the
//! file under a running one, is refused with a clear message instead of writing a deleted file.
//!
//! The lock is on a file beside the data file, not on the data file itself: SQLite takes its own
//! (fcntl) locks on that one, and a projection rebuilt into a fresh file keeps the same lock.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{} is in use by another invitebus process ({holder}); stop it first", file.display())]
    Held { file: PathBuf, holder: String },
    #[error("locking {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An exclusive hold on a data file; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lock file of `data_file`: `<data_file>.lock`.
pub fn lock_path(data_file: &Path) -> PathBuf {
    let mut name = data_file.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock of `data_file` without waiting; `who` is written into the lock file
/// (with the pid) so that the refusal can say who holds it.
pub fn lock(data_file: &Path, who: &str) -> Result<FileLock, LockError> {
    let path = lock_path(data_file);
    let io = |source| LockError::Io {
        file: data_file.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = match holder.trim() {
                "" => "holder unknown".to_string(),
                h => h.to_string(),
            };
            return Err(LockError::Held {
                file: data_file.to_path_buf(),
                holder,
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0).map_err(io)?;
    let _ = writeln!(file, "{who}, pid {}", std::process::id());
    Ok(FileLock { _file: file, path })
}

/// True when some process holds the lock of `data_file` (a check for tools that only read).
pub fn is_locked(data_file: &Path) -> bool {
    let path = lock_path(data_file);
    let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
        return false;
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            false
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("views.db");
        let first = lock(&db, "views").unwrap();
        assert!(is_locked(&db));
        match lock(&db, "replay") {
            Err(LockError::Held { holder, .. }) => {
                assert!(holder.contains("views, pid"), "{holder}")
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        assert!(!is_locked(&db));
        lock(&db, "replay").unwrap();
    }
}
