//! The catalog: databases, containers, and each container's feed ranges and LSN counter.
//!
//! The committer owns the authoritative copy and publishes an immutable snapshot
//! ([`Catalog`] behind an `Arc`) after every successful commit; readers use the snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tributary_partition_key::{Epk, EpkRange, PartitionKeyDefinition};
use tributary_query::ComputedProperties;

use crate::error::{Result, StoreError};
use crate::scripts::{ScriptKind, ScriptRecord};
use crate::users::UserRecord;

/// Longest id a database or container may have (characters).
pub const MAX_ID_CHARS: usize = 255;

/// Longest id an item may have (UTF-8 bytes), as on Cosmos DB.
pub const MAX_ITEM_ID_BYTES: usize = 1023;

/// Most feed ranges a container may be split into.
pub const MAX_FEED_RANGES: usize = 1024;

/// Checks an id of a database, container, user, permission or item the way Cosmos DB does: not empty, none of
/// `/ \ ? #`, no trailing space, and at most [`MAX_ITEM_ID_BYTES`] bytes for `kind` `"item"`,
/// [`MAX_ID_CHARS`] characters otherwise.
///
/// # Errors
/// [`StoreError::BadRequest`] naming the rule the id breaks.
pub fn validate_id(kind: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(StoreError::BadRequest(format!(
            "the {kind} id must not be empty"
        )));
    }
    if kind == "item" {
        if id.len() > MAX_ITEM_ID_BYTES {
            return Err(StoreError::BadRequest(format!(
                "the item id is {} bytes long, over {MAX_ITEM_ID_BYTES}. Ensure to provide a unique non-empty string less than '{}' characters.",
                id.len(),
                MAX_ITEM_ID_BYTES + 1
            )));
        }
    } else if id.chars().count() > MAX_ID_CHARS {
        return Err(StoreError::BadRequest(format!(
            "the {kind} id is longer than {MAX_ID_CHARS} characters. Ensure to provide a unique non-empty string less than '{MAX_ID_CHARS}' characters."
        )));
    }
    if let Some(bad) = id.chars().find(|c| matches!(c, '/' | '\\' | '?' | '#')) {
        return Err(StoreError::BadRequest(format!(
            "the {kind} id '{id}' contains the character '{bad}', which is not allowed (/ \\ ? #)"
        )));
    }
    if id.ends_with(' ') {
        return Err(StoreError::BadRequest(format!(
            "the {kind} id '{id}' must not end with a space"
        )));
    }
    Ok(())
}

/// What a client says a container is: its id, partition key and policies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerDefinition {
    /// Container id.
    pub id: String,
    /// Partition key paths, kind and hash version.
    pub partition_key: PartitionKeyDefinition,
    /// `defaultTtl`: `None` = TTL off, `-1` = on without a default, `n > 0` = seconds.
    pub default_ttl: Option<i64>,
    /// `changeFeedPolicy.retentionDuration` in minutes; `0` or `None` = no all-versions log.
    pub change_feed_retention_minutes: Option<u64>,
    /// `indexingPolicy` as sent (stored and returned; the range index follows it: see
    /// [`tributary_index::IndexingPolicy`]).
    pub indexing_policy: Option<Value>,
    /// `computedProperties`: named expressions over each item that queries read as
    /// top-level properties (checked by [`tributary_query::ComputedProperties::new`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub computed_properties: Vec<ComputedProperty>,
    /// Every other container property the client sent, kept verbatim
    /// (`uniqueKeyPolicy`, `conflictResolutionPolicy`, ...).
    pub other_properties: Map<String, Value>,
    /// Provisioned throughput (request units per second), if the container has its own.
    /// Not part of the JSON definition: clients set it through offers.
    #[serde(default)]
    pub throughput: Option<u64>,
    /// Set when `throughput` scales automatically up to its value (autoscale), rather than
    /// being fixed. Not part of the JSON definition either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
}

impl ContainerDefinition {
    /// A definition with only an id and a single-path V2 partition key.
    pub fn new(id: impl Into<String>, partition_key_path: &str) -> Self {
        ContainerDefinition {
            id: id.into(),
            partition_key: PartitionKeyDefinition::single(partition_key_path),
            default_ttl: None,
            change_feed_retention_minutes: None,
            indexing_policy: None,
            computed_properties: Vec::new(),
            other_properties: Map::new(),
            throughput: None,
            autoscale: None,
        }
    }

    /// Reads a definition from the JSON body Cosmos clients send.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] or [`StoreError::PartitionKey`] naming the invalid field.
    pub fn from_json(value: &Value) -> Result<Self> {
        let object = value.as_object().ok_or_else(|| {
            StoreError::BadRequest("the container definition must be a JSON object".into())
        })?;
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                StoreError::BadRequest("the container definition needs a string 'id'".into())
            })?
            .to_owned();
        let partition_key = match object.get("partitionKey") {
            Some(pk) if !pk.is_null() => PartitionKeyDefinition::from_json(pk)?,
            // Cosmos requires a partition key; the SDKs always send one.
            _ => {
                return Err(StoreError::BadRequest(
                    "the container definition needs a 'partitionKey' with 'paths'".into(),
                ));
            }
        };
        let default_ttl = match object.get("defaultTtl") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_i64().ok_or_else(|| {
                StoreError::BadRequest(format!("'defaultTtl' must be an integer, not {v}"))
            })?),
        };
        let change_feed_retention_minutes = match object.get("changeFeedPolicy") {
            None | Some(Value::Null) => None,
            Some(policy) => match policy.get("retentionDuration") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or_else(|| {
                    StoreError::BadRequest(format!(
                        "'changeFeedPolicy.retentionDuration' must be a non-negative integer (minutes), not {v}"
                    ))
                })?),
            },
        };
        let indexing_policy = object.get("indexingPolicy").cloned();
        let computed_properties = match object.get("computedProperties") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => ComputedProperty::list_from_json(value)?,
        };
        let other_properties = object
            .iter()
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "id" | "partitionKey"
                        | "defaultTtl"
                        | "changeFeedPolicy"
                        | "indexingPolicy"
                        | "computedProperties"
                ) && !k.starts_with('_')
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let definition = ContainerDefinition {
            id,
            partition_key,
            default_ttl,
            change_feed_retention_minutes,
            indexing_policy,
            computed_properties,
            other_properties,
            throughput: None,
            autoscale: None,
        };
        definition.validate()?;
        Ok(definition)
    }

    /// Checks the definition's own rules.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] naming the rule broken.
    pub fn validate(&self) -> Result<()> {
        validate_id("container", &self.id)?;
        if let Some(ttl) = self.default_ttl
            && (ttl == 0 || ttl < -1)
        {
            return Err(StoreError::BadRequest(format!(
                "'defaultTtl' must be -1 or a positive number of seconds, not {ttl}"
            )));
        }
        self.computed()?;
        Ok(())
    }

    /// The computed properties, checked and ready to rewrite queries with.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] naming the property and the rule it breaks.
    pub fn computed(&self) -> Result<ComputedProperties> {
        let definitions: Vec<(String, String)> = self
            .computed_properties
            .iter()
            .map(|property| (property.name.clone(), property.query.clone()))
            .collect();
        ComputedProperties::new(&definitions)
            .map_err(|error| StoreError::BadRequest(format!("{INVALID_INPUT}: {error}")))
    }

    /// Whether an all-versions-and-deletes log is kept.
    pub fn keeps_all_versions(&self) -> bool {
        self.change_feed_retention_minutes.unwrap_or(0) > 0
    }

    /// The definition in Cosmos JSON form (no system properties).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut object = Map::new();
        object.insert("id".into(), Value::String(self.id.clone()));
        object.insert(
            "indexingPolicy".into(),
            self.indexing_policy
                .clone()
                .unwrap_or_else(default_indexing_policy),
        );
        object.insert("partitionKey".into(), self.partition_key.to_json());
        if let Some(ttl) = self.default_ttl {
            object.insert("defaultTtl".into(), Value::from(ttl));
        }
        if let Some(minutes) = self.change_feed_retention_minutes {
            object.insert(
                "changeFeedPolicy".into(),
                serde_json::json!({ "retentionDuration": minutes }),
            );
        }
        if !self.computed_properties.is_empty() {
            object.insert(
                "computedProperties".into(),
                Value::Array(
                    self.computed_properties
                        .iter()
                        .map(|property| serde_json::json!({"name": property.name, "query": property.query}))
                        .collect(),
                ),
            );
        }
        for (k, v) in &self.other_properties {
            object.insert(k.clone(), v.clone());
        }
        object
    }
}

/// How Cosmos DB begins the message of a 400 for a definition it cannot take (the Python
/// SDK's tests look for it).
const INVALID_INPUT: &str = "One of the specified inputs is invalid";

/// One computed property of a container: its name and the `SELECT VALUE ... FROM c` query
/// that computes it from an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputedProperty {
    /// The top-level property name queries read it by.
    pub name: String,
    /// The query computing it.
    pub query: String,
}

impl ComputedProperty {
    /// Reads `computedProperties`: an array of `{"name", "query"}` objects.
    fn list_from_json(value: &Value) -> Result<Vec<ComputedProperty>> {
        let invalid = |what: &str| {
            StoreError::BadRequest(format!(
                "{INVALID_INPUT}: 'computedProperties' must be an array of {{\"name\": string, \"query\": string}} objects; {what}"
            ))
        };
        let items = value
            .as_array()
            .ok_or_else(|| invalid(&format!("got {value}")))?;
        items
            .iter()
            .map(|item| {
                let field = |name: &str| {
                    item.get(name)
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| invalid(&format!("{item} has no string '{name}'")))
                };
                Ok(ComputedProperty {
                    name: field("name")?,
                    query: field("query")?,
                })
            })
            .collect()
    }
}

/// The indexing policy Cosmos reports for a container created without one.
fn default_indexing_policy() -> Value {
    serde_json::json!({
        "indexingMode": "consistent",
        "automatic": true,
        "includedPaths": [{"path": "/*"}],
        "excludedPaths": [{"path": "/\"_etag\"/?"}]
    })
}

/// One feed range (physical partition) of a container, current or gone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRecord {
    /// Range id; also the segment id of its feed entries.
    pub id: u32,
    /// Inclusive lower EPK bound (uppercase hex; "" = minimum).
    pub min: String,
    /// Exclusive upper EPK bound ("FF" = maximum).
    pub max: String,
    /// The range this one was split from, if any.
    pub parents: Vec<u32>,
    /// Every range this one descends from, oldest first. Their segments may still hold
    /// entries in this range's EPK span with LSNs below this range's `first_lsn`.
    pub ancestors: Vec<u32>,
    /// The first LSN that can be written to this range's own segment.
    pub first_lsn: u64,
    /// Set when the range was split: its two children.
    pub children: Vec<u32>,
    /// Approximate bytes of the latest versions of items in this range.
    pub approx_bytes: u64,
    /// Items in this range (their latest versions, deleted ones not counted; an item whose
    /// time to live has passed counts until the sweeper deletes it). `None` in a catalog
    /// written before counts were kept: [`crate::Store::range_item_count`] then counts the
    /// range's item pointers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_count: Option<u64>,
}

impl RangeRecord {
    /// Whether this range still takes writes (it has not been split).
    pub fn is_current(&self) -> bool {
        self.children.is_empty()
    }

    /// The EPK span of this range.
    pub fn epk_range(&self) -> EpkRange {
        EpkRange {
            min: Epk::parse(&self.min).unwrap_or_else(|_| Epk::min()),
            max: Epk::parse(&self.max).unwrap_or_else(|_| Epk::max()),
        }
    }

    /// Whether `epk` falls in `[min, max)`.
    pub fn contains(&self, epk: &str) -> bool {
        epk >= self.min.as_str() && epk < self.max.as_str()
    }
}

/// The state of a container's feed: LSN counter and ranges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FeedState {
    /// The LSN the next write gets. LSNs start at 1.
    pub next_lsn: u64,
    /// The id the next range gets.
    pub next_range_id: u32,
    /// Every range ever, current and gone, by id order.
    pub ranges: Vec<RangeRecord>,
    /// Bumped whenever the range set changes (the pkranges etag).
    pub ranges_version: u64,
    /// Greatest `_ts` given so far: timestamps never go backwards within a container.
    pub last_ts: u64,
    /// All-versions records with LSN below this have been removed by retention.
    pub avad_trimmed_below: u64,
    /// The first LSN that was written while the all-versions log was on.
    pub avad_since_lsn: u64,
    /// The time index holds one entry per bucket below this second (maintenance thins it);
    /// one per second with writes from it on. 0 in catalogs written before thinning.
    #[serde(default)]
    pub time_index_coarse_before: u64,
}

/// A container as the catalog keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContainerRecord {
    pub database: String,
    pub cid: u32,
    pub database_seq: u32,
    pub definition: ContainerDefinition,
    /// Creation or last replace time, seconds.
    pub ts: u64,
    /// Bumped on every replace of the definition.
    pub version: u64,
    pub feed: FeedState,
    /// The range index: its generation and build progress. Records written before the
    /// store kept indexes get an index built from the start.
    #[serde(default = "crate::index::IndexState::unbuilt")]
    pub index: crate::index::IndexState,
}

impl ContainerRecord {
    /// The current range holding `epk`.
    pub(crate) fn range_for_epk_mut(&mut self, epk: &str) -> &mut RangeRecord {
        self.feed
            .ranges
            .iter_mut()
            .find(|r| r.is_current() && r.contains(epk))
            .expect("current ranges tile the EPK space")
    }

    pub(crate) fn range(&self, id: u32) -> Option<&RangeRecord> {
        self.feed.ranges.iter().find(|r| r.id == id)
    }

    /// The highest LSN committed in this container (0 before the first write).
    pub(crate) fn high_lsn(&self) -> u64 {
        self.feed.next_lsn - 1
    }

    pub(crate) fn properties(&self) -> ContainerProperties {
        ContainerProperties {
            database: self.database.clone(),
            definition: self.definition.clone(),
            rid: container_rid(self.database_seq, self.cid),
            database_rid: database_rid(self.database_seq),
            ts: self.ts,
            etag: format!("\"{:08x}-0000-0000-0000-{:012x}\"", self.cid, self.version),
            feed_ranges: self
                .feed
                .ranges
                .iter()
                .filter(|r| r.is_current())
                .cloned()
                .collect(),
            ranges_version: self.feed.ranges_version,
            high_lsn: self.high_lsn(),
            index_progress_percent: self.index_progress_percent(),
        }
    }

    /// Asserts the range invariants: current ranges tile `["", "FF")` without overlap.
    pub(crate) fn check_ranges(&self) {
        if let Err(fault) = self.ranges_fault() {
            panic!("{fault}");
        }
    }

    /// The first broken range invariant, if any: the current ranges must tile `["", "FF")`
    /// without overlap, or [`ContainerRecord::range_for_epk_mut`] finds no range for a key.
    fn ranges_fault(&self) -> std::result::Result<(), String> {
        let mut current: Vec<&RangeRecord> =
            self.feed.ranges.iter().filter(|r| r.is_current()).collect();
        current.sort_by(|a, b| a.min.cmp(&b.min));
        if current.first().map(|r| r.min.as_str()) != Some("") {
            return Err("no current feed range starts at the lowest EPK".into());
        }
        if current.last().map(|r| r.max.as_str()) != Some("FF") {
            return Err("no current feed range ends at the highest EPK".into());
        }
        for pair in current.windows(2) {
            if pair[0].max != pair[1].min {
                return Err(format!(
                    "feed ranges must tile the EPK space, but range {} ends at '{}' and range {} starts at '{}'",
                    pair[0].id, pair[0].max, pair[1].id, pair[1].min
                ));
            }
        }
        Ok(())
    }

    /// Reads a container record as stored in the meta keyspace (JSON), and checks what the
    /// store relies on without looking again: the definition's own rules, an LSN counter
    /// that starts at 1, and current ranges that tile the EPK space.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the fault: damaged bytes are refused, never a panic.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |fault: String| StoreError::Corrupt(format!("container record: {fault}"));
        let record: ContainerRecord =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        record
            .definition
            .validate()
            .map_err(|e| corrupt(e.to_string()))?;
        record
            .definition
            .partition_key
            .validate()
            .map_err(|e| corrupt(e.to_string()))?;
        if record.feed.next_lsn == 0 {
            return Err(corrupt("the next LSN is 0, but LSNs start at 1".into()));
        }
        record.ranges_fault().map_err(corrupt)?;
        Ok(record)
    }
}

/// A database as the catalog keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct DatabaseRecord {
    pub id: String,
    pub seq: u32,
    pub ts: u64,
    /// Throughput shared by the database's containers, if provisioned.
    #[serde(default)]
    pub throughput: Option<u64>,
    /// Set when that throughput is autoscale (its maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
}

impl DatabaseRecord {
    pub(crate) fn properties(&self) -> DatabaseProperties {
        DatabaseProperties {
            id: self.id.clone(),
            rid: database_rid(self.seq),
            ts: self.ts,
            etag: format!("\"{:08x}-0000-0000-0000-000000000000\"", self.seq),
            throughput: self.throughput,
            autoscale: self.autoscale,
        }
    }
}

/// Autoscale provisioned throughput: the throughput it goes with is the most the resource
/// scales up to, as Cosmos DB's `offerAutopilotSettings.maxThroughput`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autoscale {
    /// By how many percent the maximum may grow on its own (Cosmos DB's
    /// `autoUpgradePolicy.throughputPolicy.incrementPercent`): kept and reported.
    pub increment_percent: u32,
}

/// Counters that must survive restarts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Counters {
    pub next_database_seq: u32,
    pub next_cid: u32,
    /// 0 in catalogs written before users existed.
    #[serde(default)]
    pub next_user_seq: u32,
    /// 0 in catalogs written before permissions existed.
    #[serde(default)]
    pub next_permission_seq: u64,
    /// 0 in catalogs written before scripts existed.
    #[serde(default)]
    pub next_script_seq: u64,
}

/// An immutable view of every database and container.
#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    pub databases: BTreeMap<String, DatabaseRecord>,
    pub containers: BTreeMap<u32, Arc<ContainerRecord>>,
    pub container_ids: BTreeMap<(String, String), u32>,
    /// Users (with their permissions) by database id and user id. Behind an `Arc` so that
    /// the catalog clone every commit group starts from does not copy them: only a group that
    /// changes a user copies the map (`Arc::make_mut`).
    pub users: Arc<BTreeMap<(String, String), UserRecord>>,
    /// Scripts by container (`cid`), kind and id; behind an `Arc` as `users` is.
    pub scripts: Arc<BTreeMap<(u32, ScriptKind, String), ScriptRecord>>,
    pub counters: Counters,
}

impl Catalog {
    pub(crate) fn database(&self, id: &str) -> Result<&DatabaseRecord> {
        self.databases
            .get(id)
            .ok_or_else(|| StoreError::DatabaseNotFound(id.to_owned()))
    }

    pub(crate) fn container(
        &self,
        database: &str,
        container: &str,
    ) -> Result<&Arc<ContainerRecord>> {
        self.database(database)?;
        self.container_ids
            .get(&(database.to_owned(), container.to_owned()))
            .and_then(|cid| self.containers.get(cid))
            .ok_or_else(|| StoreError::ContainerNotFound {
                database: database.to_owned(),
                container: container.to_owned(),
            })
    }

    pub(crate) fn user(&self, database: &str, user: &str) -> Result<&UserRecord> {
        self.database(database)?;
        self.users
            .get(&(database.to_owned(), user.to_owned()))
            .ok_or_else(|| StoreError::UserNotFound {
                database: database.to_owned(),
                user: user.to_owned(),
            })
    }

    /// A script of a container.
    pub(crate) fn script(
        &self,
        database: &str,
        container: &str,
        kind: ScriptKind,
        id: &str,
    ) -> Result<&ScriptRecord> {
        let cid = self.container(database, container)?.cid;
        self.scripts
            .get(&(cid, kind, id.to_owned()))
            .ok_or_else(|| StoreError::ScriptNotFound {
                kind: kind.as_str(),
                id: id.to_owned(),
            })
    }

    /// The scripts of one kind of a container, by id.
    pub(crate) fn scripts_of(
        &self,
        cid: u32,
        kind: ScriptKind,
    ) -> impl Iterator<Item = &ScriptRecord> + '_ {
        self.scripts
            .range((cid, kind, String::new())..)
            .take_while(move |((owner, owner_kind, _), _)| *owner == cid && *owner_kind == kind)
            .map(|(_, record)| record)
    }

    /// The users of a database, by id.
    pub(crate) fn users_of<'a>(
        &'a self,
        database: &'a str,
    ) -> impl Iterator<Item = &'a UserRecord> + 'a {
        self.users
            .range((database.to_owned(), String::new())..)
            .take_while(move |((owner, _), _)| owner == database)
            .map(|(_, record)| record)
    }
}

/// A database's system properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseProperties {
    /// Database id.
    pub id: String,
    /// Resource id (base64 of 4 bytes), stable across restarts.
    pub rid: String,
    /// Creation time, seconds since the epoch.
    pub ts: u64,
    /// Entity tag (quoted).
    pub etag: String,
    /// Throughput shared by the database's containers (request units per second), if any.
    pub throughput: Option<u64>,
    /// Set when that throughput is autoscale (`throughput` is then its maximum).
    pub autoscale: Option<Autoscale>,
}

/// A container's definition and system properties.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerProperties {
    /// The database id.
    pub database: String,
    /// What the client defined.
    pub definition: ContainerDefinition,
    /// Resource id (base64 of 8 bytes: the database's 4, then the container's 4).
    pub rid: String,
    /// The database's resource id.
    pub database_rid: String,
    /// Creation or last replace time, seconds.
    pub ts: u64,
    /// Entity tag (quoted); changes on every replace.
    pub etag: String,
    /// The current feed ranges, by id.
    pub feed_ranges: Vec<RangeRecord>,
    /// Version of the range set; changes when a range splits.
    pub ranges_version: u64,
    /// Highest LSN committed in the container.
    pub high_lsn: u64,
    /// How far the range index is built under the current indexing policy (100 when queries
    /// can use it): what Cosmos DB reports as the index transformation progress.
    pub index_progress_percent: u8,
}

/// What a session token names for a request (see [`crate::Store::session_scope`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionScope {
    /// The container's resource id.
    pub container_rid: String,
    /// The current feed ranges the request's scope overlaps, by id.
    pub range_ids: Vec<u32>,
    /// The container's highest committed LSN.
    pub high_lsn: u64,
}

/// A resource id's text: base64 with `-` in place of `/`, as Cosmos DB writes them, so a
/// resource id is always one path segment of a `_self` link.
pub(crate) fn encode_rid(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(bytes)
        .replace('/', "-")
}

pub(crate) fn database_rid(seq: u32) -> String {
    encode_rid(&seq.to_be_bytes())
}

pub(crate) fn container_rid_bytes(database_seq: u32, cid: u32) -> [u8; 8] {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&database_seq.to_be_bytes());
    // The high bit marks a collection in Cosmos resource ids.
    bytes[4..].copy_from_slice(&(cid | 0x8000_0000).to_be_bytes());
    bytes
}

pub(crate) fn container_rid(database_seq: u32, cid: u32) -> String {
    encode_rid(&container_rid_bytes(database_seq, cid))
}

/// An item's `_rid`: the container's 8 bytes then the item's creation LSN.
pub(crate) fn item_rid(database_seq: u32, cid: u32, created_lsn: u64) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&container_rid_bytes(database_seq, cid));
    bytes[8..].copy_from_slice(&created_lsn.to_le_bytes());
    encode_rid(&bytes)
}

/// The creation LSN an item `_rid` encodes ([`item_rid`]); `None` when `rid` is not an item
/// resource id of container `cid` of database `database_seq`.
pub(crate) fn item_rid_creation_lsn(database_seq: u32, cid: u32, rid: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rid.replace('-', "/"))
        .ok()?;
    let bytes: [u8; 16] = bytes.try_into().ok()?;
    if bytes[..8] != container_rid_bytes(database_seq, cid) {
        return None;
    }
    let created_lsn = u64::from_le_bytes(bytes[8..].try_into().ok()?);
    Some(created_lsn)
}

/// An item's `_self`: `dbs/{database rid}/colls/{container rid}/docs/{item rid}/`.
pub(crate) fn item_self_link(database_seq: u32, cid: u32, item_rid: &str) -> String {
    let mut link = String::with_capacity(48 + item_rid.len());
    link.push_str("dbs/");
    link.push_str(&database_rid(database_seq));
    link.push_str("/colls/");
    link.push_str(&container_rid(database_seq, cid));
    link.push_str("/docs/");
    link.push_str(item_rid);
    link.push('/');
    link
}

/// An item's `_etag` for the version written at `lsn` (quoted, unique per container).
pub(crate) fn item_etag(cid: u32, lsn: u64) -> String {
    format!(
        "\"{:08x}-{:04x}-0000-0000-{:012x}\"",
        cid,
        (lsn >> 48) & 0xffff,
        lsn & 0xffff_ffff_ffff
    )
}

/// The largest V2 (and MultiHash component) EPK prefix: hashes have their top two bits
/// cleared, so every V2 EPK is below `40`, as 32 hex digits `3FFF...F`.
const V2_HASH_MAX: u128 = (1u128 << 126) - 1;

/// Boundaries that split the EPK space into `n` ranges of equal hash space.
///
/// V2 and MultiHash EPKs start with a byte at most `0x3F`, so their space is split as Azure
/// Cosmos DB does (two ranges meet at `1FFF...F`); V1 EPKs use the whole space.
pub(crate) fn initial_boundaries(definition: &PartitionKeyDefinition, n: u32) -> Vec<String> {
    use tributary_partition_key::PartitionKeyVersion;
    match definition.version {
        PartitionKeyVersion::V2 => {
            let n = u128::from(n);
            // i * MAX / n without overflow: n is at most MAX_FEED_RANGES.
            (1..n)
                .map(|i| format!("{:032X}", V2_HASH_MAX / n * i + (V2_HASH_MAX % n) * i / n))
                .collect()
        }
        PartitionKeyVersion::V1 => (1..u64::from(n))
            .map(|i| format!("{:08X}", i * 0x1_0000_0000 / u64::from(n)))
            .collect(),
    }
}

/// The middle of a V2 range's hash space, where Azure Cosmos DB splits it: the midpoint of
/// `[min, max)` read as 32-hex-digit numbers, with `FF` standing for `3FFF...F`. `None` if
/// the range is too narrow or its bounds are not plain 32-digit hashes.
pub(crate) fn v2_split_point(range: &RangeRecord) -> Option<String> {
    let parse = |text: &str| -> Option<u128> {
        if text.len() > 32 {
            return None;
        }
        u128::from_str_radix(&format!("{text:0<32}"), 16).ok()
    };
    let low = if range.min.is_empty() {
        0
    } else {
        parse(&range.min)?
    };
    let high_inclusive = if range.max == "FF" {
        V2_HASH_MAX
    } else {
        parse(&range.max)?.checked_sub(1)?
    };
    let middle = low + (high_inclusive.checked_sub(low)?) / 2;
    let middle = format!("{middle:032X}");
    (middle.as_str() > range.min.as_str() && middle.as_str() < range.max.as_str()).then_some(middle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_items_self_link_names_its_database_container_and_rid() {
        let rid = item_rid(7, 3, 42);
        assert_eq!(
            item_self_link(7, 3, &rid),
            format!(
                "dbs/{}/colls/{}/docs/{rid}/",
                database_rid(7),
                container_rid(7, 3)
            )
        );
    }

    #[test]
    fn resource_ids_write_dash_for_slash_so_each_is_one_link_segment() {
        // 0xFF bytes are "/" in standard base64.
        let rid = item_rid(u32::MAX, 0x7FFF_FFFF, u64::MAX);
        assert!(!rid.contains('/') && rid.contains('-'), "{rid}");
        let link = item_self_link(u32::MAX, 0x7FFF_FFFF, &rid);
        assert_eq!(link.split('/').count(), 7, "{link}");
    }

    #[test]
    fn an_item_rid_gives_back_its_creation_lsn_for_its_own_container_only() {
        for lsn in [1, 255, 256, u64::MAX] {
            let rid = item_rid(7, 42, lsn);
            assert_eq!(item_rid_creation_lsn(7, 42, &rid), Some(lsn), "{rid}");
            assert_eq!(item_rid_creation_lsn(7, 43, &rid), None);
            assert_eq!(item_rid_creation_lsn(8, 42, &rid), None);
        }
        for not_an_item_rid in [container_rid(7, 42), "not base64!".into(), String::new()] {
            assert_eq!(item_rid_creation_lsn(7, 42, &not_an_item_rid), None);
        }
    }

    fn range(min: &str, max: &str) -> RangeRecord {
        RangeRecord {
            id: 0,
            min: min.into(),
            max: max.into(),
            parents: Vec::new(),
            ancestors: Vec::new(),
            first_lsn: 1,
            children: Vec::new(),
            approx_bytes: 0,
            item_count: Some(0),
        }
    }

    #[test]
    fn v2_ranges_split_where_azure_splits_them() {
        let full = range("", "FF");
        assert_eq!(
            v2_split_point(&full).as_deref(),
            Some("1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")
        );
        let right = range("1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "FF");
        assert_eq!(
            v2_split_point(&right).as_deref(),
            Some("2FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")
        );
        assert_eq!(
            v2_split_point(&range(
                "05000000000000000000000000000000",
                "05000000000000000000000000000001"
            )),
            None
        );
    }

    #[test]
    fn initial_v2_boundaries_match_splitting() {
        let definition = PartitionKeyDefinition::single("/pk");
        assert_eq!(
            initial_boundaries(&definition, 2),
            vec!["1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF".to_owned()]
        );
        let four = initial_boundaries(&definition, 4);
        assert_eq!(four.len(), 3);
        assert!(four.windows(2).all(|w| w[0] < w[1]));
        assert!(four.iter().all(|b| b.as_str() < "40"));
    }
}
