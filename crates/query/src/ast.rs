//! The parsed form of a query.
//!
//! The parser builds it with identifiers as names ([`Expr::Ident`]); the binder then replaces
//! every identifier by the frame slot it refers to ([`Expr::Var`]) and numbers the aggregates, so
//! evaluation never compares names.

use serde_json::Value;

use crate::functions::{AggregateFunction, Function};

/// One `SELECT` query: the whole query text or a subquery.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SelectQuery {
    pub(crate) distinct: bool,
    pub(crate) top: Option<Count>,
    pub(crate) select: Selection,
    /// The `FROM` source followed by the `JOIN` sources; empty without a `FROM` clause.
    pub(crate) sources: Vec<Source>,
    pub(crate) filter: Option<Expr>,
    pub(crate) group_by: Vec<Expr>,
    pub(crate) order_by: Vec<OrderItem>,
    pub(crate) offset_limit: Option<OffsetLimit>,
    /// Number of aggregate calls in the selection (set by the binder).
    pub(crate) n_aggregates: usize,
}

impl SelectQuery {
    /// True when results are computed per group rather than per row.
    pub(crate) fn is_aggregate(&self) -> bool {
        self.n_aggregates > 0 || !self.group_by.is_empty()
    }
}

/// What the `SELECT` clause projects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selection {
    /// `SELECT *`: the single source's value as is.
    Star,
    /// `SELECT VALUE expr`.
    Value(Expr),
    /// `SELECT a AS x, b, ...`: an object with one property per item.
    List(Vec<SelectItem>),
}

/// One item of a select list with its output property name (explicit or implied).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SelectItem {
    pub(crate) name: String,
    pub(crate) expr: Expr,
}

/// A `TOP`, `OFFSET` or `LIMIT` count.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Count {
    Literal(u64),
    Parameter(String),
}

/// `OFFSET n LIMIT m`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OffsetLimit {
    pub(crate) offset: Count,
    pub(crate) limit: Count,
}

/// One `ORDER BY` key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OrderItem {
    pub(crate) expr: Expr,
    pub(crate) descending: bool,
}

/// A `FROM` or `JOIN` source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Source {
    pub(crate) alias: String,
    /// `alias IN collection`: one row per array element (non-arrays give none). Otherwise one
    /// row per defined value of the collection.
    pub(crate) iterate: bool,
    pub(crate) collection: Collection,
    /// Byte offset of the source, for errors.
    pub(crate) position: usize,
}

/// Where a source's values come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Collection {
    /// An identifier followed by property and index steps.
    Path { root: Expr, steps: Vec<PathStep> },
    /// `(SELECT ...)`, evaluated per row of the earlier sources.
    Subquery(Box<SelectQuery>),
}

/// One step of a source path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PathStep {
    Property(String),
    Index(u64),
}

/// A unary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UnaryOp {
    Not,
    Minus,
    Plus,
    BitNot,
}

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Eq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
    BitAnd,
    BitOr,
    BitXor,
    ShiftLeft,
    ShiftRight,
    ShiftRightZeroFill,
    Coalesce,
}

/// A scalar expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A JSON literal.
    Literal(Value),
    /// The `undefined` literal.
    Undefined,
    /// `@name`.
    Parameter(String),
    /// An identifier before binding.
    Ident {
        name: String,
        position: usize,
    },
    /// A bound alias: `depth` frames out from the current one, slot `slot` in it.
    Var {
        depth: usize,
        slot: usize,
    },
    /// `expr.name`.
    Property(Box<Expr>, String),
    /// `expr[index]`.
    Index(Box<Expr>, Box<Expr>),
    /// `[a, b, ...]`.
    Array(Vec<Expr>),
    /// `{name: expr, ...}`.
    Object(Vec<(String, Expr)>),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `a AND b AND ...`, kept flat so long chains do not nest.
    And(Vec<Expr>),
    /// `a OR b OR ...`, kept flat so long chains do not nest.
    Or(Vec<Expr>),
    /// `value [NOT] BETWEEN low AND high`.
    Between {
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
        negated: bool,
    },
    /// `value [NOT] IN (list...)`.
    In {
        value: Box<Expr>,
        list: Vec<Expr>,
        negated: bool,
    },
    /// `value [NOT] LIKE pattern [ESCAPE 'c']`.
    Like {
        value: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<char>,
        negated: bool,
    },
    /// `condition ? then : otherwise`.
    Conditional {
        condition: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// A built-in scalar function call.
    Call {
        function: Function,
        args: Vec<Expr>,
    },
    /// A user-defined function call, `udf.name(args)`, answered by the caller's
    /// [`crate::UserFunctions`].
    UserFunctionCall {
        name: String,
        args: Vec<Expr>,
    },
    /// An aggregate call; `slot` numbers the aggregates of its query (set by the binder).
    Aggregate {
        function: AggregateFunction,
        arg: Box<Expr>,
        slot: usize,
        position: usize,
    },
    /// `EXISTS (subquery)`.
    Exists(Box<SelectQuery>),
    /// `ARRAY (subquery)`.
    ArraySubquery(Box<SelectQuery>),
    /// `(subquery)` used as a scalar.
    Subquery(Box<SelectQuery>),
}

impl Expr {
    /// Visits every direct sub-expression (not descending into subqueries).
    pub(crate) fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Literal(_)
            | Expr::Undefined
            | Expr::Parameter(_)
            | Expr::Ident { .. }
            | Expr::Var { .. }
            | Expr::Exists(_)
            | Expr::ArraySubquery(_)
            | Expr::Subquery(_) => Vec::new(),
            Expr::Property(inner, _) | Expr::Unary(_, inner) => vec![inner],
            Expr::Aggregate { arg, .. } => vec![arg],
            Expr::Index(a, b) | Expr::Binary(_, a, b) => vec![a, b],
            Expr::Array(items) | Expr::And(items) | Expr::Or(items) => items.iter().collect(),
            Expr::Call { args, .. } | Expr::UserFunctionCall { args, .. } => args.iter().collect(),
            Expr::Object(properties) => properties.iter().map(|(_, expr)| expr).collect(),
            Expr::Between {
                value, low, high, ..
            } => vec![value, low, high],
            Expr::In { value, list, .. } => {
                let mut all = vec![value.as_ref()];
                all.extend(list);
                all
            }
            Expr::Like { value, pattern, .. } => vec![value, pattern],
            Expr::Conditional {
                condition,
                then,
                otherwise,
            } => vec![condition, then, otherwise],
        }
    }

    /// Every direct sub-expression, mutably (not descending into subqueries).
    pub(crate) fn children_mut(&mut self) -> Vec<&mut Expr> {
        match self {
            Expr::Literal(_)
            | Expr::Undefined
            | Expr::Parameter(_)
            | Expr::Ident { .. }
            | Expr::Var { .. }
            | Expr::Exists(_)
            | Expr::ArraySubquery(_)
            | Expr::Subquery(_) => Vec::new(),
            Expr::Property(inner, _) | Expr::Unary(_, inner) => vec![inner],
            Expr::Aggregate { arg, .. } => vec![arg],
            Expr::Index(a, b) | Expr::Binary(_, a, b) => vec![a, b],
            Expr::Array(items)
            | Expr::And(items)
            | Expr::Or(items)
            | Expr::Call { args: items, .. }
            | Expr::UserFunctionCall { args: items, .. } => items.iter_mut().collect(),
            Expr::Object(properties) => properties.iter_mut().map(|(_, expr)| expr).collect(),
            Expr::Between {
                value, low, high, ..
            } => vec![value, low, high],
            Expr::In { value, list, .. } => {
                let mut all = vec![value.as_mut()];
                all.extend(list.iter_mut());
                all
            }
            Expr::Like { value, pattern, .. } => vec![value, pattern],
            Expr::Conditional {
                condition,
                then,
                otherwise,
            } => vec![condition, then, otherwise],
        }
    }
}
