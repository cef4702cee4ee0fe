//! Index metrics: the indexes a query used, as Cosmos DB reports them when a request asks
//! with `x-ms-cosmos-populateindexmetrics: true`, in `x-ms-cosmos-index-utilization`
//! (base64 of UTF-8 JSON with four lists: the single-path and composite indexes the query
//! utilized, and those it could have used had they existed).
//!
//! Only what a query really read through is reported: the partition-key index (the store's
//! item pointers, ordered by effective partition key, which a query scoped to one partition
//! key, by header or pinned by its `WHERE`, reads that key's items through), and the range
//! index path whose lookup chose the items the query read ([`SingleIndexUse::of_lookup`]).
//! It suggests no indexes and reads no composite ones, so those lists are always empty.

use base64::Engine;
use serde::Serialize;
use std::ops::Bound;

use tributary_index::{Lookup, LookupKind, Scalar, Step};
use tributary_partition_key::PartitionKeyDefinition;
use tributary_store::FeedScope;

/// Asks for [`INDEX_UTILIZATION`] on a query response.
pub(crate) const POPULATE_INDEX_METRICS: &str = "x-ms-cosmos-populateindexmetrics";
/// The indexes a query used: [`IndexUtilization::encode`].
pub(crate) const INDEX_UTILIZATION: &str = "x-ms-cosmos-index-utilization";

/// The indexes one query request read through.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct IndexUtilization {
    /// The single-path indexes used, in the order the query used them.
    pub(crate) utilized_single: Vec<SingleIndexUse>,
}

/// One single-path index a query read through.
#[derive(Debug, PartialEq)]
pub(crate) struct SingleIndexUse {
    /// The filter the index answered, as Cosmos DB prints it; empty for a lookup the scope
    /// makes rather than a filter term.
    pub(crate) filter_expression: String,
    /// The index's path, e.g. `/pk/?` (one property's scalar values).
    pub(crate) index_spec: String,
}

/// The JSON of one [`SingleIndexUse`]. Every index Tributary has answers its lookup
/// exactly (no document it yields is filtered out again, none it should yield is missed),
/// so both precise flags are true and the impact is `High`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct SingleIndexJson<'a> {
    filter_expression: &'a str,
    index_spec: &'a str,
    filter_precise_set: bool,
    index_precise_set: bool,
    index_impact_score: &'static str,
}

/// The JSON of an [`IndexUtilization`], in Cosmos DB's key order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct IndexUtilizationJson<'a> {
    utilized_single_indexes: Vec<SingleIndexJson<'a>>,
    potential_single_indexes: [(); 0],
    utilized_composite_indexes: [(); 0],
    potential_composite_indexes: [(); 0],
}

impl SingleIndexUse {
    /// The use of the range index that answered `lookup`, its filter written as Cosmos DB
    /// writes one (`(ROOT.status = "open")`, `(ROOT.n >= 5)`, `STARTSWITH(ROOT.name, "a")`).
    pub(crate) fn of_lookup(lookup: &Lookup) -> Self {
        let mut path = String::from("ROOT");
        for step in lookup.path.steps() {
            match step {
                Step::Property(name) if is_identifier(name) => {
                    path.push('.');
                    path.push_str(name);
                }
                Step::Property(name) => {
                    path.push_str(&format!("[{}]", scalar_text(&Scalar::String(name.clone()))));
                }
                Step::Element => path.push_str("[]"),
            }
        }
        let filter_expression = match &lookup.kind {
            LookupKind::Equal(values) if values.len() == 1 => {
                format!("({path} = {})", scalar_text(&values[0]))
            }
            LookupKind::Equal(values) => {
                let values: Vec<String> = values.iter().map(scalar_text).collect();
                format!("({path} IN ({}))", values.join(", "))
            }
            LookupKind::Range { low, high } => {
                let side = |bound: &Bound<Scalar>, inclusive: &str, exclusive: &str| match bound {
                    Bound::Included(value) => {
                        Some(format!("({path} {inclusive} {})", scalar_text(value)))
                    }
                    Bound::Excluded(value) => {
                        Some(format!("({path} {exclusive} {})", scalar_text(value)))
                    }
                    Bound::Unbounded => None,
                };
                [side(low, ">=", ">"), side(high, "<=", "<")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" AND ")
            }
            LookupKind::Prefix(prefix) => {
                format!(
                    "STARTSWITH({path}, {})",
                    scalar_text(&Scalar::String(prefix.clone()))
                )
            }
        };
        SingleIndexUse {
            filter_expression,
            index_spec: lookup.index_spec(),
        }
    }
}

/// Whether a property name can follow a `.` in query text.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A scalar as query text: JSON, numbers without a fraction printed as integers.
fn scalar_text(value: &Scalar) -> String {
    match value {
        Scalar::Null => "null".to_owned(),
        Scalar::Bool(flag) => flag.to_string(),
        Scalar::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
        Scalar::Number(n) => n.to_string(),
        Scalar::String(text) => serde_json::Value::String(text.clone()).to_string(),
    }
}

impl IndexUtilization {
    /// The indexes a read of `scope` goes through: a partition key's items are found
    /// through the partition-key index, one use per path the key gives a value for (all of
    /// them for a whole hierarchical key, the leading ones for a prefix). Any other scope is
    /// read in feed order or by EPK span, through no index of a property.
    pub(crate) fn of_scope(scope: &FeedScope, definition: &PartitionKeyDefinition) -> Self {
        let utilized_single = match scope {
            FeedScope::PartitionKey(key) => definition
                .paths
                .iter()
                .take(key.0.len())
                .map(|path| SingleIndexUse {
                    filter_expression: String::new(),
                    index_spec: format!("{path}/?"),
                })
                .collect(),
            FeedScope::Container
            | FeedScope::Range(_)
            | FeedScope::Epk(_)
            | FeedScope::RangePart { .. } => Vec::new(),
        };
        IndexUtilization { utilized_single }
    }

    /// The header value: base64 (standard alphabet, padded) of the UTF-8 JSON
    /// `{"UtilizedSingleIndexes": [...], "PotentialSingleIndexes": [], "UtilizedCompositeIndexes":
    /// [], "PotentialCompositeIndexes": []}`.
    pub(crate) fn encode(&self) -> String {
        let json = IndexUtilizationJson {
            utilized_single_indexes: self
                .utilized_single
                .iter()
                .map(|used| SingleIndexJson {
                    filter_expression: &used.filter_expression,
                    index_spec: &used.index_spec,
                    filter_precise_set: true,
                    index_precise_set: true,
                    index_impact_score: "High",
                })
                .collect(),
            potential_single_indexes: [],
            utilized_composite_indexes: [],
            potential_composite_indexes: [],
        };
        let text = serde_json::to_string(&json)
            .expect("the index utilization holds only strings and booleans");
        base64::engine::general_purpose::STANDARD.encode(text)
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::{Value, json};
    use tributary_partition_key::{EpkRange, PartitionKey};

    use super::*;

    fn decoded(utilization: &IndexUtilization) -> Value {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(utilization.encode())
            .expect("base64");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    fn key(components: Value) -> FeedScope {
        FeedScope::PartitionKey(PartitionKey::from_json(&components).expect("a key"))
    }

    #[test]
    fn a_partition_key_scope_uses_the_partition_key_index_once_per_path_it_pins() {
        let used = |path: &str| {
            json!({
                "FilterExpression": "",
                "IndexSpec": path,
                "FilterPreciseSet": true,
                "IndexPreciseSet": true,
                "IndexImpactScore": "High",
            })
        };
        let empty = |utilized: Vec<Value>| {
            json!({
                "UtilizedSingleIndexes": utilized,
                "PotentialSingleIndexes": [],
                "UtilizedCompositeIndexes": [],
                "PotentialCompositeIndexes": [],
            })
        };
        let single = PartitionKeyDefinition::single("/pk");
        let hierarchical = PartitionKeyDefinition::hierarchical(&["/state", "/city", "/zip"])
            .expect("three paths");
        let table = [
            (key(json!(["a"])), &single, empty(vec![used("/pk/?")])),
            (
                key(json!(["CA", "Oxnard", "93033"])),
                &hierarchical,
                empty(vec![used("/state/?"), used("/city/?"), used("/zip/?")]),
            ),
            (
                key(json!(["CA"])),
                &hierarchical,
                empty(vec![used("/state/?")]),
            ),
            (FeedScope::Container, &single, empty(Vec::new())),
            (FeedScope::Range(0), &single, empty(Vec::new())),
            (FeedScope::Epk(EpkRange::full()), &single, empty(Vec::new())),
        ];
        for (scope, definition, expected) in table {
            let utilization = IndexUtilization::of_scope(&scope, definition);
            assert_eq!(decoded(&utilization), expected, "{scope:?}");
        }
        // Cosmos DB's key order, which clients reading the text in order may rely on.
        let text = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(IndexUtilization::default().encode())
                .expect("base64"),
        )
        .expect("UTF-8");
        assert_eq!(
            text,
            r#"{"UtilizedSingleIndexes":[],"PotentialSingleIndexes":[],"UtilizedCompositeIndexes":[],"PotentialCompositeIndexes":[]}"#
        );
    }
}
