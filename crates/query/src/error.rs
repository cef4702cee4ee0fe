//! The one error type of the crate.
//!
//! Every variant says what is wrong in words a query author can act on. Errors found while reading
//! the text carry the byte position where the problem starts; the server maps all of them to a
//! Cosmos `400 BadRequest`.

/// Why a query could not be parsed, bound or run.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The text is not valid query syntax. `message` reads like Cosmos' own:
    /// "Syntax error, incorrect syntax near 'X'."
    #[error("{message} (at byte {position})")]
    Syntax {
        /// Byte offset into the query text where the offending token starts.
        position: usize,
        /// What is wrong, without the position.
        message: String,
    },

    /// The query text is longer than [`crate::MAX_QUERY_TEXT_BYTES`].
    #[error("the query text is {n_bytes} bytes long; the limit is {limit} bytes")]
    QueryTooLong {
        /// Length of the rejected text in bytes.
        n_bytes: usize,
        /// The limit that was exceeded.
        limit: usize,
    },

    /// Expressions or subqueries nest deeper than [`crate::MAX_NESTING_DEPTH`].
    #[error("the query nests expressions deeper than {limit} levels (at byte {position})")]
    NestingTooDeep {
        /// Byte offset where the limit was crossed.
        position: usize,
        /// The limit that was exceeded.
        limit: usize,
    },

    /// The query names a parameter (`@name`) that was not supplied.
    #[error("the parameter '{0}' is used in the query but no value was supplied for it")]
    UnknownParameter(String),

    /// The query calls a function that does not exist (or a user-defined function, which this
    /// engine does not run).
    #[error("'{0}' is not a recognized built-in function name")]
    UnknownFunction(String),

    /// A user-defined function (`udf.name`) failed.
    #[error("the user-defined function 'udf.{name}' failed: {message}")]
    UserFunction {
        /// The function's name, without `udf.`.
        name: String,
        /// Why it failed.
        message: String,
    },

    /// A built-in function was called with the wrong number of arguments.
    #[error("the function '{function}' takes {expected} arguments, but {found} were given")]
    WrongArgumentCount {
        /// The function name as written in the query.
        function: String,
        /// The accepted argument counts, e.g. "2 or 3".
        expected: String,
        /// The number of arguments given.
        found: usize,
    },

    /// An identifier does not name any alias introduced by a `FROM` or `JOIN` in scope.
    #[error("identifier '{name}' could not be resolved (at byte {position})")]
    UnresolvedIdentifier {
        /// The identifier as written.
        name: String,
        /// Byte offset of the identifier.
        position: usize,
    },

    /// The query is well formed but breaks a rule of the language (aggregates in `WHERE`,
    /// `SELECT *` with joins, a property outside `GROUP BY`, duplicate aliases...).
    #[error("{0}")]
    Invalid(String),

    /// The parameter list given with a query is malformed.
    #[error("invalid query parameters: {0}")]
    InvalidParameters(String),

    /// A `TOP`, `OFFSET` or `LIMIT` value is not a non-negative integer.
    #[error("the {clause} value must be a non-negative integer, got {value}")]
    InvalidCount {
        /// `TOP`, `OFFSET` or `LIMIT`.
        clause: &'static str,
        /// The rejected value, as JSON (or "undefined").
        value: String,
    },

    /// A scalar subquery produced more than one value.
    #[error("a scalar subquery returned {n_values} values; it may return at most one")]
    SubqueryCardinality {
        /// How many values it produced before evaluation stopped.
        n_values: usize,
    },

    /// A regular expression given to `RegexMatch` is invalid.
    #[error("invalid regular expression '{pattern}': {message}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// Why the regex engine rejected it.
        message: String,
    },

    /// Joins and subqueries produced more rows for one input document than
    /// [`crate::MAX_JOIN_ROWS_PER_DOCUMENT`].
    #[error(
        "the joins and subqueries of this query produce more than {limit} rows for a single document"
    )]
    TooManyJoinRows {
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl QueryError {
    /// Builds a syntax error in Cosmos' wording for the token `near` at `position`.
    pub(crate) fn near(position: usize, near: &str) -> QueryError {
        QueryError::Syntax {
            position,
            message: format!("Syntax error, incorrect syntax near '{near}'."),
        }
    }

    /// The same error with its byte position (if it has one) passed through `map`.
    pub(crate) fn map_position(self, map: impl FnOnce(usize) -> usize) -> QueryError {
        match self {
            QueryError::Syntax { position, message } => QueryError::Syntax {
                position: map(position),
                message,
            },
            QueryError::NestingTooDeep { position, limit } => QueryError::NestingTooDeep {
                position: map(position),
                limit,
            },
            QueryError::UnresolvedIdentifier { name, position } => {
                QueryError::UnresolvedIdentifier {
                    name,
                    position: map(position),
                }
            }
            other => other,
        }
    }

    /// Builds a syntax error with a custom message.
    pub(crate) fn syntax(position: usize, message: impl Into<String>) -> QueryError {
        QueryError::Syntax {
            position,
            message: message.into(),
        }
    }
}
