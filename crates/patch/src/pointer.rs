//! Patch paths: JSON pointers (RFC 6901) with Cosmos DB's restrictions.
//!
//! A path is `/` followed by segments separated by `/`; in a segment `~1`
//! stands for `/` and `~0` for `~`. Cosmos adds two rules: the root (`""`)
//! cannot be patched, and a path whose first segment is a system property
//! ([`crate::SYSTEM_PROPERTIES`]) is refused.

use crate::{MAX_PATH_LEN, MAX_PATH_SEGMENTS, PatchError, SYSTEM_PROPERTIES};

/// A parsed path: its unescaped segments, never empty.
pub(crate) struct Pointer {
    pub(crate) segments: Vec<String>,
}

impl Pointer {
    /// Parses the path of operation `index`.
    pub(crate) fn parse(index: usize, path: &str) -> Result<Pointer, PatchError> {
        let invalid = |reason: String| PatchError::InvalidPath {
            index,
            path: excerpt(path),
            reason,
        };
        if path.len() > MAX_PATH_LEN {
            return Err(invalid(format!(
                "it is {} bytes long; the limit is {MAX_PATH_LEN}",
                path.len()
            )));
        }
        let Some(rest) = path.strip_prefix('/') else {
            return Err(invalid(if path.is_empty() {
                "the document root can't be patched; name a property, e.g. '/name'".to_owned()
            } else {
                "it must start with '/'".to_owned()
            }));
        };
        let mut segments = Vec::new();
        for raw_segment in rest.split('/') {
            if segments.len() == MAX_PATH_SEGMENTS {
                return Err(invalid(format!(
                    "it has more than {MAX_PATH_SEGMENTS} segments"
                )));
            }
            segments.push(unescape(raw_segment).ok_or_else(|| {
                invalid("'~' must be followed by '0' (for '~') or '1' (for '/')".to_owned())
            })?);
        }
        if let Some(property) = SYSTEM_PROPERTIES
            .iter()
            .find(|property| **property == segments[0])
        {
            return Err(PatchError::SystemProperty {
                index,
                path: excerpt(path),
                property: (*property).to_owned(),
            });
        }
        Ok(Pointer { segments })
    }

    /// The pointer to the first `n_segments` segments, escaped again.
    pub(crate) fn prefix(&self, n_segments: usize) -> String {
        self.segments
            .iter()
            .take(n_segments)
            .map(|segment| format!("/{}", segment.replace('~', "~0").replace('/', "~1")))
            .collect()
    }

    /// Whether `self` lies strictly inside `other`.
    pub(crate) fn is_strictly_inside(&self, other: &Pointer) -> bool {
        self.segments.len() > other.segments.len()
            && self.segments[..other.segments.len()] == other.segments[..]
    }
}

/// Undoes `~1` and `~0`; `None` for any other use of `~`.
fn unescape(raw_segment: &str) -> Option<String> {
    let mut segment = String::with_capacity(raw_segment.len());
    let mut chars = raw_segment.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => segment.push('~'),
                Some('1') => segment.push('/'),
                _ => return None,
            }
        } else {
            segment.push(c);
        }
    }
    Some(segment)
}

/// At most 64 characters of an untrusted value, followed by `...` when cut.
pub(crate) fn excerpt(value: &str) -> String {
    match value.char_indices().nth(64) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}
