//! Resource-id links: `dbs/{db _rid}/colls/{container _rid}/docs/{item _rid}` (or
//! `.../sprocs/`, `.../triggers/`, `.../udfs/{script _rid}`) and
//! `dbs/{db _rid}/users/{user _rid}/permissions/{permission _rid}`.
//!
//! The SDKs address a resource by its `_self` link when they hold the resource itself (the
//! Python SDK deletes an item passed as a dict through its `_self`). Such a link is signed
//! with the last resource id in it, lowercased, and this module turns it back into the
//! name-based path the routes serve.

use base64::Engine as _;
use tributary_partition_key::PartitionKey;
use tributary_store::{FeedScope, Store};
use tributary_wire::auth::ResourceAddress;

use crate::error::ApiError;

/// Whether a path's segments form a resource-id link, by the SDKs' own rule: the database
/// segment is 8 characters of base64 holding 4 bytes.
pub(crate) fn is_rid_path(segments: &[String]) -> bool {
    match segments {
        [dbs, database, ..] if dbs == "dbs" && database.len() == 8 => decodes_to(database, 4),
        _ => false,
    }
}

fn decodes_to(text: &str, n_bytes: usize) -> bool {
    base64::engine::general_purpose::STANDARD
        .decode(text.replace('-', "/"))
        .is_ok_and(|bytes| bytes.len() == n_bytes)
}

/// The address a resource-id link is signed with: its type, and the last resource id in it
/// (the resource's own, or the parent's for a feed), lowercased.
pub(crate) fn signed_address(segments: &[String]) -> ResourceAddress {
    let n_segments = segments.len();
    let (resource_type, rid) = if n_segments.is_multiple_of(2) {
        (&segments[n_segments - 2], &segments[n_segments - 1])
    } else {
        (&segments[n_segments - 1], &segments[n_segments - 2])
    };
    ResourceAddress {
        resource_type: resource_type.clone(),
        resource_link: rid.to_lowercase(),
    }
}

/// Rewrites a resource-id link's database, container and item ids into names.
///
/// # Errors
/// 404 when a resource id names nothing.
pub(crate) fn resolve(
    store: &Store,
    segments: &mut [String],
    partition_key: Option<&PartitionKey>,
) -> Result<(), ApiError> {
    let not_found = |kind: &str, rid: &str| {
        ApiError::not_found(format!("no {kind} has the resource id '{rid}'"))
    };
    let database = store
        .list_databases()
        .into_iter()
        .find(|d| d.rid == segments[1])
        .ok_or_else(|| not_found("database", &segments[1]))?
        .id;
    segments[1] = database.clone();
    if segments.len() >= 4 && segments[2] == "users" {
        return resolve_user(store, &database, segments);
    }
    if segments.len() < 4 || segments[2] != "colls" {
        return Ok(());
    }
    let container = store
        .list_containers(&database)?
        .into_iter()
        .find(|c| c.rid == segments[3])
        .ok_or_else(|| not_found("container", &segments[3]))?
        .definition
        .id;
    segments[3] = container.clone();
    if segments.len() < 6 {
        return Ok(());
    }
    if let Some(kind) = crate::routes::scripts::kind_of_segment(&segments[4]) {
        segments[5] = store
            .list_scripts(&database, &container, kind)?
            .into_iter()
            .find(|script| script.rid == segments[5])
            .ok_or_else(|| not_found(kind.as_str(), &segments[5]))?
            .definition
            .id;
        return Ok(());
    }
    if segments[4] != "docs" {
        return Ok(());
    }
    let scope = match partition_key {
        Some(key) => FeedScope::PartitionKey(key.clone()),
        None => FeedScope::Container,
    };
    let id = store
        .item_id_by_rid(&database, &container, &scope, &segments[5])?
        .ok_or_else(|| not_found("item", &segments[5]))?;
    segments[5] = id;
    Ok(())
}

/// Rewrites the user and permission ids of `dbs/{db}/users/{user _rid}[/permissions/{_rid}]`
/// into names (the database segment already is one).
fn resolve_user(store: &Store, database: &str, segments: &mut [String]) -> Result<(), ApiError> {
    let user = store
        .list_users(database)?
        .into_iter()
        .find(|user| user.rid == segments[3])
        .ok_or_else(|| {
            ApiError::not_found(format!("no user has the resource id '{}'", segments[3]))
        })?
        .id;
    segments[3] = user.clone();
    if segments.len() < 6 || segments[4] != "permissions" {
        return Ok(());
    }
    segments[5] = store
        .list_permissions(database, &user)?
        .into_iter()
        .find(|permission| permission.rid == segments[5])
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no permission has the resource id '{}'",
                segments[5]
            ))
        })?
        .definition
        .id;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<String> {
        path.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn rid_paths_are_told_from_name_paths_by_the_database_segment() {
        assert!(is_rid_path(&segments("dbs/AAAAAQ==/colls/AAAAAYAAAAI=")));
        assert!(!is_rid_path(&segments("dbs/mydb/colls/AAAAAYAAAAI=")));
        assert!(!is_rid_path(&segments("dbs/12345678")));
        assert!(!is_rid_path(&segments("offers/AAAAAQ==")));
    }

    #[test]
    fn rid_links_are_signed_with_the_last_rid_lowercased() {
        let item = signed_address(&segments(
            "dbs/AAAAAQ==/colls/AAAAAYAAAAI=/docs/AAAAAYAAAAIFAAAAAAAAAA==",
        ));
        assert_eq!(item.resource_type, "docs");
        assert_eq!(item.resource_link, "aaaaayaaaaifaaaaaaaaaa==");
        let feed = signed_address(&segments("dbs/AAAAAQ==/colls/AAAAAYAAAAI=/docs"));
        assert_eq!(feed.resource_type, "docs");
        assert_eq!(feed.resource_link, "aaaaayaaaai=");
    }
}
