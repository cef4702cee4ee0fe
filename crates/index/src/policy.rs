//! A container's `indexingPolicy`: its mode and the paths it includes and excludes.

use serde_json::Value;

use crate::encoding::{Scalar, encode_json_scalar, encode_path, encode_scalar};
use crate::path::{IndexPath, Step};

/// Why an `indexingPolicy` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy, or one of its parts, is not the JSON shape Cosmos DB takes.
    #[error("indexingPolicy: {0}")]
    Shape(String),
    /// An included or excluded path is not a valid index path.
    #[error("the indexing path '{path}' could not be accepted: {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// When items are indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexingMode {
    /// Every write updates the index in the same commit (`consistent`; the retired `lazy`
    /// mode is taken as this).
    Consistent,
    /// Nothing is indexed (`none`, or `automatic: false`): queries read every item.
    None,
}

/// How a pattern ends: `?` (the scalar at exactly this path) or `*` (this path and
/// everything below it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum PatternEnd {
    Subtree,
    Scalar,
}

/// One included or excluded path.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pattern {
    steps: Vec<Step>,
    end: PatternEnd,
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, PolicyError> {
        let invalid = |reason: &str| PolicyError::Path {
            path: text.to_owned(),
            reason: reason.to_owned(),
        };
        // `/` is the legacy name of the root (`/*`), still sent by older clients.
        if text == "/" {
            return Ok(Pattern {
                steps: Vec::new(),
                end: PatternEnd::Subtree,
            });
        }
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| invalid("a path starts with '/'"))?;
        let mut segments = Vec::new();
        let mut chars = rest.chars().peekable();
        while chars.peek().is_some() {
            let mut segment = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(c) => segment.push(c),
                            None => return Err(invalid("a quoted name is not closed")),
                        },
                        Some('"') => break,
                        Some(c) => segment.push(c),
                        None => return Err(invalid("a quoted name is not closed")),
                    }
                }
                segments.push((segment, true));
                match chars.next() {
                    None | Some('/') => {}
                    Some(_) => return Err(invalid("a quoted name must end its segment")),
                }
            } else {
                for c in chars.by_ref() {
                    if c == '/' {
                        break;
                    }
                    segment.push(c);
                }
                if segment.is_empty() {
                    return Err(invalid("a path has no empty segments"));
                }
                segments.push((segment, false));
            }
        }
        let Some((last, quoted)) = segments.pop() else {
            return Err(invalid("a path ends with '/?' or '/*'"));
        };
        let end = match (last.as_str(), quoted) {
            ("?", false) => PatternEnd::Scalar,
            ("*", false) => PatternEnd::Subtree,
            _ => return Err(invalid("a path ends with '/?' or '/*'")),
        };
        let steps = segments
            .into_iter()
            .map(|(segment, quoted)| match (segment.as_str(), quoted) {
                ("[]", false) => Ok(Step::Element),
                ("?" | "*", false) => Err(invalid("'?' and '*' may only end a path")),
                _ => Ok(Step::Property(segment)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if end == PatternEnd::Scalar && steps.is_empty() {
            return Err(invalid("the root is not a scalar: use '/*'"));
        }
        Ok(Pattern { steps, end })
    }

    /// Whether the pattern covers the scalar at `path`.
    fn covers(&self, path: &[Step]) -> bool {
        let fits = match self.end {
            PatternEnd::Scalar => path.len() == self.steps.len(),
            PatternEnd::Subtree => path.len() >= self.steps.len(),
        };
        fits && self.steps.iter().zip(path).all(|(a, b)| a == b)
    }

    /// How precise the pattern is: a longer path beats a shorter one, `?` beats `*`.
    fn precision(&self) -> (usize, PatternEnd) {
        (self.steps.len(), self.end)
    }

    fn is_root(&self) -> bool {
        self.steps.is_empty() && self.end == PatternEnd::Subtree
    }
}

/// Root properties the store owns and never indexes (`_ts` is indexed, as on Cosmos DB).
const UNINDEXED_SYSTEM_PROPERTIES: [&str; 5] = ["_rid", "_self", "_etag", "_attachments", "_lsn"];

/// A container's indexing policy, read from its `indexingPolicy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexingPolicy {
    mode: IndexingMode,
    included: Vec<Pattern>,
    excluded: Vec<Pattern>,
}

impl Default for IndexingPolicy {
    /// Cosmos DB's default: consistent, every path included (`/*`).
    fn default() -> Self {
        IndexingPolicy {
            mode: IndexingMode::Consistent,
            included: vec![Pattern {
                steps: Vec::new(),
                end: PatternEnd::Subtree,
            }],
            excluded: Vec::new(),
        }
    }
}

impl IndexingPolicy {
    /// A policy that indexes nothing (`indexingMode: none`).
    pub fn none() -> IndexingPolicy {
        IndexingPolicy {
            mode: IndexingMode::None,
            included: Vec::new(),
            excluded: Vec::new(),
        }
    }

    /// The term of one scalar at `path`, when the policy indexes that path (how the store
    /// indexes the `_ts` it assigns itself).
    pub fn term(&self, path: &IndexPath, value: &Scalar) -> Option<Vec<u8>> {
        if !self.indexes(path) {
            return None;
        }
        let mut term = Vec::with_capacity(24);
        encode_path(path.steps(), &mut term);
        encode_scalar(value, &mut term);
        Some(term)
    }

    /// Reads an `indexingPolicy`; `None` (no policy) is the default policy.
    ///
    /// # Errors
    /// [`PolicyError`] naming what is wrong: an unknown mode, a path that is not valid,
    /// included paths that leave the root (`/*`) to neither list.
    pub fn from_json(policy: Option<&Value>) -> Result<IndexingPolicy, PolicyError> {
        let Some(policy) = policy.filter(|p| !p.is_null()) else {
            return Ok(IndexingPolicy::default());
        };
        let object = policy
            .as_object()
            .ok_or_else(|| PolicyError::Shape("must be a JSON object".into()))?;
        let mode = match object.get("indexingMode") {
            None | Some(Value::Null) => IndexingMode::Consistent,
            Some(Value::String(mode)) => match mode.to_ascii_lowercase().as_str() {
                "consistent" | "lazy" => IndexingMode::Consistent,
                "none" => IndexingMode::None,
                other => {
                    return Err(PolicyError::Shape(format!(
                        "indexingMode '{other}' is not one of consistent, lazy, none"
                    )));
                }
            },
            Some(other) => {
                return Err(PolicyError::Shape(format!(
                    "indexingMode must be a string, not {other}"
                )));
            }
        };
        let automatic = match object.get("automatic") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(automatic)) => *automatic,
            Some(other) => {
                return Err(PolicyError::Shape(format!(
                    "automatic must be true or false, not {other}"
                )));
            }
        };
        let included = patterns(object.get("includedPaths"), "includedPaths")?;
        let excluded = patterns(object.get("excludedPaths"), "excludedPaths")?;
        check_composite_indexes(object.get("compositeIndexes"))?;
        if mode == IndexingMode::None || !automatic {
            return Ok(IndexingPolicy::none());
        }
        let mut included = included;
        let root_named = included.iter().chain(&excluded).any(Pattern::is_root);
        if included.is_empty() && !root_named {
            // No included paths means every path, as Cosmos DB fills it in.
            included.push(Pattern {
                steps: Vec::new(),
                end: PatternEnd::Subtree,
            });
        } else if !root_named {
            return Err(PolicyError::Path {
                path: "/*".into(),
                reason: "the root path '/*' must be in includedPaths or excludedPaths".into(),
            });
        }
        Ok(IndexingPolicy {
            mode,
            included,
            excluded,
        })
    }

    /// The policy's mode.
    pub fn mode(&self) -> IndexingMode {
        self.mode
    }

    /// Whether the policy indexes the scalars at `path`.
    pub fn indexes(&self, path: &IndexPath) -> bool {
        self.indexes_steps(path.steps())
    }

    fn indexes_steps(&self, path: &[Step]) -> bool {
        if self.mode == IndexingMode::None {
            return false;
        }
        if let Some(Step::Property(first)) = path.first()
            && path.len() == 1
            && UNINDEXED_SYSTEM_PROPERTIES.contains(&first.as_str())
        {
            return false;
        }
        let best = |patterns: &[Pattern]| {
            patterns
                .iter()
                .filter(|p| p.covers(path))
                .map(Pattern::precision)
                .max()
        };
        match (best(&self.included), best(&self.excluded)) {
            (Some(included), Some(excluded)) => included > excluded,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    /// The index terms of an item: one per distinct (path, value) of an indexed scalar,
    /// sorted. Array elements are under a `[]` step; arrays and objects themselves are not
    /// terms. Nothing under [`IndexingMode::None`].
    pub fn terms(&self, item: &Value) -> Vec<Vec<u8>> {
        let mut terms = Vec::new();
        if self.mode == IndexingMode::None {
            return terms;
        }
        let mut path = Vec::new();
        self.collect(item, &mut path, &mut terms);
        terms.sort_unstable();
        terms.dedup();
        terms
    }

    fn collect(&self, value: &Value, path: &mut Vec<Step>, terms: &mut Vec<Vec<u8>>) {
        match value {
            Value::Object(object) => {
                for (name, child) in object {
                    path.push(Step::Property(name.clone()));
                    self.collect(child, path, terms);
                    path.pop();
                }
            }
            Value::Array(elements) => {
                path.push(Step::Element);
                for element in elements {
                    self.collect(element, path, terms);
                }
                path.pop();
            }
            scalar => {
                if self.indexes_steps(path) {
                    let mut term = Vec::with_capacity(32);
                    encode_path(path, &mut term);
                    encode_json_scalar(scalar, &mut term);
                    terms.push(term);
                }
            }
        }
    }
}

fn patterns(list: Option<&Value>, field: &str) -> Result<Vec<Pattern>, PolicyError> {
    let entries = match list {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            return Err(PolicyError::Shape(format!(
                "{field} must be an array, not {other}"
            )));
        }
    };
    entries
        .iter()
        .map(|entry| {
            let path = entry.get("path").and_then(Value::as_str).ok_or_else(|| {
                PolicyError::Shape(format!("every entry of {field} needs a string 'path'"))
            })?;
            Pattern::parse(path)
        })
        .collect()
}

/// Checks `compositeIndexes`: a list of indexes, each a list of at least two
/// `{"path", "order"}` entries. They are kept with the policy; `ORDER BY` over several
/// paths runs without them (sorting what it reads).
fn check_composite_indexes(value: Option<&Value>) -> Result<(), PolicyError> {
    let indexes = match value {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(indexes)) => indexes,
        Some(other) => {
            return Err(PolicyError::Shape(format!(
                "compositeIndexes must be an array of arrays, not {other}"
            )));
        }
    };
    for index in indexes {
        let entries = index.as_array().ok_or_else(|| {
            PolicyError::Shape("each composite index must be an array of paths".into())
        })?;
        if entries.len() < 2 {
            return Err(PolicyError::Shape(
                "a composite index needs at least two paths".into(),
            ));
        }
        for entry in entries {
            let path = entry.get("path").and_then(Value::as_str).ok_or_else(|| {
                PolicyError::Shape("each composite index path needs a string 'path'".into())
            })?;
            if !path.starts_with('/') || path.ends_with('?') || path.ends_with('*') {
                return Err(PolicyError::Path {
                    path: path.to_owned(),
                    reason: "a composite index path starts with '/' and names a property, \
                             without '/?' or '/*'"
                        .into(),
                });
            }
            if let Some(order) = entry.get("order") {
                let known = order
                    .as_str()
                    .map(str::to_ascii_lowercase)
                    .is_some_and(|order| order == "ascending" || order == "descending");
                if !known {
                    return Err(PolicyError::Shape(format!(
                        "the composite index order of '{path}' must be ascending or descending"
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> IndexPath {
        IndexPath(
            text.split('/')
                .filter(|s| !s.is_empty())
                .map(|s| match s {
                    "[]" => Step::Element,
                    s => Step::Property(s.to_owned()),
                })
                .collect(),
        )
    }

    #[test]
    fn the_default_policy_indexes_every_user_path_and_ts() {
        let policy = IndexingPolicy::from_json(None).unwrap();
        for indexed in ["/a", "/a/b", "/tags/[]", "/_ts", "/id"] {
            assert!(policy.indexes(&path(indexed)), "{indexed}");
        }
        for unindexed in ["/_etag", "/_rid", "/_self"] {
            assert!(!policy.indexes(&path(unindexed)), "{unindexed}");
        }
    }

    #[test]
    fn the_most_precise_path_wins() {
        let policy = IndexingPolicy::from_json(Some(&json!({
            "includedPaths": [{"path": "/*"}, {"path": "/a/keep/?"}],
            "excludedPaths": [{"path": "/a/*"}, {"path": "/\"_etag\"/?"}],
        })))
        .unwrap();
        assert!(policy.indexes(&path("/b")));
        assert!(!policy.indexes(&path("/a")));
        assert!(!policy.indexes(&path("/a/other")));
        assert!(policy.indexes(&path("/a/keep")));
        assert!(!policy.indexes(&path("/a/keep/deeper")));
    }

    #[test]
    fn an_excluded_root_indexes_only_what_is_included() {
        let policy = IndexingPolicy::from_json(Some(&json!({
            "includedPaths": [{"path": "/name/?"}, {"path": "/tags/[]/?"}],
            "excludedPaths": [{"path": "/*"}],
        })))
        .unwrap();
        assert!(policy.indexes(&path("/name")));
        assert!(policy.indexes(&path("/tags/[]")));
        assert!(!policy.indexes(&path("/other")));
        let terms = policy.terms(&json!({"name": "x", "tags": ["a", "a", "b"], "other": 1}));
        assert_eq!(terms.len(), 3, "name, and the two distinct tags");
    }

    #[test]
    fn mode_none_and_manual_indexing_index_nothing() {
        for policy in [
            json!({"indexingMode": "none"}),
            json!({"indexingMode": "consistent", "automatic": false}),
        ] {
            let policy = IndexingPolicy::from_json(Some(&policy)).unwrap();
            assert_eq!(policy.mode(), IndexingMode::None);
            assert!(policy.terms(&json!({"a": 1})).is_empty());
            assert!(!policy.indexes(&path("/a")));
        }
        // The retired `lazy` mode is kept consistent.
        let lazy = IndexingPolicy::from_json(Some(&json!({"indexingMode": "Lazy"}))).unwrap();
        assert_eq!(lazy.mode(), IndexingMode::Consistent);
    }

    #[test]
    fn invalid_policies_say_what_is_wrong() {
        let cases = [
            (json!({"indexingMode": "eager"}), "indexingMode 'eager'"),
            (
                json!({"includedPaths": [{"path": "a/?"}]}),
                "starts with '/'",
            ),
            (json!({"includedPaths": [{"path": "/a"}]}), "ends with"),
            (
                json!({"includedPaths": [{"path": "/a/*/b/?"}]}),
                "may only end",
            ),
            (json!({"includedPaths": [{"path": "/a/?"}]}), "root path"),
            (json!({"includedPaths": "/*"}), "must be an array"),
            (
                json!({"compositeIndexes": [[{"path": "/a"}]]}),
                "at least two paths",
            ),
            (
                json!({"compositeIndexes": [[{"path": "/a", "order": "up"}, {"path": "/b"}]]}),
                "ascending or descending",
            ),
        ];
        for (policy, expected) in cases {
            let error = IndexingPolicy::from_json(Some(&policy)).unwrap_err();
            assert!(error.to_string().contains(expected), "{policy}: {error}");
        }
    }

    #[test]
    fn the_legacy_root_path_is_the_root() {
        let policy = IndexingPolicy::from_json(Some(&json!({
            "includedPaths": [{"path": "/\"Location\"/?"}, {"path": "/"}],
        })))
        .unwrap();
        assert!(policy.indexes(&path("/anything")));
    }

    #[test]
    fn quoted_names_are_paths_too() {
        let policy = IndexingPolicy::from_json(Some(&json!({
            "includedPaths": [{"path": "/\"first name\"/?"}],
            "excludedPaths": [{"path": "/*"}],
        })))
        .unwrap();
        assert!(policy.indexes(&IndexPath(vec![Step::Property("first name".into())])));
    }
}
