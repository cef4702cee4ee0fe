//! Lease documents, shaped as the .NET change feed processor writes them.
//!
//! A lease is one JSON document in the lease container (partitioned by `/id`):
//!
//! ```json
//! {
//!   "id": "orders-viewlocalhost_AAAAAA==_AAAAAAAAAAA=..-FF",
//!   "version": 1,
//!   "LeaseToken": "-FF",
//!   "FeedRange": {"Range": {"min": "", "max": "FF", "isMinInclusive": true, "isMaxInclusive": false}},
//!   "Owner": "host-1",
//!   "ContinuationToken": "\"1042\"",
//!   "timestamp": "2026-12-02T05:52:31.000Z",
//!   "properties": {},
//!   "Mode": "Incremental Feed"
//! }
//! ```
//!
//! The id is `{prefix}{LeaseToken}`, where the prefix is `{processor name}{account
//! host}_{database rid}_{container rid}..` (the .NET processor's prefix) and the token is
//! `{min}-{max}` of the lease's EPK span (an **EPK lease**, `version` 1). Leases written by
//! .NET before a split or merge are **partition-range leases** (`version` 0, `LeaseToken` =
//! the range id, no `FeedRange`): they are read, and replaced by EPK leases when their range
//! splits. `ContinuationToken` is the change feed etag to send back as `If-None-Match`
//! (.NET's composite continuation JSON is also read). `Owner` is null or empty for a free
//! lease. Every write is conditional on the `_etag` read with it.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::clock::iso8601;
use crate::error::LeaseStoreError;
use crate::feed::{EpkSpan, FeedMode, StartFrom};

/// The separator between a processor's prefix and a lease token (as .NET).
pub const LEASE_TOKEN_SEPARATOR: &str = "..";
/// The suffix of the bookkeeping document that records that leases were created.
pub const INFO_SUFFIX: &str = ".info";
/// The suffix of the bookkeeping document held while leases are being created.
pub const LOCK_SUFFIX: &str = ".lock";
/// Property a host sets on another host's lease to ask for it (graceful hand-off).
pub const HANDOFF_PROPERTY: &str = "tributary.handoffTo";
/// Property a reset writes: where a lease without a continuation starts (`beginning`, `now`,
/// or `time:{ms since the epoch}`), overriding the processor's setting. See
/// [`start_property`] and [`start_of`].
pub const START_PROPERTY: &str = "tributary.start";

/// The [`START_PROPERTY`] value for `start` (a time before the epoch is the epoch).
pub fn start_property(start: StartFrom) -> String {
    match start {
        StartFrom::Beginning => "beginning".into(),
        StartFrom::Now => "now".into(),
        StartFrom::Time(time) => {
            let ms = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            format!("time:{ms}")
        }
    }
}

/// Where a lease without a continuation starts: its [`START_PROPERTY`] (written by a
/// reset), else `default` (the processor's setting). An unreadable value counts as absent.
pub fn start_of(lease: &Lease, default: StartFrom) -> StartFrom {
    match lease.properties.get(START_PROPERTY).map(String::as_str) {
        Some("beginning") => StartFrom::Beginning,
        Some("now") => StartFrom::Now,
        Some(text) => text
            .strip_prefix("time:")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map_or(default, |ms| {
                StartFrom::Time(UNIX_EPOCH + Duration::from_millis(ms))
            }),
        None => default,
    }
}

/// How a lease names its part of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseVersion {
    /// `version` 0: the lease names a partition key range by id (as written by .NET on a
    /// fresh start).
    PartitionKeyRange,
    /// `version` 1: the lease names an EPK span.
    EpkRange,
}

/// A lease, as read from (or about to be written to) the lease container.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    /// The document id.
    pub id: String,
    /// The lease token: the range id (version 0) or `{min}-{max}` (version 1).
    pub token: String,
    /// The EPK span; for a version 0 lease, `None` until resolved from the range id.
    pub span: Option<EpkSpan>,
    /// The schema version.
    pub version: LeaseVersion,
    /// The owning host's instance name; `None` for a free lease.
    pub owner: Option<String>,
    /// Where the next read starts; `None` before the first checkpoint.
    pub continuation: Option<String>,
    /// Free-form properties (.NET's `properties`).
    pub properties: BTreeMap<String, String>,
    /// The feed mode the lease was made for.
    pub mode: FeedMode,
    /// The `_etag` this state was read with (empty for a lease not yet written).
    pub etag: String,
    /// The document's `timestamp` as read: when a host last wrote the lease, by its wall
    /// clock (`None` for a lease not yet written, or a document without one). Writing the
    /// lease sets a fresh one; this field is not written back.
    pub last_write: Option<String>,
    /// Fields this processor does not interpret, kept as they were.
    pub other_fields: Map<String, Value>,
}

impl Lease {
    /// A new, free EPK lease for `span`.
    pub fn new_epk(prefix: &str, span: EpkSpan, mode: FeedMode) -> Lease {
        let token = format!("{}-{}", span.min, span.max);
        Lease {
            id: format!("{prefix}{token}"),
            token,
            span: Some(span),
            version: LeaseVersion::EpkRange,
            owner: None,
            continuation: None,
            properties: BTreeMap::new(),
            mode,
            etag: String::new(),
            last_write: None,
            other_fields: Map::new(),
        }
    }

    /// Whether no host owns the lease.
    pub fn is_free(&self) -> bool {
        self.owner.as_deref().is_none_or(str::is_empty)
    }

    /// Whether `instance` owns the lease.
    pub fn is_owned_by(&self, instance: &str) -> bool {
        self.owner.as_deref() == Some(instance)
    }

    /// The host that asked for this lease in a graceful hand-off, if any.
    pub fn handoff_to(&self) -> Option<&str> {
        self.properties
            .get(HANDOFF_PROPERTY)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The document to store, with `timestamp` set from `wall_ms` (not from
    /// [`Lease::last_write`]).
    pub fn to_document(&self, wall_ms: u64) -> Value {
        let mut doc = self.other_fields.clone();
        doc.insert("id".into(), json!(self.id));
        doc.insert("LeaseToken".into(), json!(self.token));
        match self.version {
            LeaseVersion::PartitionKeyRange => {
                doc.insert("version".into(), json!(0));
                doc.insert("PartitionId".into(), json!(self.token));
            }
            LeaseVersion::EpkRange => {
                doc.insert("version".into(), json!(1));
            }
        }
        if let Some(span) = &self.span
            && self.version == LeaseVersion::EpkRange
        {
            doc.insert(
                "FeedRange".into(),
                json!({"Range": {"min": span.min, "max": span.max,
                    "isMinInclusive": true, "isMaxInclusive": false}}),
            );
        }
        doc.insert("Owner".into(), json!(self.owner));
        doc.insert("ContinuationToken".into(), json!(self.continuation));
        doc.insert("timestamp".into(), json!(iso8601(wall_ms)));
        doc.insert("properties".into(), json!(self.properties));
        doc.insert("Mode".into(), json!(self.mode.lease_value()));
        for system in ["_etag", "_rid", "_self", "_attachments", "_ts", "_lsn"] {
            doc.remove(system);
        }
        Value::Object(doc)
    }

    /// Reads a lease document (with its `_etag`).
    ///
    /// # Errors
    /// [`LeaseStoreError::Malformed`] if it is not a lease.
    pub fn from_document(doc: &Value, etag: &str) -> Result<Lease, LeaseStoreError> {
        let object = doc.as_object();
        let id = object
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let malformed = |reason: &str| LeaseStoreError::Malformed {
            id: id.clone(),
            reason: reason.to_owned(),
        };
        let object = object.ok_or_else(|| malformed("not a JSON object"))?;
        let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
        let version = match object.get("version").and_then(Value::as_u64) {
            Some(1) => LeaseVersion::EpkRange,
            Some(0) | None => LeaseVersion::PartitionKeyRange,
            Some(_) => return Err(malformed("unknown 'version'")),
        };
        let token = text("LeaseToken")
            .or_else(|| text("PartitionId"))
            .ok_or_else(|| malformed("no 'LeaseToken'"))?;
        let span = match object.get("FeedRange").and_then(|f| f.get("Range")) {
            Some(range) => Some(EpkSpan::new(
                range.get("min").and_then(Value::as_str).unwrap_or_default(),
                range
                    .get("max")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("'FeedRange' has no max"))?,
            )),
            None if version == LeaseVersion::EpkRange => {
                return Err(malformed("an EPK lease without 'FeedRange'"));
            }
            None => None,
        };
        let mode = FeedMode::from_lease_value(object.get("Mode").and_then(Value::as_str))
            .ok_or_else(|| malformed("unknown 'Mode'"))?;
        let properties = match object.get("properties") {
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let continuation = text("ContinuationToken")
            .filter(|c| !c.is_empty())
            .map(|c| composite_continuation(&c).unwrap_or(c));
        let mut other_fields = object.clone();
        for known in [
            "id",
            "version",
            "LeaseToken",
            "PartitionId",
            "FeedRange",
            "Owner",
            "ContinuationToken",
            "timestamp",
            "properties",
            "Mode",
        ] {
            other_fields.remove(known);
        }
        Ok(Lease {
            id,
            token,
            span,
            version,
            owner: text("Owner").filter(|o| !o.is_empty()),
            continuation,
            properties,
            mode,
            etag: etag.to_owned(),
            last_write: text("timestamp"),
            other_fields,
        })
    }
}

/// The etag inside .NET's composite continuation
/// (`{"V":2,"Continuation":[{"State":{"type":"continuation","value":"\"42\""}}]}`), if the
/// text is one.
fn composite_continuation(text: &str) -> Option<String> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let value: Value = serde_json::from_str(text).ok()?;
    value
        .get("Continuation")?
        .as_array()?
        .first()?
        .get("State")?
        .get("value")?
        .as_str()
        .map(str::to_owned)
}

/// The numeric position in a continuation that is a quoted or bare integer (an LSN), used
/// to check that checkpoints never move backward.
pub fn continuation_lsn(continuation: &str) -> Option<u64> {
    continuation.trim().trim_matches('"').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epk_lease_round_trips_with_the_dotnet_names() {
        let mut lease = Lease::new_epk(
            "p1localhost_AA==_AAAA..",
            EpkSpan::new("", "7F"),
            FeedMode::LatestVersion,
        );
        lease.owner = Some("host-a".into());
        lease.continuation = Some("\"42\"".into());
        let doc = lease.to_document(0);
        assert_eq!(doc["id"], "p1localhost_AA==_AAAA..-7F");
        assert_eq!(doc["LeaseToken"], "-7F");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["FeedRange"]["Range"]["max"], "7F");
        assert_eq!(doc["Owner"], "host-a");
        assert_eq!(doc["ContinuationToken"], "\"42\"");
        assert_eq!(doc["Mode"], "Incremental Feed");
        assert_eq!(doc["timestamp"], "1970-01-01T00:00:00.000Z");
        let back = Lease::from_document(&doc, "\"e1\"").unwrap();
        assert_eq!(back.span, lease.span);
        assert_eq!(back.owner, lease.owner);
        assert_eq!(back.continuation, lease.continuation);
        assert_eq!(back.etag, "\"e1\"");
        assert_eq!(back.last_write.as_deref(), Some("1970-01-01T00:00:00.000Z"));
        assert_eq!(lease.last_write, None);
    }

    #[test]
    fn the_last_write_is_read_but_a_write_stamps_a_fresh_timestamp() {
        let doc = json!({"id": "p..-FF", "version": 1, "LeaseToken": "-FF",
            "FeedRange": {"Range": {"min": "", "max": "FF"}},
            "timestamp": "2026-12-02T05:52:31.000Z"});
        let lease = Lease::from_document(&doc, "e").unwrap();
        assert_eq!(
            lease.last_write.as_deref(),
            Some("2026-12-02T05:52:31.000Z")
        );
        assert!(!lease.other_fields.contains_key("timestamp"));
        assert_eq!(
            lease.to_document(0)["timestamp"],
            "1970-01-01T00:00:00.000Z"
        );
        let untimed = json!({"id": "p..0", "LeaseToken": "0"});
        assert_eq!(
            Lease::from_document(&untimed, "e").unwrap().last_write,
            None
        );
    }

    #[test]
    fn a_dotnet_partition_range_lease_is_read() {
        let doc = json!({"id": "p..0", "PartitionId": "0", "LeaseToken": "0", "Owner": null,
            "ContinuationToken": "\"7\"", "properties": {}, "timestamp": "2020-01-01T00:00:00Z",
            "_ts": 1, "_etag": "\"x\""});
        let lease = Lease::from_document(&doc, "\"x\"").unwrap();
        assert_eq!(lease.version, LeaseVersion::PartitionKeyRange);
        assert_eq!(lease.token, "0");
        assert!(lease.span.is_none());
        assert!(lease.is_free());
        assert_eq!(lease.mode, FeedMode::LatestVersion);
        assert!(lease.other_fields.contains_key("_ts"));
        assert!(
            !lease
                .to_document(0)
                .as_object()
                .unwrap()
                .contains_key("_ts")
        );
    }

    #[test]
    fn a_dotnet_composite_continuation_is_read_as_its_etag() {
        let composite = r#"{"V":2,"Rid":"x","Continuation":[{"FeedRange":{"type":"Effective Partition Key Range","value":{"min":"","max":"FF"}},"State":{"type":"continuation","value":"\"99\""}}]}"#;
        let doc = json!({"id": "p..-FF", "version": 1, "LeaseToken": "-FF",
            "FeedRange": {"Range": {"min": "", "max": "FF"}}, "ContinuationToken": composite});
        let lease = Lease::from_document(&doc, "e").unwrap();
        assert_eq!(lease.continuation.as_deref(), Some("\"99\""));
        assert_eq!(continuation_lsn("\"99\""), Some(99));
    }

    #[test]
    fn a_start_position_round_trips_through_the_start_property() {
        let mut lease = Lease::new_epk("p..", EpkSpan::full(), FeedMode::LatestVersion);
        assert_eq!(start_of(&lease, StartFrom::Now), StartFrom::Now);
        let at = UNIX_EPOCH + Duration::from_millis(946_684_800_000);
        for (start, text) in [
            (StartFrom::Beginning, "beginning"),
            (StartFrom::Now, "now"),
            (StartFrom::Time(at), "time:946684800000"),
        ] {
            assert_eq!(start_property(start), text);
            lease
                .properties
                .insert(START_PROPERTY.into(), start_property(start));
            assert_eq!(start_of(&lease, StartFrom::Beginning), start);
        }
        lease
            .properties
            .insert(START_PROPERTY.into(), "time:soon".into());
        assert_eq!(start_of(&lease, StartFrom::Now), StartFrom::Now);
    }

    #[test]
    fn malformed_leases_are_named() {
        let error = Lease::from_document(&json!({"id": "x", "version": 1, "LeaseToken": "a"}), "")
            .unwrap_err();
        assert!(error.to_string().contains("'x'"), "{error}");
        assert!(Lease::from_document(&json!([1]), "").is_err());
        let unknown_mode = json!({"id": "x", "LeaseToken": "0", "Mode": "Sideways"});
        assert!(Lease::from_document(&unknown_mode, "").is_err());
    }
}
