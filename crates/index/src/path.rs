//! Paths into an item, as the index names them.

use std::fmt;

/// One step of an [`IndexPath`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Step {
    /// A property of an object.
    Property(String),
    /// Any element of an array (`[]`): the index does not tell positions apart.
    Element,
}

/// The path of a scalar inside an item, from its root: `/address/city`, `/tags/[]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndexPath(pub Vec<Step>);

impl IndexPath {
    /// The path's steps.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// True when the path goes through an array element (`[]`): an item can then have
    /// several values at the path.
    pub fn has_element(&self) -> bool {
        self.0.contains(&Step::Element)
    }
}

/// The path as an indexing policy writes an index on it: `/address/city/?`, `/tags/[]/?`,
/// with property names that are not plain identifiers quoted (`/"first name"/?`).
impl fmt::Display for IndexPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.0 {
            match step {
                Step::Element => f.write_str("/[]")?,
                Step::Property(name) if is_plain(name) => write!(f, "/{name}")?,
                Step::Property(name) => write!(f, "/\"{}\"", name.replace('"', "\\\""))?,
            }
        }
        f.write_str("/?")
    }
}

/// A property name written bare in a path: letters, digits and `_`, not starting with a digit.
fn is_plain(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_display_as_index_specs() {
        let path = IndexPath(vec![
            Step::Property("tags".into()),
            Step::Element,
            Step::Property("first name".into()),
        ]);
        assert_eq!(path.to_string(), "/tags/[]/\"first name\"/?");
        assert!(path.has_element());
        assert_eq!(
            IndexPath(vec![Step::Property("pk".into())]).to_string(),
            "/pk/?"
        );
    }
}
