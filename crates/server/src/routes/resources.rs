//! The account, databases, containers, partition key ranges and offers (throughput).

use serde_json::{Map, Value, json};
use tributary_store::{
    Autoscale, ContainerDefinition, ContainerProperties, DatabaseProperties, RangeRecord,
};
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, feed_body};

/// Request units per second served by one feed range, as in Cosmos DB: raising a container's
/// throughput past a multiple of this splits ranges.
pub const THROUGHPUT_PER_RANGE: u64 = 10_000;
/// Throughput reported for a container created without one.
pub const DEFAULT_THROUGHPUT: u64 = 400;
/// Header carrying a container's initial manual throughput.
const OFFER_THROUGHPUT_HEADER: &str = "x-ms-offer-throughput";
/// Header carrying a container's initial autoscale settings (`{"maxThroughput": n}`).
const AUTOSCALE_HEADER: &str = "x-ms-cosmos-offer-autopilot-settings";

/// `GET /`: the database account, with locations that echo the address the client used.
pub(crate) fn account(state: &AppState, request: &RequestContext) -> Reply {
    let endpoint = format!("{}://{}/", request.scheme, request.host);
    let location = json!([{ "name": "Tributary", "databaseAccountEndpoint": endpoint }]);
    let body = json!({
        "id": state.account_name,
        "_rid": format!("{}.tributary", state.account_name),
        "_self": "",
        "_dbs": "//dbs/",
        "media": "//media/",
        "addresses": "//addresses/",
        "writableLocations": location,
        "readableLocations": location,
        "enableMultipleWriteLocations": false,
        "userReplicationPolicy": {"asyncReplication": false, "minReplicaSetSize": 1, "maxReplicasetSize": 1},
        "userConsistencyPolicy": {"defaultConsistencyLevel": "Session"},
        "systemReplicationPolicy": {"minReplicaSetSize": 1, "maxReplicasetSize": 1},
        "readPolicy": {"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
        "queryEngineConfiguration": "{\"maxSqlQueryInputLength\":262144,\"maxJoinsPerSqlQuery\":10,\"maxLogicalAndPerSqlQuery\":500,\"maxLogicalOrPerSqlQuery\":500,\"maxUdfRefPerSqlQuery\":10,\"maxInExpressionItemsCount\":16000,\"queryMaxInMemorySortDocumentCount\":500,\"maxQueryRequestTimeoutFraction\":0.9,\"sqlAllowNonFiniteNumbers\":false,\"sqlAllowAggregateFunctions\":true,\"sqlAllowSubQuery\":true,\"sqlAllowScalarSubQuery\":true,\"allowNewKeywords\":true,\"sqlAllowLike\":true,\"sqlAllowGroupByClause\":true,\"maxSpatialQueryCells\":12,\"spatialMaxGeometryPointCount\":256,\"sqlDisableOptimizationFlags\":0,\"sqlAllowTop\":true,\"enableSpatialIndexing\":true}"
    });
    Reply::json(200, body.to_string())
        .header(headers::X_MS_MAX_MEDIA_STORAGE_USAGE_MB, "10240")
        .header(headers::X_MS_MEDIA_STORAGE_USAGE_MB, "0")
}

/// The JSON of a database.
pub(crate) fn database_json(database: &DatabaseProperties) -> Value {
    json!({
        "id": database.id,
        "_rid": database.rid,
        "_self": format!("dbs/{}/", database.rid),
        "_etag": database.etag,
        "_colls": "colls/",
        "_users": "users/",
        "_ts": database.ts,
    })
}

/// The JSON of a container: its definition plus system properties.
pub(crate) fn container_json(container: &ContainerProperties) -> Value {
    let mut object: Map<String, Value> = container.definition.to_json();
    object
        .entry("conflictResolutionPolicy")
        .or_insert_with(|| json!({"mode": "LastWriterWins", "conflictResolutionPath": "/_ts", "conflictResolutionProcedure": ""}));
    object
        .entry("geospatialConfig")
        .or_insert_with(|| json!({"type": "Geography"}));
    object.insert("_rid".into(), Value::from(container.rid.clone()));
    object.insert("_ts".into(), Value::from(container.ts));
    object.insert(
        "_self".into(),
        Value::from(format!(
            "dbs/{}/colls/{}/",
            container.database_rid, container.rid
        )),
    );
    object.insert("_etag".into(), Value::from(container.etag.clone()));
    for (key, value) in [
        ("_docs", "docs/"),
        ("_sprocs", "sprocs/"),
        ("_triggers", "triggers/"),
        ("_udfs", "udfs/"),
        ("_conflicts", "conflicts/"),
    ] {
        object.insert(key.into(), Value::from(value));
    }
    Value::Object(object)
}

pub(crate) async fn create_database(
    state: &AppState,
    request: &RequestContext,
) -> Result<Reply, ApiError> {
    let body = request.json()?;
    let id = body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("the database definition needs a string 'id'"))?;
    let provisioned = requested_throughput(request)?;
    let database = state
        .store
        .create_database_with_throughput(
            id,
            provisioned.map(|p| p.throughput),
            provisioned.and_then(|p| p.autoscale),
        )
        .await?;
    Ok(
        Reply::json(201, database_json(&database).to_string())
            .header(headers::ETAG, &database.etag),
    )
}

pub(crate) fn list_databases(state: &AppState) -> Reply {
    let databases: Vec<String> = state
        .store
        .list_databases()
        .iter()
        .map(|d| database_json(d).to_string())
        .collect();
    Reply::json(200, feed_body("", "Databases", &databases))
        .header(X_MS_ITEM_COUNT, databases.len().to_string())
}

pub(crate) fn read_database(state: &AppState, id: &str) -> Result<Reply, ApiError> {
    let database = state.store.read_database(id)?;
    Ok(
        Reply::json(200, database_json(&database).to_string())
            .header(headers::ETAG, &database.etag),
    )
}

pub(crate) async fn delete_database(state: &AppState, id: &str) -> Result<Reply, ApiError> {
    state.store.delete_database(id).await?;
    Ok(Reply::empty(204))
}

/// The least maximum an autoscale throughput may have, as on Cosmos DB.
const MIN_AUTOSCALE_MAX_THROUGHPUT: i64 = 1000;

/// Provisioned throughput as a request or an offer gives it: request units per second
/// (for autoscale, the most it scales up to).
#[derive(Clone, Copy)]
struct Provisioned {
    throughput: u64,
    autoscale: Option<Autoscale>,
}

/// Reads autoscale settings (`{"maxThroughput": n, "autoUpgradePolicy": {"throughputPolicy":
/// {"incrementPercent": p}}}`), from a header or an offer's `offerAutopilotSettings`.
fn autoscale_settings(settings: &Value, source: &str) -> Result<Provisioned, ApiError> {
    let max = settings
        .get("maxThroughput")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ApiError::bad_request(format!("{source} needs a whole-number 'maxThroughput'"))
        })?;
    if max < MIN_AUTOSCALE_MAX_THROUGHPUT {
        return Err(ApiError::bad_request(format!(
            "Requested throughput {max} is less than required minimum throughput {MIN_AUTOSCALE_MAX_THROUGHPUT}"
        )));
    }
    let increment_percent = match settings
        .pointer("/autoUpgradePolicy/throughputPolicy/incrementPercent")
    {
        None | Some(Value::Null) => 0,
        Some(value) => value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{source}: 'incrementPercent' must be a whole number of percent, not {value}"
                ))
            })?,
    };
    Ok(Provisioned {
        throughput: max.unsigned_abs(),
        autoscale: Some(Autoscale { increment_percent }),
    })
}

/// The throughput a create request asks for, from its headers: manual
/// (`x-ms-offer-throughput`) or autoscale (`x-ms-cosmos-offer-autopilot-settings`).
fn requested_throughput(request: &RequestContext) -> Result<Option<Provisioned>, ApiError> {
    if let Some(value) = request.header(OFFER_THROUGHPUT_HEADER) {
        let throughput: u64 = value.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "header '{OFFER_THROUGHPUT_HEADER}' must be a whole number, not '{value}'"
            ))
        })?;
        return Ok(Some(Provisioned {
            throughput,
            autoscale: None,
        }));
    }
    if let Some(value) = request.header(AUTOSCALE_HEADER) {
        let settings: Value = serde_json::from_str(value).map_err(|e| {
            ApiError::bad_request(format!("header '{AUTOSCALE_HEADER}' is not JSON: {e}"))
        })?;
        return autoscale_settings(&settings, &format!("header '{AUTOSCALE_HEADER}'")).map(Some);
    }
    Ok(None)
}

fn ranges_for_throughput(throughput: u64) -> u32 {
    throughput
        .div_ceil(THROUGHPUT_PER_RANGE)
        .clamp(1, tributary_store::MAX_FEED_RANGES as u64) as u32
}

/// The excluded path Cosmos DB adds to every consistent indexing policy.
const ETAG_EXCLUDED_PATH: &str = "/\"_etag\"/?";

/// Completes a client's indexing policy the way Cosmos DB reports it back: missing
/// `indexingMode`/`automatic` get their defaults, no included paths means `/*`, the legacy
/// per-path `indexes` are dropped, and `/"_etag"/?` joins the excluded paths. A policy with
/// mode `none` indexes nothing and keeps no paths. No policy at all keeps the store's default.
fn normalize_indexing_policy(definition: &mut ContainerDefinition) {
    let Some(Value::Object(policy)) = definition.indexing_policy.as_mut() else {
        return;
    };
    let mode = policy
        .get("indexingMode")
        .and_then(Value::as_str)
        .unwrap_or("consistent")
        .to_ascii_lowercase();
    policy.insert("indexingMode".into(), Value::from(mode.clone()));
    if mode == "none" {
        policy.insert("automatic".into(), Value::Bool(false));
        policy.insert("includedPaths".into(), Value::Array(Vec::new()));
        policy.insert("excludedPaths".into(), Value::Array(Vec::new()));
        return;
    }
    policy.entry("automatic").or_insert(Value::Bool(true));
    let included = policy
        .entry("includedPaths")
        .or_insert_with(|| Value::Array(Vec::new()));
    match included {
        Value::Array(paths) if paths.is_empty() => paths.push(json!({"path": "/*"})),
        Value::Array(paths) => {
            for path in paths.iter_mut().filter_map(Value::as_object_mut) {
                path.remove("indexes");
            }
        }
        _ => {}
    }
    let excluded = policy
        .entry("excludedPaths")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(paths) = excluded
        && !paths
            .iter()
            .any(|p| p.get("path").and_then(Value::as_str) == Some(ETAG_EXCLUDED_PATH))
    {
        paths.push(json!({"path": ETAG_EXCLUDED_PATH}));
    }
}

pub(crate) async fn create_container(
    state: &AppState,
    request: &RequestContext,
    database: &str,
) -> Result<Reply, ApiError> {
    let mut definition = ContainerDefinition::from_json(&request.json()?)?;
    normalize_indexing_policy(&mut definition);
    let provisioned = requested_throughput(request)?;
    definition.throughput = provisioned.map(|p| p.throughput);
    definition.autoscale = provisioned.and_then(|p| p.autoscale);
    let n_ranges = ranges_for_throughput(definition.throughput.unwrap_or(DEFAULT_THROUGHPUT));
    let container = state
        .store
        .create_container(database, definition, n_ranges)
        .await?;
    Ok(Reply::json(201, container_json(&container).to_string())
        .header(headers::ETAG, &container.etag))
}

pub(crate) fn list_containers(state: &AppState, database: &str) -> Result<Reply, ApiError> {
    let database_rid = state.store.read_database(database)?.rid;
    let containers: Vec<String> = state
        .store
        .list_containers(database)?
        .iter()
        .map(|c| container_json(c).to_string())
        .collect();
    Ok(Reply::json(
        200,
        feed_body(&database_rid, "DocumentCollections", &containers),
    )
    .header(X_MS_ITEM_COUNT, containers.len().to_string()))
}

/// Asks a container read for its usage (`x-ms-resource-usage`).
const POPULATE_QUOTA_INFO: &str = "x-ms-documentdb-populatequotainfo";
/// Asks a container read for per-range statistics in the body.
const POPULATE_PARTITION_STATISTICS: &str = "x-ms-documentdb-populatepartitionstatistics";

/// `GET .../colls/{c}`. With [`POPULATE_QUOTA_INFO`] it also reports the items' count and size
/// (`x-ms-resource-usage`) and the index transformation progress (the percent of the items
/// the current indexing policy's index has been built for: 100 once queries use it); with [`POPULATE_PARTITION_STATISTICS`], a `statistics` entry
/// per feed range. Both come from the counts and approximate sizes the store keeps per feed
/// range, so they cost no scan (a range recorded before counts were kept counts its item
/// pointers).
pub(crate) fn read_container(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let container = state.store.read_container(database, id)?;
    let with_quota = request.flag(POPULATE_QUOTA_INFO)?;
    let with_statistics = request.flag(POPULATE_PARTITION_STATISTICS)?;
    if !with_quota && !with_statistics {
        return Ok(container_reply(&container, 200));
    }
    let mut body = container_json(&container);
    let mut n_items = 0u64;
    let mut n_bytes = 0u64;
    let mut statistics = Vec::with_capacity(container.feed_ranges.len());
    for range in &container.feed_ranges {
        let range_items = state.store.range_item_count(database, id, range.id)?;
        n_items += range_items;
        n_bytes += range.approx_bytes;
        statistics.push(json!({
            "id": range.id.to_string(),
            "sizeInKB": range.approx_bytes.div_ceil(1024),
            "documentCount": range_items,
            "partitionKeys": [],
        }));
    }
    if with_statistics && let Value::Object(object) = &mut body {
        object.insert("statistics".into(), Value::Array(statistics));
    }
    let size_kb = n_bytes.div_ceil(1024);
    let mut reply = container_reply_with_body(&container, 200, body.to_string());
    if with_quota {
        reply = reply
            .header(
                "x-ms-resource-usage",
                format!(
                    "documentsSize={size_kb};documentsCount={n_items};collectionSize={size_kb};"
                ),
            )
            .header(
                "x-ms-documentdb-collection-index-transformation-progress",
                container.index_progress_percent.to_string(),
            );
    }
    Ok(reply)
}

fn container_reply(container: &ContainerProperties, status: u16) -> Reply {
    container_reply_with_body(container, status, container_json(container).to_string())
}

fn container_reply_with_body(container: &ContainerProperties, status: u16, body: String) -> Reply {
    Reply::json(status, body)
        .header(headers::ETAG, &container.etag)
        .header(
            "x-ms-resource-quota",
            "documentsSize=10485760;documentsCount=-1;collectionSize=10485760;",
        )
        .header(
            headers::X_MS_ALT_CONTENT_PATH,
            format!("dbs/{}", container.database),
        )
        .header(headers::X_MS_CONTENT_PATH, &container.database_rid)
}

pub(crate) async fn replace_container(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let mut definition = ContainerDefinition::from_json(&request.json()?)?;
    normalize_indexing_policy(&mut definition);
    if definition.id != id {
        return Err(ApiError::bad_request(format!(
            "the container id in the body ('{}') differs from the one in the path ('{id}')",
            definition.id
        )));
    }
    let current = state.store.read_container(database, id)?.definition;
    definition.throughput = current.throughput;
    definition.autoscale = current.autoscale;
    let container = state.store.replace_container(database, definition).await?;
    Ok(container_reply(&container, 200))
}

pub(crate) async fn delete_container(
    state: &AppState,
    database: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    state.store.delete_container(database, id).await?;
    Ok(Reply::empty(204))
}

fn range_json(container: &ContainerProperties, range: &RangeRecord, n_ranges: usize) -> Value {
    let rid = format!("{}{:08X}", container.rid.trim_end_matches('='), range.id);
    json!({
        "_rid": rid,
        "id": range.id.to_string(),
        "_etag": format!("\"{:08x}-{:08x}\"", range.id, container.ranges_version),
        "minInclusive": range.min,
        "maxExclusive": range.max,
        "ridPrefix": range.id,
        "_self": format!("dbs/{}/colls/{}/pkranges/{rid}/", container.database_rid, container.rid),
        "throughputFraction": 1.0 / n_ranges as f64,
        "status": "online",
        "parents": range.ancestors.iter().map(u32::to_string).collect::<Vec<_>>(),
        "_ts": container.ts,
        "_lsn": container.high_lsn,
    })
}

/// `GET .../pkranges`: the current feed ranges; `304` when `If-None-Match` names the current
/// version of the range set (the Python SDK's refresh loop stops only on a 304).
pub(crate) fn partition_key_ranges(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let container = state.store.read_container(database, id)?;
    let etag = format!("\"{}\"", container.ranges_version);
    if request.header(headers::IF_NONE_MATCH) == Some(etag.as_str()) {
        return Ok(Reply::empty(304).header(headers::ETAG, &etag));
    }
    let n_ranges = container.feed_ranges.len();
    let ranges: Vec<String> = container
        .feed_ranges
        .iter()
        .map(|r| range_json(&container, r, n_ranges).to_string())
        .collect();
    Ok(Reply::json(
        200,
        feed_body(&container.rid, "PartitionKeyRanges", &ranges),
    )
    .header(headers::ETAG, &etag)
    .header(X_MS_ITEM_COUNT, n_ranges.to_string()))
}

/// What an offer provisions throughput for.
enum OfferTarget {
    Container(Box<ContainerProperties>),
    Database(DatabaseProperties),
}

impl OfferTarget {
    /// The resource id of the target; the offer id is derived from it, URL-safe.
    fn rid(&self) -> &str {
        match self {
            OfferTarget::Container(c) => &c.rid,
            OfferTarget::Database(d) => &d.rid,
        }
    }

    fn id(&self) -> String {
        format!(
            "of{}",
            self.rid().trim_end_matches('=').replace(['/', '+'], "_")
        )
    }

    fn json(&self) -> Value {
        let id = self.id();
        let (throughput, autoscale, resource, ts) = match self {
            OfferTarget::Container(c) => (
                c.definition.throughput.unwrap_or(DEFAULT_THROUGHPUT),
                c.definition.autoscale,
                format!("dbs/{}/colls/{}/", c.database_rid, c.rid),
                c.ts,
            ),
            OfferTarget::Database(d) => (
                d.throughput.unwrap_or(DEFAULT_THROUGHPUT),
                d.autoscale,
                format!("dbs/{}/", d.rid),
                d.ts,
            ),
        };
        let mut offer = json!({
            "id": id,
            "_rid": id,
            "_self": format!("offers/{id}/"),
            "_etag": format!("\"{id}-{throughput}\""),
            "offerVersion": "V2",
            "offerType": "Invalid",
            "resource": resource,
            "offerResourceId": self.rid(),
            "content": {
                "offerThroughput": throughput,
                "offerIsRUPerMinuteThroughputEnabled": false,
                "offerMinimumThroughputParameters": {
                    "maxThroughputEverProvisioned": throughput,
                    "maxConsumedStorageEverInKB": 0
                }
            },
            "_ts": ts,
        });
        if let Some(autoscale) = autoscale {
            // Autoscale runs between a tenth of its maximum and the maximum; at rest it is at
            // the tenth, which is what Cosmos DB reports as the offer's current throughput.
            offer["content"]["offerThroughput"] = json!(throughput / 10);
            offer["content"]["offerAutopilotSettings"] = json!({
                "maxThroughput": throughput,
                "autoUpgradePolicy": {
                    "throughputPolicy": { "incrementPercent": autoscale.increment_percent }
                }
            });
            offer["_etag"] = json!(format!(
                "\"{id}-{throughput}-{}\"",
                autoscale.increment_percent
            ));
        }
        offer
    }
}

/// Every offer: one per container without shared throughput, one per database with it.
fn all_offers(state: &AppState) -> Vec<OfferTarget> {
    let mut offers = Vec::new();
    for database in state.store.list_databases() {
        let shared = database.throughput.is_some();
        for container in state
            .store
            .list_containers(&database.id)
            .unwrap_or_default()
        {
            if !shared || container.definition.throughput.is_some() {
                offers.push(OfferTarget::Container(Box::new(container)));
            }
        }
        if shared {
            offers.push(OfferTarget::Database(database));
        }
    }
    offers
}

/// `GET /offers` and `POST /offers` (query).
pub(crate) fn list_offers(state: &AppState, request: &RequestContext) -> Result<Reply, ApiError> {
    let offers: Vec<Value> = all_offers(state).iter().map(OfferTarget::json).collect();
    let offers = if request.method == axum::http::Method::POST {
        crate::routes::query::run_over(request, offers)?
    } else {
        offers
    };
    let texts: Vec<String> = offers.iter().map(Value::to_string).collect();
    Ok(Reply::json(200, feed_body("", "Offers", &texts))
        .header(X_MS_ITEM_COUNT, texts.len().to_string()))
}

fn find_offer(state: &AppState, id: &str) -> Result<OfferTarget, ApiError> {
    all_offers(state)
        .into_iter()
        .find(|offer| offer.id() == id)
        .ok_or_else(|| ApiError::not_found(format!("offer '{id}' does not exist")))
}

pub(crate) fn read_offer(state: &AppState, id: &str) -> Result<Reply, ApiError> {
    Ok(Reply::json(200, find_offer(state, id)?.json().to_string()))
}

/// `PUT /offers/{id}`: changes a database's shared throughput, or a container's; for a
/// container every further 10,000 RU/s splits feed ranges until it has one range per
/// 10,000 RU/s.
pub(crate) async fn replace_offer(
    state: &AppState,
    request: &RequestContext,
    id: &str,
) -> Result<Reply, ApiError> {
    let target = find_offer(state, id)?;
    let body = request.json()?;
    let content = body
        .get("content")
        .ok_or_else(|| ApiError::bad_request("the offer needs a 'content' object"))?;
    // An autoscale offer carries its current throughput too: its settings decide.
    let provisioned = match content.get("offerAutopilotSettings") {
        Some(settings) if !settings.is_null() => {
            autoscale_settings(settings, "the offer's 'offerAutopilotSettings'")?
        }
        _ => Provisioned {
            throughput: content
                .get("offerThroughput")
                .and_then(Value::as_u64)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "the offer content needs a whole-number 'offerThroughput' or 'offerAutopilotSettings'",
                    )
                })?,
            autoscale: None,
        },
    };
    let throughput = provisioned.throughput;
    if throughput < DEFAULT_THROUGHPUT {
        return Err(ApiError::bad_request(format!(
            "the throughput must be at least {DEFAULT_THROUGHPUT} RU/s, not {throughput}"
        )));
    }
    let container = match target {
        OfferTarget::Container(container) => container,
        OfferTarget::Database(database) => {
            let database = state
                .store
                .replace_database_throughput(&database.id, throughput, provisioned.autoscale)
                .await?;
            return Ok(Reply::json(
                200,
                OfferTarget::Database(database).json().to_string(),
            ));
        }
    };
    let mut definition = container.definition.clone();
    definition.throughput = Some(throughput);
    definition.autoscale = provisioned.autoscale;
    let mut container = state
        .store
        .replace_container(&container.database, definition)
        .await?;
    let wanted = ranges_for_throughput(throughput) as usize;
    while container.feed_ranges.len() < wanted {
        let largest = container
            .feed_ranges
            .iter()
            .max_by_key(|r| (r.approx_bytes, u32::MAX - r.id))
            .map(|r| r.id)
            .expect("a container has at least one range");
        state
            .store
            .split_range(&container.database, &container.definition.id, largest)
            .await?;
        container = state
            .store
            .read_container(&container.database, &container.definition.id)?;
    }
    Ok(Reply::json(
        200,
        OfferTarget::Container(Box::new(container))
            .json()
            .to_string(),
    ))
}
