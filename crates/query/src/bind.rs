//! Name resolution and the static rules of the language.
//!
//! Binding replaces every identifier by a `(depth, slot)` reference: `depth` counts query levels
//! outwards from the innermost (a subquery sees its own sources at depth 0 and its enclosing
//! query's at depth 1), `slot` is the source's position in that level's `FROM`/`JOIN` list.
//! The top-level query has one extra outer frame holding the document itself; only the first
//! `FROM` source's root (the container name, whatever it is) refers to it, which is why
//! `SELECT * FROM anything a` works and `SELECT anything.id FROM anything a` does not.
//!
//! It also numbers aggregate calls, collects parameter names, and rejects what Cosmos rejects:
//! aggregates outside `SELECT`, nested aggregates, `SELECT *` over several sources, properties
//! that are neither grouped nor aggregated, duplicate aliases, `GROUP BY` with `ORDER BY`.

use crate::ast::{Collection, Count, Expr, SelectQuery, Selection};
use crate::error::QueryError;
use crate::{MAX_JOINS, with_stack};

/// The names a query uses from outside itself.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Names {
    /// `@name` parameters, in order of first use.
    pub parameters: Vec<String>,
    /// `udf.name` functions, in order of first use.
    pub user_functions: Vec<String>,
}

/// Binds a top-level query in place; returns the parameter and user-defined function names
/// it uses.
pub(crate) fn bind(query: &mut SelectQuery) -> Result<Names, QueryError> {
    let mut binder = Binder {
        // The document frame: no names, reached only through the first source's root.
        scopes: vec![Vec::new()],
        names: Names {
            parameters: Vec::new(),
            user_functions: Vec::new(),
        },
    };
    binder.query(query, true)?;
    Ok(binder.names)
}

struct Binder {
    /// Alias names per query level, outermost first.
    scopes: Vec<Vec<String>>,
    names: Names,
}

/// Adds `name` to `names` unless it is there.
fn note(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|known| known == name) {
        names.push(name.to_owned());
    }
}

/// Where an expression stands, which decides whether aggregates may appear in it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Selection,
    InsideAggregate,
    Elsewhere(&'static str),
}

impl Binder {
    fn query(&mut self, query: &mut SelectQuery, top_level: bool) -> Result<(), QueryError> {
        if query.sources.len() > MAX_JOINS + 1 {
            return Err(QueryError::Invalid(format!(
                "The query has {} joins; at most {MAX_JOINS} are allowed.",
                query.sources.len() - 1
            )));
        }
        self.scopes.push(Vec::new());
        let result = with_stack(|| self.query_in_scope(query, top_level));
        self.scopes.pop();
        result
    }

    fn query_in_scope(
        &mut self,
        query: &mut SelectQuery,
        top_level: bool,
    ) -> Result<(), QueryError> {
        for count in [&query.top].into_iter().flatten().chain(
            query
                .offset_limit
                .iter()
                .flat_map(|ol| [&ol.offset, &ol.limit]),
        ) {
            if let Count::Parameter(name) = count {
                note(&mut self.names.parameters, name);
            }
        }
        for index in 0..query.sources.len() {
            let source = &mut query.sources[index];
            match &mut source.collection {
                Collection::Path { root, .. } => {
                    if top_level && index == 0 {
                        // The container name, whatever it is, stands for the document.
                        *root = Expr::Var { depth: 1, slot: 0 };
                    } else {
                        self.expr(root, Place::Elsewhere("FROM"), &mut 0)?;
                    }
                }
                Collection::Subquery(subquery) => self.query(subquery, false)?,
            }
            let alias = source.alias.clone();
            let scope = self.current_scope();
            if scope.contains(&alias) {
                return Err(QueryError::Invalid(format!(
                    "The alias '{alias}' is introduced more than once (at byte {}).",
                    source.position
                )));
            }
            scope.push(alias);
        }
        let mut n_aggregates = 0;
        if let Some(filter) = &mut query.filter {
            self.expr(filter, Place::Elsewhere("WHERE"), &mut n_aggregates)?;
        }
        for key in &mut query.group_by {
            self.expr(key, Place::Elsewhere("GROUP BY"), &mut n_aggregates)?;
        }
        for item in &mut query.order_by {
            self.expr(
                &mut item.expr,
                Place::Elsewhere("ORDER BY"),
                &mut n_aggregates,
            )?;
        }
        match &mut query.select {
            Selection::Star => {
                if query.sources.len() != 1 {
                    return Err(QueryError::Invalid(
                        "'SELECT *' is only valid with a single input set.".to_owned(),
                    ));
                }
            }
            Selection::Value(expr) => self.expr(expr, Place::Selection, &mut n_aggregates)?,
            Selection::List(items) => {
                for item in items {
                    self.expr(&mut item.expr, Place::Selection, &mut n_aggregates)?;
                }
            }
        }
        query.n_aggregates = n_aggregates;
        if query.is_aggregate() {
            if !query.order_by.is_empty() {
                if !query.group_by.is_empty() {
                    return Err(QueryError::Invalid(
                        "ORDER BY cannot be combined with GROUP BY.".to_owned(),
                    ));
                }
                // Aggregates without GROUP BY give one row: there is nothing to order, and
                // Cosmos DB answers such a query as if the ORDER BY were not there.
                query.order_by.clear();
            }
            let keys = &query.group_by;
            let grouped = match &query.select {
                Selection::Star => false,
                Selection::Value(expr) => only_grouped(expr, keys),
                Selection::List(items) => items.iter().all(|item| only_grouped(&item.expr, keys)),
            };
            if !grouped {
                return Err(QueryError::Invalid(
                    "The select list refers to a property that is neither in the GROUP BY clause \
                     nor inside an aggregate function."
                        .to_owned(),
                ));
            }
        }
        Ok(())
    }

    fn current_scope(&mut self) -> &mut Vec<String> {
        let last = self.scopes.len() - 1;
        &mut self.scopes[last]
    }

    fn resolve(&self, name: &str, position: usize) -> Result<Expr, QueryError> {
        for (depth, scope) in self.scopes.iter().rev().enumerate() {
            if let Some(slot) = scope.iter().position(|alias| alias == name) {
                return Ok(Expr::Var { depth, slot });
            }
        }
        Err(QueryError::UnresolvedIdentifier {
            name: name.to_owned(),
            position,
        })
    }

    fn expr(
        &mut self,
        expr: &mut Expr,
        place: Place,
        n_aggregates: &mut usize,
    ) -> Result<(), QueryError> {
        match expr {
            Expr::Ident { name, position } => {
                *expr = self.resolve(name, *position)?;
                return Ok(());
            }
            Expr::Parameter(name) => {
                note(&mut self.names.parameters, name);
                return Ok(());
            }
            Expr::UserFunctionCall { name, .. } => note(&mut self.names.user_functions, name),
            Expr::Aggregate {
                arg,
                slot,
                position,
                ..
            } => {
                match place {
                    Place::Selection => {}
                    Place::InsideAggregate => {
                        return Err(QueryError::Invalid(format!(
                            "Aggregate functions cannot be nested (at byte {position})."
                        )));
                    }
                    Place::Elsewhere(clause) => {
                        return Err(QueryError::Invalid(format!(
                            "Aggregate functions are not allowed in the {clause} clause (at byte {position})."
                        )));
                    }
                }
                *slot = *n_aggregates;
                *n_aggregates += 1;
                return self.expr(arg, Place::InsideAggregate, n_aggregates);
            }
            Expr::Exists(query) | Expr::ArraySubquery(query) | Expr::Subquery(query) => {
                return self.query(query, false);
            }
            _ => {}
        }
        with_stack(|| {
            for child in expr.children_mut() {
                self.expr(child, place, n_aggregates)?;
            }
            Ok(())
        })
    }
}

/// True when every reference to the current row in `expr` lies inside a group key or an
/// aggregate, so that the expression has one value per group.
fn only_grouped(expr: &Expr, keys: &[Expr]) -> bool {
    if keys.contains(expr) {
        return true;
    }
    match expr {
        Expr::Var { depth: 0, .. } => false,
        Expr::Aggregate { .. } | Expr::Exists(_) | Expr::ArraySubquery(_) | Expr::Subquery(_) => {
            true
        }
        _ => expr
            .children()
            .into_iter()
            .all(|child| only_grouped(child, keys)),
    }
}
