//! A commit group in the making: staged writes over the committed state, with savepoints.
//!
//! The committer applies every request of a group to one [`Txn`]; reads inside the group see
//! the group's own earlier writes. A request that fails rolls back to its savepoint, so it
//! leaves no trace; the others commit together in one atomic, durable batch.

use std::collections::{BTreeSet, HashMap};

use crate::catalog::{Catalog, ContainerRecord};
use crate::error::Result;
use crate::records::container_meta_key;
use crate::storage::{Backend, Mutation, Space};

type StagedKey = (Space, Vec<u8>);

/// Staged writes and catalog changes of one commit group.
pub(crate) struct Txn<'a> {
    backend: &'a dyn Backend,
    staged: HashMap<StagedKey, Option<Vec<u8>>>,
    /// For rollback: each staged key with what it held before (`None` = not staged).
    undo: Vec<(StagedKey, Option<Option<Vec<u8>>>)>,
    /// The working catalog; published only if the group commits.
    pub catalog: Catalog,
    /// Containers whose catalog record must be rewritten.
    dirty_containers: BTreeSet<u32>,
    /// Containers with new feed entries: `(cid, high LSN)`.
    pub touched: Vec<(u32, u64)>,
    /// Current time, seconds, fixed for the whole group.
    pub now_s: u64,
    /// Savepoints taken and not yet rolled back or released.
    n_open_savepoints: usize,
}

/// A point to roll a [`Txn`] back to.
pub(crate) struct Savepoint {
    undo_len: usize,
    catalog: Catalog,
    dirty_containers: BTreeSet<u32>,
    touched_len: usize,
}

impl<'a> Txn<'a> {
    pub(crate) fn new(backend: &'a dyn Backend, catalog: Catalog, now_s: u64) -> Self {
        Txn {
            backend,
            staged: HashMap::new(),
            undo: Vec::new(),
            catalog,
            dirty_containers: BTreeSet::new(),
            touched: Vec::new(),
            now_s,
            n_open_savepoints: 0,
        }
    }

    /// Reads a key, seeing this group's staged writes first.
    pub(crate) fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(staged) = self.staged.get(&(space, key.to_vec())) {
            return Ok(staged.clone());
        }
        Ok(self.backend.get(space, key)?.map(|slice| slice.to_vec()))
    }

    /// The committed state under the staged writes.
    pub(crate) fn backend(&self) -> &'a dyn Backend {
        self.backend
    }

    /// Iterates committed keys in `[start, end)`, ignoring staged writes. Only for requests
    /// that run alone or touch keys nothing else in the group stages.
    pub(crate) fn backend_scan(
        &self,
        space: Space,
        start: &[u8],
        end: &[u8],
    ) -> Box<dyn Iterator<Item = Result<crate::storage::KeyValue>> + 'a> {
        crate::storage::scan(self.backend, space, start, end)
    }

    pub(crate) fn put(&mut self, space: Space, key: Vec<u8>, value: Vec<u8>) {
        self.stage(space, key, Some(value));
    }

    pub(crate) fn delete(&mut self, space: Space, key: Vec<u8>) {
        self.stage(space, key, None);
    }

    fn stage(&mut self, space: Space, key: Vec<u8>, value: Option<Vec<u8>>) {
        let staged_key = (space, key);
        if self.n_open_savepoints == 0 {
            // Nothing can roll back past this write: no undo entry needed.
            self.staged.insert(staged_key, value);
            return;
        }
        let before = self.staged.insert(staged_key.clone(), value);
        self.undo.push((staged_key, before));
    }

    /// Whether nothing has been staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.staged.is_empty() && self.dirty_containers.is_empty()
    }

    /// A mutable container record; its catalog record is rewritten at commit.
    pub(crate) fn container_mut(&mut self, cid: u32) -> &mut ContainerRecord {
        self.dirty_containers.insert(cid);
        let record = self
            .catalog
            .containers
            .get_mut(&cid)
            .expect("the committer checked the container exists");
        std::sync::Arc::make_mut(record)
    }

    pub(crate) fn savepoint(&mut self) -> Savepoint {
        self.n_open_savepoints += 1;
        Savepoint {
            undo_len: self.undo.len(),
            catalog: self.catalog.clone(),
            dirty_containers: self.dirty_containers.clone(),
            touched_len: self.touched.len(),
        }
    }

    /// Keeps everything staged since the savepoint.
    pub(crate) fn release(&mut self, savepoint: Savepoint) {
        self.n_open_savepoints -= 1;
        if self.n_open_savepoints == 0 {
            self.undo.clear();
        }
        drop(savepoint);
    }

    /// Undoes everything staged since the savepoint.
    pub(crate) fn rollback(&mut self, savepoint: Savepoint) {
        self.n_open_savepoints -= 1;
        while self.undo.len() > savepoint.undo_len {
            let (key, before) = self.undo.pop().expect("undo is longer than the savepoint");
            match before {
                Some(value) => {
                    self.staged.insert(key, value);
                }
                None => {
                    self.staged.remove(&key);
                }
            }
        }
        self.catalog = savepoint.catalog;
        self.dirty_containers = savepoint.dirty_containers;
        self.touched.truncate(savepoint.touched_len);
    }

    /// The atomic batch to commit, and the catalog to publish once it is durable.
    pub(crate) fn finish(self) -> (Vec<Mutation>, Catalog, Vec<(u32, u64)>) {
        assert_eq!(
            self.n_open_savepoints, 0,
            "every savepoint is released or rolled back before a group commits"
        );
        let mut mutations: Vec<Mutation> = self
            .staged
            .into_iter()
            .map(|((space, key), value)| (space, key, value))
            .collect();
        for cid in &self.dirty_containers {
            if let Some(record) = self.catalog.containers.get(cid) {
                record.check_ranges();
                let json = serde_json::to_vec(record.as_ref()).expect("catalog records serialize");
                mutations.push((Space::Meta, container_meta_key(*cid), Some(json)));
            }
        }
        (mutations, self.catalog, self.touched)
    }
}
