//! Reads fjall's journal files (format of fjall 3.1) without opening the database, to find
//! the first damaged batch and to list what follows it.
//!
//! A journal file is a sequence of batches, each `Start ‖ entry* ‖ End`, little-endian:
//!
//! | entry | bytes |
//! |---|---|
//! | Start | `1 ‖ item count u32 ‖ seqno u64` |
//! | Item | `2 ‖ value type u8 ‖ compression u8 ‖ keyspace u64 ‖ key len u16 ‖ value len u32 ‖ stored len u32 ‖ key ‖ stored value` |
//! | Clear | `4 ‖ keyspace u64` |
//! | End | `3 ‖ xxh3-64 of the batch's Item and Clear bytes ‖ "FJL" 3` |
//!
//! Files are preallocated, so a file's written part is followed by zero bytes. fjall stops
//! reading a file at the first entry it cannot decode and drops the batch it was in; that is
//! right for a batch torn by a crash (always the last one written), but a changed byte
//! earlier in the file would make it drop every later batch without a word. So this scan
//! calls a stop *damage* when a complete, checksum-valid batch can still be found after it,
//! and reports the batches it finds there.

use std::path::{Path, PathBuf};

/// The trailer every End entry carries.
const TRAILER: &[u8; 4] = b"FJL\x03";
const START_TAG: u8 = 1;
const ITEM_TAG: u8 = 2;
const END_TAG: u8 = 3;
const CLEAR_TAG: u8 = 4;
/// Bytes of an Item entry before its key and value.
const ITEM_HEADER: usize = 1 + 1 + 1 + 8 + 2 + 4 + 4;

/// One journal file, by its number (fjall replays them in ascending order).
#[derive(Debug, Clone)]
pub(crate) struct JournalFile {
    /// The file.
    pub(crate) path: PathBuf,
    /// Its number: the name without `.jnl`.
    pub(crate) number: u64,
    /// Its length in bytes, preallocated zeros included.
    pub(crate) len: u64,
}

/// One complete, checksum-valid batch.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    /// fjall's sequence number for the batch (one per commit).
    pub(crate) seqno: u64,
    /// The keys it writes or removes.
    pub(crate) items: Vec<BatchItem>,
}

/// One key a batch writes or removes.
#[derive(Debug, Clone)]
pub(crate) struct BatchItem {
    /// fjall's internal keyspace id.
    pub(crate) keyspace: u64,
    /// The key.
    pub(crate) key: Vec<u8>,
    /// Whether the item removes the key (a tombstone) rather than writing a value.
    pub(crate) removes: bool,
}

/// What is wrong at the first damaged place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DamageKind {
    /// A batch's bytes do not match its checksum.
    ChecksumMismatch,
    /// A batch's End comes before the item count its Start announced.
    TooFewItems,
    /// A batch has more items than its Start announced.
    TooManyItems,
    /// Bytes that are no journal entry, followed later in the file by valid batches.
    Unreadable,
}

impl std::fmt::Display for DamageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DamageKind::ChecksumMismatch => "a batch fails its checksum",
            DamageKind::TooFewItems => "a batch ends before the items it announced",
            DamageKind::TooManyItems => "a batch holds more items than it announced",
            DamageKind::Unreadable => {
                "bytes that are no journal entry, with valid batches after them"
            }
        })
    }
}

/// The first damaged place in the journal.
#[derive(Debug, Clone)]
pub(crate) struct Damage {
    /// The file it is in.
    pub(crate) file: PathBuf,
    /// The offset of the damaged batch's first byte (the end of the last good batch).
    pub(crate) offset: u64,
    /// What is wrong.
    pub(crate) kind: DamageKind,
    /// The damaged batch's sequence number, when its Start entry is readable.
    pub(crate) seqno: Option<u64>,
}

/// The result of reading every journal file of a data directory.
#[derive(Debug, Default)]
pub(crate) struct JournalScan {
    /// The journal files, in replay order.
    pub(crate) files: Vec<JournalFile>,
    /// How many good batches come before the damage (all of them when there is none).
    pub(crate) good_batches: u64,
    /// The sequence number of the last good batch before the damage.
    pub(crate) last_good_seqno: Option<u64>,
    /// The first damaged place, if any.
    pub(crate) damage: Option<Damage>,
    /// The complete batches found after the damage, in journal order (they are dropped
    /// with it when the journal is cut there).
    pub(crate) after_damage: Vec<Batch>,
}

/// Reads every `*.jnl` file of `dir` in replay order.
pub(crate) fn scan(dir: &Path) -> std::io::Result<JournalScan> {
    let mut scan = JournalScan {
        files: journal_files(dir)?,
        ..JournalScan::default()
    };
    for index in 0..scan.files.len() {
        let file = scan.files[index].clone();
        let bytes = std::fs::read(&file.path)?;
        let mut position = 0;
        if scan.damage.is_none() {
            let (end, stop) = read_good_batches(&bytes, |batch| {
                scan.good_batches += 1;
                scan.last_good_seqno = Some(batch.seqno);
            });
            let kind = match stop {
                Stop::Failed(kind) => Some(kind),
                // A stop followed by a valid batch is damage; otherwise the file ends here
                // (zeros, or a batch torn by a crash).
                Stop::Undecodable => {
                    find_batch_after(&bytes, end + 1).map(|_| DamageKind::Unreadable)
                }
            };
            let Some(kind) = kind else {
                continue;
            };
            scan.damage = Some(Damage {
                file: file.path.clone(),
                offset: end as u64,
                kind,
                seqno: start_seqno(&bytes[end..]),
            });
            position = end + 1;
        }
        // After the damage: every complete batch that can still be found, to report it.
        while let Some(found) = find_batch_after(&bytes, position) {
            let (end, _) = read_good_batches(&bytes[found..], |batch| {
                scan.after_damage.push(batch);
            });
            position = found + end.max(1);
        }
    }
    Ok(scan)
}

/// The data directory's journal files, sorted by number.
pub(crate) fn journal_files(dir: &Path) -> std::io::Result<Vec<JournalFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let Some(number) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".jnl"))
            .and_then(|stem| stem.parse::<u64>().ok())
        else {
            continue;
        };
        files.push(JournalFile {
            len: entry.metadata()?.len(),
            path,
            number,
        });
    }
    files.sort_by_key(|file| file.number);
    Ok(files)
}

/// Why reading batches stopped.
#[derive(Debug)]
enum Stop {
    /// An entry could not be decoded, or entries came out of batch order (fjall stops the
    /// file there and drops the open batch).
    Undecodable,
    /// A decoded batch is wrong (fjall refuses to open).
    Failed(DamageKind),
}

/// Reads complete batches from the start of `bytes`, as fjall's recovery does, calling
/// `each` for every good one. Returns the offset where the good batches end and why
/// reading stopped there.
fn read_good_batches(bytes: &[u8], mut each: impl FnMut(Batch)) -> (usize, Stop) {
    let mut good_end = 0;
    loop {
        match read_batch(&bytes[good_end..]) {
            Ok((batch, len)) => {
                each(batch);
                good_end += len;
            }
            Err(stop) => return (good_end, stop),
        }
    }
}

/// Reads one batch at the start of `bytes`: the batch and its length in bytes.
fn read_batch(bytes: &[u8]) -> Result<(Batch, usize), Stop> {
    let mut cursor = Cursor { bytes, position: 0 };
    if cursor.u8()? != START_TAG {
        return Err(Stop::Undecodable);
    }
    let mut remaining = cursor.u32()?;
    let seqno = cursor.u64()?;
    let mut checksum = xxhash_rust::xxh3::Xxh3::new();
    let mut items = Vec::new();
    loop {
        let entry_start = cursor.position;
        match cursor.u8()? {
            ITEM_TAG => {
                let value_type = cursor.u8()?;
                if !matches!(cursor.u8()?, 0 | 1) {
                    return Err(Stop::Undecodable);
                }
                let keyspace = cursor.u64()?;
                let key_len = usize::from(cursor.u16()?);
                let _value_len = cursor.u32()?;
                let stored_len = cursor.u32()? as usize;
                let key = cursor.take(key_len)?.to_vec();
                cursor.take(stored_len)?;
                let removes = match value_type {
                    0 => false,
                    1 | 2 => true,
                    _ => return Err(Stop::Undecodable),
                };
                checksum.update(&bytes[entry_start..cursor.position]);
                if remaining == 0 {
                    return Err(Stop::Failed(DamageKind::TooManyItems));
                }
                remaining -= 1;
                items.push(BatchItem {
                    keyspace,
                    key,
                    removes,
                });
            }
            CLEAR_TAG => {
                cursor.u64()?;
                checksum.update(&bytes[entry_start..cursor.position]);
                if remaining == 0 {
                    return Err(Stop::Failed(DamageKind::TooManyItems));
                }
                remaining -= 1;
            }
            END_TAG => {
                let expected = cursor.u64()?;
                if cursor.take(TRAILER.len())? != TRAILER {
                    return Err(Stop::Undecodable);
                }
                if remaining > 0 {
                    return Err(Stop::Failed(DamageKind::TooFewItems));
                }
                if checksum.digest() != expected {
                    return Err(Stop::Failed(DamageKind::ChecksumMismatch));
                }
                return Ok((Batch { seqno, items }, cursor.position));
            }
            // A Start inside a batch, or no entry at all.
            _ => return Err(Stop::Undecodable),
        }
    }
}

/// The first offset at or after `from` where a complete, valid batch begins.
fn find_batch_after(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(ITEM_HEADER))
        .filter(|&at| bytes[at] == START_TAG)
        .find(|&at| read_batch(&bytes[at..]).is_ok())
}

/// The sequence number of a Start entry at the start of `bytes`, if there is one.
fn start_seqno(bytes: &[u8]) -> Option<u64> {
    let mut cursor = Cursor { bytes, position: 0 };
    (cursor.u8().ok()? == START_TAG).then_some(())?;
    cursor.u32().ok()?;
    cursor.u64().ok()
}

/// A reader over a byte slice; running out of bytes is [`Stop::Undecodable`].
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Stop> {
        let end = self.position.checked_add(len).ok_or(Stop::Undecodable)?;
        let taken = self
            .bytes
            .get(self.position..end)
            .ok_or(Stop::Undecodable)?;
        self.position = end;
        Ok(taken)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Stop> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Stop> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        let mut array = [0; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One batch in the journal format: `(keyspace, key, value)` items.
    fn batch(seqno: u64, items: &[(u64, &[u8], &[u8])]) -> Vec<u8> {
        let mut bytes = vec![START_TAG];
        bytes.extend((items.len() as u32).to_le_bytes());
        bytes.extend(seqno.to_le_bytes());
        let body_start = bytes.len();
        for (keyspace, key, value) in items {
            bytes.extend([ITEM_TAG, 0, 0]);
            bytes.extend(keyspace.to_le_bytes());
            bytes.extend((key.len() as u16).to_le_bytes());
            bytes.extend((value.len() as u32).to_le_bytes());
            bytes.extend((value.len() as u32).to_le_bytes());
            bytes.extend(*key);
            bytes.extend(*value);
        }
        let checksum = xxhash_rust::xxh3::xxh3_64(&bytes[body_start..]);
        bytes.push(END_TAG);
        bytes.extend(checksum.to_le_bytes());
        bytes.extend(TRAILER);
        bytes
    }

    /// Three batches (seqnos 1, 2, 3) followed by preallocated zeros; the offsets where
    /// each batch starts.
    fn three_batches() -> (Vec<u8>, [usize; 3]) {
        let mut bytes = Vec::new();
        let mut starts = [0; 3];
        for (n, start) in starts.iter_mut().enumerate() {
            *start = bytes.len();
            bytes.extend(batch(
                n as u64 + 1,
                &[(2, b"key", b"value"), (3, b"k2", b"v")],
            ));
        }
        bytes.extend([0; 4096]);
        (bytes, starts)
    }

    fn scan_bytes(bytes: &[u8]) -> JournalScan {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("0.jnl"), bytes).expect("write the journal");
        scan(dir.path()).expect("the journal reads")
    }

    #[test]
    fn complete_batches_followed_by_zeros_are_intact() {
        let (bytes, _) = three_batches();
        let scan = scan_bytes(&bytes);
        assert!(scan.damage.is_none(), "{:?}", scan.damage);
        assert_eq!(scan.good_batches, 3);
        assert_eq!(scan.last_good_seqno, Some(3));
    }

    #[test]
    fn a_batch_torn_at_the_end_is_not_damage() {
        let (mut bytes, starts) = three_batches();
        // The last batch was cut mid-write by a crash: its tail is zeros.
        let torn_at = starts[2] + 20;
        bytes[torn_at..].fill(0);
        let scan = scan_bytes(&bytes);
        assert!(scan.damage.is_none(), "{:?}", scan.damage);
        assert_eq!(scan.good_batches, 2);
        assert_eq!(scan.last_good_seqno, Some(2));
    }

    #[test]
    fn a_changed_value_byte_fails_the_checksum_and_later_batches_are_listed() {
        let (mut bytes, starts) = three_batches();
        let value_at = starts[1]
            + bytes[starts[1]..]
                .windows(5)
                .position(|w| w == b"value")
                .unwrap();
        bytes[value_at] ^= 1;
        let scan = scan_bytes(&bytes);
        let damage = scan.damage.expect("damage found");
        assert_eq!(damage.kind, DamageKind::ChecksumMismatch);
        assert_eq!(damage.offset, starts[1] as u64);
        assert_eq!(damage.seqno, Some(2));
        assert_eq!(scan.last_good_seqno, Some(1));
        let after: Vec<u64> = scan.after_damage.iter().map(|batch| batch.seqno).collect();
        assert_eq!(after, [3]);
        assert_eq!(scan.after_damage[0].items.len(), 2);
        assert_eq!(scan.after_damage[0].items[0].key, b"key");
    }

    #[test]
    fn an_undecodable_byte_followed_by_valid_batches_is_damage() {
        let (mut bytes, starts) = three_batches();
        bytes[starts[1]] = 0x7f;
        let scan = scan_bytes(&bytes);
        let damage = scan.damage.expect("damage found");
        assert_eq!(damage.kind, DamageKind::Unreadable);
        assert_eq!(damage.offset, starts[1] as u64);
        assert_eq!(damage.seqno, None, "the Start entry is unreadable");
        assert_eq!(scan.after_damage.len(), 1);
    }

    #[test]
    fn a_wrong_item_count_is_damage() {
        let (mut bytes, starts) = three_batches();
        // Announce three items where two follow, then one.
        bytes[starts[0] + 1] = 3;
        let scan = scan_bytes(&bytes);
        assert_eq!(
            scan.damage.as_ref().map(|damage| &damage.kind),
            Some(&DamageKind::TooFewItems)
        );
        let (mut bytes, starts) = three_batches();
        bytes[starts[0] + 1] = 1;
        let scan = scan_bytes(&bytes);
        assert_eq!(
            scan.damage.as_ref().map(|damage| &damage.kind),
            Some(&DamageKind::TooManyItems)
        );
        assert_eq!(scan.after_damage.len(), 2);
    }

    #[test]
    fn damage_in_an_earlier_file_drops_the_later_files_batches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut first, starts) = three_batches();
        first[starts[2] + 1] = 5;
        std::fs::write(dir.path().join("1.jnl"), first).expect("write");
        std::fs::write(dir.path().join("2.jnl"), batch(4, &[(2, b"k", b"v")])).expect("write");
        let scan = scan(dir.path()).expect("the journal reads");
        let damage = scan.damage.expect("damage found");
        assert!(damage.file.ends_with("1.jnl"));
        assert_eq!(scan.good_batches, 2);
        let after: Vec<u64> = scan.after_damage.iter().map(|batch| batch.seqno).collect();
        assert_eq!(after, [4]);
    }
}
