//! A change feed processor: spreads a container's change feed over any number of host
//! processes through **lease documents**, hands each batch of changes to your handler,
//! checkpoints, takes over the leases of hosts that die, follows splits, and estimates lag.
//!
//! The design and the lease documents are those of the Azure Cosmos DB .NET SDK's processor
//! (see [`lease`] for the exact document shape), so tools that read .NET leases read these.
//! It runs the same way on three sources, each a [`ChangeFeed`] and a [`LeaseContainer`]:
//!
//! - the embedded store ([`embedded`]): direct calls, and a read that finds nothing waits on
//!   the store's commit notifications, so a change reaches the handler in milliseconds;
//! - a remote `tributary serve` ([`remote`]): the REST API, with Tributary's long-poll header
//!   (`x-tributary-wait-ms`) for the same push delivery;
//! - Azure Cosmos DB ([`remote`] without long-poll): the same REST API, polled every poll
//!   interval.
//!
//! # How it works
//!
//! Each lease covers one span of effective partition keys and records its owner and its
//! continuation. Every host lists the leases each acquire interval and takes free and
//! expired ones until it holds its share, ⌈leases ÷ hosts⌉; if none are free it asks the
//! busiest host to hand one over, and that host checkpoints and hands it over at its next
//! renewal. A lease is **expired** when this host has not seen its `_etag` change for the
//! expiration interval, measured on this host's monotonic clock: wall clocks are never
//! compared between hosts. Owners renew every renew interval and stop working on a lease
//! they could not renew for most of the expiration interval, before anyone else may take
//! it. Every lease write is conditional on the `_etag` read with it, and a checkpoint is
//! written only while this host owns the lease and never moves it backward.
//!
//! Delivery is **at least once**: a handler error, a crash or a lost lease means the batch is
//! delivered again from the last checkpoint. Changes of one lease arrive in order. On the
//! embedded store a manual handler can make its outputs exactly once:
//! [`Checkpointer::checkpoint_with_writes`] commits them in one transaction with the
//! checkpoint, so a redelivered batch never finds its outputs already applied.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use tributary_processor::{ChangeFeedProcessorBuilder, StartFrom};
//! use tributary_processor::embedded::{EmbeddedFeed, EmbeddedLeaseContainer};
//! # async fn example(store: Arc<tributary_store::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! let feed = Arc::new(EmbeddedFeed::new(Arc::clone(&store), "shop", "orders"));
//! let leases = Arc::new(EmbeddedLeaseContainer::open(store, "shop", "leases").await?);
//! let mut processor = ChangeFeedProcessorBuilder::new("order-view", feed, leases)
//!     .instance_name("host-1")
//!     .start_from(StartFrom::Beginning)
//!     .handler(|context, changes| async move {
//!         for change in &changes {
//!             println!("{}: {}", context.lease_token, change.json());
//!         }
//!         Ok(())
//!     })
//!     .build()?;
//! processor.start().await?;
//! // ... later:
//! processor.stop().await;
//! # Ok(()) }
//! ```
//!
//! # What it is not
//!
//! It does not retry a failing batch forever silently: a lease whose batches keep failing is
//! marked stuck in its lease document (visible to [`ChangeFeedEstimator`]), but retry
//! limits, bisecting and dead-lettering belong to the functions host built on it. Handler
//! calls of one lease are sequential.

pub mod balancer;
mod clock;
pub mod embedded;
mod error;
mod estimator;
mod feed;
mod host;
pub mod lease;
mod lease_container;
mod leases;
mod processor;
pub mod remote;
mod worker;

pub use clock::{BoxFuture, Clock, SystemClock, iso8601};
pub use error::{FeedError, LeaseStoreError, ProcessorError};
pub use estimator::{ChangeFeedEstimator, LeaseEstimate};
pub use feed::{
    Change, ChangeFeed, EpkSpan, FeedFilter, FeedMode, FeedPage, FeedPosition, FeedRead,
    FeedReadOutcome, PendingChanges, PendingOutcome, PhysicalRange, StartFrom,
};
pub use lease::START_PROPERTY;
pub use lease_container::{AttachedWrite, LeaseContainer, MemoryLeaseContainer, StoredDocument};
pub use leases::{LeaseStore, lease_prefix};
pub use processor::{
    AutoHandler, BatchContext, ChangeFeedProcessor, ChangeFeedProcessorBuilder, CheckpointError,
    Checkpointer, DEFAULT_ACQUIRE_INTERVAL, DEFAULT_EXPIRATION_INTERVAL, DEFAULT_MAX_ITEMS,
    DEFAULT_POLL_INTERVAL, DEFAULT_READ_WAIT, DEFAULT_RENEW_INTERVAL, HandlerError, MAX_MAX_ITEMS,
    ManualHandler, ProcessorConfig, ReleaseReason,
};
pub use worker::{FAILURES_PROPERTY, LAST_ERROR_PROPERTY};
