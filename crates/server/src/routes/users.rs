//! Users (`/dbs/{db}/users`) and their permissions (`/dbs/{db}/users/{user}/permissions`):
//! create, upsert, list, query, read, replace (rename) and delete. Every permission in a
//! response carries a fresh resource token (`_token`), valid for
//! `x-ms-documentdb-expiry-seconds` (1 to 18000 s, default 3600 s).

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tributary_store::{PermissionDefinition, PermissionProperties, UserProperties};
use tributary_wire::headers;
use tributary_wire::resource_token::{
    DEFAULT_TOKEN_VALIDITY, MAX_TOKEN_VALIDITY, ResourceTokenClaims, ResourceTokenKey,
};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, feed_body};

/// The JSON of a user.
pub(crate) fn user_json(user: &UserProperties) -> Value {
    json!({
        "id": user.id,
        "_rid": user.rid,
        "_self": format!("dbs/{}/users/{}/", user.database_rid, user.rid),
        "_etag": user.etag,
        "_ts": user.ts,
        "_permissions": "permissions/",
    })
}

/// The JSON of a permission, with a resource token minted now.
fn permission_json(
    permission: &PermissionProperties,
    token_key: &ResourceTokenKey,
    expires_at_s: u64,
) -> Value {
    let definition = &permission.definition;
    let token = token_key.mint(&ResourceTokenClaims {
        database: permission.database.clone(),
        user: permission.user.clone(),
        permission: definition.id.clone(),
        permission_rid: permission.rid.clone(),
        permission_etag: permission.etag.clone(),
        expires_at_s,
    });
    let mut object = json!({
        "id": definition.id,
        "permissionMode": definition.mode_as_sent,
        "resource": definition.resource,
        "_rid": permission.rid,
        "_self": format!(
            "dbs/{}/users/{}/permissions/{}/",
            permission.database_rid, permission.user_rid, permission.rid
        ),
        "_etag": permission.etag,
        "_ts": permission.ts,
        "_token": token,
    });
    if let Some(partition_key) = &definition.resource_partition_key {
        object["resourcePartitionKey"] = partition_key.clone();
    }
    object
}

/// How long the tokens of this response are valid: `x-ms-documentdb-expiry-seconds`, or
/// [`DEFAULT_TOKEN_VALIDITY`].
fn token_validity(request: &RequestContext) -> Result<Duration, ApiError> {
    let Some(value) = request.header(headers::X_MS_DOCUMENTDB_EXPIRY_SECONDS) else {
        return Ok(DEFAULT_TOKEN_VALIDITY);
    };
    let max_s = MAX_TOKEN_VALIDITY.as_secs();
    match value.parse::<u64>() {
        Ok(seconds) if (1..=max_s).contains(&seconds) => Ok(Duration::from_secs(seconds)),
        _ => Err(ApiError::bad_request(format!(
            "header '{}' must be a whole number of seconds from 1 to {max_s} (5 hours), not '{value}'",
            headers::X_MS_DOCUMENTDB_EXPIRY_SECONDS
        ))),
    }
}

/// Permissions as JSON, each with a token valid for what the request asks.
fn permissions_json(
    state: &AppState,
    request: &RequestContext,
    permissions: &[PermissionProperties],
) -> Result<Vec<Value>, ApiError> {
    let expires_at_s =
        ResourceTokenClaims::expiry_from(SystemTime::now(), token_validity(request)?);
    let token_key = state.keys.resource_token_key();
    Ok(permissions
        .iter()
        .map(|permission| permission_json(permission, &token_key, expires_at_s))
        .collect())
}

fn permission_reply(
    state: &AppState,
    request: &RequestContext,
    status: u16,
    permission: &PermissionProperties,
) -> Result<Reply, ApiError> {
    let body = permissions_json(state, request, std::slice::from_ref(permission))?;
    Ok(Reply::json(status, body[0].to_string()).header(headers::ETAG, &permission.etag))
}

fn user_reply(status: u16, user: &UserProperties) -> Reply {
    Reply::json(status, user_json(user).to_string()).header(headers::ETAG, &user.etag)
}

/// The `id` of a user body.
fn user_id(body: &Value) -> Result<&str, ApiError> {
    body.as_object()
        .ok_or_else(|| ApiError::bad_request("the user definition must be a JSON object"))?
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("the user definition needs a string 'id'"))
}

fn permission_definition(request: &RequestContext) -> Result<PermissionDefinition, ApiError> {
    Ok(PermissionDefinition::from_json(&request.json()?)?)
}

/// The users of a database as JSON (for lists and queries).
pub(crate) fn users_json(state: &AppState, database: &str) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .list_users(database)?
        .iter()
        .map(user_json)
        .collect())
}

/// A user's permissions as JSON (for lists and queries), each with a fresh token.
pub(crate) fn user_permissions_json(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    user: &str,
) -> Result<Vec<Value>, ApiError> {
    let permissions = state.store.list_permissions(database, user)?;
    permissions_json(state, request, &permissions)
}

/// `POST /dbs/{db}/users`: create, or upsert with `x-ms-documentdb-is-upsert`.
pub(crate) async fn create_user(
    state: &AppState,
    request: &RequestContext,
    database: &str,
) -> Result<Reply, ApiError> {
    let body = request.json()?;
    let id = user_id(&body)?;
    if request.flag(headers::X_MS_DOCUMENTDB_IS_UPSERT)? {
        let (user, created) = state.store.upsert_user(database, id).await?;
        return Ok(user_reply(if created { 201 } else { 200 }, &user));
    }
    let user = state.store.create_user(database, id).await?;
    Ok(user_reply(201, &user))
}

pub(crate) fn list_users(state: &AppState, database: &str) -> Result<Reply, ApiError> {
    let database_rid = state.store.read_database(database)?.rid;
    let users: Vec<String> = users_json(state, database)?
        .iter()
        .map(Value::to_string)
        .collect();
    Ok(Reply::json(200, feed_body(&database_rid, "Users", &users))
        .header(X_MS_ITEM_COUNT, users.len().to_string()))
}

pub(crate) fn read_user(state: &AppState, database: &str, id: &str) -> Result<Reply, ApiError> {
    Ok(user_reply(200, &state.store.read_user(database, id)?))
}

/// `PUT /dbs/{db}/users/{id}`: replace, renaming the user to the body's `id`.
pub(crate) async fn replace_user(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let body = request.json()?;
    let new_id = user_id(&body)?;
    let user = state.store.replace_user(database, id, new_id).await?;
    Ok(user_reply(200, &user))
}

pub(crate) async fn delete_user(
    state: &AppState,
    database: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    state.store.delete_user(database, id).await?;
    Ok(Reply::empty(204))
}

/// `POST /dbs/{db}/users/{user}/permissions`: create, or upsert with
/// `x-ms-documentdb-is-upsert`.
pub(crate) async fn create_permission(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    user: &str,
) -> Result<Reply, ApiError> {
    let definition = permission_definition(request)?;
    // Checked before the write, so a bad header changes nothing.
    token_validity(request)?;
    if request.flag(headers::X_MS_DOCUMENTDB_IS_UPSERT)? {
        let (permission, created) = state
            .store
            .upsert_permission(database, user, definition)
            .await?;
        return permission_reply(state, request, if created { 201 } else { 200 }, &permission);
    }
    let permission = state
        .store
        .create_permission(database, user, definition)
        .await?;
    permission_reply(state, request, 201, &permission)
}

pub(crate) fn list_permissions(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    user: &str,
) -> Result<Reply, ApiError> {
    let user_rid = state.store.read_user(database, user)?.rid;
    let permissions: Vec<String> = user_permissions_json(state, request, database, user)?
        .iter()
        .map(Value::to_string)
        .collect();
    Ok(
        Reply::json(200, feed_body(&user_rid, "Permissions", &permissions))
            .header(X_MS_ITEM_COUNT, permissions.len().to_string()),
    )
}

pub(crate) fn read_permission(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    user: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let permission = state.store.read_permission(database, user, id)?;
    permission_reply(state, request, 200, &permission)
}

/// `PUT /dbs/{db}/users/{user}/permissions/{id}`: replace, possibly under the body's new id.
pub(crate) async fn replace_permission(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    user: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let definition = permission_definition(request)?;
    token_validity(request)?;
    let permission = state
        .store
        .replace_permission(database, user, id, definition)
        .await?;
    permission_reply(state, request, 200, &permission)
}

pub(crate) async fn delete_permission(
    state: &AppState,
    database: &str,
    user: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    state.store.delete_permission(database, user, id).await?;
    Ok(Reply::empty(204))
}
