//! `tributary repair`: reports a damaged journal without changing it, cuts it with
//! `--apply`, and refuses what is no store in one line.

use std::process::Command;

use crate::harness::{CONTAINER, DATABASE, DataDir, run, tributary};

/// `tributary feed tail` of every order from the beginning, stopping after `limit`.
fn tail_all(data_dir: &DataDir, limit: &str) -> Command {
    let mut command = tributary(&[
        "feed",
        "tail",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
        "--from",
        "beginning",
        "--limit",
        limit,
    ]);
    command.args(data_dir.arg());
    command
}

/// Changes one byte of the last batch that holds `needle` in the journal.
fn damage_journal_at(data_dir: &DataDir, needle: &[u8]) {
    let journal = data_dir.path().join("0.jnl");
    let mut bytes = std::fs::read(&journal).expect("the journal reads");
    let at = bytes
        .windows(needle.len())
        .rposition(|window| window == needle)
        .expect("the journal holds the needle");
    bytes[at] ^= 0x20;
    std::fs::write(&journal, bytes).expect("the journal writes");
}

#[tokio::test]
async fn repair_reports_then_cuts_a_damaged_journal_and_the_store_opens_again() {
    let data_dir = DataDir::with_orders(20).await;
    damage_journal_at(&data_dir, b"order-7\"");

    let refused = run(tail_all(&data_dir, "20")).one_line_failure().to_owned();
    assert!(refused.contains("tributary repair --data-dir"), "{refused}");

    let mut dry_run = tributary(&["repair"]);
    dry_run.args(data_dir.arg());
    let report = run(dry_run).success().to_owned();
    assert!(
        report.contains("damage: a batch fails its checksum"),
        "{report}"
    );
    // The store was closed cleanly: every batch is in the tables, so nothing is lost.
    assert!(report.contains("loses nothing"), "{report}");
    assert!(report.contains("dry run: nothing was changed"), "{report}");
    assert!(report.contains("--apply"), "{report}");

    let mut apply = tributary(&["repair", "--apply"]);
    apply.args(data_dir.arg());
    let report = run(apply).success().to_owned();
    assert!(report.contains("repaired:"), "{report}");

    let orders = run(tail_all(&data_dir, "20")).json_lines();
    assert_eq!(orders.len(), 20, "every order is still there");

    let mut again = tributary(&["repair"]);
    again.args(data_dir.arg());
    assert!(run(again).success().contains("nothing to cut"));
}

#[test]
fn repair_of_a_directory_without_a_store_fails_in_one_line() {
    let empty = DataDir::new();
    let mut repair = tributary(&["repair"]);
    repair.args(empty.arg());
    let line = run(repair).one_line_failure().to_owned();
    assert!(line.contains("is not a Tributary data directory"), "{line}");
}

#[tokio::test]
async fn repair_names_a_damaged_table_file_and_fails_in_one_line() {
    let data_dir = DataDir::with_orders(20).await;
    // The largest table file of the store's keyspaces: the one holding the orders' bodies
    // (folder `0` is fjall's own catalog of keyspaces, which repair reads to name them).
    let mut tables: Vec<(u64, std::path::PathBuf)> = Vec::new();
    for keyspace in std::fs::read_dir(data_dir.path().join("keyspaces")).expect("keyspaces") {
        let keyspace = keyspace.expect("entry").path();
        if keyspace.file_name().is_some_and(|name| name == "0") {
            continue;
        }
        let folder = keyspace.join("tables");
        for table in std::fs::read_dir(&folder).into_iter().flatten() {
            let path = table.expect("entry").path();
            tables.push((std::fs::metadata(&path).expect("metadata").len(), path));
        }
    }
    let (_, table) = tables.into_iter().max().expect("a closed store has tables");
    let mut bytes = std::fs::read(&table).expect("the table reads");
    bytes[20] ^= 1;
    std::fs::write(&table, bytes).expect("the table writes");

    let mut repair = tributary(&["repair"]);
    repair.args(data_dir.arg());
    let outcome = run(repair);
    let line = outcome.one_line_failure().to_owned();
    assert!(line.contains("1 damaged table files remain"), "{line}");
    assert!(
        outcome.stdout.contains(&table.display().to_string()),
        "the report names the file: {}",
        outcome.stdout
    );
}
