//! Integration tests of `tributary-store`: one binary, one module per area.
//!
//! - `model`: random operation sequences checked against an in-memory model.
//! - `crash`: a writer process (writers, bulk requests, splits, TTL sweeps, container churn,
//!   throughput changes) killed with `SIGKILL`, then recovery checked.
//! - `disk_full`: below the free-space reserve writes are refused and not stored, reads and
//!   feeds work, maintenance waits, and writes resume once space is freed.
//! - `fsync_failure`: injected commit failures poison the store; reopening recovers a prefix.
//! - `waiting_readers`: `read_feed_wait` is woken by commits and times out when idle.
//! - `splits`: feed positions taken before a split resume on the children.
//! - `ttl`: the background sweeper logs expiries.
//! - `data_dir_lock`: one data directory has one open store; a second open is `Locked`.
//! - `transactions`: a transaction across databases commits all or nothing, within its limits.
//! - `bulk`: `write_items` applies independent operations in order, in one commit.
//! - `renames`: a replace whose body has another id renames the item in one commit.
//! - `snapshot_reads`: point reads racing replaces of the same items always find a version.
//! - `commit_paths`: writes committed on the caller's thread and by the committer thread mix
//!   into one gap-free feed; writes racing `close` are committed or refused, never lost.
//! - `users`: users and permissions: conflicts, renames, upserts, durability, deletion with
//!   their database.
//! - `scripts`: stored procedures, triggers and user-defined functions: conflicts, renames,
//!   etag conditions, durability, deletion with their container.
//! - `repair`: a damaged journal is refused at open, then cut at the damage with the loss
//!   reported, or left untouched when a cut would leave keyspaces disagreeing.
//! - `continuations`: any continuation token or LSN gives a page or an error, never a panic.
//! - `indexes`: range index lookups match a model after random writes; a changed policy is
//!   built in the background before queries use it; the index survives a restart.
//! - `item_counts`: each feed range keeps its item count; an older catalog's ranges are
//!   counted from their item pointers.

mod bulk;
mod commit_paths;
mod continuations;
mod crash;
mod data_dir_lock;
mod disk_full;
mod fsync_failure;
mod indexes;
mod item_counts;
mod model;
mod renames;
mod repair;
mod scripts;
mod snapshot_reads;
mod splits;
mod support;
mod transactions;
mod ttl;
mod users;
mod waiting_readers;
