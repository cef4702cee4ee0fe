//! The key-value layer under the store: keyspaces, atomic batches, durability.
//!
//! Everything the store persists goes through [`Backend`], so tests can wrap the real engine
//! (fjall) and make a commit fail the way a failed `fsync` would. This is the only module that
//! names fjall: values come back as [`StoredBytes`], engine errors as [`StoreError::Storage`].

use std::ops::Bound;
use std::path::Path;

use crate::error::{Result, StoreError};

/// The keyspaces the store uses. See `docs/storage-format.md` for their keys and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Space {
    /// Catalog: databases, containers (definition and feed-range state), counters.
    Meta,
    /// `(container, epk, id)` → pointer to the item's latest version in `Feed`.
    Docs,
    /// `(container, segment, lsn)` → the latest version of an item (the latest-version feed).
    Feed,
    /// `(container, segment, lsn)` → one change record (all-versions-and-deletes feed).
    Avad,
    /// `(container, expiry second, lsn)` → the item an expiry entry is for.
    Ttl,
    /// `(container, second)` → the first LSN committed in that second.
    Time,
    /// `(container, generation, term, segment, lsn)` → nothing: the range index.
    Index,
}

impl Space {
    /// All keyspaces, in a fixed order.
    pub(crate) const ALL: [Space; 7] = [
        Space::Meta,
        Space::Docs,
        Space::Feed,
        Space::Avad,
        Space::Ttl,
        Space::Time,
        Space::Index,
    ];

    fn name(self) -> &'static str {
        match self {
            Space::Meta => "meta",
            Space::Docs => "docs",
            Space::Feed => "feed",
            Space::Avad => "avad",
            Space::Ttl => "ttl",
            Space::Time => "time",
            Space::Index => "index",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How far a commit must reach before it is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    /// `fdatasync` the journal before acknowledging: survives power loss. The default.
    #[default]
    Fsync,
    /// Hand the journal to the operating system before acknowledging: survives a killed
    /// process, not a power loss. For tests and throwaway data only.
    Relaxed,
}

/// One write in an atomic batch: `Some(value)` puts, `None` deletes.
pub(crate) type Mutation = (Space, Vec<u8>, Option<Vec<u8>>);

/// Bytes read from storage. They share the engine's buffer: cloning is cheap and nothing is
/// copied. Read them as a `&[u8]`.
#[derive(Clone, Debug)]
pub(crate) struct StoredBytes(fjall::Slice);

impl std::ops::Deref for StoredBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for StoredBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// An owned key-value pair read from storage.
pub(crate) type KeyValue = (StoredBytes, StoredBytes);

/// The operations the store needs from a storage engine.
pub(crate) trait Backend: Send + Sync {
    /// Reads one key.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<StoredBytes>>;
    /// Iterates keys in `[start, end)` order (or reversed), reading committed data.
    fn scan<'a>(
        &'a self,
        space: Space,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<KeyValue>> + 'a>;
    /// A view of the committed data as it is now: reads through it all see this moment,
    /// whatever commits in between.
    fn snapshot(&self) -> Box<dyn Snapshot + '_>;
    /// Applies all mutations atomically, durably as `durability` says.
    fn commit(&self, mutations: Vec<Mutation>, durability: Durability) -> Result<()>;
    /// Makes everything durable before the store closes.
    fn shut_down(&self) -> Result<()>;
    /// Bytes the data takes on disk (journal and tables), as the engine accounts them.
    fn disk_space_bytes(&self) -> Result<u64>;
}

/// Reads of one moment of the committed data (see [`Backend::snapshot`]).
pub(crate) trait Snapshot {
    /// Reads one key as it was when the snapshot was taken.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<StoredBytes>>;
    /// Iterates keys in `[start, end)` as they were when the snapshot was taken.
    fn scan<'a>(
        &'a self,
        space: Space,
        start: &[u8],
        end: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KeyValue>> + 'a>;
}

/// Iterates committed keys in `[start, end)`.
pub(crate) fn scan<'a>(
    backend: &'a dyn Backend,
    space: Space,
    start: &[u8],
    end: &[u8],
) -> Box<dyn Iterator<Item = Result<KeyValue>> + 'a> {
    backend.scan(
        space,
        Bound::Included(start.to_vec()),
        Bound::Excluded(end.to_vec()),
        false,
    )
}

/// Opens the backend in `path` as `options` say: the production engine, wrapped to fail the
/// planned commits when the options carry a fault plan (tests only).
///
/// # Errors
/// [`StoreError::Locked`] if another process holds the directory, [`StoreError::Storage`] if
/// the engine cannot open it otherwise.
pub(crate) fn open(path: &Path, options: &crate::StoreOptions) -> Result<Box<dyn Backend>> {
    let engine = FjallBackend::open(path)?;
    #[cfg(feature = "fault-injection")]
    if let Some(plan) = &options.fault_plan {
        return Ok(Box::new(FaultInjectingBackend {
            inner: engine,
            plan: std::sync::Arc::clone(plan),
        }));
    }
    #[cfg(not(feature = "fault-injection"))]
    let _ = options;
    Ok(Box::new(engine))
}

/// How long closing waits for the memtables to be flushed.
const SHUT_DOWN_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The production backend: one fjall database with one keyspace per [`Space`].
struct FjallBackend {
    database: fjall::Database,
    keyspaces: Vec<fjall::Keyspace>,
    /// The data directory, for the messages about damaged files.
    path: std::path::PathBuf,
}

impl FjallBackend {
    /// Opens (or creates) the database in `path`, replaying its journal;
    /// [`StoreError::Locked`] if another process holds it.
    fn open(path: &Path) -> Result<Self> {
        check_journal(path)?;
        let database = fjall::Database::builder(path)
            // Keep journals bounded so a restart replays little.
            .max_journaling_size(64 * 1024 * 1024)
            .open()
            .map_err(|error| match error {
                fjall::Error::Locked => StoreError::Locked {
                    path: path.to_owned(),
                    holder: None,
                },
                fjall::Error::JournalRecovery(reason) => {
                    damaged_journal(path, &format!("{reason:?}"))
                }
                other => read_error(path, "cannot open the database", other),
            })?;
        let keyspaces = Space::ALL
            .iter()
            .map(|space| database.keyspace(space.name(), fjall::KeyspaceCreateOptions::default))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|error| read_error(path, "cannot open the keyspaces", error))?;
        clear_closed_cleanly(path).map_err(|error| {
            StoreError::storage(
                format!("cannot remove {}", path.join(CLEAN_CLOSE_FILE).display()),
                error,
            )
        })?;
        Ok(FjallBackend {
            database,
            keyspaces,
            path: path.to_owned(),
        })
    }

    fn keyspace(&self, space: Space) -> &fjall::Keyspace {
        &self.keyspaces[space.index()]
    }

    /// The error for a failed read: [`StoreError::Corrupt`] when what was read fails its
    /// check, a storage error otherwise.
    fn read_error(&self, context: &str, error: fjall::Error) -> StoreError {
        read_error(&self.path, context, error)
    }
}

/// Whether an engine error says that bytes read from disk are not what was written: a block
/// that fails its checksum, does not decompress or does not decode.
fn is_damaged_data(error: &fjall::Error) -> bool {
    match error {
        fjall::Error::Storage(inner) => !matches!(inner, fjall::LsmError::Io(_)),
        fjall::Error::Decompress(_)
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::InvalidVersion(_) => true,
        _ => false,
    }
}

/// The error for an engine failure while reading `path`: damaged data is
/// [`StoreError::Corrupt`], naming the directory and the way forward; anything else a storage
/// error.
fn read_error(path: &Path, context: &str, error: fjall::Error) -> StoreError {
    if !is_damaged_data(&error) {
        return StoreError::storage(context, error);
    }
    tracing::error!(data_dir = %path.display(), %error, "damaged data read from disk");
    StoreError::Corrupt(format!(
        "the data in {} is damaged: {context}: a table block read from disk fails its check \
         ({error}), so bytes of a table file under {} changed on disk. The rest of the data \
         can still be read; `tributary repair --data-dir {}` (with the server stopped) names \
         the damaged files; restore the data directory from a backup to get this part back",
        path.display(),
        path.join("keyspaces").display(),
        path.display()
    ))
}

/// Reads the journal before fjall replays it. fjall refuses a batch that fails its checksum,
/// but stops at an undecodable byte and drops every later batch without a word; this check
/// finds both, so a damaged journal is always refused with [`damaged_journal`].
fn check_journal(path: &Path) -> Result<()> {
    let scan = crate::repair::scan_journal(path)
        .map_err(|error| StoreError::storage("cannot read the journal", error))?;
    match scan.damage {
        Some(damage) => Err(damaged_journal(
            path,
            &format!(
                "{} at byte {} of {}",
                damage.kind,
                damage.offset,
                damage.file.display()
            ),
        )),
        None => Ok(()),
    }
}

/// The error for a journal that fails recovery: where, why, and what to do. A torn batch at
/// the end (a crash mid-write) is not this: fjall drops it on its own.
fn damaged_journal(path: &Path, reason: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "the journal in {} is damaged ({reason}; a write torn by a crash is recovered on its \
         own, so these bytes changed on disk). The directory was left as it was: run \
         `tributary repair --data-dir {}` to see what cutting the journal at the damage \
         would drop and then to cut it (`--apply`), or restore the data directory from a backup",
        path.display(),
        path.display()
    ))
}

impl Backend for FjallBackend {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<StoredBytes>> {
        let value = self
            .keyspace(space)
            .get(key)
            .map_err(|error| self.read_error("cannot read a key", error))?;
        Ok(value.map(StoredBytes))
    }

    fn snapshot(&self) -> Box<dyn Snapshot + '_> {
        Box::new(FjallSnapshot {
            backend: self,
            snapshot: self.database.snapshot(),
        })
    }

    fn scan<'a>(
        &'a self,
        space: Space,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<KeyValue>> + 'a> {
        let iter = self.keyspace(space).range::<Vec<u8>, _>((start, end));
        let map = |guard: fjall::Guard| match guard.into_inner() {
            Ok((key, value)) => Ok((StoredBytes(key), StoredBytes(value))),
            Err(error) => Err(self.read_error("cannot read a key range", error)),
        };
        if reverse {
            Box::new(iter.rev().map(map))
        } else {
            Box::new(iter.map(map))
        }
    }

    fn commit(&self, mutations: Vec<Mutation>, durability: Durability) -> Result<()> {
        let mode = match durability {
            Durability::Fsync => fjall::PersistMode::SyncData,
            Durability::Relaxed => fjall::PersistMode::Buffer,
        };
        // Sized up front: growing the batch item by item reallocated it several times per
        // commit.
        let mut batch =
            fjall::OwnedWriteBatch::with_capacity(self.database.clone(), mutations.len())
                .durability(Some(mode));
        for (space, key, value) in mutations {
            match value {
                Some(value) => batch.insert(self.keyspace(space), key, value),
                None => batch.remove(self.keyspace(space), key),
            }
        }
        batch.commit().map_err(|error| match error {
            // fjall stops taking writes for good once a background flush or compaction
            // failed; its own log line says why, and a full disk is the usual cause.
            fjall::Error::Poisoned => StoreError::storage(
                "cannot commit a batch: the storage engine stopped taking writes after a \
                 background flush or compaction failed (the log says why; a full disk is the \
                 usual cause)",
                error,
            ),
            other => StoreError::storage("cannot commit a batch", other),
        })
    }

    fn disk_space_bytes(&self) -> Result<u64> {
        self.database
            .disk_space()
            .map_err(|error| StoreError::storage("cannot measure the data on disk", error))
    }

    fn shut_down(&self) -> Result<()> {
        self.database
            .persist(fjall::PersistMode::SyncAll)
            .map_err(|error| StoreError::storage("cannot sync the journal", error))?;
        // Flush the memtables to tables so that the next open does not replay the journal.
        // The journal is already synced: if flushing fails or takes too long, the next open
        // replays it as after a crash. fjall's own `rotate_memtable_and_wait` can wait
        // forever once its flush workers are idle, hence this bounded wait.
        for keyspace in &self.keyspaces {
            if let Err(error) = keyspace.rotate_memtable() {
                tracing::warn!(%error, "cannot flush a memtable at close; the next open replays the journal");
                return Ok(());
            }
        }
        let started = std::time::Instant::now();
        while self
            .keyspaces
            .iter()
            .any(|keyspace| keyspace.sealed_memtable_count() > 0)
        {
            // A flush worker that failed (its directory removed, a full disk) poisons the
            // database and never clears its memtable: no point waiting for it.
            if let Err(error) = self.database.persist(fjall::PersistMode::Buffer) {
                tracing::warn!(%error, "memtables cannot be flushed at close; the next open replays the journal");
                return Ok(());
            }
            if started.elapsed() >= SHUT_DOWN_FLUSH_LIMIT {
                tracing::warn!(
                    limit_s = SHUT_DOWN_FLUSH_LIMIT.as_secs(),
                    "memtables not flushed in time at close; the next open replays the journal"
                );
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if let Err(error) = mark_closed_cleanly(&self.path, self.database.seqno()) {
            tracing::warn!(%error, "cannot record the clean close");
        }
        Ok(())
    }
}

/// The file a clean close leaves in the data directory: every memtable was flushed, so every
/// batch still in the journal is also in the tables of each keyspace it writes. It holds
/// fjall's next sequence number at the close; the next open removes it before any write.
/// `tributary repair` relies on it to cut a damaged journal of a cleanly closed store without
/// losing anything.
const CLEAN_CLOSE_FILE: &str = "closed-cleanly";

/// Records a clean close (see [`CLEAN_CLOSE_FILE`]), durably.
fn mark_closed_cleanly(path: &Path, next_seqno: u64) -> std::io::Result<()> {
    let file_path = path.join(CLEAN_CLOSE_FILE);
    std::fs::write(&file_path, format!("{next_seqno}\n"))?;
    std::fs::File::open(&file_path)?.sync_all()?;
    std::fs::File::open(path)?.sync_all()
}

/// Removes the clean-close record before the store writes again, durably.
fn clear_closed_cleanly(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path.join(CLEAN_CLOSE_FILE)) {
        Ok(()) => std::fs::File::open(path)?.sync_all(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// fjall's next sequence number at the last clean close, when the directory was closed
/// cleanly and not opened since.
pub(crate) fn closed_cleanly_at(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path.join(CLEAN_CLOSE_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A fjall snapshot over the backend's keyspaces.
struct FjallSnapshot<'a> {
    backend: &'a FjallBackend,
    snapshot: fjall::Snapshot,
}

impl Snapshot for FjallSnapshot<'_> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<StoredBytes>> {
        use fjall::Readable as _;
        let value = self
            .snapshot
            .get(self.backend.keyspace(space), key)
            .map_err(|error| self.backend.read_error("cannot read a key", error))?;
        Ok(value.map(StoredBytes))
    }

    fn scan<'a>(
        &'a self,
        space: Space,
        start: &[u8],
        end: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KeyValue>> + 'a> {
        use fjall::Readable as _;
        Box::new(
            self.snapshot
                .range(self.backend.keyspace(space), start..end)
                .map(|guard| match guard.into_inner() {
                    Ok((key, value)) => Ok((StoredBytes(key), StoredBytes(value))),
                    Err(error) => Err(self.backend.read_error("cannot read a key range", error)),
                }),
        )
    }
}

/// A backend wrapper that fails chosen commits, as a failed `fsync` would: the data of a
/// failed commit may or may not have reached the disk, and the caller is told it failed.
#[cfg(feature = "fault-injection")]
struct FaultInjectingBackend {
    inner: FjallBackend,
    plan: std::sync::Arc<crate::FaultPlan>,
}

#[cfg(feature = "fault-injection")]
impl Backend for FaultInjectingBackend {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<StoredBytes>> {
        self.inner.get(space, key)
    }

    fn scan<'a>(
        &'a self,
        space: Space,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        reverse: bool,
    ) -> Box<dyn Iterator<Item = Result<KeyValue>> + 'a> {
        self.inner.scan(space, start, end, reverse)
    }

    fn snapshot(&self) -> Box<dyn Snapshot + '_> {
        self.inner.snapshot()
    }

    fn shut_down(&self) -> Result<()> {
        self.inner.shut_down()
    }

    fn disk_space_bytes(&self) -> Result<u64> {
        self.inner.disk_space_bytes()
    }

    fn commit(&self, mutations: Vec<Mutation>, durability: Durability) -> Result<()> {
        match self.plan.next_commit() {
            crate::FaultAction::Succeed => self.inner.commit(mutations, durability),
            crate::FaultAction::FailAfterWrite => {
                // The bytes reach the journal but the sync "fails".
                self.inner.commit(mutations, Durability::Relaxed)?;
                Err(StoreError::storage(
                    "cannot commit a batch",
                    std::io::Error::other("injected fsync failure"),
                ))
            }
            crate::FaultAction::FailBeforeWrite => Err(StoreError::storage(
                "cannot commit a batch",
                std::io::Error::other("injected write failure"),
            )),
            crate::FaultAction::FailNoSpace => Err(StoreError::storage(
                "cannot commit a batch",
                fjall::Error::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_shut_down_leaves_the_data_in_tables_so_the_next_open_replays_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let backend = FjallBackend::open(dir.path()).expect("open");
            let mutations = (0..1000u32)
                .map(|i| (Space::Feed, i.to_be_bytes().to_vec(), Some(vec![7; 100])))
                .collect();
            backend
                .commit(mutations, Durability::Relaxed)
                .expect("commit");
            assert_eq!(
                backend.keyspace(Space::Feed).table_count(),
                0,
                "still in memory"
            );
            backend.shut_down().expect("shut down");
        }
        let backend = FjallBackend::open(dir.path()).expect("reopen");
        let feed = backend.keyspace(Space::Feed);
        assert!(feed.table_count() >= 1, "the memtable was flushed at close");
        assert_eq!(feed.sealed_memtable_count(), 0);
        assert!(
            feed.approximate_len() >= 1000
                && backend
                    .get(Space::Feed, &999u32.to_be_bytes())
                    .expect("get")
                    .is_some(),
            "every key is there"
        );
    }

    #[test]
    fn a_damaged_journal_is_a_corrupt_error_naming_the_directory_and_its_journal_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let backend = FjallBackend::open(dir.path()).expect("open");
            let mutations = (0..1000u32)
                .map(|i| (Space::Feed, i.to_be_bytes().to_vec(), Some(vec![7; 100])))
                .collect();
            backend
                .commit(mutations, Durability::Fsync)
                .expect("commit");
            // Dropped without `shut_down`, as by a crash: the next open replays the journal.
        }
        let journal = dir.path().join("0.jnl");
        let mut bytes = std::fs::read(&journal).expect("the journal is there");
        bytes[5_000] ^= 0xff;
        std::fs::write(&journal, bytes).expect("write the damaged journal");
        let error = FjallBackend::open(dir.path())
            .err()
            .expect("a damaged journal does not open");
        let message = error.to_string();
        assert!(matches!(error, StoreError::Corrupt(_)), "{message}");
        assert!(message.contains("is damaged"), "{message}");
        assert!(message.contains("0.jnl"), "{message}");
        assert!(
            message.contains("restore the data directory from a backup"),
            "{message}"
        );
    }

    /// Every file under `dir` whose path has a `tables` component.
    fn table_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(next) = pending.pop() {
            for entry in std::fs::read_dir(&next).expect("readable").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.components().any(|c| c.as_os_str() == "tables") {
                    found.push(path);
                }
            }
        }
        found
    }

    #[test]
    fn a_damaged_table_is_a_corrupt_error_naming_the_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let backend = FjallBackend::open(dir.path()).expect("open");
            let mutations = (0..2000u32)
                .map(|i| {
                    (
                        Space::Feed,
                        i.to_be_bytes().to_vec(),
                        Some(vec![i as u8; 300]),
                    )
                })
                .collect();
            backend
                .commit(mutations, Durability::Fsync)
                .expect("commit");
            backend
                .shut_down()
                .expect("shut down: the memtable becomes a table");
        }
        let tables = table_files(dir.path());
        let table = tables
            .iter()
            .max_by_key(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0))
            .expect("a table file");
        let mut bytes = std::fs::read(table).expect("the table is there");
        let middle = bytes.len() / 3;
        bytes[middle] ^= 0xff;
        std::fs::write(table, bytes).expect("write the damaged table");
        let backend = FjallBackend::open(dir.path()).expect("the tables are read lazily");
        let point_read = (0..2000u32)
            .find_map(|i| backend.get(Space::Feed, &i.to_be_bytes()).err())
            .expect("a read of the damaged block fails");
        let scanned = scan(&backend, Space::Feed, &[], &[0xff; 8])
            .find_map(Result::err)
            .expect("a scan over the damaged block fails");
        let snapshot = backend.snapshot();
        let in_snapshot = snapshot
            .scan(Space::Feed, &[], &[0xff; 8])
            .find_map(Result::err)
            .expect("so does a scan of a snapshot");
        for error in [point_read, scanned, in_snapshot] {
            let message = error.to_string();
            assert!(matches!(error, StoreError::Corrupt(_)), "{message}");
            assert!(message.contains("is damaged"), "{message}");
            assert!(
                message.contains(&dir.path().display().to_string()),
                "{message}"
            );
            assert!(message.contains("restore the data directory"), "{message}");
        }
        let intact = backend
            .get(Space::Feed, &0u32.to_be_bytes())
            .map(|value| value.is_some());
        assert!(
            matches!(intact, Ok(true) | Err(StoreError::Corrupt(_))),
            "a key in another block reads or fails as corrupt, never panics"
        );
    }
}
