//! What a script reads and writes: the documents of one logical partition of one container,
//! behind [`DocumentContext`], which the caller implements (over a store, an overlay of
//! pending writes, or a map in a test).

use serde_json::Value;

/// Why a document operation of a script failed: a status code as Cosmos DB gives it
/// (`404` not found, `409` conflict, `412` precondition failed, `400` bad request, ...) and a
/// message. The script's callback receives it as an error with `number` and `message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (status {status})")]
pub struct DocumentError {
    /// The status code the script sees as the error's `number`.
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl DocumentError {
    /// An error with `status` and `message`.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        DocumentError {
            status,
            message: message.into(),
        }
    }
}

/// How a document is written by [`DocumentContext::write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentWrite {
    /// A new document in the collection the link names; its id must be new.
    Create,
    /// A new document, or the one with its id replaced.
    Upsert,
    /// The document the link names, replaced (its id may not change).
    Replace,
}

/// The documents a script may reach: one logical partition of one container. Links are
/// passed as the script wrote them (a collection's or a document's self link, by name or by
/// resource id); the context says which it accepts.
pub trait DocumentContext {
    /// The collection's self link (by resource ids) and alt link (by names), which
    /// `getSelfLink()` and `getAltLink()` return.
    fn collection_links(&self) -> (String, String);

    /// Creates, upserts or replaces a document and returns it as stored (with its system
    /// properties). `link` names the collection (create, upsert) or the document (replace);
    /// `if_match` is an `_etag` the existing document must have.
    ///
    /// # Errors
    /// A [`DocumentError`] the script's callback receives.
    fn write(
        &mut self,
        kind: DocumentWrite,
        link: &str,
        document: Value,
        if_match: Option<&str>,
    ) -> Result<Value, DocumentError>;

    /// Reads the document `link` names.
    ///
    /// # Errors
    /// A [`DocumentError`] (404 when it does not exist).
    fn read(&mut self, link: &str) -> Result<Value, DocumentError>;

    /// Deletes the document `link` names, if its `_etag` is `if_match` (when given).
    ///
    /// # Errors
    /// A [`DocumentError`] (404 when it does not exist, 412 for another etag).
    fn delete(&mut self, link: &str, if_match: Option<&str>) -> Result<(), DocumentError>;

    /// Runs a SQL query (`parameters` as in a query body: `[{"name", "value"}]`) over the
    /// collection's documents in the partition, and returns every result.
    ///
    /// # Errors
    /// A [`DocumentError`] (400 for a query that does not parse).
    fn query(
        &mut self,
        link: &str,
        query: &str,
        parameters: &Value,
    ) -> Result<Vec<Value>, DocumentError>;

    /// Every document of the collection in the partition.
    ///
    /// # Errors
    /// A [`DocumentError`].
    fn read_all(&mut self, link: &str) -> Result<Vec<Value>, DocumentError>;
}
