//! `repair`: a damaged journal is refused at open, then cut at the damage with the loss
//! reported exactly, or left untouched when a cut would leave keyspaces disagreeing.
//!
//! A child process (this test binary re-executed, filtered to [`repair_child_writes`])
//! writes [`ITEMS`] items one commit each, so each item is one journal batch, and then
//! either exits without closing the store (as a crash: the journal holds every batch, the
//! tables none) or closes it cleanly (every batch flushed to the tables). The parent then
//! changes one byte of the journal inside a chosen item's batch.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;
use tributary_store::{
    ContainerDefinition, ItemWrite, RepairError, RepairMode, Store, StoreError, StoreOptions,
    repair,
};

use crate::support::{DATABASE, create_container, latest_feed_ids, open_store, pk, runtime};

/// Set in the child's environment: the store directory it writes to.
const CHILD_DIR_ENV: &str = "TRIBUTARY_REPAIR_CHILD";
/// Set in the child's environment to close the store cleanly before exiting.
const CHILD_CLOSE_ENV: &str = "TRIBUTARY_REPAIR_CLOSE";
/// The child's test, as the test harness names it.
const CHILD_TEST: &str = "repair::repair_child_writes";
const CONTAINER: &str = "repair";
/// Items the child writes, one commit each.
const ITEMS: usize = 100;

/// The writer process. It does nothing unless started by a test of this module.
#[test]
fn repair_child_writes() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let runtime = runtime();
    let store = open_store(Path::new(&dir), StoreOptions::default());
    create_container(
        &runtime,
        &store,
        ContainerDefinition::new(CONTAINER, "/pk"),
        1,
    );
    for n in 0..ITEMS {
        let body = json!({"id": item_id(n), "pk": "p", "marker": marker(n)});
        runtime
            .block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::create(body)))
            .expect("the write is acknowledged");
    }
    if std::env::var_os(CHILD_CLOSE_ENV).is_some() {
        store.close();
    }
    // No destructor runs: without `close` the store is left as by a crash.
    std::process::exit(0);
}

fn item_id(n: usize) -> String {
    format!("item-{n:03}")
}

/// A string only item `n`'s batch holds, to find it in the journal.
fn marker(n: usize) -> String {
    format!("marker-of-item-{n:03}")
}

/// Runs the child on a fresh directory; `close` closes the store before exiting.
fn written_store(close: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let mut command = Command::new(exe);
    command
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir.path());
    if close {
        command.env(CHILD_CLOSE_ENV, "1");
    }
    let status = command
        .status()
        .expect("the test binary can be re-executed");
    assert!(status.success(), "the child wrote its items: {status}");
    dir
}

/// The journal file holding `needle`, and the needle's offset in it.
fn find_in_journal(dir: &Path, needle: &[u8]) -> (PathBuf, usize) {
    for entry in std::fs::read_dir(dir).expect("the data dir lists") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|ext| ext != "jnl") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("the journal reads");
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            return (path, at);
        }
    }
    panic!("{} is in no journal file", String::from_utf8_lossy(needle));
}

/// XORs the byte at `offset` of `file` with `mask`.
fn flip(file: &Path, offset: usize, mask: u8) {
    let mut bytes = std::fs::read(file).expect("the journal reads");
    bytes[offset] ^= mask;
    std::fs::write(file, bytes).expect("the journal writes");
}

/// Damages a byte of item `n`'s stored body: its batch fails its checksum.
fn damage_body_of(dir: &Path, n: usize) {
    let (file, at) = find_in_journal(dir, marker(n).as_bytes());
    flip(&file, at + 3, 0x20);
}

/// Damages the trailer of item `n`'s batch: fjall would stop reading there and drop every
/// later batch without a word.
fn damage_trailer_after(dir: &Path, n: usize) {
    let (file, at) = find_in_journal(dir, marker(n).as_bytes());
    let bytes = std::fs::read(&file).expect("the journal reads");
    let trailer = bytes[at..]
        .windows(4)
        .position(|w| w == b"FJL\x03")
        .expect("the batch ends with a trailer");
    flip(&file, at + trailer, 0xff);
}

/// Every journal byte and file name of `dir`, to check that nothing changed.
fn journal_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("the data dir lists")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jnl"))
        .map(|path| {
            let bytes = std::fs::read(&path).expect("the journal reads");
            (path, bytes)
        })
        .collect();
    files.sort();
    files
}

/// The damaged store does not open, and says how to repair it.
fn assert_refused_at_open(dir: &Path) {
    let error =
        Store::open(dir, StoreOptions::default()).expect_err("a damaged journal does not open");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Corrupt(_)), "{message}");
    assert!(message.contains("tributary repair"), "{message}");
}

/// Checks that the repaired store holds exactly items `0..kept`, with a gap-free feed, and
/// takes new writes.
fn assert_holds_prefix(dir: &Path, kept: usize) {
    let store = open_store(dir, StoreOptions::default());
    let expected: Vec<String> = (0..kept).map(item_id).collect();
    assert_eq!(
        latest_feed_ids(&store, CONTAINER),
        expected,
        "the feed is the kept prefix"
    );
    for n in 0..ITEMS {
        let read = store.read_item(DATABASE, CONTAINER, &pk("p"), &item_id(n));
        assert_eq!(
            read.is_ok(),
            n < kept,
            "item {n} after the repair: {read:?}"
        );
    }
    let runtime = runtime();
    let body = json!({"id": "after-repair", "pk": "p"});
    runtime
        .block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::create(body)))
        .expect("the repaired store takes writes");
    let mut with_new = expected;
    with_new.push("after-repair".to_owned());
    assert_eq!(
        latest_feed_ids(&store, CONTAINER),
        with_new,
        "a new write extends the feed"
    );
    store.close();
}

#[test]
fn a_batch_failing_its_checksum_is_cut_with_the_batches_after_it_and_the_loss_reported() {
    let dir = written_store(false);
    damage_body_of(dir.path(), 90);
    assert_refused_at_open(dir.path());

    let before = journal_bytes(dir.path());
    let report = repair(dir.path(), RepairMode::DryRun).expect("a dry run reports");
    assert!(!report.applied);
    assert_eq!(
        journal_bytes(dir.path()),
        before,
        "a dry run changes nothing"
    );
    let damage = report.damage.as_ref().expect("the damage is found");
    assert_eq!(damage.reason, "a batch fails its checksum");
    assert_eq!(
        damage.batches_after,
        ITEMS - 91,
        "items 91.. follow the damage"
    );
    assert_eq!(damage.kept_in_tables, 0, "a crashed store flushed nothing");
    assert!(!damage.loses_nothing());
    assert_eq!(damage.lost.len(), 1, "{report}");
    assert_eq!(damage.lost[0].versions, ITEMS - 91, "{report}");
    assert_eq!(damage.lost[0].deletions, 0, "{report}");
    let printed = report.to_string();
    assert!(
        printed.contains("dry run: nothing was changed"),
        "{printed}"
    );

    let report = repair(dir.path(), RepairMode::Apply).expect("the cut is consistent");
    assert!(report.applied);
    let damage = report.damage.as_ref().expect("the damage is reported");
    assert_eq!(
        damage.lost[0].name.as_deref(),
        Some("db/repair"),
        "{report}"
    );
    let backup = report.backup.as_ref().expect("the dropped bytes are kept");
    assert!(
        std::fs::read_dir(backup)
            .expect("the backup lists")
            .any(|entry| entry
                .expect("an entry")
                .path()
                .extension()
                .is_some_and(|e| e == "jnl")),
        "the original journal file is in {}",
        backup.display()
    );
    // The lost LSNs are the ones after the kept prefix (the container's first write is 1).
    let (low, high) = damage.lost[0].lsns.expect("LSNs of the lost versions");
    assert_eq!((low, high), (92, 100), "{report}");
    assert_holds_prefix(dir.path(), 90);
    let again = repair(dir.path(), RepairMode::Apply).expect("a repaired journal reads");
    assert!(again.damage.is_none(), "{again}");
}

#[test]
fn an_undecodable_byte_is_damage_where_fjall_alone_would_drop_the_rest_silently() {
    let dir = written_store(false);
    damage_trailer_after(dir.path(), 50);
    assert_refused_at_open(dir.path());
    let report = repair(dir.path(), RepairMode::Apply).expect("the cut is consistent");
    let damage = report.damage.as_ref().expect("the damage is found");
    assert_eq!(
        damage.reason,
        "bytes that are no journal entry, with valid batches after them"
    );
    assert_eq!(damage.batches_after, ITEMS - 51, "{report}");
    assert_eq!(damage.lost[0].versions, ITEMS - 51, "{report}");
    assert_holds_prefix(dir.path(), 50);
}

#[test]
fn after_a_clean_close_the_cut_loses_nothing() {
    let dir = written_store(true);
    assert!(dir.path().join("closed-cleanly").is_file());
    damage_body_of(dir.path(), 50);
    assert_refused_at_open(dir.path());
    let report = repair(dir.path(), RepairMode::Apply).expect("the cut loses nothing");
    let damage = report.damage.as_ref().expect("the damage is found");
    assert!(damage.loses_nothing(), "{report}");
    assert!(damage.lost.is_empty(), "{report}");
    assert!(report.to_string().contains("loses nothing"), "{report}");
    let store = open_store(dir.path(), StoreOptions::default());
    assert!(
        !dir.path().join("closed-cleanly").exists(),
        "opening removes the clean-close record"
    );
    store.close();
    drop(store);
    assert!(
        dir.path().join("closed-cleanly").exists(),
        "closing writes it again"
    );
    assert_holds_prefix(dir.path(), ITEMS);
}

#[test]
fn a_cut_that_would_leave_keyspaces_disagreeing_is_refused_and_changes_nothing() {
    let dir = written_store(true);
    // Without the clean-close record, nothing shows that the keyspaces without recent
    // tables (`ttl` has none) do not miss the damaged batch.
    std::fs::remove_file(dir.path().join("closed-cleanly")).expect("the record is there");
    damage_body_of(dir.path(), 50);
    let before = journal_bytes(dir.path());
    let error = repair(dir.path(), RepairMode::Apply).expect_err("the cut is refused");
    assert!(matches!(error, RepairError::Inconsistent { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains("Nothing was changed"), "{message}");
    assert!(message.contains("ttl 0"), "{message}");
    assert_eq!(
        journal_bytes(dir.path()),
        before,
        "the refusal changes nothing"
    );
    assert_refused_at_open(dir.path());
}

#[test]
fn an_intact_journal_needs_no_repair_and_a_held_directory_is_refused() {
    let dir = written_store(false);
    let report = repair(dir.path(), RepairMode::Apply).expect("an intact journal reads");
    assert!(report.damage.is_none(), "{report}");
    assert!(report.good_batches as usize >= ITEMS, "{report}");
    assert!(report.to_string().contains("nothing to cut"), "{report}");

    let store = open_store(dir.path(), StoreOptions::default());
    let error = repair(dir.path(), RepairMode::DryRun).expect_err("an open store is not repaired");
    assert!(matches!(error, RepairError::Locked { .. }), "{error}");
    assert!(error.to_string().contains("in use by process"), "{error}");
    store.close();

    let empty = tempfile::tempdir().expect("temp dir");
    let error =
        repair(empty.path(), RepairMode::DryRun).expect_err("an empty directory is no store");
    assert!(
        matches!(error, RepairError::NotADataDirectory(_)),
        "{error}"
    );
}
