//! Free space on the file system holding the data directory, injectable for tests; and the
//! test of whether a storage error was a full disk.
//!
//! The committer keeps writes out of the last [`crate::StoreOptions::min_free_disk_bytes`]
//! of the disk (see `committer/disk_reserve.rs` and `docs/decisions/0006-disk-full.md`): a
//! write refused for want of space is refused before anything is staged, so it is certainly
//! not stored, while a write that runs out of space inside the storage engine leaves the
//! engine in an unknown state.

use std::error::Error;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A source of the free space on the file system holding a path.
pub trait DiskSpace: Send + Sync + 'static {
    /// Bytes an unprivileged process can still write on the file system holding `path`.
    ///
    /// # Errors
    /// The operating system's error if it cannot tell (the path is gone, say).
    fn free_bytes(&self, path: &Path) -> io::Result<u64>;
}

/// The operating system's answer: `statvfs(2)`'s available blocks times the fragment size
/// (the blocks reserved for root are not counted). About 0.6 µs a call on ext4.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemDiskSpace;

impl DiskSpace for SystemDiskSpace {
    fn free_bytes(&self, path: &Path) -> io::Result<u64> {
        available_bytes(path)
    }
}

#[cfg(unix)]
fn available_bytes(path: &Path) -> io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
fn available_bytes(_path: &Path) -> io::Result<u64> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "free disk space is measured on Unix only",
    ))
}

/// Free space that changes only when told to, and counts how often it was asked: for tests
/// of a full disk.
#[derive(Debug)]
pub struct ManualDiskSpace {
    free_bytes: AtomicU64,
    n_measurements: AtomicU64,
}

impl ManualDiskSpace {
    /// A disk with `free_bytes` free.
    pub fn new(free_bytes: u64) -> Self {
        ManualDiskSpace {
            free_bytes: AtomicU64::new(free_bytes),
            n_measurements: AtomicU64::new(0),
        }
    }

    /// From now on the disk has `free_bytes` free.
    pub fn set_free_bytes(&self, free_bytes: u64) {
        self.free_bytes.store(free_bytes, Ordering::SeqCst);
    }

    /// How many times the free space was measured so far.
    pub fn n_measurements(&self) -> u64 {
        self.n_measurements.load(Ordering::SeqCst)
    }
}

impl DiskSpace for ManualDiskSpace {
    fn free_bytes(&self, _path: &Path) -> io::Result<u64> {
        self.n_measurements.fetch_add(1, Ordering::SeqCst);
        Ok(self.free_bytes.load(Ordering::SeqCst))
    }
}

/// Whole mebibytes in `bytes`, for messages.
pub(crate) fn mib(bytes: u64) -> u64 {
    bytes / (1024 * 1024)
}

/// Whether `error` or any error it was caused by is the operating system saying the disk (or
/// the user's quota on it) is full.
pub(crate) fn caused_by_full_disk(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(io_error) = error.downcast_ref::<io::Error>()
            && matches!(
                io_error.kind(),
                io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
            )
        {
            return true;
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StoreError;

    #[cfg(unix)]
    #[test]
    fn a_full_disk_is_found_however_deep_in_the_source_chain() {
        let enospc = io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error());
        let engine = fjall::Error::Io(enospc);
        let error = StoreError::storage("cannot commit a batch", engine);
        assert!(caused_by_full_disk(&error), "{error}");
    }

    #[test]
    fn other_io_errors_are_not_a_full_disk() {
        let error = StoreError::storage(
            "cannot commit a batch",
            fjall::Error::Io(io::Error::other("injected fsync failure")),
        );
        assert!(!caused_by_full_disk(&error), "{error}");
        assert!(!caused_by_full_disk(&StoreError::ShutDown));
    }

    #[test]
    fn the_system_measures_the_directory_it_is_given() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let free = SystemDiskSpace
            .free_bytes(dir.path())
            .expect("statvfs answers for an existing directory");
        assert!(free > 0, "a disk tests run on has some space");
        let gone = SystemDiskSpace.free_bytes(&dir.path().join("absent"));
        assert!(gone.is_err(), "a missing path is an error: {gone:?}");
    }
}
