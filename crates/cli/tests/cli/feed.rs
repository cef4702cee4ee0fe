//! `tributary feed tail` on the embedded store, and the one-line errors every data command
//! gives for a source it cannot use.

use crate::harness::{CONTAINER, DATABASE, DataDir, close, ids, order_ids, run, tributary, wait};

#[tokio::test]
async fn a_tail_from_the_beginning_prints_every_change_as_a_json_line_up_to_the_limit() {
    let data_dir = DataDir::with_orders(25).await;
    let [flag, dir] = data_dir.arg();
    let tail = |limit: &str| {
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
            "--max-items",
            "3",
        ]);
        command.args([&flag, &dir]);
        run(command)
    };

    let all = tail("25");
    let changes = all.json_lines();
    assert_eq!(ids(&changes), order_ids(0..25));
    assert!(
        changes
            .iter()
            .all(|c| c["_ts"].is_u64() && c["_etag"].is_string() && c["customer"].is_string())
    );
    assert_eq!(all.stderr, "", "a tail is quiet on stderr");

    let some = tail("7").json_lines();
    assert_eq!(some.len(), 7, "exactly the limit, never a batch more");
    let mut seen = ids(&some);
    seen.dedup();
    assert_eq!(seen.len(), 7);
    assert!(seen.iter().all(|id| order_ids(0..25).contains(id)));
}

#[tokio::test]
async fn a_missing_container_is_a_one_line_error() {
    let data_dir = DataDir::with_orders(1).await;
    let [flag, dir] = data_dir.arg();
    let mut command = tributary(&[
        "feed",
        "tail",
        "--database",
        DATABASE,
        "--container",
        "nope",
        "--limit",
        "1",
    ]);
    command.args([&flag, &dir]);
    let error = run(command).one_line_failure().to_owned();
    assert!(error.contains("container 'nope' does not exist"), "{error}");

    let mut command = tributary(&[
        "estimate",
        "--processor",
        "p",
        "--database",
        "nodb",
        "--container",
        CONTAINER,
    ]);
    command.args([&flag, &dir]);
    let error = run(command).one_line_failure().to_owned();
    assert!(error.contains("database 'nodb' does not exist"), "{error}");
}

#[tokio::test]
async fn a_bad_connection_string_is_a_one_line_error() {
    let command = tributary(&[
        "feed",
        "tail",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
        "--connection-string",
        "AccountEndpoint=http://localhost:1/",
    ]);
    let error = run(command).one_line_failure().to_owned();
    assert!(error.contains("--connection-string"), "{error}");
    assert!(error.contains("AccountKey is missing"), "{error}");

    let mut command = tributary(&[
        "leases",
        "list",
        "--processor",
        "p",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
    ]);
    command.env(
        "TRIBUTARY_CONNECTION_STRING",
        "AccountEndpoint=ftp://localhost/;AccountKey=a2V5;",
    );
    let error = run(command).one_line_failure().to_owned();
    assert!(error.contains("invalid endpoint"), "{error}");
}

#[tokio::test]
async fn a_store_in_use_by_a_server_points_to_the_connection_string() {
    let data_dir = DataDir::with_orders(1).await;
    let held = data_dir.open();
    let [flag, dir] = data_dir.arg();
    let mut command = tributary(&[
        "feed",
        "tail",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
        "--limit",
        "1",
    ]);
    command.args([&flag, &dir]);
    let error = run(command).one_line_failure().to_owned();
    assert!(
        error.contains(&format!("in use by process {} (", std::process::id())),
        "the line names the process holding the store: {error}"
    );
    assert!(error.contains("--connection-string"), "{error}");
    close(held);
}

#[tokio::test]
async fn serve_on_a_store_in_use_says_so_in_one_line_naming_the_directory() {
    let data_dir = DataDir::with_orders(1).await;
    let held = data_dir.open();
    let [flag, dir] = data_dir.arg();
    let mut command = tributary(&["serve", "--http", "--port", "0"]);
    command.args([&flag, &dir]);
    let error = run(command).one_line_failure().to_owned();
    assert!(
        error.contains(&format!("in use by process {} (", std::process::id())),
        "the line names the process holding the store: {error}"
    );
    assert!(
        error.contains(&dir),
        "the line names the directory: {error}"
    );
    close(held);
}

#[test]
fn a_data_dir_that_does_not_exist_is_not_created() {
    let parent = DataDir::new();
    let missing = parent.path().join("nothing-here");
    let mut command = tributary(&[
        "estimate",
        "--processor",
        "p",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
    ]);
    command.arg("--data-dir").arg(&missing);
    let error = run(command).one_line_failure().to_owned();
    assert!(error.contains("does not exist"), "{error}");
    assert!(!missing.exists());
}

#[test]
fn a_malformed_start_time_is_refused_naming_the_accepted_forms() {
    let run = run(tributary(&[
        "feed",
        "tail",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
        "--from",
        "2026-12-01 10:00",
    ]));
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("RFC 3339"), "{run:#?}");
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_ends_a_tail_cleanly_after_what_it_printed() {
    let data_dir = DataDir::with_orders(2).await;
    let mut command = tributary(&[
        "feed",
        "tail",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
        "--from",
        "beginning",
    ]);
    command
        .args(data_dir.arg())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("the binary starts");
    let pid = child.id().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let interrupted = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(interrupted.success());
    let tail = wait(child);
    assert_eq!(ids(&tail.json_lines()), order_ids(0..2));
}
