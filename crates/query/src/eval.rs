//! Evaluates bound expressions against rows.
//!
//! Semantics follow Cosmos: operators on mismatched types give undefined; `AND`/`OR`/`NOT` use
//! three-valued logic with undefined as the third value; `=` across types is undefined and
//! within a type is deep equality; `<`-style comparisons only order primitives of one type.

use std::cell::{Cell, RefCell};

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::ast::{BinaryOp, Expr, UnaryOp};
use crate::error::QueryError;
use crate::exec::Pipeline;
use crate::functions::{self, MAX_COMPUTED_STRING_BYTES};
use crate::value::{Val, compare_relational, deep_equal, equals};
use crate::{MAX_JOIN_ROWS_PER_DOCUMENT, Parameters, UserFunctions, with_stack};

/// Compiled `RegexMatch` patterns kept per execution.
const MAX_CACHED_REGEXES: usize = 16;
/// Memory bound for one compiled `RegexMatch` pattern, in bytes.
const MAX_REGEX_SIZE_BYTES: usize = 1 << 20;

/// What evaluation needs besides the row: parameters, the clock, the caller's user-defined
/// functions, and caches.
pub(crate) struct Context<'p> {
    parameters: &'p Parameters,
    user_functions: Option<&'p dyn UserFunctions>,
    /// 100-nanosecond ticks since the Unix epoch at the start of the execution.
    pub(crate) now_ticks: i64,
    regexes: RefCell<Vec<(String, String, Regex)>>,
    random_state: Cell<u64>,
    /// Rows enumerated for the current document, subqueries included.
    n_rows_this_document: Cell<usize>,
}

impl<'p> Context<'p> {
    pub(crate) fn new(parameters: &'p Parameters, now_ticks: i64) -> Context<'p> {
        Context {
            parameters,
            user_functions: None,
            now_ticks,
            regexes: RefCell::new(Vec::new()),
            // Any non-zero seed works for xorshift; mix the clock in so runs differ.
            random_state: Cell::new(now_ticks.unsigned_abs() | 1),
            n_rows_this_document: Cell::new(0),
        }
    }

    /// The same context, calling `udf.name(...)` through `functions`.
    pub(crate) fn with_user_functions(
        mut self,
        functions: Option<&'p dyn UserFunctions>,
    ) -> Context<'p> {
        self.user_functions = functions;
        self
    }

    /// Starts counting rows afresh for the next document.
    pub(crate) fn start_document(&self) {
        self.n_rows_this_document.set(0);
    }

    /// Counts one enumerated row (of any query level) against the per-document budget.
    pub(crate) fn count_row(&self) -> Result<(), QueryError> {
        let n_rows = self.n_rows_this_document.get() + 1;
        if n_rows > MAX_JOIN_ROWS_PER_DOCUMENT {
            return Err(QueryError::TooManyJoinRows {
                limit: MAX_JOIN_ROWS_PER_DOCUMENT,
            });
        }
        self.n_rows_this_document.set(n_rows);
        Ok(())
    }

    /// A parameter's value (`None` when it was bound to undefined).
    pub(crate) fn parameter(&self, name: &str) -> Result<Option<&'p Value>, QueryError> {
        self.parameters
            .get(name)
            .ok_or_else(|| QueryError::UnknownParameter(name.to_owned()))
    }

    /// A pseudo-random number in [0, 1) for `RAND()` (xorshift64*).
    pub(crate) fn random(&self) -> f64 {
        let mut state = self.random_state.get();
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        self.random_state.set(state);
        let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        #[expect(
            clippy::cast_precision_loss,
            reason = "53 random bits convert to f64 exactly"
        )]
        let fraction = bits as f64 / (1u64 << 53) as f64;
        fraction
    }

    /// `RegexMatch(text, pattern, modifiers)`, compiling each pattern once per execution.
    pub(crate) fn regex_is_match(
        &self,
        pattern: &str,
        modifiers: &str,
        text: &str,
    ) -> Result<bool, QueryError> {
        let mut cache = self.regexes.borrow_mut();
        if let Some((_, _, regex)) = cache
            .iter()
            .find(|(known, flags, _)| known == pattern && flags == modifiers)
        {
            return Ok(regex.is_match(text));
        }
        let mut builder = RegexBuilder::new(pattern);
        builder.size_limit(MAX_REGEX_SIZE_BYTES);
        for modifier in modifiers.chars() {
            match modifier {
                'i' => builder.case_insensitive(true),
                'm' => builder.multi_line(true),
                's' => builder.dot_matches_new_line(true),
                'x' => builder.ignore_whitespace(true),
                other => {
                    return Err(QueryError::InvalidRegex {
                        pattern: pattern.to_owned(),
                        message: format!("unknown modifier '{other}' (use i, m, s or x)"),
                    });
                }
            };
        }
        let regex = builder.build().map_err(|error| QueryError::InvalidRegex {
            pattern: pattern.to_owned(),
            message: error.to_string(),
        })?;
        let found = regex.is_match(text);
        if cache.len() >= MAX_CACHED_REGEXES {
            cache.remove(0);
        }
        cache.push((pattern.to_owned(), modifiers.to_owned(), regex));
        Ok(found)
    }
}

/// The values visible to an expression: the current row of its query level, the aggregate
/// results of the current group (aggregate queries only), and the enclosing levels.
#[derive(Clone, Copy)]
pub(crate) struct Env<'e, 'a> {
    pub(crate) row: &'e [Val<'a>],
    pub(crate) aggregates: &'e [Val<'a>],
    pub(crate) parent: Option<&'e Env<'e, 'a>>,
}

impl<'e, 'a> Env<'e, 'a> {
    pub(crate) fn new(row: &'e [Val<'a>], parent: Option<&'e Env<'e, 'a>>) -> Env<'e, 'a> {
        Env {
            row,
            aggregates: &[],
            parent,
        }
    }

    /// The value in slot `slot` of the frame `depth` levels out, if there is one.
    pub(crate) fn lookup(&self, depth: usize, slot: usize) -> Option<&'e Val<'a>> {
        let mut frame = self;
        for _ in 0..depth {
            frame = frame.parent?;
        }
        frame.row.get(slot)
    }
}

/// Borrows a stored value for the duration of an evaluation.
pub(crate) fn borrow<'e>(value: &'e Val<'_>) -> Val<'e> {
    match value {
        Val::Undefined => Val::Undefined,
        Val::Ref(inner) => Val::Ref(inner),
        Val::Owned(inner) => Val::Ref(inner),
    }
}

/// Evaluates `expr` in `env`.
pub(crate) fn eval<'e>(
    cx: &Context<'e>,
    expr: &'e Expr,
    env: &Env<'e, '_>,
) -> Result<Val<'e>, QueryError> {
    with_stack(|| eval_here(cx, expr, env))
}

fn eval_here<'e>(
    cx: &Context<'e>,
    expr: &'e Expr,
    env: &Env<'e, '_>,
) -> Result<Val<'e>, QueryError> {
    let value = match expr {
        Expr::Literal(value) => Val::Ref(value),
        Expr::Undefined => Val::Undefined,
        Expr::Parameter(name) => cx.parameter(name)?.map_or(Val::Undefined, Val::Ref),
        Expr::Var { depth, slot } => env.lookup(*depth, *slot).map_or(Val::Undefined, borrow),
        Expr::Ident { name, position } => {
            return Err(QueryError::UnresolvedIdentifier {
                name: name.clone(),
                position: *position,
            });
        }
        Expr::Property(inner, name) => eval(cx, inner, env)?.property(name),
        Expr::Index(inner, index) => {
            let base = eval(cx, inner, env)?;
            match eval(cx, index, env)?.get() {
                Some(Value::String(name)) => base.property(name),
                Some(Value::Number(number)) => match number.as_u64() {
                    Some(position) => usize::try_from(position)
                        .map_or(Val::Undefined, |position| base.element(position)),
                    None => Val::Undefined,
                },
                _ => Val::Undefined,
            }
        }
        Expr::Array(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                if let Some(value) = eval(cx, item, env)?.into_value() {
                    values.push(value);
                }
            }
            Val::Owned(Value::Array(values))
        }
        Expr::Object(properties) => {
            let mut map = Map::with_capacity(properties.len());
            for (name, item) in properties {
                if let Some(value) = eval(cx, item, env)?.into_value() {
                    map.insert(name.clone(), value);
                }
            }
            Val::Owned(Value::Object(map))
        }
        Expr::Unary(op, operand) => unary(*op, &eval(cx, operand, env)?),
        Expr::And(operands) => {
            // false wins over undefined, undefined over true.
            let mut all_true = true;
            for operand in operands {
                match eval(cx, operand, env)?.as_bool() {
                    Some(false) => return Ok(Val::bool(false)),
                    Some(true) => {}
                    None => all_true = false,
                }
            }
            if all_true {
                Val::bool(true)
            } else {
                Val::Undefined
            }
        }
        Expr::Or(operands) => {
            // true wins over undefined, undefined over false.
            let mut all_false = true;
            for operand in operands {
                match eval(cx, operand, env)?.as_bool() {
                    Some(true) => return Ok(Val::bool(true)),
                    Some(false) => {}
                    None => all_false = false,
                }
            }
            if all_false {
                Val::bool(false)
            } else {
                Val::Undefined
            }
        }
        Expr::Binary(BinaryOp::Coalesce, left, right) => {
            let left = eval(cx, left, env)?;
            if left.is_defined() {
                left
            } else {
                eval(cx, right, env)?
            }
        }
        Expr::Binary(op, left, right) => {
            let left = eval(cx, left, env)?;
            let right = eval(cx, right, env)?;
            binary(*op, &left, &right)
        }
        Expr::Between {
            value,
            low,
            high,
            negated,
        } => {
            let value = eval(cx, value, env)?;
            let low = eval(cx, low, env)?;
            let high = eval(cx, high, env)?;
            let above = binary(BinaryOp::Ge, &value, &low).as_bool();
            let below = binary(BinaryOp::Le, &value, &high).as_bool();
            let between = logical_and(above, below);
            if *negated {
                unary(UnaryOp::Not, &between)
            } else {
                between
            }
        }
        Expr::In {
            value,
            list,
            negated,
        } => {
            let value = eval(cx, value, env)?;
            let Some(needle) = value.get() else {
                return Ok(Val::Undefined);
            };
            let mut found = false;
            for item in list {
                if eval(cx, item, env)?
                    .get()
                    .is_some_and(|candidate| deep_equal(needle, candidate))
                {
                    found = true;
                    break;
                }
            }
            Val::bool(found != *negated)
        }
        Expr::Like {
            value,
            pattern,
            escape,
            negated,
        } => {
            let value = eval(cx, value, env)?;
            let pattern = eval(cx, pattern, env)?;
            match (value.as_str(), pattern.as_str()) {
                (Some(text), Some(pattern)) => {
                    Val::bool(like_matches(text, pattern, *escape) != *negated)
                }
                _ => Val::Undefined,
            }
        }
        Expr::Conditional {
            condition,
            then,
            otherwise,
        } => {
            if eval(cx, condition, env)?.is_true() {
                eval(cx, then, env)?
            } else {
                eval(cx, otherwise, env)?
            }
        }
        Expr::Call { function, args } => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(eval(cx, arg, env)?);
            }
            functions::call(*function, values, cx)?
        }
        Expr::UserFunctionCall { name, args } => {
            let functions = cx
                .user_functions
                .ok_or_else(|| QueryError::UnknownFunction(format!("udf.{name}")))?;
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(eval(cx, arg, env)?.into_value().unwrap_or(Value::Null));
            }
            match functions.call(name, &values) {
                Ok(Some(result)) => Val::Owned(result),
                Ok(None) => Val::Undefined,
                Err(message) => {
                    return Err(QueryError::UserFunction {
                        name: name.clone(),
                        message,
                    });
                }
            }
        }
        Expr::Aggregate { slot, .. } => env.aggregates.get(*slot).map_or(Val::Undefined, borrow),
        Expr::Exists(query) => {
            let mut pipeline = Pipeline::new(cx, query)?.stop_after(1);
            pipeline.push_frame(cx, Some(env))?;
            Val::bool(!pipeline.finish(cx, Some(env))?.is_empty())
        }
        Expr::ArraySubquery(query) => {
            let mut pipeline = Pipeline::new(cx, query)?;
            pipeline.push_frame(cx, Some(env))?;
            Val::Owned(Value::Array(pipeline.finish(cx, Some(env))?))
        }
        Expr::Subquery(query) => {
            let mut pipeline = Pipeline::new(cx, query)?.stop_after(2);
            pipeline.push_frame(cx, Some(env))?;
            let mut results = pipeline.finish(cx, Some(env))?;
            if results.len() > 1 {
                return Err(QueryError::SubqueryCardinality {
                    n_values: results.len(),
                });
            }
            Val::from_option(results.pop())
        }
    };
    Ok(value)
}

fn logical_and<'e>(left: Option<bool>, right: Option<bool>) -> Val<'e> {
    match (left, right) {
        (Some(false), _) | (_, Some(false)) => Val::bool(false),
        (Some(true), Some(true)) => Val::bool(true),
        _ => Val::Undefined,
    }
}

fn unary<'e>(op: UnaryOp, operand: &Val<'_>) -> Val<'e> {
    match op {
        UnaryOp::Not => operand
            .as_bool()
            .map_or(Val::Undefined, |flag| Val::bool(!flag)),
        UnaryOp::Minus => operand.as_f64().map_or(Val::Undefined, |x| Val::number(-x)),
        UnaryOp::Plus => operand.as_f64().map_or(Val::Undefined, Val::number),
        UnaryOp::BitNot => operand
            .as_f64()
            .map_or(Val::Undefined, |x| Val::number(f64::from(!to_int32(x)))),
    }
}

/// JavaScript's ToInt32: truncate, wrap modulo 2^32, reinterpret as signed.
fn to_int32(value: f64) -> i32 {
    if !value.is_finite() {
        return 0;
    }
    let wrapped = value.trunc().rem_euclid(4_294_967_296.0);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the value was wrapped into [0, 2^32)"
    )]
    let unsigned = wrapped as u32;
    unsigned.cast_signed()
}

fn binary<'e>(op: BinaryOp, left: &Val<'_>, right: &Val<'_>) -> Val<'e> {
    let (Some(a), Some(b)) = (left.get(), right.get()) else {
        return Val::Undefined;
    };
    match op {
        BinaryOp::Eq => equals(a, b).map_or(Val::Undefined, Val::bool),
        BinaryOp::NotEq => equals(a, b).map_or(Val::Undefined, |same| Val::bool(!same)),
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => compare_relational(a, b)
            .map_or(Val::Undefined, |order| {
                Val::bool(match op {
                    BinaryOp::Lt => order.is_lt(),
                    BinaryOp::Le => order.is_le(),
                    BinaryOp::Gt => order.is_gt(),
                    _ => order.is_ge(),
                })
            }),
        BinaryOp::Concat => match (a, b) {
            (Value::String(x), Value::String(y))
                if x.len() + y.len() <= MAX_COMPUTED_STRING_BYTES =>
            {
                Val::string(format!("{x}{y}"))
            }
            _ => Val::Undefined,
        },
        _ => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else {
                return Val::Undefined;
            };
            let result = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                BinaryOp::Mod => x % y,
                BinaryOp::BitAnd => f64::from(to_int32(x) & to_int32(y)),
                BinaryOp::BitOr => f64::from(to_int32(x) | to_int32(y)),
                BinaryOp::BitXor => f64::from(to_int32(x) ^ to_int32(y)),
                BinaryOp::ShiftLeft => f64::from(to_int32(x).wrapping_shl(shift_count(y))),
                BinaryOp::ShiftRight => f64::from(to_int32(x).wrapping_shr(shift_count(y))),
                BinaryOp::ShiftRightZeroFill => {
                    f64::from(to_int32(x).cast_unsigned().wrapping_shr(shift_count(y)))
                }
                // Handled above; listed so the match stays exhaustive without a wildcard.
                BinaryOp::Coalesce
                | BinaryOp::Eq
                | BinaryOp::NotEq
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::Concat => return Val::Undefined,
            };
            Val::number(result)
        }
    }
}

/// JavaScript shift counts use the low five bits.
fn shift_count(value: f64) -> u32 {
    to_int32(value).cast_unsigned() & 31
}

/// One element of a compiled `LIKE` pattern.
#[derive(Debug, PartialEq)]
enum LikeToken {
    Char(char),
    AnyChar,
    AnyRun,
    /// `[abc]`, `[a-f]`, `[^...]`: inclusive ranges.
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

fn compile_like(pattern: &str, escape: Option<char>) -> Vec<LikeToken> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        let ch = chars[at];
        at += 1;
        if Some(ch) == escape {
            if let Some(&next) = chars.get(at) {
                tokens.push(LikeToken::Char(next));
                at += 1;
            } else {
                tokens.push(LikeToken::Char(ch));
            }
            continue;
        }
        match ch {
            '%' => {
                if tokens.last() != Some(&LikeToken::AnyRun) {
                    tokens.push(LikeToken::AnyRun);
                }
            }
            '_' => tokens.push(LikeToken::AnyChar),
            '[' => match parse_like_set(&chars[at..]) {
                Some((set, used)) => {
                    tokens.push(set);
                    at += used;
                }
                None => tokens.push(LikeToken::Char('[')),
            },
            other => tokens.push(LikeToken::Char(other)),
        }
    }
    tokens
}

/// Parses the inside of `[...]` (after the `[`); returns the set and the characters consumed,
/// including the closing `]`. `None` when there is no closing bracket.
fn parse_like_set(chars: &[char]) -> Option<(LikeToken, usize)> {
    let mut at = 0;
    let negated = chars.first() == Some(&'^');
    if negated {
        at += 1;
    }
    let mut ranges = Vec::new();
    // A `]` right after the opening bracket is a literal member.
    let mut first = true;
    while let Some(&ch) = chars.get(at) {
        if ch == ']' && !first {
            return Some((LikeToken::Set { negated, ranges }, at + 1));
        }
        first = false;
        if chars.get(at + 1) == Some(&'-') && chars.get(at + 2).is_some_and(|end| *end != ']') {
            ranges.push((ch, chars[at + 2]));
            at += 3;
        } else {
            ranges.push((ch, ch));
            at += 1;
        }
    }
    None
}

fn like_token_matches(token: &LikeToken, ch: char) -> bool {
    match token {
        LikeToken::Char(expected) => *expected == ch,
        LikeToken::AnyChar => true,
        LikeToken::AnyRun => false,
        LikeToken::Set { negated, ranges } => {
            ranges
                .iter()
                .any(|(low, high)| (*low..=*high).contains(&ch))
                != *negated
        }
    }
}

/// `text LIKE pattern`: `%` any run, `_` any character, `[...]` sets, `escape` quotes the next
/// character. Runs in O(|text| × |pattern|) with single-point backtracking.
pub(crate) fn like_matches(text: &str, pattern: &str, escape: Option<char>) -> bool {
    let tokens = compile_like(pattern, escape);
    let chars: Vec<char> = text.chars().collect();
    let (mut token_at, mut char_at) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while char_at < chars.len() {
        match tokens.get(token_at) {
            Some(LikeToken::AnyRun) => {
                backtrack = Some((token_at, char_at));
                token_at += 1;
                continue;
            }
            Some(token) if like_token_matches(token, chars[char_at]) => {
                token_at += 1;
                char_at += 1;
                continue;
            }
            _ => {}
        }
        match backtrack {
            Some((run_at, run_start)) => {
                token_at = run_at + 1;
                char_at = run_start + 1;
                backtrack = Some((run_at, run_start + 1));
            }
            None => return false,
        }
    }
    tokens[token_at..]
        .iter()
        .all(|token| *token == LikeToken::AnyRun)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_sets_and_escapes() {
        let cases = [
            ("Road Bike", "Road%", None, true),
            ("Road Bike", "%bike", None, false),
            ("Road Bike", "%Bike", None, true),
            ("abc", "a_c", None, true),
            ("abc", "a_", None, false),
            ("abc", "%", None, true),
            ("", "%", None, true),
            ("", "_", None, false),
            ("SOtPS", "%SO[t-z]PS%", None, true),
            ("SOaPS", "%SO[t-z]PS%", None, false),
            ("SOaPS", "%SO[^t-z]PS%", None, true),
            ("20-30%", "20-30[%]", None, true),
            ("_n", "[_]n", None, true),
            ("20% off", "%20^%%", Some('^'), true),
            ("20 off", "%20^%%", Some('^'), false),
            ("a[b", "a[b", None, true),
            ("aXbXc", "a%b%c", None, true),
            ("aXbXd", "a%b%c", None, false),
        ];
        for (text, pattern, escape, expected) in cases {
            assert_eq!(
                like_matches(text, pattern, escape),
                expected,
                "{text:?} LIKE {pattern:?}"
            );
        }
    }

    #[test]
    fn to_int32_wraps_like_javascript() {
        assert_eq!(to_int32(2_147_483_648.0), -2_147_483_648);
        assert_eq!(to_int32(-1.9), -1);
        assert_eq!(to_int32(6_442_450_944.0), -2_147_483_648);
        assert_eq!(to_int32(f64::NAN), 0);
    }
}
