//! Query plans, as the Cosmos DB gateway hands them to the SDKs.
//!
//! An SDK that runs a query across partitions itself asks for the query's plan: what to do
//! with the partial results of every partition (merge by `ORDER BY` keys, combine aggregates,
//! drop duplicates, skip and take) and a *rewritten query* to send to each partition, whose
//! results carry what that merge needs:
//!
//! * `ORDER BY`: `SELECT c._rid, [{"item": key}, ...] AS orderByItems, <the selection> AS
//!   payload ... WHERE (<filter>) AND ({documentdb-formattableorderbyquery-filter}) ORDER BY
//!   ...`; the SDK replaces the placeholder (with `true`, or a resume condition);
//! * `SELECT VALUE <aggregate>`: `SELECT VALUE [{"item": ...}]`, with `{"sum", "count"}` for
//!   `AVG` and `"item2": {"min" or "max", "count"}` beside `MIN` and `MAX` (Python reads
//!   `item`, Node `item2`);
//! * `OFFSET o LIMIT l`: `OFFSET 0 LIMIT o+l`, the SDK skipping `o` of the merged results.
//!
//! The formats are the ones the SDKs' merge code reads (`azure-cosmos`'s
//! `_execution_context/`, `@azure/cosmos`'s `queryExecutionContext/`).

use serde_json::Value;

use crate::ast::{Count, Expr, OffsetLimit, SelectItem, SelectQuery, Selection};
use crate::functions::AggregateFunction;
use crate::{Parameters, Query, QueryError, print};

/// The placeholder an `ORDER BY` rewritten query holds where the SDK puts its resume filter.
pub const ORDER_BY_FILTER_PLACEHOLDER: &str = "{documentdb-formattableorderbyquery-filter}";

/// How duplicates are dropped from the merged results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistinctKind {
    /// No `DISTINCT`.
    None,
    /// `DISTINCT` with `ORDER BY`: equal results arrive next to each other.
    Ordered,
    /// `DISTINCT` without `ORDER BY`: the SDK remembers every result.
    Unordered,
}

impl DistinctKind {
    /// The plan's name for it (`distinctType`).
    pub fn as_str(self) -> &'static str {
        match self {
            DistinctKind::None => "None",
            DistinctKind::Ordered => "Ordered",
            DistinctKind::Unordered => "Unordered",
        }
    }
}

/// What an SDK needs to run one query across partitions itself.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPlan {
    /// How duplicates are dropped.
    pub distinct: DistinctKind,
    /// `TOP n`, with a parameter resolved.
    pub top: Option<u64>,
    /// `OFFSET n`, with a parameter resolved.
    pub offset: Option<u64>,
    /// `LIMIT n`, with a parameter resolved.
    pub limit: Option<u64>,
    /// One entry per `ORDER BY` key: true for descending.
    pub order_by_descending: Vec<bool>,
    /// The `ORDER BY` keys as query text.
    pub order_by_expressions: Vec<String>,
    /// The aggregates of the selection, as the plan names them (`Count`, `Sum`, `Min`, `Max`,
    /// `Average`).
    pub aggregates: Vec<&'static str>,
    /// `SELECT VALUE`.
    pub has_select_value: bool,
    /// The `GROUP BY` keys as query text.
    pub group_by_expressions: Vec<String>,
    /// The query each partition is sent.
    pub rewritten_query: String,
    /// How the partitions' answers to [`QueryPlan::rewritten_query`] become the query's
    /// results.
    pub merge: Merge,
}

/// How the partitions' answers to a plan's rewritten query become the query's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// They are concatenated: the query needs nothing of the others' answers.
    Concatenate,
    /// An SDK merges them as the plan says: `ORDER BY`, `DISTINCT`, `TOP`,
    /// `OFFSET`/`LIMIT`, or `SELECT VALUE` of one aggregate. A query whose selection has
    /// aggregates but no `VALUE` is planned this way too: the SDKs refuse it, as they do on
    /// Cosmos DB.
    Client,
    /// Only a server running the whole query answers it: `GROUP BY`, or a `SELECT VALUE`
    /// with aggregates that is not one aggregate alone; this plan does not rewrite them for a
    /// client-side merge.
    ServerOnly,
}

impl QueryPlan {
    /// Plans a query.
    ///
    /// # Errors
    ///
    /// As [`Query::parse`] for the text; [`QueryError::Invalid`] when a `TOP`, `OFFSET` or
    /// `LIMIT` parameter is not bound to a non-negative integer.
    pub fn new(text: &str, parameters: &Parameters) -> Result<QueryPlan, QueryError> {
        // Binding checks names and rules; the plan is built from the unbound tree, whose
        // identifiers still have their names to be printed.
        let mut ast = Query::parse_unbound(text)?;
        Query::bind(ast.clone())?;
        let top = resolve(ast.top.as_ref(), "TOP", parameters)?;
        let offset_limit = match &ast.offset_limit {
            Some(OffsetLimit { offset, limit }) => Some((
                resolve(Some(offset), "OFFSET", parameters)?.unwrap_or(0),
                resolve(Some(limit), "LIMIT", parameters)?.unwrap_or(0),
            )),
            None => None,
        };
        let aggregates = selection_aggregates(&ast.select);
        let group_by_expressions: Vec<String> = ast.group_by.iter().map(print::expr).collect();
        // Aggregates without GROUP BY give one row, which no ORDER BY orders (the binder
        // drops it too).
        if !aggregates.is_empty() && ast.group_by.is_empty() {
            ast.order_by.clear();
        }
        let order_by_descending = ast.order_by.iter().map(|item| item.descending).collect();
        let order_by_expressions = ast
            .order_by
            .iter()
            .map(|item| print::expr(&item.expr))
            .collect();
        let distinct = match (ast.distinct, ast.order_by.is_empty()) {
            (false, _) => DistinctKind::None,
            (true, false) => DistinctKind::Ordered,
            (true, true) => DistinctKind::Unordered,
        };
        let has_select_value = matches!(ast.select, Selection::Value(_));
        // Each partition returns up to OFFSET + LIMIT results; the SDK skips and takes. Not
        // with DISTINCT and ORDER BY: a partition's first n rows may repeat one payload under
        // several sort keys, so only the merged, deduplicated stream can be cut.
        if distinct == DistinctKind::Ordered {
            ast.top = None;
            ast.offset_limit = None;
        } else {
            ast.top = top.map(Count::Literal);
            ast.offset_limit = offset_limit.map(|(offset, limit)| OffsetLimit {
                offset: Count::Literal(0),
                limit: Count::Literal(offset.saturating_add(limit)),
            });
        }
        let merge = rewrite(&mut ast, &aggregates, offset_limit.is_some());
        Ok(QueryPlan {
            distinct,
            top,
            offset: offset_limit.map(|(offset, _)| offset),
            limit: offset_limit.map(|(_, limit)| limit),
            order_by_descending,
            order_by_expressions,
            aggregates: aggregates.iter().map(|&f| plan_name(f)).collect(),
            has_select_value,
            group_by_expressions,
            rewritten_query: print::query(&ast),
            merge,
        })
    }

    /// The plan's `queryInfo` as the gateway writes it.
    pub fn query_info(&self) -> Value {
        serde_json::json!({
            "distinctType": self.distinct.as_str(),
            "top": self.top,
            "offset": self.offset,
            "limit": self.limit,
            "orderBy": self
                .order_by_descending
                .iter()
                .map(|&descending| if descending { "Descending" } else { "Ascending" })
                .collect::<Vec<_>>(),
            "orderByExpressions": self.order_by_expressions,
            "groupByExpressions": self.group_by_expressions,
            "groupByAliases": [],
            "aggregates": self.aggregates,
            "groupByAliasToAggregateType": {},
            "rewrittenQuery": self.rewritten_query,
            "hasSelectValue": self.has_select_value,
            "dCountInfo": null,
            "hasNonStreamingOrderBy": false,
        })
    }
}

/// Rewrites `ast` into the query each partition is sent, and says how their answers merge.
fn rewrite(ast: &mut SelectQuery, aggregates: &[AggregateFunction], offset_limit: bool) -> Merge {
    if !ast.group_by.is_empty() {
        return Merge::ServerOnly;
    }
    if !aggregates.is_empty() {
        let Selection::Value(value) = &ast.select else {
            return Merge::Client;
        };
        let Expr::Aggregate { function, arg, .. } = value else {
            return Merge::ServerOnly;
        };
        if ast.distinct || offset_limit {
            return Merge::ServerOnly;
        }
        let partial = partial_aggregate(*function, arg);
        ast.select = Selection::Value(Expr::Array(vec![partial]));
        return Merge::Client;
    }
    if ast.order_by.is_empty() {
        return if ast.distinct || ast.top.is_some() || offset_limit {
            Merge::Client
        } else {
            Merge::Concatenate
        };
    }
    let source = ast.sources[0].alias.clone();
    let payload = match std::mem::replace(&mut ast.select, Selection::Star) {
        Selection::Star => ident(&source),
        Selection::Value(value) => value,
        Selection::List(items) => Expr::Object(
            items
                .into_iter()
                .map(|item| (item.name, item.expr))
                .collect(),
        ),
    };
    let order_by_items = Expr::Array(
        ast.order_by
            .iter()
            .map(|item| item_object(vec![("item", item.expr.clone())]))
            .collect(),
    );
    let mut items = Vec::new();
    // A result's resource id tells equal sort keys apart when an SDK resumes; with DISTINCT
    // it would make every result distinct.
    if !ast.distinct {
        items.push(SelectItem {
            name: "_rid".to_owned(),
            expr: Expr::Property(Box::new(ident(&source)), "_rid".to_owned()),
        });
    }
    items.push(SelectItem {
        name: "orderByItems".to_owned(),
        expr: order_by_items,
    });
    items.push(SelectItem {
        name: "payload".to_owned(),
        expr: payload,
    });
    ast.select = Selection::List(items);
    // The placeholder is printed as is; it is not an identifier, and the SDK replaces it
    // before the query comes back.
    let placeholder = ident(ORDER_BY_FILTER_PLACEHOLDER);
    ast.filter = Some(match ast.filter.take() {
        Some(filter) => Expr::And(vec![filter, placeholder]),
        None => placeholder,
    });
    Merge::Client
}

/// What one partition returns for an aggregate, in the form the SDKs combine.
fn partial_aggregate(function: AggregateFunction, arg: &Expr) -> Expr {
    let call = |function| Expr::Aggregate {
        function,
        arg: Box::new(arg.clone()),
        slot: 0,
        position: 0,
    };
    match function {
        AggregateFunction::Count | AggregateFunction::Sum => {
            item_object(vec![("item", call(function))])
        }
        AggregateFunction::Avg => item_object(vec![(
            "item",
            item_object(vec![
                ("sum", call(AggregateFunction::Sum)),
                ("count", call(AggregateFunction::Count)),
            ]),
        )]),
        AggregateFunction::Min | AggregateFunction::Max => {
            let name = if function == AggregateFunction::Min {
                "min"
            } else {
                "max"
            };
            item_object(vec![
                ("item", call(function)),
                (
                    "item2",
                    item_object(vec![
                        (name, call(function)),
                        ("count", call(AggregateFunction::Count)),
                    ]),
                ),
            ])
        }
    }
}

fn item_object(properties: Vec<(&str, Expr)>) -> Expr {
    Expr::Object(
        properties
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    )
}

fn ident(name: &str) -> Expr {
    Expr::Ident {
        name: name.to_owned(),
        position: 0,
    }
}

/// The aggregate calls of a selection, in order (not those inside subqueries).
fn selection_aggregates(selection: &Selection) -> Vec<AggregateFunction> {
    fn walk(expr: &Expr, found: &mut Vec<AggregateFunction>) {
        if let Expr::Aggregate { function, .. } = expr {
            found.push(*function);
        }
        for child in expr.children() {
            walk(child, found);
        }
    }
    let mut found = Vec::new();
    match selection {
        Selection::Star => {}
        Selection::Value(value) => walk(value, &mut found),
        Selection::List(items) => {
            for item in items {
                walk(&item.expr, &mut found);
            }
        }
    }
    found
}

/// The plan's name of an aggregate.
fn plan_name(function: AggregateFunction) -> &'static str {
    match function {
        AggregateFunction::Count => "Count",
        AggregateFunction::Sum => "Sum",
        AggregateFunction::Min => "Min",
        AggregateFunction::Max => "Max",
        AggregateFunction::Avg => "Average",
    }
}

/// A `TOP`, `OFFSET` or `LIMIT` count, its parameter looked up.
pub(crate) fn resolve(
    count: Option<&Count>,
    clause: &str,
    parameters: &Parameters,
) -> Result<Option<u64>, QueryError> {
    match count {
        None => Ok(None),
        Some(Count::Literal(n)) => Ok(Some(*n)),
        Some(Count::Parameter(name)) => match parameters.get(name) {
            Some(Some(value)) if value.as_u64().is_some() => Ok(value.as_u64()),
            Some(Some(value)) => Err(QueryError::Invalid(format!(
                "The {clause} count {name} must be a non-negative integer, not {value}."
            ))),
            Some(None) | None => Err(QueryError::Invalid(format!(
                "The {clause} count {name} is not given a value."
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> QueryPlan {
        QueryPlan::new(text, &Parameters::new()).expect("the query plans")
    }

    /// The rewritten query with the SDK's placeholder replaced as the SDKs do on a first page.
    fn sent(plan: &QueryPlan) -> Query {
        let text = plan
            .rewritten_query
            .replace(ORDER_BY_FILTER_PLACEHOLDER, "true");
        Query::parse(&text).unwrap_or_else(|error| panic!("{text:?} does not parse: {error}"))
    }

    fn run(query: &Query, documents: &[Value]) -> Vec<Value> {
        crate::execute(query, &Parameters::new(), documents.iter()).expect("the query runs")
    }

    #[test]
    fn order_by_sends_sort_keys_and_payload() {
        let plan = plan("SELECT c.id, c.n FROM c WHERE c.n > 1 ORDER BY c.n DESC, c.id");
        assert_eq!(plan.order_by_descending, [true, false]);
        assert_eq!(plan.order_by_expressions, ["c.n", "c.id"]);
        assert_eq!(plan.merge, Merge::Client);
        assert!(plan.rewritten_query.contains(ORDER_BY_FILTER_PLACEHOLDER));
        let documents = [
            serde_json::json!({"id": "a", "n": 2, "_rid": "r1"}),
            serde_json::json!({"id": "b", "n": 1, "_rid": "r2"}),
            serde_json::json!({"id": "c", "n": 3, "_rid": "r3"}),
        ];
        assert_eq!(
            run(&sent(&plan), &documents),
            [
                serde_json::json!({"_rid": "r3", "orderByItems": [{"item": 3}, {"item": "c"}], "payload": {"id": "c", "n": 3}}),
                serde_json::json!({"_rid": "r1", "orderByItems": [{"item": 2}, {"item": "a"}], "payload": {"id": "a", "n": 2}}),
            ]
        );
    }

    #[test]
    fn distinct_order_by_leaves_out_the_resource_id() {
        let plan = plan("SELECT DISTINCT VALUE c.f FROM c ORDER BY c.f");
        assert_eq!(plan.distinct, DistinctKind::Ordered);
        let documents = [
            serde_json::json!({"f": "x", "_rid": "1"}),
            serde_json::json!({"f": "x", "_rid": "2"}),
        ];
        assert_eq!(
            run(&sent(&plan), &documents),
            [serde_json::json!({"orderByItems": [{"item": "x"}], "payload": "x"})]
        );
    }

    #[test]
    fn ordered_distinct_sends_every_row_and_leaves_the_cut_to_the_merge() {
        let ordered = plan("SELECT DISTINCT c.v FROM c ORDER BY c.pk OFFSET 2 LIMIT 2");
        assert_eq!((ordered.offset, ordered.limit), (Some(2), Some(2)));
        assert!(
            !ordered.rewritten_query.contains("LIMIT"),
            "{}",
            ordered.rewritten_query
        );
        let unordered = plan("SELECT DISTINCT TOP 2 VALUE c.v FROM c");
        assert!(
            unordered.rewritten_query.contains("TOP 2"),
            "{}",
            unordered.rewritten_query
        );
    }

    #[test]
    fn aggregates_send_partials_the_sdks_combine() {
        let documents = [
            serde_json::json!({"n": 1}),
            serde_json::json!({"n": 4}),
            serde_json::json!({"m": 0}),
        ];
        for (text, name, partial) in [
            (
                "SELECT VALUE COUNT(c.n) FROM c",
                "Count",
                serde_json::json!([{"item": 2}]),
            ),
            (
                "SELECT VALUE SUM(c.n) FROM c",
                "Sum",
                serde_json::json!([{"item": 5}]),
            ),
            (
                "SELECT VALUE AVG(c.n) FROM c ORDER BY c.n",
                "Average",
                serde_json::json!([{"item": {"sum": 5, "count": 2}}]),
            ),
            (
                "SELECT VALUE MIN(c.n) FROM c",
                "Min",
                serde_json::json!([{"item": 1, "item2": {"min": 1, "count": 2}}]),
            ),
            (
                "SELECT VALUE MAX(c.n) FROM c",
                "Max",
                serde_json::json!([{"item": 4, "item2": {"max": 4, "count": 2}}]),
            ),
        ] {
            let plan = plan(text);
            assert_eq!(plan.aggregates, [name], "{text}");
            assert!(plan.order_by_descending.is_empty(), "{text}");
            assert!(plan.has_select_value, "{text}");
            assert_eq!(plan.merge, Merge::Client, "{text}");
            assert_eq!(run(&sent(&plan), &documents), [partial], "{text}");
        }
    }

    #[test]
    fn offset_limit_becomes_a_limit_of_both() {
        let mut parameters = Parameters::new();
        parameters.insert("@skip", Value::from(5));
        let plan = QueryPlan::new(
            "SELECT * FROM c ORDER BY c._ts OFFSET @skip LIMIT 10",
            &parameters,
        )
        .expect("the query plans");
        assert_eq!((plan.offset, plan.limit), (Some(5), Some(10)));
        assert!(
            plan.rewritten_query.ends_with("OFFSET 0 LIMIT 15"),
            "{}",
            plan.rewritten_query
        );
        let error = QueryPlan::new("SELECT TOP @n * FROM c", &parameters).unwrap_err();
        assert!(error.to_string().contains("@n"), "{error}");
    }

    #[test]
    fn each_shape_merges_where_its_answers_can() {
        for (text, merge) in [
            ("SELECT * FROM c WHERE c.a = 1", Merge::Concatenate),
            ("SELECT TOP 3 * FROM c", Merge::Client),
            ("SELECT DISTINCT VALUE c.f FROM c", Merge::Client),
            ("SELECT * FROM c OFFSET 1 LIMIT 2", Merge::Client),
            ("SELECT COUNT(1) FROM c", Merge::Client),
            (
                "SELECT c.team, COUNT(1) AS n FROM c GROUP BY c.team",
                Merge::ServerOnly,
            ),
            ("SELECT VALUE COUNT(1) + 1 FROM c", Merge::ServerOnly),
            (
                "SELECT VALUE {\"n\": COUNT(1), \"s\": SUM(c.x)} FROM c",
                Merge::ServerOnly,
            ),
        ] {
            assert_eq!(plan(text).merge, merge, "{text}");
        }
    }

    #[test]
    fn the_plan_reads_as_the_gateway_writes_it() {
        let info = plan("Select top 10 value count(c.id) from c").query_info();
        assert_eq!(info["top"], 10);
        assert_eq!(info["aggregates"], serde_json::json!(["Count"]));
        assert_eq!(info["distinctType"], "None");
        assert_eq!(info["hasSelectValue"], true);
        assert!(info["offset"].is_null());
        assert_eq!(info["orderBy"], serde_json::json!([]));
    }
}
