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

/// A table file whose bytes are not the ones written, or a keyspace whose tables do not open.
#[derive(Debug, Clone)]
pub struct DamagedTable {
    /// The keyspace it belongs to.
    pub keyspace: String,
    /// The table file, or the keyspace's folder when its tables do not open.
    pub file: std::path::PathBuf,
    /// What is wrong.
    pub reason: String,
}

/// Keyspaces with at least this many bytes of tables get a progress line while checked.
const PROGRESS_BYTES: u64 = 256 << 20;

/// Checks every table file of every keyspace against the checksum its tree recorded when
/// the file was written (xxh3-128 of the whole file). Returns the number of files checked and
/// the damaged ones.
pub(crate) fn verify(dir: &Path) -> lsm_tree::Result<(usize, Vec<DamagedTable>)> {
    let root = dir.join("keyspaces");
    let mut checked = 0;
    let mut damaged = Vec::new();
    for keyspace in read(dir)? {
        let folder = root.join(keyspace.id.to_string());
        let tree = match open_tree(&folder) {
            Ok(tree) => tree,
            Err(error) => {
                damaged.push(DamagedTable {
                    keyspace: keyspace.name.clone(),
                    file: folder,
                    reason: format!("its tables do not open: {error}"),
                });
                continue;
            }
        };
        let version = tree.current_version();
        let tables: Vec<_> = version.iter_tables().collect();
        let file_of = |id: u64| folder.join("tables").join(id.to_string());
        let bytes: u64 = tables
            .iter()
            .filter_map(|table| std::fs::metadata(file_of(table.id())).ok())
            .map(|metadata| metadata.len())
            .sum();
        if bytes >= PROGRESS_BYTES {
            tracing::info!(
                keyspace = %keyspace.name,
                tables = tables.len(),
                mib = bytes >> 20,
                "checking the tables of a keyspace"
            );
        }
        for table in tables {
            let file = file_of(table.id());
            checked += 1;
            let reason = match file_checksum(&file) {
                Ok(sum) if sum == table.checksum().into_u128() => continue,
                Ok(_) => {
                    "its bytes do not match the checksum recorded when it was written".to_owned()
                }
                Err(error) => format!("it cannot be read: {error}"),
            };
            damaged.push(DamagedTable {
                keyspace: keyspace.name.clone(),
                file,
                reason,
            });
        }
    }
    Ok((checked, damaged))
}

/// xxh3-128 of a whole file, read in chunks.
fn file_checksum(file: &Path) -> std::io::Result<u128> {
    use std::io::Read as _;
    let mut reader = std::fs::File::open(file)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok(hasher.digest128());
        }
        hasher.update(&buffer[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_a_closed_store_matches_its_checksum_until_a_byte_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        {
            let store =
                crate::Store::open(dir.path(), crate::StoreOptions::relaxed()).expect("open");
            runtime
                .block_on(store.create_database("d"))
                .expect("database");
            runtime
                .block_on(store.create_container(
                    "d",
                    crate::ContainerDefinition::new("c", "/pk"),
                    1,
                ))
                .expect("container");
            for n in 0..50 {
                let body = serde_json::json!({"id": n.to_string(), "pk": "p"});
                runtime
                    .block_on(store.write_item("d", "c", crate::ItemWrite::create(body)))
                    .expect("write");
            }
            store.close();
        }
        let (checked, damaged) = verify(dir.path()).expect("the tables read");
        assert!(checked >= 3, "a closed store has tables: {checked}");
        assert!(damaged.is_empty(), "{damaged:?}");

        let feed = read(dir.path())
            .expect("keyspaces")
            .into_iter()
            .find(|keyspace| keyspace.name == "feed")
            .expect("a feed keyspace");
        let tables = dir
            .path()
            .join("keyspaces")
            .join(feed.id.to_string())
            .join("tables");
        let file = std::fs::read_dir(&tables)
            .expect("tables list")
            .next()
            .expect("a table")
            .expect("entry")
            .path();
        let mut bytes = std::fs::read(&file).expect("read");
        bytes[10] ^= 1;
        std::fs::write(&file, bytes).expect("write");
        let (_, damaged) = verify(dir.path()).expect("the tables read");
        assert_eq!(damaged.len(), 1, "{damaged:?}");
        assert_eq!(damaged[0].keyspace, "feed");
        assert_eq!(damaged[0].file, file);
    }
}
