//! Routing: from a verb and a resource path to the handler, as the Cosmos DB REST API lays
//! them out. Paths are matched on decoded segments, with or without a trailing slash (Python
//! sends one, Node does not).

pub(crate) mod batch;
pub(crate) mod conflicts;
pub(crate) mod feed;
pub(crate) mod index_metrics;
pub(crate) mod items;
pub(crate) mod paging;
pub(crate) mod query;
pub(crate) mod resources;
pub(crate) mod scripts;
pub(crate) mod triggers;
pub(crate) mod users;

use axum::http::{HeaderMap, Method};
use serde_json::Value;
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, feed_body, flag};

fn method_not_allowed(request: &RequestContext) -> ApiError {
    ApiError::new(
        405,
        format!(
            "{} is not supported on /{}",
            request.method,
            request.segments.join("/")
        ),
    )
}

/// Serves one authenticated request.
/// An SDK that cached a container's resource id sends it with item requests
/// (`x-ms-cosmos-intended-collection-rid`); when the container of that name was deleted and
/// re-created meanwhile, the request is answered 400 with sub-status 1024, as on Cosmos DB, so
/// the SDK re-reads the container (its partition key may have changed) and retries.
fn check_intended_container(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<(), ApiError> {
    let Some(intended) = request.header(headers::X_MS_COSMOS_INTENDED_COLLECTION_RID) else {
        return Ok(());
    };
    let Ok((rid, _)) = state.store.container_position(database, container) else {
        // An absent container gets its own 404 from the route.
        return Ok(());
    };
    if intended.trim() == rid {
        return Ok(());
    }
    Err(ApiError {
        status: 400,
        substatus: Some(tributary_wire::error::substatus::COLLECTION_RID_MISMATCH),
        additional_error_info: None,
        message: format!(
            "container '{container}' has the resource id '{rid}', not the intended '{}': it was \
             deleted and re-created since the client read it; read the container again",
            intended.trim()
        ),
    })
}

pub(crate) async fn dispatch(
    state: &AppState,
    request: &RequestContext,
) -> Result<Reply, ApiError> {
    let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
    let method = &request.method;
    let is_query = is_query(&request.headers)?;
    if let ["dbs", database, "colls", container, "docs", ..] = segments.as_slice() {
        check_intended_container(state, request, database, container)?;
    }
    match segments.as_slice() {
        [] if method == Method::GET => Ok(resources::account(state, request)),
        ["dbs"] if method == Method::POST && is_query => {
            let databases = state
                .store
                .list_databases()
                .iter()
                .map(resources::database_json)
                .collect();
            query_reply(request, "Databases", "", databases)
        }
        ["dbs"] if method == Method::POST => resources::create_database(state, request).await,
        ["dbs"] if method == Method::GET => Ok(resources::list_databases(state)),
        ["dbs", database] => match *method {
            Method::GET => resources::read_database(state, database),
            Method::DELETE => resources::delete_database(state, database).await,
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "users"] if method == Method::POST && is_query => {
            let database_rid = state.store.read_database(database)?.rid;
            let users = users::users_json(state, database)?;
            query_reply(request, "Users", &database_rid, users)
        }
        ["dbs", database, "users"] => match *method {
            Method::POST => users::create_user(state, request, database).await,
            Method::GET => users::list_users(state, database),
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "users", user] => match *method {
            Method::GET => users::read_user(state, database, user),
            Method::PUT => users::replace_user(state, request, database, user).await,
            Method::DELETE => users::delete_user(state, database, user).await,
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "users", user, "permissions"] if method == Method::POST && is_query => {
            let user_rid = state.store.read_user(database, user)?.rid;
            let permissions = users::user_permissions_json(state, request, database, user)?;
            query_reply(request, "Permissions", &user_rid, permissions)
        }
        ["dbs", database, "users", user, "permissions"] => match *method {
            Method::POST => users::create_permission(state, request, database, user).await,
            Method::GET => users::list_permissions(state, request, database, user),
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "users", user, "permissions", id] => match *method {
            Method::GET => users::read_permission(state, request, database, user, id),
            Method::PUT => users::replace_permission(state, request, database, user, id).await,
            Method::DELETE => users::delete_permission(state, database, user, id).await,
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "colls"] if method == Method::POST && is_query => {
            let database_rid = state.store.read_database(database)?.rid;
            let containers = state
                .store
                .list_containers(database)?
                .iter()
                .map(resources::container_json)
                .collect();
            query_reply(request, "DocumentCollections", &database_rid, containers)
        }
        ["dbs", database, "colls"] => match *method {
            Method::POST => resources::create_container(state, request, database).await,
            Method::GET => resources::list_containers(state, database),
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "colls", container] => match *method {
            Method::GET => resources::read_container(state, request, database, container),
            Method::PUT => resources::replace_container(state, request, database, container).await,
            Method::DELETE => resources::delete_container(state, database, container).await,
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "colls", container, "docs"] => match *method {
            Method::POST if request.flag(headers::X_TRIBUTARY_TRANSACTION)? => {
                batch::cross_container_transaction(state, request, database, container).await
            }
            Method::POST if request.flag(headers::X_MS_COSMOS_IS_BATCH_REQUEST)? => {
                batch::batch(state, request, database, container).await
            }
            Method::POST
                if is_query || request.flag(headers::X_MS_COSMOS_IS_QUERY_PLAN_REQUEST)? =>
            {
                off_worker(state, || {
                    query::query_items(state, request, database, container)
                })
                .await
            }
            Method::POST => items::create(state, request, database, container).await,
            Method::GET => match request.header(headers::A_IM) {
                Some(a_im) => feed::change_feed(state, request, a_im, database, container).await,
                None => {
                    off_worker(state, || {
                        feed::read_feed(state, request, database, container)
                    })
                    .await
                }
            },
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "colls", container, "docs", id] => match *method {
            Method::GET => items::read(state, request, database, container, id),
            Method::PUT => items::replace(state, request, database, container, id).await,
            Method::DELETE => items::delete(state, request, database, container, id).await,
            Method::PATCH => items::patch(state, request, database, container, id).await,
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "colls", container, kind] if scripts::kind_of_segment(kind).is_some() => {
            scripts::serve_feed(state, request, is_query, database, container, kind).await
        }
        ["dbs", database, "colls", container, kind, id]
            if scripts::kind_of_segment(kind).is_some() =>
        {
            scripts::serve_one(state, request, database, container, kind, id).await
        }
        ["dbs", database, "colls", container, "conflicts"] => match *method {
            Method::GET | Method::POST => conflicts::list(state, request, database, container),
            _ => Err(method_not_allowed(request)),
        },
        ["dbs", database, "colls", container, "conflicts", id] => match *method {
            Method::GET | Method::DELETE => conflicts::no_conflict(state, database, container, id),
            _ => Err(method_not_allowed(request)),
        },
        [
            "dbs",
            database,
            "colls",
            container,
            "operations",
            "partitionkeydelete",
        ] if method == Method::POST => {
            items::delete_partition_key(state, request, database, container).await
        }
        ["dbs", database, "colls", container, "pkranges"] if method == Method::GET => {
            resources::partition_key_ranges(state, request, database, container)
        }
        ["offers"] if method == Method::GET || method == Method::POST => {
            resources::list_offers(state, request)
        }
        ["offers", id] => match *method {
            Method::GET => resources::read_offer(state, id),
            Method::PUT => resources::replace_offer(state, request, id).await,
            _ => Err(method_not_allowed(request)),
        },
        _ => Err(ApiError::not_found(format!(
            "no resource at /{} (this server supports databases, users, permissions, containers, items, stored procedures, triggers, user-defined functions, conflicts, partition key ranges and offers)",
            request.segments.join("/")
        ))),
    }
}

/// Whether a POST is a query: `x-ms-documentdb-isquery: true`, or a query body
/// (`application/query+json`).
fn is_query(request_headers: &HeaderMap) -> Result<bool, ApiError> {
    let query_content_type = request_headers
        .get(headers::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.trim()
                .starts_with(headers::values::CONTENT_TYPE_QUERY_JSON)
        });
    Ok(flag(request_headers, headers::X_MS_DOCUMENTDB_ISQUERY)? || query_content_type)
}

/// Whether [`dispatch`] serves this request without changing anything: what a read-only key
/// may send. That is a GET or HEAD of anything, and the POSTs that `dispatch` answers as
/// queries: of databases, users, permissions, containers, scripts, items (and the query plans
/// of item queries), conflicts and offers. Every other request writes: creates, upserts, replaces, patches, deletes,
/// batches, bulk, Tributary transactions, partition key deletes, and offer and container
/// replacements. `segments` are the path's decoded segments, by name or by resource id.
///
/// The POST cases mirror `dispatch`'s match arms and their order (a batch or transaction
/// flag wins over a query flag); a POST this does not list counts as a write.
pub(crate) fn is_read(
    method: &Method,
    segments: &[String],
    request_headers: &HeaderMap,
) -> Result<bool, ApiError> {
    if method == Method::GET || method == Method::HEAD {
        return Ok(true);
    }
    if method != Method::POST {
        return Ok(false);
    }
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    Ok(match segments.as_slice() {
        ["dbs"]
        | ["dbs", _, "colls"]
        | ["dbs", _, "users"]
        | ["dbs", _, "users", _, "permissions"] => is_query(request_headers)?,
        ["dbs", _, "colls", _, kind] if scripts::kind_of_segment(kind).is_some() => {
            is_query(request_headers)?
        }
        ["dbs", _, "colls", _, "docs"] => {
            !flag(request_headers, headers::X_TRIBUTARY_TRANSACTION)?
                && !flag(request_headers, headers::X_MS_COSMOS_IS_BATCH_REQUEST)?
                && (is_query(request_headers)?
                    || flag(request_headers, headers::X_MS_COSMOS_IS_QUERY_PLAN_REQUEST)?)
        }
        ["dbs", _, "colls", _, "conflicts"] | ["offers"] => true,
        _ => false,
    })
}

/// Runs a query over a list of resources and answers with the matches.
fn query_reply(
    request: &RequestContext,
    key: &str,
    rid: &str,
    resources: Vec<Value>,
) -> Result<Reply, ApiError> {
    let results = query::run_over(request, resources)?;
    let texts: Vec<String> = results.iter().map(Value::to_string).collect();
    Ok(Reply::json(200, feed_body(rid, key, &texts))
        .header(X_MS_ITEM_COUNT, texts.len().to_string()))
}

/// Runs storage work that scans a container (a query, a read feed) without holding an async
/// worker: on the multi-threaded runtime the worker hands its other tasks (point reads,
/// writes, other connections) to another thread from tokio's blocking pool for the duration,
/// so a long scan does not stall them. At most [`AppState::scan_permits`] scans run at once;
/// the others wait here, asynchronously, so threads and the memory scans hold stay bounded
/// however many connections send queries. On a single-threaded runtime (tests) the work runs
/// in place.
pub(crate) async fn off_worker<T>(state: &AppState, work: impl FnOnce() -> T) -> T {
    // The semaphore is never closed, so a permit always comes.
    let _permit = state.scan_permits.acquire().await;
    match tokio::runtime::Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
