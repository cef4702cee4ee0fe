//! `tributary repair`: makes a data directory whose journal is damaged open again, keeping
//! the valid prefix, or refuses when that cannot be done consistently.
//!
//! Each keyspace's state is its tables (every batch up to the keyspace's highest flushed
//! sequence number) plus the journal's batches after that. Cutting the journal at the
//! damaged batch is consistent when every batch it drops is either in the tables of every
//! keyspace it writes (kept) or in none of them (lost): then every keyspace reflects the
//! same batches, a prefix of the commits. A damaged batch's keys cannot be trusted, so it
//! counts as writing every keyspace. After a clean close every memtable was flushed, so every
//! batch in the journal is in the tables of each keyspace it writes and the cut loses nothing
//! (the close leaves a `closed-cleanly` file, removed by the next open). The repair reads the journal and the tables' sequence
//! numbers first and changes nothing unless the cut is consistent; it moves what it drops
//! into a `repair-<time>` folder of the data directory, so no byte is destroyed.

mod journal;
mod tables;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub(crate) use journal::scan as scan_journal;
use journal::{Batch, Damage};
pub use tables::DamagedTable;
use tables::KeyspaceTables;

use crate::{Store, StoreError, StoreOptions};

/// Why a repair could not be done.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The directory holds no Tributary store.
    #[error("{0} is not a Tributary data directory (it has no `version` file)")]
    NotADataDirectory(PathBuf),
    /// Another process has the directory open.
    #[error(
        "the data directory {path} is in use{}: stop that process before repairing",
        holder.as_ref().map(|holder| format!(" by {holder}")).unwrap_or_default()
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// The process holding it, as it recorded itself.
        holder: Option<String>,
    },
    /// Reading or changing a file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A keyspace's tables could not be read.
    #[error("cannot read the tables of {path}: {source}")]
    Tables {
        /// The data directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: lsm_tree::Error,
    },
    /// Cutting the journal would leave keyspaces disagreeing; nothing was changed.
    #[error(
        "the journal of {path} cannot be cut consistently: {detail}. Nothing was changed; \
         restore the data directory from a backup"
    )]
    Inconsistent {
        /// The data directory.
        path: PathBuf,
        /// Which keyspaces hold which batches.
        detail: String,
    },
    /// The repaired directory did not open as a store.
    #[error("the repaired data directory does not open: {0}")]
    Store(#[from] StoreError),
}

/// Whether [`repair`] changes the directory or only says what it would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairMode {
    /// Read only: report the damage and what a repair would drop.
    DryRun,
    /// Cut the journal and open the repaired store once to check it.
    Apply,
}

/// What a repair found and did.
#[derive(Debug, Clone)]
pub struct RepairReport {
    /// The data directory.
    pub path: PathBuf,
    /// The journal files read, with their sizes.
    pub journal_files: Vec<(PathBuf, u64)>,
    /// Good batches before the damage (all of them when there is none).
    pub good_batches: u64,
    /// The damage found; `None` when the journal is intact.
    pub damage: Option<DamageReport>,
    /// Whether the directory was changed.
    pub applied: bool,
    /// Where the dropped journal bytes were moved (when applied and something was dropped).
    pub backup: Option<PathBuf>,
    /// How many table files were checked against their recorded checksums.
    pub tables_checked: usize,
    /// Table files (or keyspaces) whose bytes changed on disk: a repair cannot cut them away.
    pub damaged_tables: Vec<DamagedTable>,
}

/// The damaged place and what cutting there drops.
#[derive(Debug, Clone)]
pub struct DamageReport {
    /// The journal file holding the first damaged batch.
    pub file: PathBuf,
    /// The byte offset where it starts (the cut point).
    pub offset: u64,
    /// What is wrong there.
    pub reason: String,
    /// Its sequence number, when readable.
    pub seqno: Option<u64>,
    /// The last good batch's sequence number.
    pub last_good_seqno: Option<u64>,
    /// Complete batches found after the damage.
    pub batches_after: usize,
    /// Batches dropped from the journal that every keyspace they write already holds in
    /// its tables: nothing of them is lost.
    pub kept_in_tables: usize,
    /// Whether the damaged batch itself was already in every keyspace's tables.
    pub damaged_batch_kept: bool,
    /// The writes lost, per container.
    pub lost: Vec<LostWrites>,
    /// Lost writes of catalog records (databases, containers with their LSN counters,
    /// users, counters): one per record per lost batch.
    pub lost_catalog_changes: usize,
}

/// The writes of one container that the cut loses.
#[derive(Debug, Clone)]
pub struct LostWrites {
    /// The container's internal id.
    pub cid: u32,
    /// `database/container`, when the repaired catalog still knows it.
    pub name: Option<String>,
    /// How many new item versions (creates, replaces; with all versions kept, also deletes
    /// and expiries) are lost.
    pub versions: usize,
    /// How many item removals (deletes, expiries) are lost.
    pub deletions: usize,
    /// The lowest and highest LSN of the lost versions.
    pub lsns: Option<(u64, u64)>,
}

impl DamageReport {
    /// Whether the cut loses nothing (every dropped batch is already in the tables).
    pub fn loses_nothing(&self) -> bool {
        self.damaged_batch_kept && self.kept_in_tables == self.batches_after
    }
}

/// Checks the journal of the data directory at `path` and, in [`RepairMode::Apply`], cuts it
/// at the first damaged batch when that keeps the store consistent.
pub fn repair(path: &Path, mode: RepairMode) -> Result<RepairReport, RepairError> {
    if !path.join("version").is_file() {
        return Err(RepairError::NotADataDirectory(path.to_owned()));
    }
    let lock = lock_data_dir(path)?;
    let scan = journal::scan(path).map_err(|source| RepairError::Io {
        context: format!("cannot read the journal of {}", path.display()),
        source,
    })?;
    let mut report = RepairReport {
        path: path.to_owned(),
        journal_files: scan
            .files
            .iter()
            .map(|file| (file.path.clone(), file.len))
            .collect(),
        good_batches: scan.good_batches,
        damage: None,
        applied: false,
        backup: None,
        tables_checked: 0,
        damaged_tables: Vec::new(),
    };
    let Some(damage) = &scan.damage else {
        check_tables(path, &mut report)?;
        return Ok(report);
    };
    let keyspaces = tables::read(path).map_err(|source| RepairError::Tables {
        path: path.to_owned(),
        source,
    })?;
    let plan = match crate::storage::closed_cleanly_at(path) {
        Some(next_seqno) if journal_predates(&scan, next_seqno) => CutPlan {
            lost: Vec::new(),
            damaged_batch_kept: true,
        },
        _ => plan_cut(path, &scan, damage, &keyspaces)?,
    };
    let mut damage_report = DamageReport {
        file: damage.file.clone(),
        offset: damage.offset,
        reason: damage.kind.to_string(),
        seqno: damage.seqno,
        last_good_seqno: scan.last_good_seqno,
        batches_after: scan.after_damage.len(),
        kept_in_tables: scan.after_damage.len() - plan.lost.len(),
        damaged_batch_kept: plan.damaged_batch_kept,
        lost: Vec::new(),
        lost_catalog_changes: 0,
    };
    tally_lost(&plan.lost, &keyspaces, &mut damage_report);
    if mode == RepairMode::Apply {
        report.backup = Some(cut_journal(path, &scan, damage)?);
        report.applied = true;
    }
    check_tables(path, &mut report)?;
    drop(lock);
    // Opening checks the catalog and names the containers that lost writes; a store with
    // damaged tables may not open, and the report says why already.
    if report.applied && report.damaged_tables.is_empty() {
        let store = Store::open(path, StoreOptions::default())?;
        name_containers(&store, &mut damage_report.lost);
        store.close();
    }
    report.damage = Some(damage_report);
    Ok(report)
}

/// Checks every table file against its recorded checksum, into `report`.
fn check_tables(path: &Path, report: &mut RepairReport) -> Result<(), RepairError> {
    let (checked, damaged) = tables::verify(path).map_err(|source| RepairError::Tables {
        path: path.to_owned(),
        source,
    })?;
    report.tables_checked = checked;
    report.damaged_tables = damaged;
    Ok(())
}

/// Whether every batch sequence number the journal shows is below `next_seqno`, the next
/// number at the last clean close: then the journal was not written since, and every batch in
/// it is in the tables of each keyspace it writes (the close flushed every memtable).
fn journal_predates(scan: &journal::JournalScan, next_seqno: u64) -> bool {
    let highest_seen = scan
        .after_damage
        .iter()
        .map(|batch| batch.seqno)
        .chain(scan.last_good_seqno)
        .chain(scan.damage.as_ref().and_then(|damage| damage.seqno))
        .max();
    highest_seen.is_none_or(|seqno| seqno < next_seqno)
}

/// The batches a consistent cut loses, or why there is no consistent cut.
struct CutPlan<'a> {
    /// Complete batches after the damage that no keyspace's tables hold.
    lost: Vec<&'a Batch>,
    /// Whether the damaged stretch is in every keyspace's tables.
    damaged_batch_kept: bool,
}

/// Decides whether cutting at `damage` is consistent (see the module docs).
fn plan_cut<'a>(
    path: &Path,
    scan: &'a journal::JournalScan,
    damage: &Damage,
    keyspaces: &[KeyspaceTables],
) -> Result<CutPlan<'a>, RepairError> {
    let persisted = |id: u64| {
        keyspaces
            .iter()
            .find(|keyspace| keyspace.id == id)
            .and_then(|keyspace| keyspace.persisted_seqno)
            .unwrap_or(0)
    };
    let floor = scan.last_good_seqno.unwrap_or(0);
    let highest = keyspaces
        .iter()
        .filter_map(|keyspace| keyspace.persisted_seqno)
        .max()
        .unwrap_or(0);
    let lowest = keyspaces
        .iter()
        .map(|keyspace| keyspace.persisted_seqno.unwrap_or(0))
        .min()
        .unwrap_or(0);
    let inconsistent = |detail: String| RepairError::Inconsistent {
        path: path.to_owned(),
        detail: format!(
            "{detail} (tables hold batches up to: {}; the last good journal batch is {floor})",
            keyspaces
                .iter()
                .map(|keyspace| format!(
                    "{} {}",
                    keyspace.name,
                    keyspace.persisted_seqno.unwrap_or(0)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    // The damaged stretch holds batches after the last good one and before the first
    // complete batch found after it; their keys are unknown, so they count as writing every
    // keyspace.
    let damaged_batch_kept = if highest <= floor {
        false
    } else {
        let stretch_end = scan
            .after_damage
            .first()
            .map(|batch| batch.seqno.saturating_sub(1))
            .or(damage.seqno);
        let kept = match stretch_end {
            // Only the damaged batch's own number is known when nothing follows it: every
            // keyspace must hold the same batches for the cut to keep them all.
            Some(end) if !scan.after_damage.is_empty() => lowest >= end,
            _ => lowest == highest && damage.seqno.is_some_and(|seqno| lowest >= seqno),
        };
        if !kept {
            return Err(inconsistent(
                "some keyspaces' tables already hold the damaged batch and others do not"
                    .to_owned(),
            ));
        }
        true
    };
    let mut lost = Vec::new();
    let mut last_kept = None;
    for batch in &scan.after_damage {
        let held: Vec<bool> = batch
            .items
            .iter()
            .map(|item| persisted(item.keyspace) >= batch.seqno)
            .collect();
        if held.iter().all(|&held| held) {
            last_kept = Some(batch.seqno);
        } else if held.iter().any(|&held| held) {
            return Err(inconsistent(format!(
                "batch {} after the damage is in the tables of some keyspaces it writes and \
                 not others",
                batch.seqno
            )));
        } else {
            lost.push(batch);
        }
    }
    // What is kept must be a prefix: no lost batch may come before a kept one.
    if let (Some(first_lost), Some(last_kept)) = (lost.first(), last_kept)
        && first_lost.seqno < last_kept
    {
        return Err(inconsistent(format!(
            "batch {} after the damage is in no table while the later batch {last_kept} is",
            first_lost.seqno
        )));
    }
    Ok(CutPlan {
        lost,
        damaged_batch_kept,
    })
}

/// Counts the lost batches' changes per container (new versions from their `feed` and
/// `avad` keys, deletions from their `docs` removals) and their catalog changes (`meta`).
fn tally_lost(lost: &[&Batch], keyspaces: &[KeyspaceTables], report: &mut DamageReport) {
    let id_of = |name: &str| {
        keyspaces
            .iter()
            .find(|keyspace| keyspace.name == name)
            .map(|keyspace| keyspace.id)
    };
    let (meta, docs, feed, avad) = (id_of("meta"), id_of("docs"), id_of("feed"), id_of("avad"));
    let mut per_container: BTreeMap<u32, (BTreeSet<u64>, usize)> = BTreeMap::new();
    for item in lost.iter().flat_map(|batch| &batch.items) {
        let keyspace = Some(item.keyspace);
        if keyspace == meta {
            report.lost_catalog_changes += 1;
        } else if keyspace == docs && item.removes {
            if let Some(cid) = key_cid(&item.key) {
                per_container.entry(cid).or_default().1 += 1;
            }
        } else if (keyspace == feed && !item.removes) || keyspace == avad {
            // A removal in `feed` is the old version of a replaced or deleted item.
            if let Some((cid, lsn)) = feed_key(&item.key) {
                per_container.entry(cid).or_default().0.insert(lsn);
            }
        }
    }
    report.lost = per_container
        .into_iter()
        .map(|(cid, (lsns, deletions))| LostWrites {
            cid,
            name: None,
            versions: lsns.len(),
            deletions,
            lsns: lsns
                .first()
                .zip(lsns.last())
                .map(|(low, high)| (*low, *high)),
        })
        .collect();
}

/// The container id a `docs`, `feed` or `avad` key starts with.
fn key_cid(key: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(key.get(0..4)?.try_into().ok()?))
}

/// `(cid, lsn)` of a `feed` or `avad` key (`cid u32 ‖ segment u32 ‖ lsn u64`).
fn feed_key(key: &[u8]) -> Option<(u32, u64)> {
    let cid = key_cid(key)?;
    let lsn = u64::from_be_bytes(key.get(8..16)?.try_into().ok()?);
    (key.len() == 16).then_some((cid, lsn))
}

/// Names the containers of `lost` from the repaired store's catalog.
fn name_containers(store: &Store, lost: &mut [LostWrites]) {
    let catalog = store.shared.catalog();
    for writes in lost {
        writes.name = catalog
            .containers
            .get(&writes.cid)
            .map(|record| format!("{}/{}", record.database, record.definition.id));
    }
}

/// Moves the damaged journal file and every later one into a new `repair-<time>` folder,
/// then puts back the damaged file's bytes before `damage.offset`: the journal now ends at
/// the last good batch. Returns the folder.
fn cut_journal(
    path: &Path,
    scan: &journal::JournalScan,
    damage: &Damage,
) -> Result<PathBuf, RepairError> {
    let io = |context: String| move |source| RepairError::Io { context, source };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let backup = path.join(format!("repair-{stamp}"));
    std::fs::create_dir(&backup).map_err(io(format!("cannot create {}", backup.display())))?;
    let damaged = scan
        .files
        .iter()
        .position(|file| file.path == damage.file)
        .unwrap_or(0);
    for file in &scan.files[damaged..] {
        let name = file.path.file_name().unwrap_or_default();
        let moved = backup.join(name);
        std::fs::rename(&file.path, &moved).map_err(io(format!(
            "cannot move {} to {}",
            file.path.display(),
            moved.display()
        )))?;
    }
    let moved = backup.join(damage.file.file_name().unwrap_or_default());
    let mut prefix =
        std::fs::File::open(&moved).map_err(io(format!("cannot read {}", moved.display())))?;
    let mut cut = std::fs::File::create_new(&damage.file)
        .map_err(io(format!("cannot create {}", damage.file.display())))?;
    std::io::copy(
        &mut std::io::Read::take(&mut prefix, damage.offset),
        &mut cut,
    )
    .map_err(io(format!("cannot write {}", damage.file.display())))?;
    cut.sync_all()
        .map_err(io(format!("cannot sync {}", damage.file.display())))?;
    for dir in [&backup, &path.to_path_buf()] {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .map_err(io(format!("cannot sync {}", dir.display())))?;
    }
    Ok(backup)
}

/// Takes fjall's lock on the directory for the time of the scan and cut.
fn lock_data_dir(path: &Path) -> Result<std::fs::File, RepairError> {
    let lock_path = path.join("lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|source| RepairError::Io {
            context: format!("cannot open {}", lock_path.display()),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RepairError::Locked {
            path: path.to_owned(),
            holder: crate::read_owner(path),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(RepairError::Io {
            context: format!("cannot lock {}", lock_path.display()),
            source,
        }),
    }
}

impl std::fmt::Display for RepairReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files = self
            .journal_files
            .iter()
            .map(|(path, len)| format!("{} ({len} bytes)", path.display()))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(f, "data directory: {}", self.path.display())?;
        writeln!(
            f,
            "journal files: {}",
            if files.is_empty() {
                "none".into()
            } else {
                files
            }
        )?;
        if self.damaged_tables.is_empty() {
            writeln!(
                f,
                "tables: {} files checked, each matches the checksum recorded when it was written",
                self.tables_checked
            )?;
        } else {
            writeln!(
                f,
                "damaged tables ({} of {} files; a table cannot be cut like the journal: restore \
                 the data directory from a backup to get their data back):",
                self.damaged_tables.len(),
                self.tables_checked
            )?;
            for table in &self.damaged_tables {
                writeln!(
                    f,
                    "  {} ({}): {}",
                    table.file.display(),
                    table.keyspace,
                    table.reason
                )?;
            }
        }
        let Some(damage) = &self.damage else {
            return writeln!(
                f,
                "the journal is intact: {} good batches; nothing to cut",
                self.good_batches
            );
        };
        writeln!(
            f,
            "damage: {} at byte {} of {} (batch {}); {} good batches before it, the last is batch {}",
            damage.reason,
            damage.offset,
            damage.file.display(),
            damage
                .seqno
                .map_or_else(|| "number unreadable".to_owned(), |seqno| seqno.to_string()),
            self.good_batches,
            damage
                .last_good_seqno
                .map_or_else(|| "none".to_owned(), |seqno| seqno.to_string()),
        )?;
        writeln!(
            f,
            "after it: {} complete batches, {} of them already in the tables of every keyspace they write",
            damage.batches_after, damage.kept_in_tables
        )?;
        if damage.loses_nothing() {
            writeln!(
                f,
                "cutting the journal there loses nothing: every dropped batch is already in the tables"
            )?;
        } else {
            writeln!(
                f,
                "cutting the journal there loses the damaged batch (its contents cannot be trusted){}",
                if damage.lost.is_empty() && damage.lost_catalog_changes == 0 {
                    String::new()
                } else {
                    " and:".to_owned()
                }
            )?;
            for writes in &damage.lost {
                writeln!(
                    f,
                    "  container {} (cid {}): {} item versions{}, {} item removals",
                    writes.name.as_deref().unwrap_or("(unknown)"),
                    writes.cid,
                    writes.versions,
                    writes
                        .lsns
                        .map(|(low, high)| format!(" (LSNs {low}..={high})"))
                        .unwrap_or_default(),
                    writes.deletions
                )?;
            }
            if damage.lost_catalog_changes > 0 {
                writeln!(
                    f,
                    "  {} writes of catalog records (container LSN counters and definitions, databases, users)",
                    damage.lost_catalog_changes
                )?;
            }
        }
        match (&self.backup, self.applied) {
            (Some(backup), true) => writeln!(
                f,
                "repaired: the journal now ends at the last good batch; the dropped files and bytes are in {}",
                backup.display()
            ),
            _ => writeln!(f, "dry run: nothing was changed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::journal::{BatchItem, DamageKind, JournalScan};
    use super::*;

    /// Keyspaces 1 (`meta`), 2 (`docs`), 3 (`feed`), with these tables' highest seqnos.
    fn keyspaces(persisted: [Option<u64>; 3]) -> Vec<KeyspaceTables> {
        ["meta", "docs", "feed"]
            .iter()
            .zip(persisted)
            .enumerate()
            .map(|(index, (name, persisted_seqno))| KeyspaceTables {
                id: index as u64 + 1,
                name: (*name).to_owned(),
                persisted_seqno,
            })
            .collect()
    }

    /// A `feed` key for container 7 at `lsn`.
    fn feed_key_for(lsn: u64) -> Vec<u8> {
        let mut key = 7u32.to_be_bytes().to_vec();
        key.extend(0u32.to_be_bytes());
        key.extend(lsn.to_be_bytes());
        key
    }

    /// Good batches 1..=10, damage in batch 11, then batches 12..=14 writing every keyspace.
    fn damaged_scan() -> (JournalScan, Damage) {
        let damage = Damage {
            file: PathBuf::from("0.jnl"),
            offset: 1000,
            kind: DamageKind::ChecksumMismatch,
            seqno: Some(11),
        };
        let after_damage = (12..=14)
            .map(|seqno| Batch {
                seqno,
                items: vec![
                    BatchItem {
                        keyspace: 1,
                        key: b"co\0x".to_vec(),
                        removes: false,
                    },
                    BatchItem {
                        keyspace: 2,
                        key: 7u32.to_be_bytes().to_vec(),
                        removes: seqno == 14,
                    },
                    BatchItem {
                        keyspace: 3,
                        key: feed_key_for(seqno + 100),
                        removes: false,
                    },
                ],
            })
            .collect();
        let scan = JournalScan {
            good_batches: 10,
            last_good_seqno: Some(10),
            damage: Some(damage.clone()),
            after_damage,
            ..JournalScan::default()
        };
        (scan, damage)
    }

    #[test]
    fn tables_behind_the_damage_make_a_consistent_cut_that_loses_the_rest() {
        let (scan, damage) = damaged_scan();
        let tables = keyspaces([Some(4), None, Some(10)]);
        let plan = plan_cut(Path::new("d"), &scan, &damage, &tables).expect("consistent");
        assert!(!plan.damaged_batch_kept);
        assert_eq!(plan.lost.len(), 3);
        let mut report = DamageReport {
            file: damage.file.clone(),
            offset: 0,
            reason: String::new(),
            seqno: None,
            last_good_seqno: None,
            batches_after: 3,
            kept_in_tables: 0,
            damaged_batch_kept: false,
            lost: Vec::new(),
            lost_catalog_changes: 0,
        };
        tally_lost(&plan.lost, &tables, &mut report);
        assert_eq!(report.lost_catalog_changes, 3);
        assert_eq!(report.lost.len(), 1);
        let lost = &report.lost[0];
        assert_eq!((lost.cid, lost.versions, lost.deletions), (7, 3, 1));
        assert_eq!(lost.lsns, Some((112, 114)));
    }

    #[test]
    fn tables_holding_everything_dropped_lose_nothing() {
        let (scan, damage) = damaged_scan();
        let plan = plan_cut(Path::new("d"), &scan, &damage, &keyspaces([Some(14); 3]))
            .expect("consistent");
        assert!(plan.damaged_batch_kept);
        assert!(plan.lost.is_empty());
    }

    #[test]
    fn one_keyspace_past_the_damage_and_another_behind_it_is_refused() {
        let (scan, damage) = damaged_scan();
        let error = plan_cut(
            Path::new("d"),
            &scan,
            &damage,
            &keyspaces([Some(10), Some(9), Some(12)]),
        )
        .err()
        .expect("inconsistent");
        let message = error.to_string();
        assert!(message.contains("docs 9, feed 12"), "{message}");
        assert!(
            message.contains("last good journal batch is 10"),
            "{message}"
        );
    }

    #[test]
    fn a_later_batch_in_some_of_its_keyspaces_tables_only_is_refused() {
        let (scan, damage) = damaged_scan();
        // Every keyspace holds the damaged stretch (up to 11), but batch 13 is only in feed.
        let error = plan_cut(
            Path::new("d"),
            &scan,
            &damage,
            &keyspaces([Some(12), Some(12), Some(13)]),
        )
        .err()
        .expect("inconsistent");
        assert!(error.to_string().contains("batch 13"), "{error}");
    }

    #[test]
    fn a_lost_batch_before_a_kept_one_is_refused() {
        let (mut scan, damage) = damaged_scan();
        // Batch 13 writes only `meta`, whose tables stop at 12; batch 14 writes only `docs`
        // and `feed`, whose tables hold it.
        scan.after_damage[1].items.truncate(1);
        scan.after_damage[2].items.remove(0);
        let error = plan_cut(
            Path::new("d"),
            &scan,
            &damage,
            &keyspaces([Some(12), Some(14), Some(14)]),
        )
        .err()
        .expect("inconsistent");
        assert!(
            error
                .to_string()
                .contains("batch 13 after the damage is in no table"),
            "{error}"
        );
    }

    #[test]
    fn a_damaged_last_batch_is_kept_only_when_every_keyspace_holds_the_same_batches() {
        let (mut scan, damage) = damaged_scan();
        scan.after_damage.clear();
        let same = plan_cut(Path::new("d"), &scan, &damage, &keyspaces([Some(11); 3]))
            .expect("consistent");
        assert!(same.damaged_batch_kept);
        assert!(
            plan_cut(
                Path::new("d"),
                &scan,
                &damage,
                &keyspaces([Some(11), Some(11), Some(10)])
            )
            .is_err()
        );
    }

    #[test]
    fn the_clean_close_record_covers_only_a_journal_written_before_it() {
        let (scan, _) = damaged_scan();
        assert!(journal_predates(&scan, 15));
        assert!(!journal_predates(&scan, 14));
    }
}
