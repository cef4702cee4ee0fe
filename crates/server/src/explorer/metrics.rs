//! `GET /_explorer/metrics`: a snapshot of the server's counters and gauges as JSON, for the
//! Explorer's dashboard, which polls it (once a second) and draws rates from the differences.
//!
//! Signed as a read of the database account (`GET`, resource type and link both empty: what
//! the SDKs sign for `GET /`), so any of the account's four keys may read it, read-only keys
//! too; resource tokens may not (they reach resources, not the account). Nothing in it names
//! a database, a container or an item.
//!
//! ```json
//! {"uptimeMs": 61234, "requests": {"1xx": 0, "2xx": 410, "3xx": 3, "4xx": 2, "5xx": 0},
//!  "commits": 120, "itemChangesCommitted": 388,
//!  "fsync": {"windowS": 10, "commits": 12, "p50Us": 2100, "p99Us": 5300, "maxUs": 5300},
//!  "feedItemsServed": 250, "openConnections": 3,
//!  "processRssBytes": 31457280, "storeBytes": 1048576}
//! ```
//!
//! Counters (`requests`, `commits`, `itemChangesCommitted`, `feedItemsServed`) count from the
//! server's start and never go down; the others are gauges. `fsync` is the latency of the
//! durable write of each commit that ended in the last `windowS` seconds (the storage engine's
//! journal write and its `fdatasync`; under relaxed durability, the write alone), `null`
//! percentiles when none did. `processRssBytes` is `null` where the OS does not say (not
//! Linux); `storeBytes` is `null` if the engine could not measure it.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use axum::http::request::Parts;
use serde_json::json;
use tributary_wire::auth::ResourceAddress;

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::process_rss_bytes;
use crate::request::Reply;

/// The window of the commit latency percentiles.
pub(crate) const FSYNC_WINDOW: Duration = Duration::from_secs(10);

/// Answers the snapshot.
///
/// # Errors
/// 401 or 403 for the signature, as on every request; 405 for a verb other than GET; 400 for
/// a query string (the snapshot takes no parameters).
pub(super) async fn snapshot(state: &Arc<AppState>, parts: &Parts) -> Result<Reply, ApiError> {
    if parts.method != Method::GET {
        return Err(ApiError::new(
            405,
            format!(
                "{} is not supported on the metrics snapshot: read it with GET",
                parts.method
            ),
        ));
    }
    let account = ResourceAddress {
        resource_type: String::new(),
        resource_link: String::new(),
    };
    // Any key may read the account, read-only keys too.
    crate::verify_master_key(state, &parts.method, &account, &parts.headers)?;
    if parts.uri.query().is_some_and(|query| !query.is_empty()) {
        return Err(ApiError::bad_request(
            "the metrics snapshot takes no parameters",
        ));
    }
    let server = state.metrics.snapshot();
    let commits = state.store.commit_stats(FSYNC_WINDOW);
    // A few file sizes, read from the engine's bookkeeping and the journal's metadata.
    let store_bytes = state.store.disk_space_bytes().ok();
    let [r1, r2, r3, r4, r5] = server.n_responses_by_class;
    let body = json!({
        "uptimeMs": state.started.elapsed().as_millis() as u64,
        "requests": {"1xx": r1, "2xx": r2, "3xx": r3, "4xx": r4, "5xx": r5},
        "commits": commits.n_commits,
        "itemChangesCommitted": commits.n_item_changes,
        "fsync": {
            "windowS": FSYNC_WINDOW.as_secs(),
            "commits": commits.n_recent,
            "p50Us": commits.p50_us,
            "p99Us": commits.p99_us,
            "maxUs": commits.max_us,
        },
        "feedItemsServed": server.n_feed_items_served,
        "openConnections": server.n_open_connections,
        "processRssBytes": process_rss_bytes(),
        "storeBytes": store_bytes,
    });
    Ok(Reply::json(200, body.to_string())
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff"))
}
