//! What a resource token may reach: the permission it names, checked on every request.
//!
//! A token ([`tributary_wire::resource_token`]) names a permission; [`Grant::of_token`] checks
//! its signature and expiry and that the permission still exists unchanged (same `_rid`, same
//! `_etag`), and [`Grant::authorize`] then checks one request against the permission:
//!
//! * the account (`GET /`) may be read with any valid token (the SDKs read it first, with
//!   whichever token they hold);
//! * items (`.../docs`, one item, queries, feeds, batches, partition-key deletes) may be
//!   reached when they are the permission's resource or lie below it: a database permission
//!   covers its containers' items, a container permission its items, an item permission that
//!   item alone;
//! * a container's properties and partition key ranges, and a database's properties, may be
//!   read when the permission's resource is that container or database, lies below it (the
//!   SDKs read them before they touch an item) or above it; a database permission may also
//!   list its containers;
//! * `Read` allows only what a read-only key may send ([`routes::is_read`]); `All` allows
//!   writes of items too;
//! * a permission with a `resourcePartitionKey` allows item requests only with that key in
//!   `x-ms-documentdb-partitionkey` (a cross-partition query without it is refused), or with
//!   an EPK span (`x-ms-start-epk`/`x-ms-end-epk`) inside that key's span, and never with a
//!   partition key range id alone or as bulk (those reach past the key);
//! * users, permissions, offers, and creating, replacing or deleting databases and containers
//!   are never reachable with a token, nor Tributary's cross-container transactions (their
//!   operations name other containers).
//!
//! Every refusal is a 403 that names the permission and what it allows.

use std::time::SystemTime;

use axum::http::Method;
use tributary_partition_key::{Epk, PartitionKey};
use tributary_store::{PermissionMode, PermissionProperties, Store, StoreError};
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::RequestContext;
use crate::{rid, routes};

/// A checked token: the permission it was minted from, with its resource as names.
pub(crate) struct Grant {
    permission: PermissionProperties,
    /// The permission's resource link as decoded name segments (`dbs`, db, `colls`, c, ...).
    resource: Vec<String>,
    /// The permission's `resourcePartitionKey`, parsed.
    partition_key: Option<PartitionKey>,
}

impl Grant {
    /// Checks a resource token (the `<signature>;<claims>` part of the header) and reads
    /// the permission it names.
    ///
    /// # Errors
    /// 401 for a token that is forged, altered, signed under another master key, expired, or
    /// whose permission was deleted or replaced since; 403 when the permission's resource
    /// names nothing that exists.
    pub(crate) fn of_token(state: &AppState, token: &str) -> Result<Grant, ApiError> {
        let claims = state
            .keys
            .resource_token_key()
            .verify(token, SystemTime::now())?;
        let revoked = |what: &str| {
            ApiError::new(
                401,
                format!(
                    "The resource token of permission '{}' of user '{}' in database '{}' is no longer valid: {what}. Read the permission again for a fresh token.",
                    claims.permission, claims.user, claims.database
                ),
            )
        };
        let permission =
            match state
                .store
                .read_permission(&claims.database, &claims.user, &claims.permission)
            {
                Ok(permission) => permission,
                Err(
                    StoreError::DatabaseNotFound(_)
                    | StoreError::UserNotFound { .. }
                    | StoreError::PermissionNotFound { .. },
                ) => return Err(revoked("the permission (or its user) was deleted")),
                Err(error) => return Err(error.into()),
            };
        if permission.rid != claims.permission_rid || permission.etag != claims.permission_etag {
            return Err(revoked(
                "the permission was replaced since the token was minted",
            ));
        }
        let partition_key = match &permission.definition.resource_partition_key {
            Some(value) => Some(PartitionKey::from_json(value).map_err(|error| {
                ApiError::new(
                    403,
                    format!(
                        "permission '{}' has a 'resourcePartitionKey' that is not a partition key ({error})",
                        permission.definition.id
                    ),
                )
            })?),
            None => None,
        };
        let mut resource: Vec<String> = permission
            .definition
            .resource
            .split('/')
            .map(str::to_owned)
            .collect();
        if rid::is_rid_path(&resource) {
            rid::resolve(&state.store, &mut resource, partition_key.as_ref()).map_err(|_| {
                ApiError::new(
                    403,
                    format!(
                        "permission '{}' grants access to '{}', which does not exist",
                        permission.definition.id, permission.definition.resource
                    ),
                )
            })?;
        }
        Ok(Grant {
            permission,
            resource,
            partition_key,
        })
    }

    /// Whether the permission allows this request (its path already resolved to names).
    ///
    /// # Errors
    /// 403 naming the permission and what it allows.
    pub(crate) fn authorize(
        &self,
        store: &Store,
        request: &RequestContext,
    ) -> Result<(), ApiError> {
        let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
        let method = &request.method;
        let is_get = method == Method::GET || method == Method::HEAD;
        if segments.is_empty() {
            return if is_get {
                Ok(())
            } else {
                Err(self.refusal(request, "the account can only be read"))
            };
        }
        let is_read = routes::is_read(method, &request.segments, &request.headers)?;
        let resource: Vec<&str> = self.resource.iter().map(String::as_str).collect();
        let within = |scope: &[&str]| segments.starts_with(scope);
        let covers = |ancestor: &[&str]| resource.starts_with(ancestor);
        match segments.as_slice() {
            ["dbs", _, "users", ..] => Err(self.refusal(
                request,
                "users and permissions are managed with a master key only",
            )),
            ["dbs", database, "colls", container, "docs" | "operations", ..] => {
                if request.flag(headers::X_TRIBUTARY_TRANSACTION)? {
                    return Err(self.refusal(
                        request,
                        "a cross-container transaction needs a master key",
                    ));
                }
                if !within(&resource) {
                    return Err(self.refusal(request, "the request is outside its resource"));
                }
                if self.permission.definition.mode == PermissionMode::Read && !is_read {
                    return Err(self.refusal(request, "its mode is Read, and this request writes"));
                }
                self.check_partition_key(store, request, database, container)
            }
            ["dbs", _, "colls", _] | ["dbs", _, "colls", _, "pkranges"]
                if is_get && (covers(&segments[..4]) || within(&resource)) =>
            {
                Ok(())
            }
            ["dbs", _] if is_get && covers(&segments) => Ok(()),
            ["dbs", _, "colls"] if is_read && resource == segments[..2] => Ok(()),
            _ => Err(self.refusal(
                request,
                "a resource token reaches items and reads the containers and databases above them; databases, containers and offers are managed with a master key only",
            )),
        }
    }

    fn check_partition_key(
        &self,
        store: &Store,
        request: &RequestContext,
        database: &str,
        container: &str,
    ) -> Result<(), ApiError> {
        let Some(allowed) = &self.partition_key else {
            return Ok(());
        };
        // A bulk request's operations carry their own keys.
        let is_bulk = request.flag(headers::X_MS_COSMOS_IS_BATCH_REQUEST)?
            && request.header(headers::X_MS_COSMOS_BATCH_ATOMIC).is_some()
            && !request.flag(headers::X_MS_COSMOS_BATCH_ATOMIC)?;
        if is_bulk {
            return Err(self.refusal(
                request,
                &format!(
                    "it is limited to partition key {}, and a bulk request names a partition key per operation (send a transactional batch)",
                    allowed.to_json()
                ),
            ));
        }
        // An EPK span scopes feeds and queries before the key header does: it must lie
        // within the key's span (the Python SDK's partition-key change feed sends exactly
        // that span, with a range id and no key header).
        if let (Some(start), Some(end)) = (
            request.header(headers::X_MS_START_EPK),
            request.header(headers::X_MS_END_EPK),
        ) {
            let definition = store.partition_key_definition(database, container)?;
            let span = allowed.epk_range(&definition).map_err(|error| {
                self.refusal(
                    request,
                    &format!(
                        "its partition key {} does not fit the container's partition key ({error})",
                        allowed.to_json()
                    ),
                )
            })?;
            let within = Epk::parse(start).is_ok_and(|start| start >= span.min)
                && Epk::parse(end).is_ok_and(|end| end <= span.max);
            if !within {
                return Err(self.refusal(
                    request,
                    &format!(
                        "it is limited to partition key {} (effective partition keys [{}, {})), and the request reads [{start}, {end})",
                        allowed.to_json(),
                        span.min,
                        span.max
                    ),
                ));
            }
            return match request.partition_key()? {
                Some(sent) if sent != *allowed => Err(self.refusal(
                    request,
                    &format!(
                        "it is limited to partition key {}, and the request is for {}",
                        allowed.to_json(),
                        sent.to_json()
                    ),
                )),
                _ => Ok(()),
            };
        }
        // Without an EPK span, a range id scopes the request to a whole range.
        for header in [
            headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID,
            headers::X_MS_START_EPK,
            headers::X_MS_END_EPK,
        ] {
            if request.header(header).is_some() {
                return Err(self.refusal(
                    request,
                    &format!(
                        "it is limited to partition key {}, and '{header}' would read beyond it",
                        allowed.to_json()
                    ),
                ));
            }
        }
        match request.partition_key()? {
            Some(sent) if sent == *allowed => Ok(()),
            Some(sent) => Err(self.refusal(
                request,
                &format!(
                    "it is limited to partition key {}, and the request is for {}",
                    allowed.to_json(),
                    sent.to_json()
                ),
            )),
            None => Err(self.refusal(
                request,
                &format!(
                    "it is limited to partition key {}, and the request names none (send '{}'; a cross-partition query is not allowed)",
                    allowed.to_json(),
                    headers::X_MS_DOCUMENTDB_PARTITIONKEY
                ),
            )),
        }
    }

    fn refusal(&self, request: &RequestContext, reason: &str) -> ApiError {
        let definition = &self.permission.definition;
        ApiError::new(
            403,
            format!(
                "The resource token of permission '{}' of user '{}' ({} on '{}'{}) does not allow {} /{}: {reason}.",
                definition.id,
                self.permission.user,
                definition.mode.as_str(),
                definition.resource,
                definition
                    .resource_partition_key
                    .as_ref()
                    .map(|key| format!(", partition key {key}"))
                    .unwrap_or_default(),
                request.method,
                request.segments.join("/"),
            ),
        )
    }
}
