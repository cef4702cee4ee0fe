//! The Azure Cosmos DB NoSQL query language, parsed and evaluated over [`serde_json::Value`]
//! documents.
//!
//! Tributary's server answers every SDK query by running it here over a container's documents,
//! the store uses [`matches()`] for patch conditions (`FROM c WHERE c.stock > 0`), and the
//! server and the processor use it for change feed filters ([`Query::parse_filter`]). The crate
//! is pure: it reads no files, holds no store, and knows nothing of partitions or paging. It
//! takes a query text, parameters and an iterator of documents, and returns the result rows in
//! order; the caller pages them.
//!
//! # What it covers
//!
//! - `SELECT *`, `SELECT VALUE expr`, projection lists with `AS` and implied names (`c.a.b` is
//!   named `b`, unnamed expressions `$1`, `$2`...), `DISTINCT`, `TOP n`.
//! - `FROM c`, `FROM root c`, `FROM c IN c.items`, `FROM c.sub AS s`, `JOIN x IN c.arr`,
//!   `JOIN (SELECT ...) AS x`.
//! - `WHERE`, `ORDER BY` on several keys, `GROUP BY`, `OFFSET n LIMIT m`, `@parameters` in
//!   expressions and in `TOP`/`OFFSET`/`LIMIT`.
//! - Expressions: literals (including `undefined`), arrays, objects, `c.a`, `c["a"]`, `c.a[0]`,
//!   comparison, `AND`/`OR`/`NOT` in three-valued logic, arithmetic, bitwise operators, `||`,
//!   `??`, `? :`, `IN`, `BETWEEN`, `LIKE ... ESCAPE`, `EXISTS`, `ARRAY(...)` and scalar
//!   subqueries.
//! - Aggregates `COUNT`, `SUM`, `MIN`, `MAX`, `AVG` (also inside expressions, as in
//!   `SUM(c.x) / COUNT(1)`), and about 120 built-in functions (type checks, strings, math,
//!   integers, arrays, date and time, spatial, `DocumentId`), names case-insensitive.
//!   `docs/query.md` sets them against Cosmos DB's reference, one row each.
//!
//! # Semantics worth knowing
//!
//! - A missing property is *undefined*, not null. Operators on mismatched types yield undefined,
//!   `WHERE` keeps only rows whose filter is exactly `true`, and projection drops undefined
//!   values: a property that is undefined is left out of the object, and a `SELECT VALUE` that is
//!   undefined produces no row.
//! - `ORDER BY` sorts across types as undefined < null < false < true < numbers < strings <
//!   arrays < objects and keeps rows whose key is undefined (Cosmos' documented behaviour with
//!   an index that includes the path). Numbers compare as f64, strings ordinally.
//! - Aggregates over no rows: `COUNT` gives 0, `SUM` 0, and `MIN`/`MAX`/`AVG` give undefined,
//!   so `SELECT VALUE AVG(c.x)` over nothing returns no row.
//!
//! - Strings are measured and indexed in Unicode scalar values (`LENGTH('é')` is 1); string
//!   comparison is ordinal by UTF-16 code unit.
//!
//! # Limits
//!
//! Every input is bounded: [`MAX_QUERY_TEXT_BYTES`], [`MAX_NESTING_DEPTH`] (long `AND`/`OR`
//! chains stay flat and do not count), [`MAX_JOINS`], [`MAX_PARAMETERS`],
//! [`MAX_JOIN_ROWS_PER_DOCUMENT`] (all rows one document expands into, subqueries included),
//! [`MAX_COMPUTED_STRING_BYTES`] and [`MAX_REPLICATE_CHARS`]. No input makes it panic; deep
//! recursion moves to a heap-allocated stack segment rather than overflowing the caller's.
//!
//! # What it is not
//!
//! User-defined functions (`udf.f(...)`) are parsed, and called through the caller's
//! [`UserFunctions`] ([`execute_with_functions`]); elsewhere calling one is an
//! [`QueryError::UnknownFunction`]. No full-text,
//! vector or hybrid search functions and no `DateTimeFormat` (each answered with a
//! [`QueryError::Invalid`] that names it unsupported), and no index use: every document is read
//! (a caller that can count a scope's documents without reading them may answer the counts
//! [`Query::counts_documents_only`] accepts).
//!
//! # Example
//!
//! ```
//! use serde_json::json;
//! use tributary_query::{Parameters, Query, execute};
//!
//! let query = Query::parse(
//!     "SELECT c.name, c.price * 2 AS double FROM c WHERE c.price > @min ORDER BY c.price DESC",
//! )?;
//! let mut parameters = Parameters::new();
//! parameters.insert("@min", json!(5));
//! let documents = [
//!     json!({"name": "pen", "price": 2}),
//!     json!({"name": "book", "price": 12}),
//!     json!({"name": "lamp", "price": 30}),
//! ];
//! let rows = execute(&query, &parameters, &documents)?;
//! assert_eq!(
//!     rows,
//!     [json!({"name": "lamp", "double": 60}), json!({"name": "book", "double": 24})]
//! );
//! # Ok::<(), tributary_query::QueryError>(())
//! ```

mod ast;
mod bind;
mod computed;
mod datetime;
mod error;
mod eval;
mod exec;
mod functions;
mod index_lookup;
mod lexer;
mod parser;
mod plan;
mod prefilter;
mod print;
mod spatial;
mod value;

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub use crate::computed::{ComputedProperties, MAX_COMPUTED_PROPERTIES};
pub use crate::error::QueryError;
pub use crate::functions::{MAX_COMPUTED_STRING_BYTES, MAX_REPLICATE_CHARS};
pub use crate::plan::{DistinctKind, Merge, ORDER_BY_FILTER_PLACEHOLDER, QueryPlan};
pub use crate::prefilter::Prefilter;

/// The results a `TOP` or `OFFSET ... LIMIT` keeps of a query's results in order: it skips
/// `skip` of them, then keeps `take`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowWindow {
    /// Results dropped first (`OFFSET`; 0 for `TOP`).
    pub skip: u64,
    /// Results kept after them (`TOP` or `LIMIT`).
    pub take: u64,
}

use crate::ast::{BinaryOp, Collection, Count, Expr, SelectQuery, Selection, Source};
use crate::eval::{Context, Env, eval};
use crate::exec::{Flow, Pipeline};
use crate::functions::AggregateFunction;
use crate::value::Val;

/// Longest accepted query text, in bytes.
pub const MAX_QUERY_TEXT_BYTES: usize = 256 * 1024;
/// Deepest nesting of expressions and subqueries the parser accepts.
pub const MAX_NESTING_DEPTH: usize = 64;
/// Most parameters one query may be given.
pub const MAX_PARAMETERS: usize = 1024;
/// Most `JOIN` clauses in one query level (Cosmos' limit).
pub const MAX_JOINS: usize = 10;
/// Most rows one document may expand into, counting the joins of every query level and every
/// subquery evaluation; bounds the work a single document can cause.
pub const MAX_JOIN_ROWS_PER_DOCUMENT: usize = 1_000_000;

/// A parsed and bound query, ready to run any number of times.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    ast: SelectQuery,
    /// Every `@name` and `udf.name` the query uses, in order of first use.
    names: bind::Names,
}

impl Query {
    /// Parses a query text.
    ///
    /// # Errors
    ///
    /// [`QueryError::Syntax`] with the byte position for malformed text (worded like Cosmos'
    /// 400: "Syntax error, incorrect syntax near 'X'."); [`QueryError::UnknownFunction`],
    /// [`QueryError::WrongArgumentCount`], [`QueryError::UnresolvedIdentifier`] and
    /// [`QueryError::Invalid`] for well-formed queries that break the language's rules;
    /// [`QueryError::QueryTooLong`] and [`QueryError::NestingTooDeep`] past the limits.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        Query::bind(Query::parse_unbound(text)?)
    }

    /// The syntax tree of a query, its length checked, before names are bound.
    fn parse_unbound(text: &str) -> Result<SelectQuery, QueryError> {
        check_length(text)?;
        parser::parse_query(text)
    }

    /// Parses a patch or feed condition of the form `FROM c WHERE <expr>` (the `SELECT` clause
    /// left out). A complete `SELECT` query is accepted too.
    ///
    /// # Errors
    ///
    /// As for [`Query::parse`].
    pub fn parse_condition(text: &str) -> Result<Query, QueryError> {
        check_length(text)?;
        Query::bind(parser::parse_condition(text)?)
    }

    /// Parses a change feed filter: a condition over `c` (`c.status = 'shipped'`), optionally
    /// with its `WHERE`, or a whole `FROM c WHERE ...` (or `SELECT ... FROM c WHERE ...`) as
    /// [`Query::parse_condition`] takes it. A filter is evaluated with [`matches()`] on one
    /// change at a time and is given no parameters, so it may use none.
    ///
    /// # Errors
    ///
    /// As for [`Query::parse`]; [`QueryError::Invalid`] if the filter uses a `@parameter`.
    pub fn parse_filter(text: &str) -> Result<Query, QueryError> {
        let trimmed = text.trim_start();
        let keyword = trimmed
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let prefix = match keyword.as_str() {
            "FROM" | "SELECT" => "",
            "WHERE" => "FROM c ",
            _ => "FROM c WHERE ",
        };
        // Positions in errors count bytes of `text`, not of the completed condition.
        let leading_spaces = text.len() - trimmed.len();
        let query = Query::parse_condition(&format!("{prefix}{trimmed}")).map_err(|error| {
            error.map_position(|at| at.saturating_sub(prefix.len()) + leading_spaces)
        })?;
        if let Some(name) = query.names.parameters.first() {
            return Err(QueryError::Invalid(format!(
                "a filter takes no parameters, but it uses '{name}': write the value into the condition"
            )));
        }
        Ok(query)
    }

    fn bind(mut ast: SelectQuery) -> Result<Query, QueryError> {
        let names = bind::bind(&mut ast)?;
        Ok(Query { ast, names })
    }

    /// True when results depend on the whole input, so nothing can be emitted before the last
    /// document is read: `ORDER BY`, aggregates, `GROUP BY`, `DISTINCT`, `TOP` or `OFFSET`.
    pub fn needs_full_scan(&self) -> bool {
        let ast = &self.ast;
        !ast.order_by.is_empty()
            || ast.is_aggregate()
            || ast.distinct
            || ast.top.is_some()
            || ast.offset_limit.is_some()
    }

    /// The `TOP` or `OFFSET ... LIMIT` of a query that, without it, answers item by item
    /// ([`Query::answers_item_by_item`]): its results can then be streamed, reading only as
    /// far as the window reaches. `None` for any other query, for one with both clauses, and
    /// for a count parameter that is missing or not a non-negative integer (running the
    /// query whole reports that).
    pub fn row_window(&self, parameters: &Parameters) -> Option<RowWindow> {
        let ast = &self.ast;
        let streams_without_window = !ast.sources.is_empty()
            && ast.order_by.is_empty()
            && !ast.is_aggregate()
            && !ast.distinct;
        if !streams_without_window {
            return None;
        }
        match (&ast.top, &ast.offset_limit) {
            (Some(top), None) => Some(RowWindow {
                skip: 0,
                take: plan::resolve(Some(top), "TOP", parameters).ok()??,
            }),
            (None, Some(offset_limit)) => Some(RowWindow {
                skip: plan::resolve(Some(&offset_limit.offset), "OFFSET", parameters).ok()??,
                take: plan::resolve(Some(&offset_limit.limit), "LIMIT", parameters).ok()??,
            }),
            _ => None,
        }
    }

    /// This query without its `TOP` and `OFFSET ... LIMIT`, to run over each document of a
    /// [`Query::row_window`] stream.
    pub fn without_row_window(&self) -> Query {
        let mut ast = self.ast.clone();
        ast.top = None;
        ast.offset_limit = None;
        Query {
            ast,
            names: self.names.clone(),
        }
    }

    /// For an `ORDER BY` query with `TOP` or `OFFSET ... LIMIT` that keeps at most
    /// `max_rows` rows, each row a whole document (`FROM c` alone: no `JOIN`, no path or
    /// iteration in `FROM`; no aggregate, `GROUP BY` or `DISTINCT`) giving exactly one result
    /// (`SELECT *` or a list; a `SELECT VALUE` that is undefined gives none, so its window
    /// could reach past any fixed number of documents): a query that picks, in order, the
    /// documents those rows are (`SELECT TOP k VALUE c` with the same filter and `ORDER BY`). Running it
    /// over the documents so far plus the next ones keeps a bounded set of candidates, and
    /// running this query over the final candidates gives what it gives over every document
    /// (the sort is stable, and candidates come before later documents). `None` otherwise.
    pub fn top_documents_query(&self, parameters: &Parameters, max_rows: u64) -> Option<Query> {
        let ast = &self.ast;
        let rows_are_documents = matches!(
            ast.sources.as_slice(),
            [Source {
                iterate: false,
                collection: Collection::Path { steps, .. },
                ..
            }] if steps.is_empty()
        );
        let one_result_per_row = !matches!(ast.select, Selection::Value(_));
        if ast.order_by.is_empty()
            || ast.is_aggregate()
            || ast.distinct
            || !rows_are_documents
            || !one_result_per_row
        {
            return None;
        }
        let n_rows = match (&ast.top, &ast.offset_limit) {
            (Some(top), None) => plan::resolve(Some(top), "TOP", parameters).ok()??,
            (None, Some(offset_limit)) => {
                let offset = plan::resolve(Some(&offset_limit.offset), "OFFSET", parameters);
                let limit = plan::resolve(Some(&offset_limit.limit), "LIMIT", parameters);
                offset.ok()??.checked_add(limit.ok()??)?
            }
            _ => return None,
        };
        if n_rows > max_rows {
            return None;
        }
        let mut candidates = ast.clone();
        // The row's only value is the document.
        candidates.select = Selection::Value(Expr::Var { depth: 0, slot: 0 });
        candidates.top = Some(Count::Literal(n_rows));
        candidates.offset_limit = None;
        Some(Query {
            ast: candidates,
            names: self.names.clone(),
        })
    }

    /// The documents a [`Query::top_documents_query`] picker keeps (its `TOP`); `None` for
    /// any other query.
    pub fn picked_documents(&self) -> Option<u64> {
        match &self.ast.top {
            Some(Count::Literal(n)) if self.ast.offset_limit.is_none() => Some(*n),
            _ => None,
        }
    }

    /// True when the query can be answered one document at a time, each document's results
    /// in order: it reads documents (`FROM`) and does not need its whole input
    /// ([`Query::needs_full_scan`]). Running it over each document alone and concatenating
    /// gives what running it over all of them gives.
    pub fn answers_item_by_item(&self) -> bool {
        !self.ast.sources.is_empty() && !self.needs_full_scan()
    }

    /// True for `SELECT *` (each result is a whole input value).
    pub fn selects_star(&self) -> bool {
        self.ast.select == Selection::Star
    }

    /// True for `SELECT VALUE expr`.
    pub fn selects_value(&self) -> bool {
        matches!(self.ast.select, Selection::Value(_))
    }

    /// True when the selection calls an aggregate function (`COUNT`, `SUM`, `MIN`, `MAX`,
    /// `AVG`).
    pub fn has_aggregates(&self) -> bool {
        self.ast.n_aggregates > 0
    }

    /// True when the query has a `GROUP BY` clause.
    pub fn has_group_by(&self) -> bool {
        !self.ast.group_by.is_empty()
    }

    /// The value the `WHERE` clause fixes the document property at `path` (`["a", "b"]` for
    /// `c.a.b`) to: the clause is, or has as a top-level `AND` term, `c.a.b = <literal or
    /// @parameter>` (either way round, `c["a"]` too), where `c` is the `FROM` source that
    /// stands for the whole document. The literal, or the parameter's bound value; `None` when
    /// nothing pins it, or the parameter is unbound or bound to undefined. Every document the
    /// query can return has this value at `path`, so a server can read only the documents
    /// stored under it, and tell a query of one partition key from one across them.
    pub fn pinned_value(&self, path: &[String], parameters: &Parameters) -> Option<Value> {
        match self.pinning_term(path)? {
            Expr::Literal(value) => Some(value.clone()),
            Expr::Parameter(name) => parameters.get(name).flatten().cloned(),
            _ => None,
        }
    }

    /// True when the query's one result is the number of documents it reads, so a caller
    /// that can count a scope's documents without reading them may answer `[n]`:
    /// `SELECT VALUE COUNT(x) FROM c` where `x` is defined for every document (a literal,
    /// `c` itself, or `c.id`, which every stored item has), with `FROM c` alone (no `JOIN`,
    /// no path or iteration), no `GROUP BY`, `DISTINCT`, `ORDER BY`, `TOP` or `OFFSET`, and
    /// either no `WHERE` or one whose top-level `AND` terms are exactly one
    /// `c.<path> = <literal or @parameter>` for each path of `pinned_paths` and nothing else.
    ///
    /// `pinned_paths` are the paths the caller has narrowed its scope by, to the values
    /// [`Query::pinned_value`] gives (a partition key's paths, when every document stored
    /// under that key's values has them): the terms then filter nothing out of that scope.
    /// Without a `WHERE`, `pinned_paths` must be empty.
    pub fn counts_documents_only(&self, pinned_paths: &[Vec<String>]) -> bool {
        let ast = &self.ast;
        let counts_every_document = match &ast.select {
            Selection::Value(Expr::Aggregate {
                function: AggregateFunction::Count,
                arg,
                ..
            }) => {
                matches!(arg.as_ref(), Expr::Literal(_))
                    || is_document_path(arg, &[])
                    || is_document_path(arg, &["id".to_owned()])
            }
            _ => false,
        };
        let reads_whole_documents = matches!(
            ast.sources.as_slice(),
            [Source {
                iterate: false,
                collection: Collection::Path { steps, .. },
                ..
            }] if steps.is_empty()
        );
        if !counts_every_document
            || !reads_whole_documents
            || ast.n_aggregates != 1
            || !ast.group_by.is_empty()
            || ast.distinct
            || !ast.order_by.is_empty()
            || ast.top.is_some()
            || ast.offset_limit.is_some()
        {
            return false;
        }
        let terms: &[Expr] = match &ast.filter {
            None => &[],
            Some(Expr::And(terms)) => terms,
            Some(filter) => std::slice::from_ref(filter),
        };
        // As many terms as paths, each path pinned by one of them: every term pins a path.
        terms.len() == pinned_paths.len()
            && pinned_paths.iter().all(|path| {
                terms
                    .iter()
                    .filter(|term| pinned_by(term, path).is_some())
                    .count()
                    == 1
            })
    }

    /// The literal or parameter of the top-level `WHERE` term `c.<path> = <fixed value>`.
    fn pinning_term(&self, path: &[String]) -> Option<&Expr> {
        let document_source = self.ast.sources.first().is_some_and(|source| {
            !source.iterate
                && matches!(&source.collection, Collection::Path { steps, .. } if steps.is_empty())
        });
        if !document_source || path.is_empty() {
            return None;
        }
        let terms: &[Expr] = match &self.ast.filter {
            None => return None,
            Some(Expr::And(terms)) => terms,
            Some(filter) => std::slice::from_ref(filter),
        };
        terms.iter().find_map(|term| pinned_by(term, path))
    }

    /// The parameter names (with `@`) the query uses, in order of first use.
    pub fn parameter_names(&self) -> &[String] {
        &self.names.parameters
    }

    /// The user-defined functions (`udf.name`, without `udf.`) the query calls, in order of
    /// first use: what [`execute_with_functions`] must be able to call.
    pub fn user_function_names(&self) -> &[String] {
        &self.names.user_functions
    }

    fn check_parameters(&self, parameters: &Parameters) -> Result<(), QueryError> {
        match self
            .names
            .parameters
            .iter()
            .find(|name| parameters.get(name).is_none())
        {
            Some(missing) => Err(QueryError::UnknownParameter(missing.clone())),
            None => Ok(()),
        }
    }
}

/// Query parameters: name (with the leading `@`) to value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parameters(HashMap<String, Option<Value>>);

impl Parameters {
    /// No parameters.
    pub fn new() -> Parameters {
        Parameters::default()
    }

    /// Reads the wire form `[{"name": "@x", "value": ...}, ...]`. A missing `value` binds the
    /// parameter to undefined (JavaScript clients drop `undefined` values from JSON).
    ///
    /// # Errors
    ///
    /// [`QueryError::InvalidParameters`] when the value is not an array of such objects, a
    /// name does not start with `@`, or a name repeats; past [`MAX_PARAMETERS`] entries too.
    pub fn from_json(array: &Value) -> Result<Parameters, QueryError> {
        let invalid = |message: String| QueryError::InvalidParameters(message);
        let items = array
            .as_array()
            .ok_or_else(|| invalid("the parameters must be a JSON array".to_owned()))?;
        if items.len() > MAX_PARAMETERS {
            return Err(invalid(format!(
                "{} parameters were given; the limit is {MAX_PARAMETERS}",
                items.len()
            )));
        }
        let mut parameters = Parameters::new();
        for (index, item) in items.iter().enumerate() {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid(format!("parameter {index} has no string 'name'")))?;
            if !name.starts_with('@') || name.len() < 2 {
                return Err(invalid(format!(
                    "parameter name '{name}' must start with '@'"
                )));
            }
            if parameters.0.contains_key(name) {
                return Err(invalid(format!(
                    "parameter '{name}' is given more than once"
                )));
            }
            parameters
                .0
                .insert(name.to_owned(), item.get("value").cloned());
        }
        Ok(parameters)
    }

    /// Binds `name` (with the leading `@`) to `value`, replacing an earlier binding.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.0.insert(name.into(), Some(value));
    }

    /// The binding of `name`: `None` when unbound, `Some(None)` when bound to undefined.
    pub fn get(&self, name: &str) -> Option<Option<&Value>> {
        self.0.get(name).map(Option::as_ref)
    }

    /// Number of bound parameters.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no parameter is bound.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Runs `query` over `documents` and returns the result rows in order.
///
/// Documents are read by reference; only result rows are allocated. Without `ORDER BY`,
/// aggregates or `DISTINCT`, reading stops as soon as `TOP`/`LIMIT` is satisfied. A query
/// without a `FROM` clause produces its rows once, whatever the documents.
///
/// # Errors
///
/// [`QueryError::UnknownParameter`] when a parameter the query uses is not bound (checked before
/// any document is read), [`QueryError::InvalidCount`] for a bad `TOP`/`OFFSET`/`LIMIT`
/// parameter, and the few evaluation errors: [`QueryError::SubqueryCardinality`],
/// [`QueryError::InvalidRegex`], [`QueryError::TooManyJoinRows`].
pub fn execute<'a>(
    query: &Query,
    parameters: &Parameters,
    documents: impl IntoIterator<Item = &'a Value>,
) -> Result<Vec<Value>, QueryError> {
    execute_at(query, parameters, documents, SystemTime::now())
}

/// [`execute`] with the time that `GetCurrentDateTime()` and its kin report.
///
/// # Errors
///
/// As for [`execute`].
pub fn execute_at<'a>(
    query: &Query,
    parameters: &Parameters,
    documents: impl IntoIterator<Item = &'a Value>,
    now: SystemTime,
) -> Result<Vec<Value>, QueryError> {
    run(query, parameters, documents, now, None)
}

/// The user-defined functions a query may call as `udf.name(...)`, supplied by the caller:
/// this crate evaluates the arguments and hands them over, and knows nothing of how the
/// functions run (the server runs a container's JavaScript functions).
pub trait UserFunctions {
    /// Calls function `name` with `arguments` (an undefined argument is passed as `null`);
    /// `Ok(None)` is an undefined result.
    ///
    /// # Errors
    ///
    /// Why the function failed, as text.
    fn call(&self, name: &str, arguments: &[Value]) -> Result<Option<Value>, String>;
}

/// [`execute_at`] for a query that may call user-defined functions, answered by `functions`.
///
/// # Errors
///
/// As for [`execute`]; [`QueryError::UserFunction`] when a function fails.
pub fn execute_with_functions<'a>(
    query: &Query,
    parameters: &Parameters,
    documents: impl IntoIterator<Item = &'a Value>,
    now: SystemTime,
    functions: &dyn UserFunctions,
) -> Result<Vec<Value>, QueryError> {
    run(query, parameters, documents, now, Some(functions))
}

fn run<'a>(
    query: &Query,
    parameters: &Parameters,
    documents: impl IntoIterator<Item = &'a Value>,
    now: SystemTime,
    functions: Option<&dyn UserFunctions>,
) -> Result<Vec<Value>, QueryError> {
    query.check_parameters(parameters)?;
    let cx = Context::new(parameters, unix_ticks(now)).with_user_functions(functions);
    let mut pipeline = Pipeline::new(&cx, &query.ast)?;
    if query.ast.sources.is_empty() {
        pipeline.push_frame(&cx, None)?;
    } else {
        for document in documents {
            cx.start_document();
            let frame = [Val::Ref(document)];
            let env = Env::new(&frame, None);
            if pipeline.push_frame(&cx, Some(&env))? == Flow::Stop {
                break;
            }
        }
    }
    pipeline.finish(&cx, None)
}

/// Evaluates the `FROM`/`WHERE` part of `query` against one document: true when some row of
/// the document (some combination of join values) satisfies the filter. Without a `WHERE`
/// clause every document with at least one row matches. The `SELECT` clause, grouping,
/// ordering and limits play no part.
///
/// # Errors
///
/// [`QueryError::UnknownParameter`] for an unbound parameter, and the evaluation errors listed
/// under [`execute`].
pub fn matches(
    query: &Query,
    parameters: &Parameters,
    document: &Value,
) -> Result<bool, QueryError> {
    matches_at(query, parameters, document, SystemTime::now())
}

/// [`matches()`] with the clock at `now` (`GetCurrentDateTime()` and the like).
///
/// # Errors
///
/// As [`matches()`].
pub fn matches_at(
    query: &Query,
    parameters: &Parameters,
    document: &Value,
    now: SystemTime,
) -> Result<bool, QueryError> {
    query.check_parameters(parameters)?;
    let cx = Context::new(parameters, unix_ticks(now));
    let ast = &query.ast;
    let frame = [Val::Ref(document)];
    let document_env = Env::new(&frame, None);
    let parent = (!ast.sources.is_empty()).then_some(&document_env);
    exec::any_row(&cx, ast, parent, &mut |cx, env| match &ast.filter {
        Some(filter) => Ok(eval(cx, filter, env)?.is_true()),
        None => Ok(true),
    })
}

/// Stack that must remain before recursing one more level of parsing or evaluation.
const STACK_RED_ZONE_BYTES: usize = 128 * 1024;
/// Size of each extra stack segment allocated when the red zone is reached.
const STACK_SEGMENT_BYTES: usize = 2 * 1024 * 1024;

/// Runs `f`, first moving to a fresh heap-allocated stack segment if less than
/// [`STACK_RED_ZONE_BYTES`] remain. Every recursive step of the parser, binder and evaluator
/// goes through here, so the deepest query [`MAX_NESTING_DEPTH`] allows cannot overflow the
/// caller's stack, however small (async worker threads have 2 MiB).
pub(crate) fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(STACK_RED_ZONE_BYTES, STACK_SEGMENT_BYTES, f)
}

/// 100-nanosecond ticks since the Unix epoch.
fn unix_ticks(now: SystemTime) -> i64 {
    let signed_nanos = match now.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).unwrap_or(i128::MAX),
        Err(before) => -i128::try_from(before.duration().as_nanos()).unwrap_or(i128::MAX),
    };
    i64::try_from(signed_nanos / 100).unwrap_or(if signed_nanos < 0 { i64::MIN } else { i64::MAX })
}

fn check_length(text: &str) -> Result<(), QueryError> {
    if text.len() > MAX_QUERY_TEXT_BYTES {
        return Err(QueryError::QueryTooLong {
            n_bytes: text.len(),
            limit: MAX_QUERY_TEXT_BYTES,
        });
    }
    Ok(())
}

/// Whether `expr` reads `path` from the top-level query's first source (slot 0, depth 0).
fn is_document_path(expr: &Expr, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return matches!(expr, Expr::Var { depth: 0, slot: 0 });
    };
    let parent = match expr {
        Expr::Property(parent, name) if name == last => parent,
        Expr::Index(parent, index) if matches!(index.as_ref(), Expr::Literal(Value::String(name)) if name == last) => {
            parent
        }
        _ => return false,
    };
    is_document_path(parent, parents)
}

/// The literal or parameter `term` fixes the document's `path` to, when it is
/// `c.<path> = <fixed value>` either way round.
fn pinned_by<'e>(term: &'e Expr, path: &[String]) -> Option<&'e Expr> {
    match term {
        Expr::Binary(BinaryOp::Eq, left, right) => {
            if is_document_path(left, path) && is_fixed_value(right) {
                Some(right.as_ref())
            } else if is_document_path(right, path) && is_fixed_value(left) {
                Some(left.as_ref())
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Whether `expr` is the same value for every document: a literal or a parameter.
fn is_fixed_value(expr: &Expr) -> bool {
    matches!(expr, Expr::Literal(_) | Expr::Parameter(_))
}
