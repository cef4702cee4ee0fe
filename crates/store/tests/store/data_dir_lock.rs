//! One data directory has one open store at a time: a second open, in this process or
//! another, fails with [`StoreError::Locked`] naming the directory, and the directory opens
//! again once the first store is dropped.

use tributary_store::{Store, StoreError, StoreOptions};

use crate::support::open_store;

#[test]
fn a_second_open_of_a_data_directory_in_use_is_locked_and_names_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let first = open_store(dir.path(), StoreOptions::relaxed());

    let error = match Store::open(dir.path(), StoreOptions::relaxed()) {
        Ok(_) => panic!("a second store opened on a directory in use"),
        Err(error) => error,
    };
    match &error {
        StoreError::Locked { path, holder } => {
            assert_eq!(path, dir.path());
            let holder = holder.as_deref().expect("the holder recorded itself");
            assert!(
                holder.starts_with(&format!("process {} (", std::process::id())),
                "the holder is this process: {holder}"
            );
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "the message names the directory: {message}"
    );
    assert!(
        message.contains(&format!("in use by process {}", std::process::id())),
        "the message names the process: {message}"
    );

    drop(first);
    // Released when the store is dropped (`open_store` retries while fjall lets it go).
    let reopened = open_store(dir.path(), StoreOptions::relaxed());
    reopened.close();
}
