//! What each keyspace's tables already hold, read without opening the database (whose
//! journal may not replay): the keyspace's name and the highest batch sequence number
//! flushed to its tables.

use std::path::Path;

use lsm_tree::{AbstractTree, Guard, SeqNo, SequenceNumberCounter};

/// One keyspace of the data directory.
#[derive(Debug, Clone)]
pub(crate) struct KeyspaceTables {
    /// fjall's internal id (the journal names keyspaces by it).
    pub(crate) id: u64,
    /// The keyspace's name (`docs`, `feed`, ...).
    pub(crate) name: String,
    /// The highest batch sequence number in its tables; `None` when it has none.
    pub(crate) persisted_seqno: Option<SeqNo>,
}

/// Every keyspace under `dir/keyspaces`, by id. fjall keeps its own catalog as tree `0`,
/// whose keys `n ‖ id (u64 big-endian)` hold each keyspace's name.
pub(crate) fn read(dir: &Path) -> lsm_tree::Result<Vec<KeyspaceTables>> {
    let root = dir.join("keyspaces");
    let catalog = open_tree(&root.join("0"))?;
    let mut keyspaces = Vec::new();
    for entry in catalog.prefix(b"n", SeqNo::MAX, None) {
        let (key, value) = entry.into_inner()?;
        let Some(id) = key
            .get(1..9)
            .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
            .map(u64::from_be_bytes)
        else {
            continue;
        };
        let folder = root.join(id.to_string());
        if !folder.is_dir() {
            continue;
        }
        keyspaces.push(KeyspaceTables {
            id,
            name: String::from_utf8_lossy(&value).into_owned(),
            persisted_seqno: open_tree(&folder)?.get_highest_persisted_seqno(),
        });
    }
    keyspaces.sort_by_key(|keyspace| keyspace.id);
    Ok(keyspaces)
}

/// Opens one tree's tables (an LSM tree without its journal: memtables start empty).
fn open_tree(folder: &Path) -> lsm_tree::Result<lsm_tree::AnyTree> {
    lsm_tree::Config::new(
        folder,
        SequenceNumberCounter::default(),
        SequenceNumberCounter::default(),
    )
    .open()
}
