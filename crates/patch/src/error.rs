//! The one error type of this crate.
//!
//! Every variant is a client error: the server answers each with HTTP 400
//! and the message as is. Messages follow the wording of Cosmos DB's own
//! patch errors where it is documented ("For Operation(1): Node(/a) to be
//! removed is absent."), and always name the operation's position in the
//! request (counted from 0) and its path.

use crate::MAX_OPERATIONS;

/// Why a patch request was refused. Nothing was changed.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The request body is not a patch specification.
    #[error("Invalid patch request: check syntax of patch specification. {reason}")]
    InvalidRequest {
        /// What is wrong with the body.
        reason: String,
    },
    /// One operation object is not a valid operation.
    #[error(
        "Invalid patch request: check syntax of patch specification. Operation {index}: {reason}"
    )]
    InvalidOperation {
        /// The operation's position in the request, from 0.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The request has no operations.
    #[error("Invalid patch request: the patch specification has no operations.")]
    NoOperations,
    /// The request has more than [`MAX_OPERATIONS`] operations.
    #[error(
        "The number of patch operations can't exceed {MAX_OPERATIONS}; this request has {n_operations}."
    )]
    TooManyOperations {
        /// How many operations the request has.
        n_operations: usize,
    },
    /// A path is not a JSON pointer this crate accepts.
    #[error("For Operation({index}): path '{path}' is invalid: {reason}.")]
    InvalidPath {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The path (at most 64 characters of it).
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A path (or a move's `from`) names a system property.
    #[error(
        "Invalid patch request: Can't patch system property '{property}' (operation {index}, path '{path}')."
    )]
    SystemProperty {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The offending path.
        path: String,
        /// The system property it names (`id`, `_rid`, `_etag`, ...).
        property: String,
    },
    /// The node a `replace`, `remove` or `move` works on does not exist.
    #[error("For Operation({index}): Node({path}) to be {action} is absent.")]
    TargetAbsent {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The path that does not exist.
        path: String,
        /// `replaced`, `removed` or `moved`.
        action: &'static str,
    },
    /// The parent of the target does not exist, or is not an object or array.
    #[error(
        "For Operation({index}): {operation} operation can only create a child object of an existing node (array or object) and can't create path recursively, no path found beyond: '{existing}' (path '{path}')."
    )]
    NoParent {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The operation name (`add`, `set`, ...).
        operation: &'static str,
        /// The full path of the operation.
        path: String,
        /// The longest prefix of the path that exists (`""` for the root).
        existing: String,
    },
    /// An array index is past the end of the array.
    #[error(
        "For Operation({index}): Index({array_index}) to operate on is out of array bounds: the array has {len} elements (path '{path}')."
    )]
    IndexOutOfBounds {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The full path of the operation.
        path: String,
        /// The index asked for.
        array_index: usize,
        /// The array's length.
        len: usize,
    },
    /// A path segment addressing an array is not a valid index.
    #[error(
        "For Operation({index}): '{token}' in path '{path}' is not a valid array index: {reason}."
    )]
    InvalidArrayIndex {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The full path of the operation.
        path: String,
        /// The segment (at most 64 characters of it).
        token: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `incr` targets a value that is not a number.
    #[error("For Operation({index}): Node({path}) isn't a number.")]
    NotANumber {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The path of the value.
        path: String,
    },
    /// `incr` would produce a number JSON cannot hold: an integer outside
    /// the 64-bit range or a non-finite float.
    #[error("For Operation({index}): incrementing Node({path}) gives a number out of range.")]
    NumberOutOfRange {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The path of the value.
        path: String,
    },
    /// `move` would put a node inside itself.
    #[error(
        "For Operation({index}): 'path' {path} can't be a JSON child of the 'from' location {from}."
    )]
    MoveIntoChild {
        /// The operation's position in the request, from 0.
        index: usize,
        /// The move's source.
        from: String,
        /// The move's destination, inside `from`.
        path: String,
    },
}
