//! An embedded, durable document store with a Cosmos DB style change feed.
//!
//! `tributary-store` keeps databases, containers and JSON items on local disk, and records
//! every change of a container in an ordered, resumable feed:
//!
//! - **Items** are created, read, replaced, upserted, deleted and patched with Cosmos DB's
//!   rules: ids, partition keys (single path or hierarchical), `_etag` conditions, a conflict
//!   on a duplicate create, the 2 MB size limit, TTL.
//! - **Every write gets the next LSN of its container**, assigned by a single committer that
//!   groups concurrent writes into one durable commit (group commit).
//! - **The change feed** in latest-version mode holds each item once, at its latest LSN; in
//!   all-versions-and-deletes mode it holds every create, replace and delete with the previous
//!   image, for the container's retention period. A page read returns a continuation that
//!   survives restarts and splits.
//! - **Feed ranges** split on request or past a size threshold; readers of a split range get
//!   [`StoreError::RangeGone`] naming its children, and their LSN positions stay valid.
//! - **Waiting readers** ([`Store::read_feed_wait`]) are woken by the commit itself.
//! - **A full disk stops writes, not the store**: while less than
//!   [`StoreOptions::min_free_disk_bytes`] is free, every write (and background maintenance)
//!   is refused with [`StoreError::DiskFull`] before anything is staged; reads go on, and
//!   writes resume once space is freed.
//!
//! What it is not: a network server (see `tributary-server`), a query planner (queries scan
//! the container), or a distributed database (one process owns a store directory).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tributary_store::{ContainerDefinition, FeedMode, FeedRequest, FeedScope, FeedStart, ItemWrite, Store, StoreOptions};
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), StoreOptions::relaxed()).unwrap();
//! store.create_database("shop").await.unwrap();
//! store.create_container("shop", ContainerDefinition::new("orders", "/customer"), 1).await.unwrap();
//! store.write_item("shop", "orders", ItemWrite::create(serde_json::json!({"id": "1", "customer": "ada"}))).await.unwrap();
//! let page = store.read_feed("shop", "orders", &FeedRequest {
//!     scope: FeedScope::Container,
//!     start: FeedStart::Beginning,
//!     mode: FeedMode::LatestVersion,
//!     max_items: 100,
//! }).unwrap();
//! assert_eq!(page.changes.len(), 1);
//! # });
//! ```

mod catalog;
mod clock;
mod commit_stats;
mod committer;
mod disk_space;
mod document;
mod error;
mod feed;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
mod index;
mod item;
mod item_scan;
mod records;
mod repair;
mod scripts;
mod search_policies;
mod shared;
mod storage;
mod txn;
mod users;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::oneshot;
use tributary_partition_key::{Epk, PartitionKey, PartitionKeyDefinition};

pub use catalog::{
    Autoscale, ComputedProperty, ContainerDefinition, ContainerProperties, DatabaseProperties,
    MAX_FEED_RANGES, MAX_ID_CHARS, MAX_ITEM_ID_BYTES, RangeRecord, SessionScope, validate_id,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use commit_stats::{CommitStatsSnapshot, RECENT_COMMITS};
pub use disk_space::{DiskSpace, ManualDiskSpace, SystemDiskSpace};
pub use document::{MAX_ITEM_BYTES, MAX_ITEM_DEPTH};
pub use error::{Result, StoreError};
pub use feed::{FeedMode, FeedPage, FeedRequest, FeedScope, FeedStart, MAX_PAGE_ITEMS};
pub use item::{
    CrossDatabaseOperation, Item, ItemWrite, MAX_CROSS_CONTAINER_TRANSACTION_BYTES,
    MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS, MAX_TRANSACTION_OPERATIONS, OperationResult,
    Precondition, TransactionOperation, TransactionOutcome, WriteKind, WriteOutcome, WriteStatus,
};
pub use item_scan::ItemPosition;
pub use records::OperationType;
pub use repair::{
    DamageReport, DamagedTable, LostWrites, RepairError, RepairMode, RepairReport, repair,
};
pub use scripts::{
    MAX_SCRIPT_BODY_BYTES, MAX_SCRIPTS_PER_CONTAINER, ScriptDefinition, ScriptKind,
    ScriptProperties, TriggerDefinition, TriggerOperation, TriggerType,
};
pub use storage::Durability;
pub use tributary_patch::{PatchOperation, PatchRequest};
pub use users::{
    MAX_PERMISSIONS_PER_USER, MAX_RESOURCE_LINK_BYTES, MAX_USERS_PER_DATABASE,
    PermissionDefinition, PermissionMode, PermissionProperties, UserProperties,
};

use catalog::{Catalog, ContainerRecord, Counters, DatabaseRecord};
use committer::{DiskReserve, Gate, Put, Request, ScriptScope, TransactionOp};
use document::expiry_second;
use records::{DocPointer, FeedRecord, doc_key, log_key};
use scripts::ScriptRecord;
use shared::{FeedWatermark, Shared};
use storage::{Backend, Space, scan};
use users::UserRecord;

/// Most requests waiting for the committer; beyond it requests fail with
/// [`StoreError::Overloaded`] instead of queueing without bound.
const MAX_QUEUED_REQUESTS: usize = 16 * 1024;

/// What one kind of transaction may hold.
#[derive(Clone, Copy)]
struct TransactionLimits {
    /// What error messages call it.
    name: &'static str,
    /// Most operations.
    max_operations: usize,
    /// Most bytes of item bodies (as given) written.
    max_body_bytes: usize,
}

/// A Cosmos transactional batch ([`Store::execute_batch`], [`Store::transaction`]). Its byte
/// limit never bites: each body is below [`MAX_ITEM_BYTES`], and a server's request body
/// limit is far lower.
const BATCH_LIMITS: TransactionLimits = TransactionLimits {
    name: "a batch",
    max_operations: MAX_TRANSACTION_OPERATIONS,
    max_body_bytes: MAX_TRANSACTION_OPERATIONS * MAX_ITEM_BYTES,
};

/// An in-process transaction across databases ([`Store::transaction_across_databases`]).
const CROSS_DATABASE_LIMITS: TransactionLimits = TransactionLimits {
    name: "a transaction across databases",
    max_operations: MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS,
    max_body_bytes: MAX_CROSS_CONTAINER_TRANSACTION_BYTES,
};

/// The default free-space reserve ([`StoreOptions::min_free_disk_bytes`]): 256 MiB, four
/// times the journal's size limit.
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 256 * 1024 * 1024;

/// How a store is opened.
#[derive(Clone)]
pub struct StoreOptions {
    /// When a commit is acknowledged. Default: [`Durability::Fsync`].
    pub durability: Durability,
    /// A feed range splits once its items exceed this many bytes (`None`: never by size).
    pub split_threshold_bytes: Option<u64>,
    /// How often background work (TTL expiry, retention, purging) runs when idle.
    pub maintenance_interval: Duration,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Free space the store leaves on the disk holding its directory: below it, writes fail
    /// with [`StoreError::DiskFull`] before anything is staged, and resume on their own once
    /// space is freed; background maintenance waits too. It must cover one commit group plus
    /// the storage engine's flushes and compactions. 0 turns the check off. Default:
    /// [`DEFAULT_MIN_FREE_DISK_BYTES`].
    pub min_free_disk_bytes: u64,
    /// How long a measurement of the free space is trusted while above the reserve (it is
    /// also taken again after every 16 MiB committed, and before every commit while below).
    /// Default: 100 ms.
    pub disk_space_check_interval: Duration,
    /// Where the free space is measured: the operating system ([`SystemDiskSpace`]), or a
    /// [`ManualDiskSpace`] in tests.
    pub disk_space: Arc<dyn DiskSpace>,
    /// Commit failures to inject (tests only).
    #[cfg(feature = "fault-injection")]
    pub fault_plan: Option<Arc<FaultPlan>>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            durability: Durability::Fsync,
            split_threshold_bytes: Some(10 * 1024 * 1024 * 1024),
            maintenance_interval: Duration::from_millis(500),
            clock: Arc::new(SystemClock),
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
            disk_space_check_interval: Duration::from_millis(100),
            disk_space: Arc::new(SystemDiskSpace),
            #[cfg(feature = "fault-injection")]
            fault_plan: None,
        }
    }
}

impl StoreOptions {
    /// Defaults, but commits are not fsynced: for tests and throwaway data.
    pub fn relaxed() -> Self {
        StoreOptions {
            durability: Durability::Relaxed,
            ..StoreOptions::default()
        }
    }
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("durability", &self.durability)
            .field("split_threshold_bytes", &self.split_threshold_bytes)
            .field("maintenance_interval", &self.maintenance_interval)
            .field("min_free_disk_bytes", &self.min_free_disk_bytes)
            .field("disk_space_check_interval", &self.disk_space_check_interval)
            .finish_non_exhaustive()
    }
}

/// Which commits a [`FaultPlan`] fails and how.
#[cfg(feature = "fault-injection")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Commit normally.
    Succeed,
    /// Write the batch but report a failed sync.
    FailAfterWrite,
    /// Fail before writing anything.
    FailBeforeWrite,
    /// Fail before writing anything as the engine does when the disk is full: its error
    /// carries the operating system's `ENOSPC`.
    FailNoSpace,
}

/// Makes the `n`-th commit (1-based) fail as planned; every other commit succeeds.
#[cfg(feature = "fault-injection")]
#[derive(Debug)]
pub struct FaultPlan {
    n_commits: std::sync::atomic::AtomicU64,
    fail_at: u64,
    action: FaultAction,
}

#[cfg(feature = "fault-injection")]
impl FaultPlan {
    /// Fails commit number `fail_at` (1-based) with `action`.
    pub fn new(fail_at: u64, action: FaultAction) -> Self {
        FaultPlan {
            n_commits: std::sync::atomic::AtomicU64::new(0),
            fail_at,
            action,
        }
    }

    pub(crate) fn next_commit(&self) -> FaultAction {
        let n = self
            .n_commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        if n == self.fail_at {
            self.action
        } else {
            FaultAction::Succeed
        }
    }
}

/// An open store. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Store {
    shared: Arc<Shared>,
    gate: Arc<Gate>,
    requests: Mutex<Option<SyncSender<Request>>>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `path`, creating it if needed, and recovers after a crash.
    ///
    /// # Errors
    /// [`StoreError::Locked`] if another process (or another open store in this one) holds
    /// the directory, [`StoreError::Storage`] if it cannot be opened otherwise,
    /// [`StoreError::Corrupt`] if the catalog cannot be read.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store> {
        std::fs::create_dir_all(path)
            .map_err(|e| StoreError::storage(format!("cannot create {}", path.display()), e))?;
        let backend = storage::open(path, &options).map_err(|error| match error {
            StoreError::Locked { path, .. } => StoreError::Locked {
                holder: read_owner(&path),
                path,
            },
            other => other,
        })?;
        write_owner(path);
        let catalog = load_catalog(backend.as_ref())?;
        let shared = Arc::new(Shared {
            backend,
            catalog: RwLock::new(Arc::new(catalog)),
            poisoned: Mutex::new(None),
            watches: Mutex::new(Default::default()),
            durability: options.durability,
            split_threshold_bytes: options.split_threshold_bytes,
            maintenance_interval: options.maintenance_interval,
            clock: options.clock,
            commit_stats: commit_stats::CommitStats::new(),
        });
        let (sender, receiver) = sync_channel(MAX_QUEUED_REQUESTS);
        let reserve = DiskReserve::new(
            path.to_owned(),
            options.min_free_disk_bytes,
            options.disk_space,
            options.disk_space_check_interval,
        );
        let gate = Arc::new(Gate::new(Arc::clone(&shared), reserve));
        let committer = {
            let gate = Arc::clone(&gate);
            std::thread::Builder::new()
                .name("tributary-committer".into())
                .spawn(move || committer::run(gate, receiver))
                .map_err(|e| StoreError::storage("cannot start the committer thread", e))?
        };
        Ok(Store {
            shared,
            gate,
            requests: Mutex::new(Some(sender)),
            committer: Mutex::new(Some(committer)),
        })
    }

    /// Stops the committer after the requests already queued, and syncs everything.
    pub fn close(&self) {
        self.gate.close();
        self.requests.lock().take();
        if let Some(handle) = self.committer.lock().take() {
            // A panic in the committer has already been reported by the panic hook.
            let _ = handle.join();
            if self.shared.poisoned.lock().is_none()
                && let Err(error) = self.shared.backend.shut_down()
            {
                tracing::warn!(%error, "could not sync the store on close");
            }
        }
    }

    /// Hands a request to the committer and waits for its answer. When the committer is idle
    /// the request is committed right here, on the caller's thread (blocking it for the
    /// commit, `fsync` included, as a point read blocks it for its reads); otherwise it
    /// queues for the committer thread's next group.
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request) -> Result<T> {
        let (reply, response) = oneshot::channel();
        let request = make(reply);
        if let Some(request) = self.gate.commit_if_idle(request) {
            let requests = self.requests.lock();
            let sender = requests.as_ref().ok_or(StoreError::ShutDown)?;
            self.gate.enqueued();
            sender.try_send(request).map_err(|error| {
                self.gate.dequeued();
                match error {
                    TrySendError::Full(_) => StoreError::Overloaded(MAX_QUEUED_REQUESTS),
                    TrySendError::Disconnected(_) => StoreError::ShutDown,
                }
            })?;
        }
        response.await.map_err(|_| StoreError::ShutDown)?
    }

    // ---- databases -------------------------------------------------------------------

    /// Creates a database.
    ///
    /// # Errors
    /// [`StoreError::DatabaseExists`], or [`StoreError::BadRequest`] for an invalid id.
    pub async fn create_database(&self, id: &str) -> Result<DatabaseProperties> {
        self.create_database_with_throughput(id, None, None).await
    }

    /// Creates a database whose containers share `throughput` request units per second
    /// (with `autoscale`, the most they scale up to).
    ///
    /// # Errors
    /// As [`Store::create_database`].
    pub async fn create_database_with_throughput(
        &self,
        id: &str,
        throughput: Option<u64>,
        autoscale: Option<Autoscale>,
    ) -> Result<DatabaseProperties> {
        let id = id.to_owned();
        self.call(|reply| Request::CreateDatabase {
            id,
            throughput,
            autoscale,
            reply,
        })
        .await
    }

    /// Changes the throughput a database shares among its containers (to autoscale up to it
    /// with `autoscale`, fixed without).
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`]; [`StoreError::BadRequest`] if the database was
    /// created without shared throughput.
    pub async fn replace_database_throughput(
        &self,
        id: &str,
        throughput: u64,
        autoscale: Option<Autoscale>,
    ) -> Result<DatabaseProperties> {
        let id = id.to_owned();
        self.call(|reply| Request::ReplaceDatabaseThroughput {
            id,
            throughput,
            autoscale,
            reply,
        })
        .await
    }

    /// Reads a database.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`].
    pub fn read_database(&self, id: &str) -> Result<DatabaseProperties> {
        Ok(self.shared.catalog().database(id)?.properties())
    }

    /// Lists all databases, by id.
    pub fn list_databases(&self) -> Vec<DatabaseProperties> {
        self.shared
            .catalog()
            .databases
            .values()
            .map(DatabaseRecord::properties)
            .collect()
    }

    /// Deletes a database and all its containers.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`].
    pub async fn delete_database(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.call(|reply| Request::DeleteDatabase { id, reply })
            .await
    }

    // ---- containers ------------------------------------------------------------------

    /// Creates a container with `initial_ranges` feed ranges of equal hash space.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerExists`], or
    /// [`StoreError::BadRequest`] for an invalid definition.
    pub async fn create_container(
        &self,
        database: &str,
        definition: ContainerDefinition,
        initial_ranges: u32,
    ) -> Result<ContainerProperties> {
        let database = database.to_owned();
        self.call(|reply| Request::CreateContainer {
            database,
            definition,
            initial_ranges,
            reply,
        })
        .await
    }

    /// Reads a container's definition and feed ranges.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerNotFound`].
    pub fn read_container(&self, database: &str, id: &str) -> Result<ContainerProperties> {
        Ok(self.shared.catalog().container(database, id)?.properties())
    }

    /// What a session token names for a request on `scope`: the container's resource id, the
    /// ids of the current feed ranges the scope overlaps (in id order), and the container's
    /// highest committed LSN. LSNs are per container, so that LSN is a session position valid
    /// for every range: read-your-writes holds whichever range a later request reaches.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerNotFound`]; for a range scope,
    /// [`StoreError::RangeNotFound`] or [`StoreError::RangeGone`]; a partition key that does
    /// not fit the container's definition.
    pub fn session_scope(
        &self,
        database: &str,
        container: &str,
        scope: &FeedScope,
    ) -> Result<SessionScope> {
        let catalog = self.shared.catalog();
        let record = catalog.container(database, container)?;
        let span = feed::scope_span(record, scope)?;
        Ok(SessionScope {
            container_rid: catalog::container_rid(record.database_seq, record.cid),
            range_ids: record
                .feed
                .ranges
                .iter()
                .filter(|range| range.is_current() && range.epk_range().overlaps(&span))
                .map(|range| range.id)
                .collect(),
            high_lsn: record.high_lsn(),
        })
    }

    /// A container's partition key definition, without copying the rest of its properties.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerNotFound`].
    pub fn partition_key_definition(
        &self,
        database: &str,
        id: &str,
    ) -> Result<PartitionKeyDefinition> {
        Ok(self
            .shared
            .catalog()
            .container(database, id)?
            .definition
            .partition_key
            .clone())
    }

    /// A container's resource id and highest committed LSN, without copying its properties.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerNotFound`].
    pub fn container_position(&self, database: &str, id: &str) -> Result<(String, u64)> {
        let catalog = self.shared.catalog();
        let record = catalog.container(database, id)?;
        Ok((
            catalog::container_rid(record.database_seq, record.cid),
            record.high_lsn(),
        ))
    }

    /// Lists a database's containers, by id.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`].
    pub fn list_containers(&self, database: &str) -> Result<Vec<ContainerProperties>> {
        let catalog = self.shared.catalog();
        catalog.database(database)?;
        Ok(catalog
            .container_ids
            .range((database.to_owned(), String::new())..)
            .take_while(|((db, _), _)| db == database)
            .map(|(_, cid)| catalog.containers[cid].properties())
            .collect())
    }

    /// Replaces a container's policies (TTL, indexing, change feed retention, other
    /// properties). The partition key cannot change.
    ///
    /// # Errors
    /// [`StoreError::ContainerNotFound`], [`StoreError::BadRequest`].
    pub async fn replace_container(
        &self,
        database: &str,
        definition: ContainerDefinition,
    ) -> Result<ContainerProperties> {
        let database = database.to_owned();
        self.call(|reply| Request::ReplaceContainer {
            database,
            definition,
            reply,
        })
        .await
    }

    /// Deletes a container; its data is purged in the background.
    ///
    /// # Errors
    /// [`StoreError::ContainerNotFound`].
    pub async fn delete_container(&self, database: &str, id: &str) -> Result<()> {
        let (database, id) = (database.to_owned(), id.to_owned());
        self.call(|reply| Request::DeleteContainer {
            database,
            id,
            reply,
        })
        .await
    }

    /// Splits a current feed range into two at the median EPK of its items.
    ///
    /// # Errors
    /// [`StoreError::RangeNotFound`], [`StoreError::RangeGone`] if already split,
    /// [`StoreError::BadRequest`] if the container has [`MAX_FEED_RANGES`] ranges.
    pub async fn split_range(
        &self,
        database: &str,
        container: &str,
        range_id: u32,
    ) -> Result<Vec<RangeRecord>> {
        let (database, container) = (database.to_owned(), container.to_owned());
        self.call(|reply| Request::SplitRange {
            database,
            container,
            range_id,
            reply,
        })
        .await
    }

    // ---- users and permissions -------------------------------------------------------

    /// Creates a user in a database.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::UserExists`],
    /// [`StoreError::BadRequest`] for an invalid id, [`StoreError::LimitReached`] past
    /// [`MAX_USERS_PER_DATABASE`].
    pub async fn create_user(&self, database: &str, id: &str) -> Result<UserProperties> {
        let (user, _) = self.put_user(database, id, Put::Create).await?;
        Ok(user)
    }

    /// Creates a user, or replaces the one with the same id (which only renews its `_ts` and
    /// `_etag`: a user has no other properties). The flag says whether it was created.
    ///
    /// # Errors
    /// As [`Store::create_user`], without [`StoreError::UserExists`].
    pub async fn upsert_user(&self, database: &str, id: &str) -> Result<(UserProperties, bool)> {
        self.put_user(database, id, Put::Upsert).await
    }

    /// Replaces user `id`, renaming it to `new_id` (its permissions go with it).
    ///
    /// # Errors
    /// [`StoreError::UserNotFound`]; [`StoreError::UserExists`] if another user has `new_id`;
    /// [`StoreError::BadRequest`] for an invalid id.
    pub async fn replace_user(
        &self,
        database: &str,
        id: &str,
        new_id: &str,
    ) -> Result<UserProperties> {
        let put = Put::Replace { id: id.to_owned() };
        let (user, _) = self.put_user(database, new_id, put).await?;
        Ok(user)
    }

    async fn put_user(&self, database: &str, id: &str, put: Put) -> Result<(UserProperties, bool)> {
        let database = database.to_owned();
        let id = id.to_owned();
        self.call(|reply| Request::PutUser {
            database,
            id,
            put,
            reply,
        })
        .await
    }

    /// Reads a user.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::UserNotFound`].
    pub fn read_user(&self, database: &str, id: &str) -> Result<UserProperties> {
        Ok(self.shared.catalog().user(database, id)?.properties())
    }

    /// Lists a database's users, by id.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`].
    pub fn list_users(&self, database: &str) -> Result<Vec<UserProperties>> {
        let catalog = self.shared.catalog();
        catalog.database(database)?;
        Ok(catalog
            .users_of(database)
            .map(UserRecord::properties)
            .collect())
    }

    /// Deletes a user and its permissions.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::UserNotFound`].
    pub async fn delete_user(&self, database: &str, id: &str) -> Result<()> {
        let database = database.to_owned();
        let id = id.to_owned();
        self.call(|reply| Request::DeleteUser {
            database,
            id,
            reply,
        })
        .await
    }

    /// Creates a permission of a user.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::UserNotFound`],
    /// [`StoreError::PermissionExists`], [`StoreError::BadRequest`] for an invalid
    /// definition, [`StoreError::LimitReached`] past [`MAX_PERMISSIONS_PER_USER`].
    pub async fn create_permission(
        &self,
        database: &str,
        user: &str,
        definition: PermissionDefinition,
    ) -> Result<PermissionProperties> {
        let (permission, _) = self
            .put_permission(database, user, definition, Put::Create)
            .await?;
        Ok(permission)
    }

    /// Creates a permission, or replaces the one with the same id. The flag says whether it
    /// was created.
    ///
    /// # Errors
    /// As [`Store::create_permission`], without [`StoreError::PermissionExists`].
    pub async fn upsert_permission(
        &self,
        database: &str,
        user: &str,
        definition: PermissionDefinition,
    ) -> Result<(PermissionProperties, bool)> {
        self.put_permission(database, user, definition, Put::Upsert)
            .await
    }

    /// Replaces permission `id` of a user with `definition`, which may carry a new id.
    ///
    /// # Errors
    /// [`StoreError::UserNotFound`], [`StoreError::PermissionNotFound`];
    /// [`StoreError::PermissionExists`] if another permission has the new id;
    /// [`StoreError::BadRequest`] for an invalid definition.
    pub async fn replace_permission(
        &self,
        database: &str,
        user: &str,
        id: &str,
        definition: PermissionDefinition,
    ) -> Result<PermissionProperties> {
        let put = Put::Replace { id: id.to_owned() };
        let (permission, _) = self.put_permission(database, user, definition, put).await?;
        Ok(permission)
    }

    async fn put_permission(
        &self,
        database: &str,
        user: &str,
        definition: PermissionDefinition,
        put: Put,
    ) -> Result<(PermissionProperties, bool)> {
        let database = database.to_owned();
        let user = user.to_owned();
        self.call(|reply| Request::PutPermission {
            database,
            user,
            definition,
            put,
            reply,
        })
        .await
    }

    /// Reads a permission of a user.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::UserNotFound`],
    /// [`StoreError::PermissionNotFound`].
    pub fn read_permission(
        &self,
        database: &str,
        user: &str,
        id: &str,
    ) -> Result<PermissionProperties> {
        let catalog = self.shared.catalog();
        let record = catalog.user(database, user)?;
        let permission =
            record
                .permissions
                .get(id)
                .ok_or_else(|| StoreError::PermissionNotFound {
                    user: user.to_owned(),
                    permission: id.to_owned(),
                })?;
        Ok(record.permission_properties(permission))
    }

    /// Lists a user's permissions, by id.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::UserNotFound`].
    pub fn list_permissions(
        &self,
        database: &str,
        user: &str,
    ) -> Result<Vec<PermissionProperties>> {
        let catalog = self.shared.catalog();
        let record = catalog.user(database, user)?;
        Ok(record
            .permissions
            .values()
            .map(|permission| record.permission_properties(permission))
            .collect())
    }

    /// Deletes a permission of a user.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::UserNotFound`],
    /// [`StoreError::PermissionNotFound`].
    pub async fn delete_permission(&self, database: &str, user: &str, id: &str) -> Result<()> {
        let database = database.to_owned();
        let user = user.to_owned();
        let id = id.to_owned();
        self.call(|reply| Request::DeletePermission {
            database,
            user,
            id,
            reply,
        })
        .await
    }

    // ---- scripts ---------------------------------------------------------------------

    /// Creates a script (stored procedure, trigger or user-defined function) of a container.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerNotFound`],
    /// [`StoreError::ScriptExists`], [`StoreError::BadRequest`] for an invalid definition,
    /// [`StoreError::LimitReached`] past [`MAX_SCRIPTS_PER_CONTAINER`].
    pub async fn create_script(
        &self,
        database: &str,
        container: &str,
        kind: ScriptKind,
        definition: ScriptDefinition,
    ) -> Result<ScriptProperties> {
        let (script, _) = self
            .put_script(database, container, kind, definition, Put::Create, None)
            .await?;
        Ok(script)
    }

    /// Creates a script, or replaces the one of the same kind with the same id (if it
    /// matches `if_match`, an etag or `*`). The flag says whether it was created.
    ///
    /// # Errors
    /// As [`Store::create_script`], without [`StoreError::ScriptExists`];
    /// [`StoreError::PreconditionFailed`] if a replaced script does not match `if_match`.
    pub async fn upsert_script(
        &self,
        database: &str,
        container: &str,
        kind: ScriptKind,
        definition: ScriptDefinition,
        if_match: Option<&str>,
    ) -> Result<(ScriptProperties, bool)> {
        self.put_script(database, container, kind, definition, Put::Upsert, if_match)
            .await
    }

    /// Replaces script `id` with `definition`, which may carry a new id, if its etag matches
    /// `if_match` (an etag or `*`; `None` for no condition).
    ///
    /// # Errors
    /// [`StoreError::ScriptNotFound`]; [`StoreError::ScriptExists`] if another script of the
    /// kind has the new id; [`StoreError::PreconditionFailed`]; [`StoreError::BadRequest`]
    /// for an invalid definition.
    pub async fn replace_script(
        &self,
        database: &str,
        container: &str,
        kind: ScriptKind,
        id: &str,
        definition: ScriptDefinition,
        if_match: Option<&str>,
    ) -> Result<ScriptProperties> {
        let put = Put::Replace { id: id.to_owned() };
        let (script, _) = self
            .put_script(database, container, kind, definition, put, if_match)
            .await?;
        Ok(script)
    }

    async fn put_script(
        &self,
        database: &str,
        container: &str,
        kind: ScriptKind,
        definition: ScriptDefinition,
        put: Put,
        if_match: Option<&str>,
    ) -> Result<(ScriptProperties, bool)> {
        let scope = ScriptScope {
            database: database.to_owned(),
            container: container.to_owned(),
            kind,
        };
        let if_match = if_match.map(str::to_owned);
        self.call(|reply| Request::PutScript {
            scope,
            definition,
            put,
            if_match,
            reply,
        })
        .await
    }

    /// Reads a script of a container.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerNotFound`],
    /// [`StoreError::ScriptNotFound`].
    pub fn read_script(
        &self,
        database: &str,
        container: &str,
        kind: ScriptKind,
        id: &str,
    ) -> Result<ScriptProperties> {
        Ok(self
            .shared
            .catalog()
            .script(database, container, kind, id)?
            .properties())
    }

    /// Lists a container's scripts of one kind, by id.
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerNotFound`].
    pub fn list_scripts(
        &self,
        database: &str,
        container: &str,
        kind: ScriptKind,
    ) -> Result<Vec<ScriptProperties>> {
        let catalog = self.shared.catalog();
        let cid = catalog.container(database, container)?.cid;
        Ok(catalog
            .scripts_of(cid, kind)
            .map(ScriptRecord::properties)
            .collect())
    }

    /// Deletes a script of a container if its etag matches `if_match` (an etag or `*`;
    /// `None` for no condition).
    ///
    /// # Errors
    /// [`StoreError::DatabaseNotFound`], [`StoreError::ContainerNotFound`],
    /// [`StoreError::ScriptNotFound`], [`StoreError::PreconditionFailed`].
    pub async fn delete_script(
        &self,
        database: &str,
        container: &str,
        kind: ScriptKind,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<()> {
        let scope = ScriptScope {
            database: database.to_owned(),
            container: container.to_owned(),
            kind,
        };
        let id = id.to_owned();
        let if_match = if_match.map(str::to_owned);
        self.call(|reply| Request::DeleteScript {
            scope,
            id,
            if_match,
            reply,
        })
        .await
    }

    // ---- items -----------------------------------------------------------------------

    fn container(&self, database: &str, container: &str) -> Result<Arc<ContainerRecord>> {
        Ok(Arc::clone(
            self.shared.catalog().container(database, container)?,
        ))
    }

    /// Creates, upserts, replaces, deletes or patches one item.
    ///
    /// # Errors
    /// [`StoreError::ItemExists`], [`StoreError::ItemNotFound`],
    /// [`StoreError::PreconditionFailed`], [`StoreError::BadRequest`] and
    /// [`StoreError::DocumentTooLarge`] for invalid input; [`StoreError::CommitFailed`] if
    /// the commit it was part of failed (outcome unknown), [`StoreError::Poisoned`] after an
    /// earlier storage failure; [`StoreError::DiskFull`] (not stored) while the disk is below
    /// the free-space reserve.
    pub async fn write_item(
        &self,
        database: &str,
        container: &str,
        write: ItemWrite,
    ) -> Result<WriteOutcome> {
        let record = self.container(database, container)?;
        let op = self.shared.prepare(&record, write)?;
        let (database, container) = (database.to_owned(), container.to_owned());
        self.call(|reply| Request::Write {
            database,
            container,
            cid: record.cid,
            op,
            reply,
        })
        .await
    }

    /// Applies independent item operations on one container in the order given, all in one
    /// commit group (one `fsync`), as a Cosmos bulk request: each succeeds or fails on its
    /// own, and the changes reach the feed in this order. Results are in the same order.
    ///
    /// # Errors
    /// [`StoreError::ContainerNotFound`]; [`StoreError::Overloaded`] or
    /// [`StoreError::ShutDown`] when the committer cannot take the request;
    /// [`StoreError::DiskFull`] (none stored) while the disk is below the free-space
    /// reserve. Each operation's
    /// own failure (as for [`Store::write_item`]) is in its result.
    pub async fn write_items(
        &self,
        database: &str,
        container: &str,
        writes: Vec<ItemWrite>,
    ) -> Result<Vec<Result<WriteOutcome>>> {
        let record = self.container(database, container)?;
        let ops = writes
            .into_iter()
            .map(|write| self.shared.prepare(&record, write))
            .collect();
        let (database, container) = (database.to_owned(), container.to_owned());
        self.call(|reply| Request::Bulk {
            database,
            container,
            cid: record.cid,
            ops,
            reply,
        })
        .await
    }

    /// Reads one item by partition key and id.
    ///
    /// # Errors
    /// [`StoreError::ItemNotFound`] if it does not exist or has expired.
    pub fn read_item(
        &self,
        database: &str,
        container: &str,
        partition_key: &PartitionKey,
        id: &str,
    ) -> Result<Item> {
        let record = self.container(database, container)?;
        let epk = partition_key.effective_partition_key(&record.definition.partition_key)?;
        // The pointer and the version it names are read from one snapshot: a replace that
        // commits between the two reads deletes the version the pointer named.
        let snapshot = self.shared.backend.snapshot();
        let missing = || StoreError::ItemNotFound(id.to_owned());
        let pointer = snapshot
            .get(Space::Docs, &doc_key(record.cid, epk.as_str(), id))?
            .ok_or_else(missing)?;
        let pointer = DocPointer::decode(&pointer)?;
        let value = snapshot
            .get(
                Space::Feed,
                &log_key(record.cid, pointer.segment, pointer.lsn),
            )?
            .ok_or_else(|| {
                StoreError::Corrupt("an item pointer names a missing feed entry".into())
            })?;
        let feed_record = FeedRecord::decode(&value)?;
        if is_expired(
            &record,
            feed_record.ts,
            feed_record.ttl,
            self.shared.now_s(),
        ) {
            return Err(missing());
        }
        Ok(Item {
            id: feed_record.id,
            body: feed_record.body,
            etag: catalog::item_etag(record.cid, pointer.lsn),
            lsn: pointer.lsn,
            ts: feed_record.ts,
        })
    }

    /// Runs up to [`MAX_TRANSACTION_OPERATIONS`] operations on one partition key of one
    /// container atomically (a Cosmos transactional batch).
    ///
    /// Operations without a partition key get `partition_key`; any other key is an error.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] for an empty or oversized batch; per-operation failures
    /// are reported in the outcome, not as an error.
    pub async fn execute_batch(
        &self,
        database: &str,
        container: &str,
        partition_key: PartitionKey,
        operations: Vec<ItemWrite>,
    ) -> Result<TransactionOutcome> {
        let operations = operations
            .into_iter()
            .map(|mut write| {
                if write.partition_key.is_none() {
                    write.partition_key = Some(partition_key.clone());
                }
                CrossDatabaseOperation {
                    database: database.to_owned(),
                    container: container.to_owned(),
                    write,
                }
            })
            .collect();
        self.transaction_checked(operations, BATCH_LIMITS, Some(&partition_key))
            .await
    }

    /// Commits item operations on several containers of one database atomically: all of
    /// them or none. Each may carry an ETag precondition.
    ///
    /// # Errors
    /// As [`Store::execute_batch`].
    pub async fn transaction(
        &self,
        database: &str,
        operations: Vec<TransactionOperation>,
    ) -> Result<TransactionOutcome> {
        let operations = operations
            .into_iter()
            .map(|operation| CrossDatabaseOperation {
                database: database.to_owned(),
                container: operation.container,
                write: operation.write,
            })
            .collect();
        self.transaction_checked(operations, BATCH_LIMITS, None)
            .await
    }

    /// Commits item operations on containers of any databases atomically: all of them or
    /// none, in one commit, each container's changes at its next LSNs. Each may carry an
    /// ETag precondition. For callers in this process: it holds up to
    /// [`MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS`] operations whose item bodies total at
    /// most [`MAX_CROSS_CONTAINER_TRANSACTION_BYTES`], beyond what a Cosmos batch may.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] for no operations, too many, or too many bytes;
    /// per-operation failures (a missing database or container, an invalid item, a failed
    /// precondition) are reported in the outcome, not as an error.
    pub async fn transaction_across_databases(
        &self,
        operations: Vec<CrossDatabaseOperation>,
    ) -> Result<TransactionOutcome> {
        self.transaction_checked(operations, CROSS_DATABASE_LIMITS, None)
            .await
    }

    async fn transaction_checked(
        &self,
        operations: Vec<CrossDatabaseOperation>,
        limits: TransactionLimits,
        single_key: Option<&PartitionKey>,
    ) -> Result<TransactionOutcome> {
        let TransactionLimits {
            name,
            max_operations,
            max_body_bytes,
        } = limits;
        if operations.is_empty() {
            return Err(StoreError::BadRequest(format!(
                "{name} needs at least one operation"
            )));
        }
        if operations.len() > max_operations {
            return Err(StoreError::BadRequest(format!(
                "{name} holds at most {max_operations} operations, not {}",
                operations.len()
            )));
        }
        let catalog = self.shared.catalog();
        let n_ops = operations.len();
        let mut prepared = Vec::with_capacity(n_ops);
        let mut n_body_bytes = 0;
        for (index, operation) in operations.into_iter().enumerate() {
            let result = catalog
                .container(&operation.database, &operation.container)
                .and_then(|record| {
                    let op = self.shared.prepare(record, operation.write)?;
                    if let Some(key) = single_key
                        && &op.partition_key != key
                    {
                        return Err(StoreError::BadRequest(format!(
                            "operation {index} targets partition key {}, but the batch is for {}",
                            op.partition_key.to_json(),
                            key.to_json()
                        )));
                    }
                    Ok(TransactionOp {
                        database: operation.database,
                        container: operation.container,
                        cid: record.cid,
                        op,
                    })
                });
            match result {
                Ok(op) => {
                    n_body_bytes += op.op.body_bytes();
                    if n_body_bytes > max_body_bytes {
                        return Err(StoreError::BadRequest(format!(
                            "{name} writes at most {max_body_bytes} bytes of items; operation \
                             {index} brings it past that"
                        )));
                    }
                    prepared.push(op);
                }
                Err(error) => {
                    let mut results: Vec<OperationResult> =
                        (0..n_ops).map(|_| OperationResult::NotApplied).collect();
                    results[index] = OperationResult::Failed(error);
                    return Ok(TransactionOutcome {
                        committed: false,
                        results,
                    });
                }
            }
        }
        self.call(|reply| Request::Transaction {
            ops: prepared,
            reply,
        })
        .await
    }

    // ---- metrics ----------------------------------------------------------------------

    /// What the committer has done since the store opened: commits and item changes
    /// committed, and the latency of the durable write of the commits that ended in the
    /// last `window` (at most the last [`RECENT_COMMITS`]). Reads atomics only: never waits
    /// for a commit.
    pub fn commit_stats(&self, window: Duration) -> CommitStatsSnapshot {
        self.shared.commit_stats.snapshot(window)
    }

    /// Bytes the store takes on disk: its journal and tables, as the storage engine
    /// accounts them (files it has not yet deleted may still take more).
    ///
    /// # Errors
    /// [`StoreError::Storage`] if the engine cannot read the size of its journal.
    pub fn disk_space_bytes(&self) -> Result<u64> {
        self.shared.backend.disk_space_bytes()
    }

    // ---- change feed -----------------------------------------------------------------

    /// Reads one page of a container's change feed.
    ///
    /// # Errors
    /// [`StoreError::RangeGone`] for a split range, [`StoreError::InvalidContinuation`],
    /// [`StoreError::OutsideRetention`], [`StoreError::PartitionKey`].
    pub fn read_feed(
        &self,
        database: &str,
        container: &str,
        request: &FeedRequest,
    ) -> Result<FeedPage> {
        let record = self.container(database, container)?;
        feed::read(
            self.shared.backend.as_ref(),
            &record,
            request,
            self.shared.now_s(),
        )
    }

    /// Like [`Store::read_feed`], but if there is nothing new, waits up to `timeout` for a
    /// commit to the container and reads again. Woken by the commit, not by polling; a
    /// split of the container wakes it too, so a wait on a range that is split meanwhile
    /// ends at once with [`StoreError::RangeGone`].
    ///
    /// # Errors
    /// As [`Store::read_feed`].
    pub async fn read_feed_wait(
        &self,
        database: &str,
        container: &str,
        request: &FeedRequest,
        timeout: Duration,
    ) -> Result<FeedPage> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut request = request.clone();
        loop {
            // Subscribe before taking the snapshot that is read: a commit published before
            // the subscription is in the snapshot, and one after it wakes the wait.
            let cid = self.container(database, container)?.cid;
            let mut changes = self.shared.subscribe(cid);
            let record = self.container(database, container)?;
            if record.cid != cid {
                // Deleted and recreated in between: watch the new container.
                continue;
            }
            let page = feed::read(
                self.shared.backend.as_ref(),
                &record,
                &request,
                self.shared.now_s(),
            )?;
            if !page.is_empty() {
                return Ok(page);
            }
            let seen = FeedWatermark {
                high_lsn: page.high_lsn,
                ranges_version: record.feed.ranges_version,
            };
            let woken =
                tokio::time::timeout_at(deadline, changes.wait_for(|now| now.is_past(&seen))).await;
            match woken {
                Ok(Ok(_)) => request.start = FeedStart::AfterLsn(page.lsn),
                // Timed out, or the store closed: report "nothing new".
                _ => return Ok(page),
            }
        }
    }

    /// The EPK of a partition key value in a container (for routing and feed scopes).
    ///
    /// # Errors
    /// [`StoreError::PartitionKey`] if the value does not fit the container's key.
    pub fn effective_partition_key(
        &self,
        database: &str,
        container: &str,
        partition_key: &PartitionKey,
    ) -> Result<Epk> {
        let record = self.container(database, container)?;
        Ok(partition_key.effective_partition_key(&record.definition.partition_key)?)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

fn is_expired(container: &ContainerRecord, ts: u64, ttl: Option<i64>, now_s: u64) -> bool {
    expiry_second(container.definition.default_ttl, ttl, ts).is_some_and(|at| at <= now_s)
}

/// Reads the catalog from the meta keyspace and checks its invariants.
fn load_catalog(backend: &dyn Backend) -> Result<Catalog> {
    let mut catalog = Catalog::default();
    if let Some(counters) = backend.get(Space::Meta, records::COUNTERS_META_KEY)? {
        catalog.counters = serde_json::from_slice::<Counters>(&counters)
            .map_err(|e| StoreError::Corrupt(format!("catalog counters: {e}")))?;
    }
    for entry in scan(backend, Space::Meta, b"db\0", b"db\x01") {
        let (_, value) = entry?;
        let record: DatabaseRecord = serde_json::from_slice(&value)
            .map_err(|e| StoreError::Corrupt(format!("database record: {e}")))?;
        catalog.databases.insert(record.id.clone(), record);
    }
    for entry in scan(backend, Space::Meta, b"co\0", b"co\x01") {
        let (_, value) = entry?;
        let record = ContainerRecord::decode(&value)?;
        catalog.container_ids.insert(
            (record.database.clone(), record.definition.id.clone()),
            record.cid,
        );
        catalog.containers.insert(record.cid, Arc::new(record));
    }
    let users_end = [&records::USER_META_PREFIX[..2], b"\x01"].concat();
    for entry in scan(backend, Space::Meta, records::USER_META_PREFIX, &users_end) {
        let (_, value) = entry?;
        let record = UserRecord::decode(&value)?;
        if !catalog.databases.contains_key(&record.database) {
            return Err(StoreError::Corrupt(format!(
                "user '{}' belongs to database '{}', which does not exist",
                record.id, record.database
            )));
        }
        Arc::make_mut(&mut catalog.users)
            .insert((record.database.clone(), record.id.clone()), record);
    }
    let scripts_end = [&scripts::SCRIPT_META_PREFIX[..2], b"\x01"].concat();
    for entry in scan(
        backend,
        Space::Meta,
        scripts::SCRIPT_META_PREFIX,
        &scripts_end,
    ) {
        let (_, value) = entry?;
        let record = ScriptRecord::decode(&value)?;
        if !catalog.containers.contains_key(&record.cid) {
            return Err(StoreError::Corrupt(format!(
                "{} '{}' belongs to container {}, which does not exist",
                record.kind.as_str(),
                record.definition.id,
                record.cid
            )));
        }
        Arc::make_mut(&mut catalog.scripts).insert(
            (record.cid, record.kind, record.definition.id.clone()),
            record,
        );
    }
    Ok(catalog)
}

/// The file in a data directory where the process that holds it names itself.
const OWNER_FILE: &str = "owner";
/// Longest command line recorded in [`OWNER_FILE`].
const MAX_OWNER_BYTES: usize = 256;

/// Records this process as the data directory's holder (`process <pid> (<command line>)`),
/// so that a second open can say who holds it. Failing to record it is not an error: the
/// lock, not this file, keeps a second store out.
fn write_owner(dir: &Path) {
    let mut command: String = std::env::args().collect::<Vec<_>>().join(" ");
    if command.len() > MAX_OWNER_BYTES {
        let mut end = MAX_OWNER_BYTES;
        while !command.is_char_boundary(end) {
            end -= 1;
        }
        command.truncate(end);
        command.push('…');
    }
    let owner = format!("process {} ({command})", std::process::id());
    if let Err(error) = std::fs::write(dir.join(OWNER_FILE), owner) {
        tracing::debug!(%error, "could not record the data directory's owner");
    }
}

/// The holder recorded by [`write_owner`], if any.
fn read_owner(dir: &Path) -> Option<String> {
    let owner = std::fs::read_to_string(dir.join(OWNER_FILE)).ok()?;
    let owner = owner.trim();
    (!owner.is_empty()).then(|| owner.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replaced_database_throughput_is_kept_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), StoreOptions::relaxed()).unwrap();
            store
                .create_database_with_throughput("shared", Some(400), None)
                .await
                .unwrap();
            let replaced = store
                .replace_database_throughput("shared", 5000, None)
                .await
                .unwrap();
            assert_eq!(replaced.throughput, Some(5000));
            assert_eq!(
                store.read_database("shared").unwrap().throughput,
                Some(5000)
            );
        }
        let store = Store::open(dir.path(), StoreOptions::relaxed()).unwrap();
        assert_eq!(
            store.read_database("shared").unwrap().throughput,
            Some(5000)
        );
    }

    #[tokio::test]
    async fn autoscale_settings_survive_a_restart_and_a_replace_can_switch_them_off() {
        let dir = tempfile::tempdir().unwrap();
        let autoscale = Some(Autoscale {
            increment_percent: 7,
        });
        {
            let store = Store::open(dir.path(), StoreOptions::relaxed()).unwrap();
            store
                .create_database_with_throughput("auto", Some(5000), autoscale)
                .await
                .unwrap();
            let mut definition = ContainerDefinition::new("c", "/pk");
            definition.throughput = Some(7000);
            definition.autoscale = autoscale;
            store.create_container("auto", definition, 1).await.unwrap();
        }
        let store = Store::open(dir.path(), StoreOptions::relaxed()).unwrap();
        let database = store.read_database("auto").unwrap();
        assert_eq!(
            (database.throughput, database.autoscale),
            (Some(5000), autoscale)
        );
        let container = store.read_container("auto", "c").unwrap().definition;
        assert_eq!(
            (container.throughput, container.autoscale),
            (Some(7000), autoscale)
        );
        let manual = store
            .replace_database_throughput("auto", 800, None)
            .await
            .unwrap();
        assert_eq!((manual.throughput, manual.autoscale), (Some(800), None));
    }

    #[tokio::test]
    async fn database_throughput_replace_needs_a_database_with_shared_throughput() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), StoreOptions::relaxed()).unwrap();
        store.create_database("plain").await.unwrap();
        assert!(matches!(
            store.replace_database_throughput("plain", 5000, None).await,
            Err(StoreError::BadRequest(_))
        ));
        assert!(matches!(
            store
                .replace_database_throughput("missing", 5000, None)
                .await,
            Err(StoreError::DatabaseNotFound(_))
        ));
        assert_eq!(store.read_database("plain").unwrap().throughput, None);
    }
}
