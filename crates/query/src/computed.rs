//! Computed properties: a container's named expressions over each item
//! (`{"name": "cp_lower", "query": "SELECT VALUE LOWER(c.name) FROM c"}`), which queries read as
//! if they were top-level properties of the item.
//!
//! A query is rewritten before it runs: every `c.cp_lower` on the item's root alias becomes the
//! computed expression, bound to that alias. So computed properties work in `WHERE`,
//! projections, `ORDER BY` and `GROUP BY`, always win over a persisted property of the same
//! name, and are not part of `SELECT *` (which returns the item as stored), as on Cosmos DB.

use crate::ast::{Collection, Expr, SelectQuery, Selection};
use crate::error::QueryError;
use crate::functions::Function;
use crate::{Query, with_stack};

/// Most computed properties a container may define (Cosmos DB's limit).
pub const MAX_COMPUTED_PROPERTIES: usize = 20;

/// System property names a computed property may not take.
const RESERVED_NAMES: [&str; 6] = ["id", "_rid", "_ts", "_etag", "_self", "_attachments"];

/// A container's computed properties, each checked against Cosmos DB's rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComputedProperties {
    /// Name and expression (bound: the item is `Var { depth: 0, slot: 0 }`).
    properties: Vec<(String, Expr)>,
}

impl ComputedProperties {
    /// Checks `(name, query)` definitions: at most [`MAX_COMPUTED_PROPERTIES`], unique names
    /// that are not system properties, and queries of the form `SELECT VALUE <expression>
    /// FROM <alias>` over the item alone: no `WHERE`, `GROUP BY`, `ORDER BY`, `TOP`,
    /// `DISTINCT`, `OFFSET`/`LIMIT`, `JOIN`, subqueries, aggregates, parameters,
    /// non-deterministic functions, nor other computed properties.
    ///
    /// # Errors
    /// [`QueryError::Invalid`] naming the property and the rule it breaks (or the query's own
    /// syntax error).
    pub fn new(definitions: &[(String, String)]) -> Result<ComputedProperties, QueryError> {
        if definitions.len() > MAX_COMPUTED_PROPERTIES {
            return Err(QueryError::Invalid(format!(
                "{} computed properties are defined; at most {MAX_COMPUTED_PROPERTIES} are allowed",
                definitions.len()
            )));
        }
        let mut properties: Vec<(String, Expr)> = Vec::with_capacity(definitions.len());
        for (name, text) in definitions {
            let invalid =
                |rule: &str| QueryError::Invalid(format!("computed property '{name}': {rule}"));
            if name.is_empty() {
                return Err(QueryError::Invalid(
                    "a computed property needs a non-empty name".to_owned(),
                ));
            }
            if RESERVED_NAMES.contains(&name.as_str()) {
                return Err(invalid("the name of a system property cannot be used"));
            }
            if properties.iter().any(|(other, _)| other == name) {
                return Err(invalid("the name is used by another computed property"));
            }
            let query = Query::parse(text)
                .map_err(|error| invalid(&format!("its query is not valid: {error}")))?;
            let expr = item_expression(&query.ast).map_err(invalid)?;
            properties.push((name.clone(), expr));
        }
        for (name, expr) in &properties {
            if let Some(other) = properties
                .iter()
                .map(|(other, _)| other)
                .find(|other| reads_item_property(expr, other))
            {
                return Err(QueryError::Invalid(format!(
                    "computed property '{name}': its query reads the computed property '{other}'; \
                     a computed property cannot use another"
                )));
            }
        }
        Ok(ComputedProperties { properties })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
    }

    fn expression(&self, name: &str) -> Option<&Expr> {
        self.properties
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, expr)| expr)
    }
}

/// The expression of a computed property's query, or the rule it breaks.
fn item_expression(query: &SelectQuery) -> Result<Expr, &'static str> {
    let Selection::Value(expr) = &query.select else {
        return Err("its query must project with SELECT VALUE");
    };
    match query.sources.as_slice() {
        [source] if !source.iterate && is_item_root(&source.collection) => {}
        [] => return Err("its query needs a FROM clause naming the item (FROM c)"),
        [_] => return Err("its query's FROM clause must name the item itself (FROM c)"),
        _ => return Err("its query cannot use JOIN"),
    }
    if query.filter.is_some() {
        return Err("its query cannot use WHERE");
    }
    if !query.group_by.is_empty() {
        return Err("its query cannot use GROUP BY");
    }
    if !query.order_by.is_empty() {
        return Err("its query cannot use ORDER BY");
    }
    if query.top.is_some() {
        return Err("its query cannot use TOP");
    }
    if query.distinct {
        return Err("its query cannot use DISTINCT");
    }
    if query.offset_limit.is_some() {
        return Err("its query cannot use OFFSET LIMIT");
    }
    if query.n_aggregates > 0 {
        return Err("its query cannot use aggregate functions");
    }
    check_scalar(expr)?;
    Ok(expr.clone())
}

/// Whether a bound top-level `FROM` collection is the item itself (no path steps).
fn is_item_root(collection: &Collection) -> bool {
    matches!(collection, Collection::Path { steps, .. } if steps.is_empty())
}

/// Refuses what a computed expression may not contain.
fn check_scalar(expr: &Expr) -> Result<(), &'static str> {
    match expr {
        Expr::Exists(_) | Expr::ArraySubquery(_) | Expr::Subquery(_) => {
            return Err("its query cannot use subqueries (EXISTS, ARRAY or a scalar subquery)");
        }
        Expr::Parameter(_) => return Err("its query cannot use parameters"),
        Expr::UserFunctionCall { .. } => {
            return Err("its query cannot call user-defined functions");
        }
        Expr::Call {
            function:
                Function::Rand
                | Function::GetCurrentDateTime
                | Function::GetCurrentTimestamp
                | Function::GetCurrentTicks,
            ..
        } => {
            return Err(
                "its query cannot use non-deterministic functions (RAND, GetCurrentDateTime, \
                 GetCurrentTimestamp, GetCurrentTicks)",
            );
        }
        _ => {}
    }
    with_stack(|| expr.children().into_iter().try_for_each(check_scalar))
}

/// Whether `expr` reads top-level property `name` of the item (`c.name` or `c["name"]`).
fn reads_item_property(expr: &Expr, name: &str) -> bool {
    let reads_here = match expr {
        Expr::Property(inner, property) => is_item(inner, 0) && property == name,
        Expr::Index(inner, index) => {
            is_item(inner, 0)
                && matches!(index.as_ref(), Expr::Literal(serde_json::Value::String(s)) if s == name)
        }
        _ => false,
    };
    reads_here
        || expr
            .children()
            .into_iter()
            .any(|child| reads_item_property(child, name))
}

/// Whether `expr` is the item's alias seen from `depth` query levels inside the top one.
fn is_item(expr: &Expr, depth: usize) -> bool {
    matches!(expr, Expr::Var { depth: d, slot: 0 } if *d == depth)
}

impl Query {
    /// This query with every read of a computed property on the item (`c.cp`, `c["cp"]`)
    /// replaced by its expression. A query whose `FROM` is not the item itself (`FROM c IN
    /// c.tags`) has no item alias to read them from, and is returned as it is.
    #[must_use]
    pub fn with_computed_properties(&self, computed: &ComputedProperties) -> Query {
        let mut query = self.clone();
        let item_is_first_source = matches!(
            query.ast.sources.first(),
            Some(source) if !source.iterate && is_item_root(&source.collection)
        );
        if !computed.is_empty() && item_is_first_source {
            rewrite_query(&mut query.ast, computed, 0);
        }
        query
    }
}

/// Rewrites the reads of computed properties in `query`, which is `depth` levels inside the
/// top-level query (whose first source, slot 0, is the item).
fn rewrite_query(query: &mut SelectQuery, computed: &ComputedProperties, depth: usize) {
    for source in &mut query.sources {
        match &mut source.collection {
            Collection::Path { root, .. } => rewrite(root, computed, depth),
            Collection::Subquery(subquery) => rewrite_query(subquery, computed, depth + 1),
        }
    }
    match &mut query.select {
        Selection::Star => {}
        Selection::Value(expr) => rewrite(expr, computed, depth),
        Selection::List(items) => {
            for item in items {
                rewrite(&mut item.expr, computed, depth);
            }
        }
    }
    for expr in query
        .filter
        .iter_mut()
        .chain(query.group_by.iter_mut())
        .chain(query.order_by.iter_mut().map(|item| &mut item.expr))
    {
        rewrite(expr, computed, depth);
    }
}

/// Rewrites one expression at `depth` (see [`rewrite_query`]).
fn rewrite(expr: &mut Expr, computed: &ComputedProperties, depth: usize) {
    let replacement = match expr {
        Expr::Property(inner, name) if is_item(inner, depth) => computed.expression(name),
        Expr::Index(inner, index) if is_item(inner, depth) => match index.as_ref() {
            Expr::Literal(serde_json::Value::String(name)) => computed.expression(name),
            _ => None,
        },
        _ => None,
    };
    if let Some(replacement) = replacement {
        let mut replacement = replacement.clone();
        shift_item(&mut replacement, depth);
        *expr = replacement;
        return;
    }
    with_stack(|| match expr {
        Expr::Exists(subquery) | Expr::ArraySubquery(subquery) | Expr::Subquery(subquery) => {
            rewrite_query(subquery, computed, depth + 1);
        }
        _ => {
            for child in expr.children_mut() {
                rewrite(child, computed, depth);
            }
        }
    });
}

/// Points a computed expression's item alias (depth 0) at the item seen from `depth`.
fn shift_item(expr: &mut Expr, depth: usize) {
    if let Expr::Var { depth: d, .. } = expr {
        *d += depth;
        return;
    }
    for child in expr.children_mut() {
        shift_item(child, depth);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::{Parameters, execute};

    fn computed(definitions: &[(&str, &str)]) -> Result<ComputedProperties, QueryError> {
        let owned: Vec<(String, String)> = definitions
            .iter()
            .map(|(name, query)| ((*name).to_owned(), (*query).to_owned()))
            .collect();
        ComputedProperties::new(&owned)
    }

    fn run(query: &str, computed: &ComputedProperties, items: &[Value]) -> Vec<Value> {
        let query = Query::parse(query)
            .expect("the query parses")
            .with_computed_properties(computed);
        execute(&query, &Parameters::new(), items).expect("the query runs")
    }

    fn items() -> Vec<Value> {
        vec![
            json!({"id": "a", "group": "GrOuP1", "val": 5, "tags": ["x", "y"]}),
            json!({"id": "b", "group": "group2", "val": 3, "tags": ["y"]}),
            json!({"id": "c", "group": "GROUP1", "val": 0, "cp_lower": "persisted"}),
        ]
    }

    #[test]
    fn computed_properties_are_read_everywhere_but_select_star() {
        let cps = computed(&[
            ("cp_lower", "SELECT VALUE LOWER(c.group) FROM c"),
            ("cp_power", "SELECT VALUE POWER(root.val, 2) FROM root"),
        ])
        .expect("valid");
        let ids = run(
            "SELECT VALUE c.id FROM c WHERE c.cp_lower = 'group1'",
            &cps,
            &items(),
        );
        assert_eq!(ids, [json!("a"), json!("c")], "computed beats persisted");
        let projected = run(
            "SELECT c.id, c.cp_power FROM c ORDER BY c.cp_power DESC",
            &cps,
            &items(),
        );
        assert_eq!(
            projected,
            [
                json!({"id": "a", "cp_power": 25}),
                json!({"id": "b", "cp_power": 9}),
                json!({"id": "c", "cp_power": 0})
            ]
        );
        let star = run("SELECT * FROM c WHERE c['cp_power'] = 9", &cps, &items());
        assert_eq!(
            star,
            [items()[1].clone()],
            "SELECT * returns the item as stored"
        );
        let grouped = run(
            "SELECT c.cp_lower AS g, COUNT(1) AS n FROM c GROUP BY c.cp_lower",
            &cps,
            &items(),
        );
        assert_eq!(grouped.len(), 2);
    }

    #[test]
    fn computed_properties_are_read_from_joins_and_subqueries() {
        let cps = computed(&[("cp_lower", "SELECT VALUE LOWER(c.group) FROM c")]).expect("valid");
        let joined = run(
            "SELECT VALUE t FROM c JOIN t IN c.tags WHERE c.cp_lower = 'group2'",
            &cps,
            &items(),
        );
        assert_eq!(joined, [json!("y")]);
        let sub = run(
            "SELECT VALUE c.id FROM c WHERE EXISTS(SELECT VALUE t FROM t IN c.tags \
             WHERE c.cp_lower = 'group1' AND t = 'x')",
            &cps,
            &items(),
        );
        assert_eq!(sub, [json!("a")]);
        let unknown = run(
            "SELECT VALUE c.id FROM c WHERE c.cp_upper = 'X'",
            &cps,
            &items(),
        );
        assert!(unknown.is_empty());
    }

    #[test]
    fn definitions_breaking_the_rules_are_refused_naming_the_rule() {
        let cases = [
            ("id", "SELECT VALUE c.x FROM c", "system property"),
            ("cp", "SELECT c.x FROM c", "SELECT VALUE"),
            ("cp", "SELECT VALUE c.x FROM c WHERE c.y = 1", "WHERE"),
            ("cp", "SELECT VALUE t FROM c JOIN t IN c.tags", "JOIN"),
            ("cp", "SELECT VALUE c.x FROM c ORDER BY c.x", "ORDER BY"),
            ("cp", "SELECT TOP 1 VALUE c.x FROM c", "TOP"),
            ("cp", "SELECT DISTINCT VALUE c.x FROM c", "DISTINCT"),
            ("cp", "SELECT VALUE COUNT(1) FROM c", "aggregate"),
            ("cp", "SELECT VALUE c.x FROM c OFFSET 1 LIMIT 1", "OFFSET"),
            (
                "cp",
                "SELECT VALUE EXISTS(SELECT VALUE 1) FROM c",
                "subqueries",
            ),
            ("cp", "SELECT VALUE @p FROM c", "parameters"),
            (
                "cp",
                "SELECT VALUE GetCurrentTicks() FROM c",
                "non-deterministic",
            ),
            ("cp", "SELECT VALUE t FROM t IN c.tags", "name the item"),
            ("cp", "SELECT VALUE 1", "FROM"),
            ("cp", "SELECT VALUE FROM c", "not valid"),
        ];
        for (name, query, expected) in cases {
            let error = computed(&[(name, query)]).expect_err(query);
            assert!(
                error.to_string().contains(expected),
                "{query}: {error} should name {expected}"
            );
        }
        let twice = computed(&[
            ("cp", "SELECT VALUE c.a FROM c"),
            ("cp", "SELECT VALUE c.b FROM c"),
        ])
        .expect_err("duplicate");
        assert!(
            twice.to_string().contains("another computed property"),
            "{twice}"
        );
        let chained = computed(&[
            ("cp_a", "SELECT VALUE c.a FROM c"),
            ("cp_b", "SELECT VALUE c.cp_a FROM c"),
        ])
        .expect_err("chained");
        assert!(
            chained.to_string().contains("cannot use another"),
            "{chained}"
        );
        let many: Vec<(String, String)> = (0..=MAX_COMPUTED_PROPERTIES)
            .map(|n| (format!("cp{n}"), "SELECT VALUE c.a FROM c".to_owned()))
            .collect();
        assert!(ComputedProperties::new(&many).is_err());
    }
}
