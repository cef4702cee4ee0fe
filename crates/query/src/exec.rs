//! Runs one query level: sources and joins, filter, grouping, ordering, projection, `DISTINCT`,
//! `TOP`, `OFFSET`/`LIMIT`.
//!
//! A [`Pipeline`] receives *frames*: for the top-level query each document is one frame; a
//! subquery receives the single frame of the row it is evaluated for. Each frame expands into
//! rows (one value per source, the cartesian product of the joins), which pass the filter and
//! then either stream straight to the output, wait to be sorted, or fold into groups.
//! Rows hold borrowed document values, so nothing is copied until a result is projected.
//!
//! Stage order, as in Cosmos: filter, group/aggregate, sort, project, `DISTINCT`, `TOP`,
//! `OFFSET`/`LIMIT`.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::ast::{Collection, Count, Expr, PathStep, SelectQuery, Selection, Source};
use crate::error::QueryError;
use crate::eval::{Context, Env, eval};
use crate::functions::{Accumulator, AggregateFunction};
use crate::value::{Val, ValueKey, sort_order};

/// Whether a producer should keep feeding rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Stop,
}

/// Where accepted rows go until [`Pipeline::finish`].
enum Stage<'a> {
    /// Projected and emitted at once.
    Stream,
    /// Kept with their sort keys.
    Sorted(Vec<(Vec<Option<Value>>, Vec<Val<'a>>)>),
    /// Folded into groups keyed by the `GROUP BY` values.
    Grouped {
        index: HashMap<Vec<ValueKey>, usize>,
        groups: Vec<Group<'a>>,
    },
}

struct Group<'a> {
    /// The first row of the group: non-aggregate select expressions are evaluated on it.
    row: Vec<Val<'a>>,
    accumulators: Vec<Accumulator>,
}

/// One query level in execution.
pub(crate) struct Pipeline<'q, 'a> {
    query: &'q SelectQuery,
    /// The aggregate calls of the selection, indexed by their slot.
    aggregates: Vec<(AggregateFunction, &'q Expr)>,
    stage: Stage<'a>,
    top: Option<u64>,
    offset: u64,
    limit: Option<u64>,
    /// Results that passed `DISTINCT` (what `TOP` counts).
    n_taken: u64,
    n_skipped: u64,
    seen: HashSet<ValueKey>,
    output: Vec<Value>,
    /// An extra cap on output rows (for `EXISTS` and scalar subqueries).
    max_output: Option<u64>,
    done: bool,
}

impl<'q, 'a> Pipeline<'q, 'a> {
    /// Prepares to run `query`, resolving `TOP`/`OFFSET`/`LIMIT` parameters.
    pub(crate) fn new(
        cx: &Context<'_>,
        query: &'q SelectQuery,
    ) -> Result<Pipeline<'q, 'a>, QueryError> {
        let top = query
            .top
            .as_ref()
            .map(|count| resolve_count(cx, count, "TOP"))
            .transpose()?;
        let (offset, limit) = match &query.offset_limit {
            Some(offset_limit) => (
                resolve_count(cx, &offset_limit.offset, "OFFSET")?,
                Some(resolve_count(cx, &offset_limit.limit, "LIMIT")?),
            ),
            None => (0, None),
        };
        let mut aggregates = Vec::with_capacity(query.n_aggregates);
        match &query.select {
            Selection::Star => {}
            Selection::Value(expr) => collect_aggregates(expr, &mut aggregates),
            Selection::List(items) => {
                for item in items {
                    collect_aggregates(&item.expr, &mut aggregates);
                }
            }
        }
        aggregates.sort_by_key(|(slot, _, _)| *slot);
        let aggregates = aggregates
            .into_iter()
            .map(|(_, function, arg)| (function, arg))
            .collect();
        let stage = if query.is_aggregate() {
            Stage::Grouped {
                index: HashMap::new(),
                groups: Vec::new(),
            }
        } else if !query.order_by.is_empty() {
            Stage::Sorted(Vec::new())
        } else {
            Stage::Stream
        };
        let mut pipeline = Pipeline {
            query,
            aggregates,
            stage,
            top,
            offset,
            limit,
            n_taken: 0,
            n_skipped: 0,
            seen: HashSet::new(),
            output: Vec::new(),
            max_output: None,
            done: false,
        };
        pipeline.done = pipeline.output_is_full();
        Ok(pipeline)
    }

    /// Caps the output at `n_rows` results.
    pub(crate) fn stop_after(mut self, n_rows: u64) -> Pipeline<'q, 'a> {
        self.max_output = Some(n_rows);
        self.done = self.output_is_full();
        self
    }

    /// Feeds one frame (a document, or the enclosing row of a subquery). Without a `FROM`
    /// clause the frame yields one empty row.
    pub(crate) fn push_frame(
        &mut self,
        cx: &Context<'_>,
        parent: Option<&Env<'_, 'a>>,
    ) -> Result<Flow, QueryError> {
        if self.done {
            return Ok(Flow::Stop);
        }
        let query = self.query;
        let mut row = Vec::with_capacity(query.sources.len());
        enumerate_rows(cx, &query.sources, &mut row, parent, &mut |cx, row| {
            let env = Env::new(row, parent);
            if let Some(filter) = &query.filter
                && !eval(cx, filter, &env)?.is_true()
            {
                return Ok(Flow::Continue);
            }
            self.accept(cx, row, &env)
        })
    }

    fn accept(
        &mut self,
        cx: &Context<'_>,
        row: &[Val<'a>],
        env: &Env<'_, 'a>,
    ) -> Result<Flow, QueryError> {
        let query = self.query;
        match &mut self.stage {
            Stage::Stream => {
                let projected = project(cx, query, env)?;
                Ok(self.emit(projected))
            }
            Stage::Sorted(rows) => {
                let mut keys = Vec::with_capacity(query.order_by.len());
                for item in &query.order_by {
                    keys.push(eval(cx, &item.expr, env)?.into_value());
                }
                rows.push((keys, row.to_vec()));
                Ok(Flow::Continue)
            }
            Stage::Grouped { index, groups } => {
                let mut key = Vec::with_capacity(query.group_by.len());
                for expr in &query.group_by {
                    key.push(ValueKey(eval(cx, expr, env)?.into_value()));
                }
                let position = match index.get(&key) {
                    Some(position) => *position,
                    None => {
                        groups.push(Group {
                            row: row.to_vec(),
                            accumulators: self
                                .aggregates
                                .iter()
                                .map(|(function, _)| Accumulator::new(*function))
                                .collect(),
                        });
                        index.insert(key, groups.len() - 1);
                        groups.len() - 1
                    }
                };
                let group = &mut groups[position];
                for ((_, arg), accumulator) in self.aggregates.iter().zip(&mut group.accumulators) {
                    accumulator.add(&eval(cx, arg, env)?);
                }
                Ok(Flow::Continue)
            }
        }
    }

    /// Completes the level and returns its results in order.
    pub(crate) fn finish(
        mut self,
        cx: &Context<'_>,
        parent: Option<&Env<'_, 'a>>,
    ) -> Result<Vec<Value>, QueryError> {
        let query = self.query;
        match std::mem::replace(&mut self.stage, Stage::Stream) {
            Stage::Stream => {}
            Stage::Sorted(mut rows) => {
                rows.sort_by(|(left, _), (right, _)| {
                    for ((a, b), item) in left.iter().zip(right).zip(&query.order_by) {
                        let order = sort_order(a.as_ref(), b.as_ref());
                        if order.is_ne() {
                            return if item.descending {
                                order.reverse()
                            } else {
                                order
                            };
                        }
                    }
                    std::cmp::Ordering::Equal
                });
                for (_, row) in &rows {
                    let env = Env::new(row, parent);
                    let projected = project(cx, query, &env)?;
                    if self.emit(projected) == Flow::Stop {
                        break;
                    }
                }
            }
            Stage::Grouped { mut groups, .. } => {
                if groups.is_empty() && query.group_by.is_empty() {
                    // Aggregates over no rows still give one result (COUNT 0, SUM 0).
                    groups.push(Group {
                        row: Vec::new(),
                        accumulators: self
                            .aggregates
                            .iter()
                            .map(|(function, _)| Accumulator::new(*function))
                            .collect(),
                    });
                }
                for group in groups {
                    let results: Vec<Val<'a>> = group
                        .accumulators
                        .into_iter()
                        .map(Accumulator::finish)
                        .collect();
                    let env = Env {
                        row: &group.row,
                        aggregates: &results,
                        parent,
                    };
                    let projected = project(cx, query, &env)?;
                    if self.emit(projected) == Flow::Stop {
                        break;
                    }
                }
            }
        }
        Ok(self.output)
    }

    fn output_is_full(&self) -> bool {
        let capped = |cap: Option<u64>, count: u64| cap.is_some_and(|cap| count >= cap);
        capped(self.top, self.n_taken)
            || capped(self.limit, self.output.len() as u64)
            || capped(self.max_output, self.output.len() as u64)
    }

    /// Applies `DISTINCT`, `TOP`, `OFFSET` and `LIMIT` to one projected result.
    fn emit(&mut self, projected: Option<Value>) -> Flow {
        if self.done {
            return Flow::Stop;
        }
        let Some(value) = projected else {
            return Flow::Continue;
        };
        if self.query.distinct && !self.seen.insert(ValueKey(Some(value.clone()))) {
            return Flow::Continue;
        }
        self.n_taken += 1;
        if self.n_skipped < self.offset {
            self.n_skipped += 1;
        } else {
            self.output.push(value);
        }
        if self.output_is_full() {
            self.done = true;
            return Flow::Stop;
        }
        Flow::Continue
    }
}

/// Evaluates the selection for one row (or group); `None` when there is no result.
fn project(
    cx: &Context<'_>,
    query: &SelectQuery,
    env: &Env<'_, '_>,
) -> Result<Option<Value>, QueryError> {
    match &query.select {
        Selection::Star => Ok(env.row.first().and_then(|value| value.clone().into_value())),
        Selection::Value(expr) => Ok(eval(cx, expr, env)?.into_value()),
        Selection::List(items) => {
            let mut object = Map::with_capacity(items.len());
            for item in items {
                if let Some(value) = eval(cx, &item.expr, env)?.into_value() {
                    object.insert(item.name.clone(), value);
                }
            }
            Ok(Some(Value::Object(object)))
        }
    }
}

/// A callback receiving each row of a query level.
type RowVisitor<'v, 'a> = dyn FnMut(&Context<'_>, &[Val<'a>]) -> Result<Flow, QueryError> + 'v;

/// Calls `visit` for every combination of source values (depth first, in source order).
fn enumerate_rows<'a>(
    cx: &Context<'_>,
    sources: &[Source],
    row: &mut Vec<Val<'a>>,
    parent: Option<&Env<'_, 'a>>,
    visit: &mut RowVisitor<'_, 'a>,
) -> Result<Flow, QueryError> {
    let Some((source, rest)) = sources.split_first() else {
        cx.count_row()?;
        return visit(cx, row);
    };
    let values = source_values(cx, source, &Env::new(row, parent))?;
    for value in values {
        row.push(value);
        let flow = enumerate_rows(cx, rest, row, parent, visit);
        row.pop();
        if flow? == Flow::Stop {
            return Ok(Flow::Stop);
        }
    }
    Ok(Flow::Continue)
}

/// The values a source binds its alias to, for the row built so far.
fn source_values<'a>(
    cx: &Context<'_>,
    source: &Source,
    env: &Env<'_, 'a>,
) -> Result<Vec<Val<'a>>, QueryError> {
    let collection: Vec<Val<'a>> = match &source.collection {
        Collection::Path { root, steps } => {
            let root = match root {
                Expr::Var { depth, slot } => env.lookup(*depth, *slot),
                _ => None,
            };
            let value = root.map_or(Val::Undefined, |root| walk(root, steps));
            vec![value]
        }
        Collection::Subquery(query) => {
            let mut pipeline = Pipeline::new(cx, query)?;
            pipeline.push_frame(cx, Some(env))?;
            pipeline
                .finish(cx, Some(env))?
                .into_iter()
                .map(Val::Owned)
                .collect()
        }
    };
    let mut values = Vec::new();
    for value in collection {
        if !source.iterate {
            if value.is_defined() {
                values.push(value);
            }
            continue;
        }
        match value {
            Val::Ref(Value::Array(items)) => values.extend(items.iter().map(Val::Ref)),
            Val::Owned(Value::Array(items)) => values.extend(items.into_iter().map(Val::Owned)),
            _ => {}
        }
    }
    Ok(values)
}

/// Follows a source path from a stored value, keeping borrowed values borrowed.
fn walk<'a>(root: &Val<'a>, steps: &[PathStep]) -> Val<'a> {
    fn follow<'v>(start: &'v Value, steps: &[PathStep]) -> Option<&'v Value> {
        steps.iter().try_fold(start, |value, step| match step {
            PathStep::Property(name) => value.get(name),
            PathStep::Index(index) => usize::try_from(*index)
                .ok()
                .and_then(|index| value.get(index)),
        })
    }
    match root {
        Val::Undefined => Val::Undefined,
        Val::Ref(start) => follow(start, steps).map_or(Val::Undefined, Val::Ref),
        Val::Owned(start) => Val::from_option(follow(start, steps).cloned()),
    }
}

fn collect_aggregates<'q>(expr: &'q Expr, found: &mut Vec<(usize, AggregateFunction, &'q Expr)>) {
    if let Expr::Aggregate {
        function,
        arg,
        slot,
        ..
    } = expr
    {
        found.push((*slot, *function, arg));
        return;
    }
    for child in expr.children() {
        collect_aggregates(child, found);
    }
}

/// The value of a `TOP`/`OFFSET`/`LIMIT` count.
fn resolve_count(cx: &Context<'_>, count: &Count, clause: &'static str) -> Result<u64, QueryError> {
    match count {
        Count::Literal(value) => Ok(*value),
        Count::Parameter(name) => {
            let value = cx.parameter(name)?;
            value
                .and_then(|value| {
                    value.as_u64().or_else(|| {
                        value
                            .as_f64()
                            .filter(|float| {
                                *float >= 0.0 && float.fract() == 0.0 && *float < 1.8e19
                            })
                            .map(|float| {
                                #[expect(
                                    clippy::cast_possible_truncation,
                                    clippy::cast_sign_loss,
                                    reason = "checked non-negative, integral and below 2^64"
                                )]
                                let count = float as u64;
                                count
                            })
                    })
                })
                .ok_or_else(|| QueryError::InvalidCount {
                    clause,
                    value: value.map_or_else(|| "undefined".to_owned(), Value::to_string),
                })
        }
    }
}

/// True when some row of `query`'s sources for the frame `parent` satisfies `test` (used for
/// conditions, where only `FROM` and `WHERE` matter).
pub(crate) fn any_row<'a>(
    cx: &Context<'_>,
    query: &SelectQuery,
    parent: Option<&Env<'_, 'a>>,
    test: &mut dyn FnMut(&Context<'_>, &Env<'_, 'a>) -> Result<bool, QueryError>,
) -> Result<bool, QueryError> {
    let mut found = false;
    let mut row = Vec::with_capacity(query.sources.len());
    enumerate_rows(cx, &query.sources, &mut row, parent, &mut |cx, row| {
        found = test(cx, &Env::new(row, parent))?;
        Ok(if found { Flow::Stop } else { Flow::Continue })
    })?;
    Ok(found)
}
