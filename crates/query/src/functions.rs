//! The built-in functions: their names, argument counts and scalar semantics.
//!
//! Names are matched case-insensitively when the query is parsed, so an unknown name or a wrong
//! argument count is an error before any document is read. At run time a function whose
//! arguments have the wrong types returns undefined, as Cosmos does; only a malformed regular
//! expression is an error.
//!
//! Strings are measured in Unicode scalar values (`LENGTH('é') = 1`).

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::datetime::{DatePart, DateTime, TICKS_PER_MILLISECOND};
use crate::error::QueryError;
use crate::eval::Context;
use crate::spatial;
use crate::value::{Val, deep_equal, number_value, sort_order};

/// Longest string `REPLICATE` builds, in characters; longer results are undefined (as in Cosmos).
pub const MAX_REPLICATE_CHARS: usize = 10_000;
/// Longest string `||`, `CONCAT` and `REPLACE` build, in bytes; longer results are undefined,
/// so a query cannot grow a string without bound by concatenating it with itself.
pub const MAX_COMPUTED_STRING_BYTES: usize = 16 * 1024 * 1024;

/// An aggregate function: evaluated over all rows of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggregateFunction {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

/// A scalar built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Function {
    // Type checks.
    IsArray,
    IsBool,
    IsDefined,
    IsNull,
    IsNumber,
    IsObject,
    IsPrimitive,
    IsString,
    IsFiniteNumber,
    IsInteger,
    IsDateTime,
    // Strings.
    Concat,
    Contains,
    StartsWith,
    EndsWith,
    StringEquals,
    ContainsAllCi,
    ContainsAllCs,
    ContainsAnyCi,
    ContainsAnyCs,
    IndexOf,
    LastIndexOf,
    Left,
    Right,
    Length,
    Lower,
    Upper,
    Ltrim,
    Rtrim,
    Trim,
    Replace,
    Replicate,
    Reverse,
    Substring,
    ToString,
    StringToNumber,
    StringToBoolean,
    StringToNull,
    StringToArray,
    StringToObject,
    RegexMatch,
    StringJoin,
    StringSplit,
    // Math.
    Abs,
    Acos,
    Asin,
    Atan,
    Atn2,
    Ceiling,
    Cos,
    Cot,
    Degrees,
    Exp,
    Floor,
    Log,
    Log10,
    Pi,
    Power,
    Radians,
    Rand,
    Round,
    Sign,
    Sin,
    Sqrt,
    Square,
    Tan,
    Trunc,
    NumberBin,
    IntAdd,
    IntSub,
    IntMul,
    IntDiv,
    IntMod,
    IntBitAnd,
    IntBitOr,
    IntBitXor,
    IntBitNot,
    IntBitLeftShift,
    IntBitRightShift,
    // Arrays and objects.
    ArrayConcat,
    ArrayContains,
    ArrayContainsAny,
    ArrayContainsAll,
    ArrayLength,
    ArraySlice,
    SetIntersect,
    SetUnion,
    SetDifference,
    SetEqual,
    ArrayAvg,
    ArrayMax,
    ArrayMedian,
    ArrayMin,
    ArraySum,
    ObjectToArray,
    // Conditional.
    Iif,
    Choose,
    // Date and time.
    GetCurrentDateTime,
    GetCurrentTimestamp,
    GetCurrentTicks,
    DateTimeToTimestamp,
    TimestampToDateTime,
    DateTimeToTicks,
    TicksToDateTime,
    DateTimeAdd,
    DateTimePart,
    DateTimeDiff,
    DateTimeBin,
    DateTimeFromParts,
    Day,
    Month,
    Year,
    Now,
    Ago,
    // Items.
    DocumentId,
    // Spatial.
    StDistance,
    StWithin,
    StIntersects,
    StArea,
    StIsValid,
    StIsValidDetailed,
}

/// What a function name resolves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Callable {
    Scalar(Function),
    Aggregate(AggregateFunction),
}

/// Marks a function that takes any number of arguments from its minimum up.
const VARIADIC: usize = usize::MAX;
/// The most arguments a function that is not variadic takes (`DateTimeFromParts`).
const MAX_FIXED_ARGUMENTS: usize = 7;

/// Every built-in: upper-case name, what it is, minimum and maximum argument counts.
const CATALOG: &[(&str, Callable, usize, usize)] = {
    use AggregateFunction as A;
    use Callable::{Aggregate as Agg, Scalar as S};
    use Function as F;
    &[
        ("COUNT", Agg(A::Count), 1, 1),
        ("SUM", Agg(A::Sum), 1, 1),
        ("MIN", Agg(A::Min), 1, 1),
        ("MAX", Agg(A::Max), 1, 1),
        ("AVG", Agg(A::Avg), 1, 1),
        ("IS_ARRAY", S(F::IsArray), 1, 1),
        ("IS_BOOL", S(F::IsBool), 1, 1),
        ("IS_DEFINED", S(F::IsDefined), 1, 1),
        ("IS_NULL", S(F::IsNull), 1, 1),
        ("IS_NUMBER", S(F::IsNumber), 1, 1),
        ("IS_OBJECT", S(F::IsObject), 1, 1),
        ("IS_PRIMITIVE", S(F::IsPrimitive), 1, 1),
        ("IS_STRING", S(F::IsString), 1, 1),
        ("IS_FINITE_NUMBER", S(F::IsFiniteNumber), 1, 1),
        ("IS_INTEGER", S(F::IsInteger), 1, 1),
        ("IS_DATETIME", S(F::IsDateTime), 1, 1),
        ("CONCAT", S(F::Concat), 2, VARIADIC),
        ("CONTAINS", S(F::Contains), 2, 3),
        ("STARTSWITH", S(F::StartsWith), 2, 3),
        ("ENDSWITH", S(F::EndsWith), 2, 3),
        ("STRINGEQUALS", S(F::StringEquals), 2, 3),
        ("CONTAINS_ALL_CI", S(F::ContainsAllCi), 2, VARIADIC),
        ("CONTAINS_ALL_CS", S(F::ContainsAllCs), 2, VARIADIC),
        ("CONTAINS_ANY_CI", S(F::ContainsAnyCi), 2, VARIADIC),
        ("CONTAINS_ANY_CS", S(F::ContainsAnyCs), 2, VARIADIC),
        ("INDEX_OF", S(F::IndexOf), 2, 3),
        ("LASTINDEXOF", S(F::LastIndexOf), 2, 3),
        ("LEFT", S(F::Left), 2, 2),
        ("RIGHT", S(F::Right), 2, 2),
        ("LENGTH", S(F::Length), 1, 1),
        ("LOWER", S(F::Lower), 1, 1),
        ("UPPER", S(F::Upper), 1, 1),
        ("LTRIM", S(F::Ltrim), 1, 2),
        ("RTRIM", S(F::Rtrim), 1, 2),
        ("TRIM", S(F::Trim), 1, 2),
        ("REPLACE", S(F::Replace), 3, 3),
        ("REPLICATE", S(F::Replicate), 2, 2),
        ("REVERSE", S(F::Reverse), 1, 1),
        ("SUBSTRING", S(F::Substring), 3, 3),
        ("TOSTRING", S(F::ToString), 1, 1),
        ("STRINGTONUMBER", S(F::StringToNumber), 1, 1),
        ("STRINGTOBOOLEAN", S(F::StringToBoolean), 1, 1),
        ("STRINGTONULL", S(F::StringToNull), 1, 1),
        ("STRINGTOARRAY", S(F::StringToArray), 1, 1),
        ("STRINGTOOBJECT", S(F::StringToObject), 1, 1),
        ("REGEXMATCH", S(F::RegexMatch), 2, 3),
        ("STRINGJOIN", S(F::StringJoin), 2, 2),
        ("STRINGSPLIT", S(F::StringSplit), 2, 2),
        ("ABS", S(F::Abs), 1, 1),
        ("ACOS", S(F::Acos), 1, 1),
        ("ASIN", S(F::Asin), 1, 1),
        ("ATAN", S(F::Atan), 1, 1),
        ("ATN2", S(F::Atn2), 2, 2),
        ("CEILING", S(F::Ceiling), 1, 1),
        ("COS", S(F::Cos), 1, 1),
        ("COT", S(F::Cot), 1, 1),
        ("DEGREES", S(F::Degrees), 1, 1),
        ("EXP", S(F::Exp), 1, 1),
        ("FLOOR", S(F::Floor), 1, 1),
        ("LOG", S(F::Log), 1, 2),
        ("LOG10", S(F::Log10), 1, 1),
        ("PI", S(F::Pi), 0, 0),
        ("POWER", S(F::Power), 2, 2),
        ("RADIANS", S(F::Radians), 1, 1),
        ("RAND", S(F::Rand), 0, 0),
        ("ROUND", S(F::Round), 1, 1),
        ("SIGN", S(F::Sign), 1, 1),
        ("SIN", S(F::Sin), 1, 1),
        ("SQRT", S(F::Sqrt), 1, 1),
        ("SQUARE", S(F::Square), 1, 1),
        ("TAN", S(F::Tan), 1, 1),
        ("TRUNC", S(F::Trunc), 1, 1),
        ("NUMBERBIN", S(F::NumberBin), 1, 2),
        ("INTADD", S(F::IntAdd), 2, 2),
        ("INTSUB", S(F::IntSub), 2, 2),
        ("INTMUL", S(F::IntMul), 2, 2),
        ("INTDIV", S(F::IntDiv), 2, 2),
        ("INTMOD", S(F::IntMod), 2, 2),
        ("INTBITAND", S(F::IntBitAnd), 2, 2),
        ("INTBITOR", S(F::IntBitOr), 2, 2),
        ("INTBITXOR", S(F::IntBitXor), 2, 2),
        ("INTBITNOT", S(F::IntBitNot), 1, 1),
        ("INTBITLEFTSHIFT", S(F::IntBitLeftShift), 2, 2),
        ("INTBITRIGHTSHIFT", S(F::IntBitRightShift), 2, 2),
        ("ARRAY_CONCAT", S(F::ArrayConcat), 2, VARIADIC),
        ("ARRAY_CONTAINS", S(F::ArrayContains), 2, 3),
        ("ARRAY_CONTAINS_ANY", S(F::ArrayContainsAny), 2, VARIADIC),
        ("ARRAY_CONTAINS_ALL", S(F::ArrayContainsAll), 2, VARIADIC),
        ("ARRAY_LENGTH", S(F::ArrayLength), 1, 1),
        ("ARRAY_SLICE", S(F::ArraySlice), 2, 3),
        ("SETINTERSECT", S(F::SetIntersect), 2, 2),
        ("SETUNION", S(F::SetUnion), 2, 2),
        ("SETDIFFERENCE", S(F::SetDifference), 2, 2),
        ("SETEQUAL", S(F::SetEqual), 2, 2),
        ("ARRAY_AVG", S(F::ArrayAvg), 1, 1),
        ("ARRAY_MAX", S(F::ArrayMax), 1, 1),
        ("ARRAY_MEDIAN", S(F::ArrayMedian), 1, 1),
        ("ARRAY_MIN", S(F::ArrayMin), 1, 1),
        ("ARRAY_SUM", S(F::ArraySum), 1, 1),
        ("OBJECTTOARRAY", S(F::ObjectToArray), 1, 3),
        ("IIF", S(F::Iif), 3, 3),
        ("CHOOSE", S(F::Choose), 2, VARIADIC),
        ("GETCURRENTDATETIME", S(F::GetCurrentDateTime), 0, 0),
        ("GETCURRENTDATETIMESTATIC", S(F::GetCurrentDateTime), 0, 0),
        ("GETCURRENTTIMESTAMP", S(F::GetCurrentTimestamp), 0, 0),
        ("GETCURRENTTIMESTAMPSTATIC", S(F::GetCurrentTimestamp), 0, 0),
        ("GETCURRENTTICKS", S(F::GetCurrentTicks), 0, 0),
        ("GETCURRENTTICKSSTATIC", S(F::GetCurrentTicks), 0, 0),
        ("DATETIMETOTIMESTAMP", S(F::DateTimeToTimestamp), 1, 1),
        ("TIMESTAMPTODATETIME", S(F::TimestampToDateTime), 1, 1),
        ("DATETIMETOTICKS", S(F::DateTimeToTicks), 1, 1),
        ("TICKSTODATETIME", S(F::TicksToDateTime), 1, 1),
        ("DATETIMEADD", S(F::DateTimeAdd), 3, 3),
        ("DATETIMEPART", S(F::DateTimePart), 2, 2),
        ("DATETIMEDIFF", S(F::DateTimeDiff), 3, 3),
        ("DATETIMEBIN", S(F::DateTimeBin), 2, 4),
        ("DATETIMEFROMPARTS", S(F::DateTimeFromParts), 3, 7),
        ("DAY", S(F::Day), 1, 1),
        ("MONTH", S(F::Month), 1, 1),
        ("YEAR", S(F::Year), 1, 1),
        ("NOW", S(F::Now), 0, 2),
        ("AGO", S(F::Ago), 2, 2),
        ("DOCUMENTID", S(F::DocumentId), 1, 1),
        ("ST_DISTANCE", S(F::StDistance), 2, 2),
        ("ST_WITHIN", S(F::StWithin), 2, 2),
        ("ST_INTERSECTS", S(F::StIntersects), 2, 2),
        ("ST_AREA", S(F::StArea), 1, 1),
        ("ST_ISVALID", S(F::StIsValid), 1, 1),
        ("ST_ISVALIDDETAILED", S(F::StIsValidDetailed), 1, 1),
    ]
};

/// Functions of Cosmos DB's query language that Tributary does not run, and what kind they are:
/// a query calling one gets a 400 that says so, rather than "not a recognized function".
const UNSUPPORTED: &[(&str, &str)] = &[
    ("VECTORDISTANCE", "vector search"),
    ("FULLTEXTCONTAINS", "full-text search"),
    ("FULLTEXTCONTAINSALL", "full-text search"),
    ("FULLTEXTCONTAINSANY", "full-text search"),
    ("FULLTEXTSCORE", "full-text search"),
    ("RRF", "hybrid search"),
    ("DATETIMEFORMAT", "date formatting"),
];

/// The name a scalar function is written with (the first of its names in the catalog).
pub(crate) fn scalar_name(function: Function) -> &'static str {
    catalog_name(Callable::Scalar(function))
}

/// The name an aggregate function is written with.
pub(crate) fn aggregate_name(function: AggregateFunction) -> &'static str {
    catalog_name(Callable::Aggregate(function))
}

fn catalog_name(callable: Callable) -> &'static str {
    CATALOG
        .iter()
        .find(|(_, known, ..)| *known == callable)
        .map(|(name, ..)| *name)
        .expect("every function is in the catalog")
}

/// Resolves a function name (any case) and checks the argument count.
///
/// # Errors
///
/// [`QueryError::UnknownFunction`] for a name that is not a built-in, and
/// [`QueryError::WrongArgumentCount`] when `n_args` is outside the accepted range.
pub(crate) fn resolve(name: &str, n_args: usize) -> Result<Callable, QueryError> {
    let Some(&(_, callable, min, max)) = CATALOG
        .iter()
        .find(|(known, ..)| known.eq_ignore_ascii_case(name))
    else {
        if let Some((_, kind)) = UNSUPPORTED
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
        {
            return Err(QueryError::Invalid(format!(
                "'{name}' is a {kind} function of Azure Cosmos DB, which Tributary does not support"
            )));
        }
        return Err(QueryError::UnknownFunction(name.to_owned()));
    };
    if n_args < min || n_args > max {
        let expected = if max == VARIADIC {
            format!("{min} or more")
        } else if min == max {
            min.to_string()
        } else if max == min + 1 {
            format!("{min} or {max}")
        } else {
            format!("{min} to {max}")
        };
        return Err(QueryError::WrongArgumentCount {
            function: name.to_owned(),
            expected,
            found: n_args,
        });
    }
    Ok(callable)
}

/// Calls a scalar function on evaluated arguments. The argument count was checked by
/// [`resolve`]; missing arguments read as undefined.
///
/// # Errors
///
/// [`QueryError::InvalidRegex`] when `RegexMatch` is given a pattern or modifiers that do not
/// compile. All other type problems yield undefined.
pub(crate) fn call<'r>(
    function: Function,
    mut args: Vec<Val<'r>>,
    cx: &Context<'_>,
) -> Result<Val<'r>, QueryError> {
    use Function as F;
    // Optional arguments read as undefined; `n_args` remembers how many were given.
    let n_args = args.len();
    args.resize(n_args.max(MAX_FIXED_ARGUMENTS), Val::Undefined);
    let value = |index: usize| args[index].get();
    let text = |index: usize| args[index].as_str();
    let number = |index: usize| args[index].as_f64();
    let flag = |index: usize| -> Option<bool> {
        match &args[index] {
            Val::Undefined => Some(false),
            other => other.as_bool(),
        }
    };
    let result = match function {
        F::IsArray => Val::bool(matches!(value(0), Some(Value::Array(_)))),
        F::IsBool => Val::bool(matches!(value(0), Some(Value::Bool(_)))),
        F::IsDefined => Val::bool(value(0).is_some()),
        F::IsNull => Val::bool(matches!(value(0), Some(Value::Null))),
        F::IsNumber => Val::bool(matches!(value(0), Some(Value::Number(_)))),
        F::IsObject => Val::bool(matches!(value(0), Some(Value::Object(_)))),
        F::IsPrimitive => Val::bool(matches!(
            value(0),
            Some(Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_))
        )),
        F::IsString => Val::bool(matches!(value(0), Some(Value::String(_)))),
        F::IsFiniteNumber => Val::bool(number(0).is_some_and(f64::is_finite)),
        // A 64-bit signed integer: JSON integers in range, and integral floats within it.
        F::IsInteger => Val::bool(match value(0) {
            Some(Value::Number(n)) => {
                n.is_i64()
                    || n.as_f64().is_some_and(|f| {
                        f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64
                    })
            }
            _ => false,
        }),
        F::IsDateTime => Val::bool(text(0).and_then(DateTime::parse).is_some()),
        F::Concat => {
            let mut joined = String::new();
            for arg in &args[..n_args] {
                match arg.as_str() {
                    Some(part) if joined.len() + part.len() <= MAX_COMPUTED_STRING_BYTES => {
                        joined.push_str(part);
                    }
                    _ => return Ok(Val::Undefined),
                }
            }
            Val::string(joined)
        }
        F::Contains | F::StartsWith | F::EndsWith | F::StringEquals => {
            match (text(0), text(1), flag(2)) {
                (Some(haystack), Some(needle), Some(ignore_case)) => {
                    let (haystack, needle) = if ignore_case {
                        (haystack.to_lowercase(), needle.to_lowercase())
                    } else {
                        (haystack.to_owned(), needle.to_owned())
                    };
                    Val::bool(match function {
                        F::Contains => haystack.contains(&needle),
                        F::StartsWith => haystack.starts_with(&needle),
                        F::EndsWith => haystack.ends_with(&needle),
                        _ => haystack == needle,
                    })
                }
                _ => Val::Undefined,
            }
        }
        F::ContainsAllCi | F::ContainsAllCs | F::ContainsAnyCi | F::ContainsAnyCs => {
            contains_list(function, text(0), &args[1..n_args])
        }
        F::LastIndexOf => match (text(0), text(1)) {
            (Some(haystack), Some(needle)) => {
                let end = match &args[2] {
                    Val::Undefined => Some(usize::MAX),
                    other => other.as_f64().and_then(to_index),
                };
                end.map_or(Val::Undefined, |end| last_index_of(haystack, needle, end))
            }
            _ => Val::Undefined,
        },
        F::IndexOf => match (text(0), text(1)) {
            (Some(haystack), Some(needle)) => {
                let start = match &args[2] {
                    Val::Undefined => Some(0),
                    other => other.as_f64().and_then(to_index),
                };
                match start {
                    Some(start) => index_of(haystack, needle, start),
                    None => Val::Undefined,
                }
            }
            _ => Val::Undefined,
        },
        F::Left | F::Right => match (text(0), number(1)) {
            (Some(source), Some(count)) => {
                let count = clamp_count(count);
                let n_chars = source.chars().count();
                let taken: String = if function == F::Left {
                    source.chars().take(count).collect()
                } else {
                    source.chars().skip(n_chars.saturating_sub(count)).collect()
                };
                Val::string(taken)
            }
            _ => Val::Undefined,
        },
        F::Length => text(0).map_or(Val::Undefined, |source| {
            Val::from_option(Some(Value::from(source.chars().count())))
        }),
        F::Lower => map_text(text(0), str::to_lowercase),
        F::Upper => map_text(text(0), str::to_uppercase),
        F::Ltrim | F::Rtrim | F::Trim => match (text(0), &args[1]) {
            (Some(source), Val::Undefined) => {
                Val::string(trim(function, source, char::is_whitespace))
            }
            (Some(source), characters) => characters.as_str().map_or(Val::Undefined, |set| {
                Val::string(trim(function, source, |c| set.contains(c)))
            }),
            (None, _) => Val::Undefined,
        },
        F::Reverse => map_text(text(0), |source| source.chars().rev().collect()),
        F::Replace => match (text(0), text(1), text(2)) {
            (Some(source), Some(""), Some(_)) => Val::string(source.to_owned()),
            (Some(source), Some(find), Some(replacement)) => {
                let n_found = source.matches(find).count();
                let n_bytes = (source.len() - n_found * find.len())
                    .saturating_add(n_found.saturating_mul(replacement.len()));
                if n_bytes > MAX_COMPUTED_STRING_BYTES {
                    Val::Undefined
                } else {
                    Val::string(source.replace(find, replacement))
                }
            }
            _ => Val::Undefined,
        },
        F::Replicate => match (text(0), number(1)) {
            (Some(source), Some(times)) if times >= 0.0 => {
                let times = clamp_count(times);
                let n_chars = source.chars().count();
                if n_chars.saturating_mul(times) > MAX_REPLICATE_CHARS {
                    Val::Undefined
                } else {
                    Val::string(source.repeat(times))
                }
            }
            _ => Val::Undefined,
        },
        F::Substring => match (text(0), number(1), number(2)) {
            (Some(source), Some(start), Some(length)) => {
                let start = clamp_count(start);
                let length = clamp_count(length);
                Val::string(source.chars().skip(start).take(length).collect())
            }
            _ => Val::Undefined,
        },
        F::ToString => value(0).map_or(Val::Undefined, |inner| Val::string(to_text(inner))),
        F::StringToNumber => parse_json_text(text(0), Value::is_number),
        F::StringToBoolean => parse_json_text(text(0), Value::is_boolean),
        F::StringToNull => parse_json_text(text(0), Value::is_null),
        F::StringToArray => parse_json_text(text(0), Value::is_array),
        F::StringToObject => parse_json_text(text(0), Value::is_object),
        F::RegexMatch => {
            let modifiers = match &args[2] {
                Val::Undefined => Some(""),
                other => other.as_str(),
            };
            match (text(0), text(1), modifiers) {
                (Some(source), Some(pattern), Some(modifiers)) => {
                    Val::bool(cx.regex_is_match(pattern, modifiers, source)?)
                }
                _ => Val::Undefined,
            }
        }
        F::Abs => math(number(0), f64::abs),
        F::Acos => math(number(0), f64::acos),
        F::Asin => math(number(0), f64::asin),
        F::Atan => math(number(0), f64::atan),
        F::Atn2 => math2(number(0), number(1), |x, y| y.atan2(x)),
        F::Ceiling => math(number(0), f64::ceil),
        F::Cos => math(number(0), f64::cos),
        F::Cot => math(number(0), |x| 1.0 / x.tan()),
        F::Degrees => math(number(0), f64::to_degrees),
        F::Exp => math(number(0), f64::exp),
        F::Floor => math(number(0), f64::floor),
        F::Log => match &args[1] {
            Val::Undefined => math(number(0), f64::ln),
            base => math2(number(0), base.as_f64(), f64::log),
        },
        F::Log10 => math(number(0), f64::log10),
        F::Pi => Val::number(std::f64::consts::PI),
        F::Power => math2(number(0), number(1), f64::powf),
        F::Radians => math(number(0), f64::to_radians),
        F::Rand => Val::number(cx.random()),
        // Rust's round() rounds half away from zero, as Cosmos' ROUND does.
        F::Round => math(number(0), f64::round),
        F::Sign => math(number(0), |x| {
            if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }),
        F::Sin => math(number(0), f64::sin),
        F::Sqrt => math(number(0), f64::sqrt),
        F::Square => math(number(0), |x| x * x),
        F::Tan => math(number(0), f64::tan),
        F::Trunc => math(number(0), f64::trunc),
        F::NumberBin => {
            let bin = match &args[1] {
                Val::Undefined => Some(1.0),
                other => other.as_f64(),
            };
            math2(number(0), bin.filter(|bin| *bin != 0.0), |x, bin| {
                (x / bin).floor() * bin
            })
        }
        F::IntAdd => int2(value(0), value(1), i64::checked_add),
        F::IntSub => int2(value(0), value(1), i64::checked_sub),
        F::IntMul => int2(value(0), value(1), i64::checked_mul),
        F::IntDiv => int2(value(0), value(1), i64::checked_div),
        F::IntMod => int2(value(0), value(1), i64::checked_rem),
        F::IntBitAnd => int2(value(0), value(1), |a, b| Some(a & b)),
        F::IntBitOr => int2(value(0), value(1), |a, b| Some(a | b)),
        F::IntBitXor => int2(value(0), value(1), |a, b| Some(a ^ b)),
        F::IntBitNot => value(0)
            .and_then(as_integer)
            .map_or(Val::Undefined, |a| Val::Owned(Value::from(!a))),
        F::IntBitLeftShift => int2(value(0), value(1), |a, b| {
            u32::try_from(b).ok().and_then(|b| a.checked_shl(b))
        }),
        F::IntBitRightShift => int2(value(0), value(1), |a, b| {
            u32::try_from(b).ok().and_then(|b| a.checked_shr(b))
        }),
        F::ArrayConcat => {
            let mut joined = Vec::new();
            for arg in &args[..n_args] {
                match arg.as_array() {
                    Some(items) => joined.extend(items.iter().cloned()),
                    None => return Ok(Val::Undefined),
                }
            }
            Val::Owned(Value::Array(joined))
        }
        F::ArrayContains => match (args[0].as_array(), value(1), flag(2)) {
            (Some(items), Some(needle), Some(partial)) => Val::bool(
                items
                    .iter()
                    .any(|item| array_item_matches(item, needle, partial)),
            ),
            _ => Val::Undefined,
        },
        F::ArrayContainsAny | F::ArrayContainsAll => match args[0].as_array() {
            Some(items) => {
                let found = |needle: &Val<'_>| {
                    needle
                        .get()
                        .is_some_and(|needle| items.iter().any(|item| deep_equal(item, needle)))
                };
                let mut needles = args[1..n_args].iter();
                if function == F::ArrayContainsAny {
                    Val::bool(needles.any(found))
                } else {
                    Val::bool(needles.all(found))
                }
            }
            None => Val::Undefined,
        },
        F::StringJoin => match (args[0].as_array(), text(1)) {
            (Some(items), Some(separator)) => {
                let parts: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                match parts {
                    Some(parts)
                        if parts
                            .iter()
                            .map(|part| part.len() + separator.len())
                            .sum::<usize>()
                            <= MAX_COMPUTED_STRING_BYTES =>
                    {
                        Val::string(parts.join(separator))
                    }
                    _ => Val::Undefined,
                }
            }
            _ => Val::Undefined,
        },
        F::StringSplit => match (text(0), text(1)) {
            (Some(source), Some("")) => Val::Owned(Value::Array(vec![Value::from(source)])),
            (Some(source), Some(delimiter)) => Val::Owned(Value::Array(
                source.split(delimiter).map(Value::from).collect(),
            )),
            _ => Val::Undefined,
        },
        F::ArrayLength => args[0]
            .as_array()
            .map_or(Val::Undefined, |items| Val::Owned(Value::from(items.len()))),
        F::ArraySlice => array_slice(&args),
        F::SetIntersect | F::SetUnion => match (args[0].as_array(), args[1].as_array()) {
            (Some(left), Some(right)) => {
                let mut result: Vec<Value> = Vec::new();
                let mut push_distinct = |item: &Value| {
                    if !result.iter().any(|seen| deep_equal(seen, item)) {
                        result.push(item.clone());
                    }
                };
                if function == F::SetUnion {
                    left.iter().chain(right).for_each(&mut push_distinct);
                } else {
                    left.iter()
                        .filter(|item| right.iter().any(|other| deep_equal(item, other)))
                        .for_each(&mut push_distinct);
                }
                Val::Owned(Value::Array(result))
            }
            _ => Val::Undefined,
        },
        F::SetDifference | F::SetEqual => match (args[0].as_array(), args[1].as_array()) {
            (Some(left), Some(right)) => {
                let contains = |items: &[Value], item: &Value| {
                    items.iter().any(|other| deep_equal(item, other))
                };
                if function == F::SetEqual {
                    Val::bool(
                        left.iter().all(|item| contains(right, item))
                            && right.iter().all(|item| contains(left, item)),
                    )
                } else {
                    let mut result: Vec<Value> = Vec::new();
                    for item in left {
                        if !contains(right, item) && !contains(&result, item) {
                            result.push(item.clone());
                        }
                    }
                    Val::Owned(Value::Array(result))
                }
            }
            _ => Val::Undefined,
        },
        F::ArrayAvg | F::ArrayMedian | F::ArraySum => args[0]
            .as_array()
            .map_or(Val::Undefined, |items| array_numbers(function, items)),
        F::ArrayMax | F::ArrayMin => args[0].as_array().map_or(Val::Undefined, |items| {
            let wanted = if function == F::ArrayMax {
                Ordering::Greater
            } else {
                Ordering::Less
            };
            let mut state = Ok(None);
            for item in items {
                keep_extreme(&mut state, item, wanted);
            }
            match state {
                Ok(Some(extreme)) => Val::Owned(extreme),
                _ => Val::Undefined,
            }
        }),
        F::ObjectToArray => object_to_array(&args),
        F::Iif => {
            let chosen = if args[0].is_true() { 1 } else { 2 };
            std::mem::replace(&mut args[chosen], Val::Undefined)
        }
        // One-based: CHOOSE(2, 'a', 'b') is 'b'; an index outside the list is undefined.
        F::Choose => match number(0) {
            Some(index) if index.fract() == 0.0 && index >= 1.0 && index < n_args as f64 => {
                std::mem::replace(&mut args[index as usize], Val::Undefined)
            }
            _ => Val::Undefined,
        },
        F::GetCurrentDateTime => DateTime::from_ticks(cx.now_ticks)
            .map_or(Val::Undefined, |now| Val::string(now.format())),
        F::GetCurrentTimestamp => integer(cx.now_ticks.div_euclid(TICKS_PER_MILLISECOND)),
        F::GetCurrentTicks => integer(cx.now_ticks),
        F::DateTimeToTimestamp => text(0)
            .and_then(DateTime::parse)
            .and_then(DateTime::to_ticks)
            .map_or(Val::Undefined, |ticks| {
                integer(ticks.div_euclid(TICKS_PER_MILLISECOND))
            }),
        F::DateTimeToTicks => text(0)
            .and_then(DateTime::parse)
            .and_then(DateTime::to_ticks)
            .map_or(Val::Undefined, integer),
        F::TimestampToDateTime => number(0)
            .and_then(|millis| float_to_i64(millis.trunc()))
            .and_then(|millis| millis.checked_mul(TICKS_PER_MILLISECOND))
            .and_then(DateTime::from_ticks)
            .map_or(Val::Undefined, |moment| Val::string(moment.format())),
        F::TicksToDateTime => number(0)
            .and_then(|ticks| float_to_i64(ticks.trunc()))
            .and_then(DateTime::from_ticks)
            .map_or(Val::Undefined, |moment| Val::string(moment.format())),
        F::DateTimeAdd => {
            let part = text(0).and_then(DatePart::parse);
            let amount = number(1).and_then(|amount| float_to_i64(amount.trunc()));
            let moment = text(2).and_then(DateTime::parse);
            match (part, amount, moment) {
                (Some(part), Some(amount), Some(moment)) => moment
                    .add(part, amount)
                    .map_or(Val::Undefined, |sum| Val::string(sum.format())),
                _ => Val::Undefined,
            }
        }
        F::DateTimePart => {
            let part = text(0).and_then(DatePart::parse);
            let moment = text(1).and_then(DateTime::parse);
            match (part, moment) {
                (Some(part), Some(moment)) => integer(moment.part(part)),
                _ => Val::Undefined,
            }
        }
        F::DateTimeDiff => {
            let part = text(0).and_then(DatePart::parse);
            let start = text(1).and_then(DateTime::parse);
            let end = text(2).and_then(DateTime::parse);
            match (part, start, end) {
                (Some(part), Some(start), Some(end)) => {
                    start.diff(part, end).map_or(Val::Undefined, integer)
                }
                _ => Val::Undefined,
            }
        }
        F::DateTimeBin => {
            let moment = text(0).and_then(DateTime::parse);
            let part = text(1).and_then(DatePart::parse);
            let size = match &args[2] {
                Val::Undefined => Some(1),
                other => other.get().and_then(as_integer),
            };
            let origin = match &args[3] {
                Val::Undefined => DateTime::from_ticks(0),
                other => other.as_str().and_then(DateTime::parse),
            };
            match (moment, part, size, origin) {
                (Some(moment), Some(part), Some(size), Some(origin)) => moment
                    .bin(part, size, origin)
                    .map_or(Val::Undefined, |start| Val::string(start.format())),
                _ => Val::Undefined,
            }
        }
        F::DateTimeFromParts => {
            let mut parts = [0i64; MAX_FIXED_ARGUMENTS];
            for (index, part) in parts.iter_mut().enumerate() {
                match (&args[index], index < 3) {
                    (Val::Undefined, false) => {}
                    (given, _) => match given.get().and_then(as_integer) {
                        Some(number) => *part = number,
                        None => return Ok(Val::Undefined),
                    },
                }
            }
            DateTime::from_parts(parts)
                .map_or(Val::Undefined, |moment| Val::string(moment.format()))
        }
        F::Day | F::Month | F::Year => {
            let part = match function {
                F::Day => DatePart::Day,
                F::Month => DatePart::Month,
                _ => DatePart::Year,
            };
            text(0)
                .and_then(DateTime::parse)
                .map_or(Val::Undefined, |moment| integer(moment.part(part)))
        }
        F::Now | F::Ago => {
            let now = DateTime::from_ticks(cx.now_ticks);
            let shifted = if n_args == 0 {
                now
            } else {
                let part = text(0).and_then(DatePart::parse);
                let amount = number(1)
                    .and_then(|amount| float_to_i64(amount.trunc()))
                    .and_then(|amount| {
                        if function == F::Ago {
                            amount.checked_neg()
                        } else {
                            Some(amount)
                        }
                    });
                match (now, part, amount) {
                    (Some(now), Some(part), Some(amount)) => now.add(part, amount),
                    _ => None,
                }
            };
            shifted.map_or(Val::Undefined, |moment| Val::string(moment.format()))
        }
        F::DocumentId => {
            document_id(value(0)).map_or(Val::Undefined, |id| Val::Owned(Value::from(id)))
        }
        F::StDistance => spatial::distance(value(0), value(1)).map_or(Val::Undefined, Val::number),
        F::StWithin => Val::from_option(spatial::within(value(0), value(1)).map(Value::Bool)),
        F::StIntersects => {
            Val::from_option(spatial::intersects(value(0), value(1)).map(Value::Bool))
        }
        F::StArea => Val::from_option(spatial::area(value(0))),
        F::StIsValid => Val::Owned(spatial::is_valid(value(0))),
        F::StIsValidDetailed => Val::Owned(spatial::is_valid_detailed(value(0))),
    };
    Ok(result)
}

fn integer<'r>(value: i64) -> Val<'r> {
    Val::Owned(Value::from(value))
}

fn map_text<'r>(source: Option<&str>, map: impl FnOnce(&str) -> String) -> Val<'r> {
    source.map_or(Val::Undefined, |source| Val::string(map(source)))
}

fn math<'r>(x: Option<f64>, op: impl FnOnce(f64) -> f64) -> Val<'r> {
    x.map_or(Val::Undefined, |x| Val::number(op(x)))
}

fn math2<'r>(x: Option<f64>, y: Option<f64>, op: impl FnOnce(f64, f64) -> f64) -> Val<'r> {
    match (x, y) {
        (Some(x), Some(y)) => Val::number(op(x, y)),
        _ => Val::Undefined,
    }
}

/// An integral JSON number that fits an i64.
fn as_integer(value: &Value) -> Option<i64> {
    if let Some(integer) = value.as_i64() {
        return Some(integer);
    }
    value
        .as_f64()
        .filter(|float| float.fract() == 0.0)
        .and_then(float_to_i64)
}

fn float_to_i64(value: f64) -> Option<i64> {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if value.is_finite() && (-LIMIT..LIMIT).contains(&value) {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the value was checked to be within the i64 range"
        )]
        Some(value as i64)
    } else {
        None
    }
}

fn int2<'r>(
    a: Option<&Value>,
    b: Option<&Value>,
    op: impl FnOnce(i64, i64) -> Option<i64>,
) -> Val<'r> {
    match (a.and_then(as_integer), b.and_then(as_integer)) {
        (Some(a), Some(b)) => op(a, b).map_or(Val::Undefined, integer),
        _ => Val::Undefined,
    }
}

/// A count argument (lengths, positions): truncated, negative as 0, huge values capped.
fn clamp_count(value: f64) -> usize {
    if value.is_nan() || value <= 0.0 {
        return 0;
    }
    let capped = value.min(u32::MAX.into());
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "the value is positive and capped to the u32 range"
    )]
    let count = capped as u32;
    usize::try_from(count).unwrap_or(usize::MAX)
}

/// A non-negative integral index, or `None`.
fn to_index(value: f64) -> Option<usize> {
    (value >= 0.0 && value.fract() == 0.0).then(|| clamp_count(value))
}

/// `INDEX_OF`: the character position of `needle` in `haystack` at or after `start`, or -1.
fn index_of<'r>(haystack: &str, needle: &str, start: usize) -> Val<'r> {
    let Some((byte_start, _)) = haystack
        .char_indices()
        .chain(std::iter::once((haystack.len(), ' ')))
        .nth(start)
    else {
        return integer(-1);
    };
    match haystack[byte_start..].find(needle) {
        Some(byte_offset) => {
            let position = start
                + haystack[byte_start..byte_start + byte_offset]
                    .chars()
                    .count();
            Val::Owned(Value::from(position))
        }
        None => integer(-1),
    }
}

/// `LASTINDEXOF`: the character position of the last `needle` in `haystack` that ends at or
/// before character `end` (inclusive), or -1.
fn last_index_of<'r>(haystack: &str, needle: &str, end: usize) -> Val<'r> {
    let byte_end = haystack
        .char_indices()
        .nth(end.saturating_add(1))
        .map_or(haystack.len(), |(byte, _)| byte);
    match haystack[..byte_end].rfind(needle) {
        Some(byte_offset) => Val::Owned(Value::from(haystack[..byte_offset].chars().count())),
        None => integer(-1),
    }
}

/// `CONTAINS_ALL_CI` and its kin: `CONTAINS` of each needle joined by `AND` (all) or `OR`
/// (any) in three-valued logic, so an undefined needle makes the answer undefined unless the
/// others decide it.
fn contains_list<'r>(function: Function, haystack: Option<&str>, needles: &[Val<'_>]) -> Val<'r> {
    let Some(haystack) = haystack else {
        return Val::Undefined;
    };
    let ignore_case = matches!(function, Function::ContainsAllCi | Function::ContainsAnyCi);
    let want_all = matches!(function, Function::ContainsAllCi | Function::ContainsAllCs);
    let haystack = if ignore_case {
        haystack.to_lowercase()
    } else {
        haystack.to_owned()
    };
    let mut saw_undefined = false;
    for needle in needles {
        let found = match needle.as_str() {
            Some(needle) if ignore_case => haystack.contains(&needle.to_lowercase()),
            Some(needle) => haystack.contains(needle),
            None => {
                saw_undefined = true;
                continue;
            }
        };
        if found != want_all {
            return Val::bool(found);
        }
    }
    if saw_undefined {
        Val::Undefined
    } else {
        Val::bool(want_all)
    }
}

/// `LTRIM`, `RTRIM` and `TRIM`: drops the leading, trailing or both runs of characters that
/// `drop` matches.
fn trim(function: Function, source: &str, drop: impl Fn(char) -> bool) -> String {
    let trimmed = match function {
        Function::Ltrim => source.trim_start_matches(&drop),
        Function::Rtrim => source.trim_end_matches(&drop),
        _ => source.trim_matches(&drop),
    };
    trimmed.to_owned()
}

/// `ARRAY_AVG`, `ARRAY_MEDIAN` and `ARRAY_SUM` over an array of numbers; any other item makes
/// the result undefined, and so does an empty array (except for the sum, which is 0).
fn array_numbers<'r>(function: Function, items: &[Value]) -> Val<'r> {
    let Some(mut numbers) = items
        .iter()
        .map(Value::as_f64)
        .collect::<Option<Vec<f64>>>()
    else {
        return Val::Undefined;
    };
    let n_numbers = numbers.len();
    #[expect(
        clippy::cast_precision_loss,
        reason = "array lengths stay far below 2^53"
    )]
    let count = n_numbers as f64;
    let sum: f64 = numbers.iter().sum();
    match function {
        Function::ArraySum => Val::number(sum),
        _ if n_numbers == 0 => Val::Undefined,
        Function::ArrayAvg => Val::number(sum / count),
        _ => {
            numbers.sort_by(f64::total_cmp);
            let middle = n_numbers / 2;
            if n_numbers % 2 == 1 {
                Val::number(numbers[middle])
            } else {
                Val::number((numbers[middle - 1] + numbers[middle]) / 2.0)
            }
        }
    }
}

/// `DOCUMENTID(item)`: the item's number within its container, read from the last eight bytes
/// of its `_rid` (little-endian, as Cosmos DB lays resource ids out). Undefined for anything
/// without a well-formed item `_rid`.
fn document_id(item: Option<&Value>) -> Option<u64> {
    use base64::Engine as _;
    let rid = item?.get("_rid")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(rid.replace('-', "/"))
        .ok()?;
    let document: [u8; 8] = bytes.get(8..16)?.try_into().ok()?;
    (bytes.len() == 16).then(|| u64::from_le_bytes(document))
}

/// `TOSTRING`: strings as they are, everything else as compact JSON text, numbers the way
/// JavaScript prints them.
fn to_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => match number.as_f64() {
            Some(float) if number.is_f64() => {
                number_value(float).map_or_else(|| number.to_string(), |shown| shown.to_string())
            }
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

/// Parses a string argument as JSON text and keeps the result if it has the wanted type.
fn parse_json_text<'r>(source: Option<&str>, wanted: impl Fn(&Value) -> bool) -> Val<'r> {
    match source
        .and_then(|source| serde_json::from_str::<Value>(source.trim()).ok())
        .filter(|parsed| wanted(parsed))
    {
        // Numbers print the way query results do: "1.0" becomes 1.
        Some(Value::Number(number)) => number
            .as_f64()
            .filter(|_| number.is_f64())
            .map_or(Val::Owned(Value::Number(number)), Val::number),
        Some(other) => Val::Owned(other),
        None => Val::Undefined,
    }
}

/// `ARRAY_CONTAINS` matching: deep equality, or with `partial` an object item that holds every
/// property of an object needle.
fn array_item_matches(item: &Value, needle: &Value, partial: bool) -> bool {
    match (partial, item, needle) {
        (true, Value::Object(item), Value::Object(needle)) => needle
            .iter()
            .all(|(key, wanted)| item.get(key).is_some_and(|have| deep_equal(have, wanted))),
        _ => deep_equal(item, needle),
    }
}

/// `ARRAY_SLICE(array, start [, length])`: a negative start counts from the end.
fn array_slice<'r>(args: &[Val<'r>]) -> Val<'r> {
    let (Some(items), Some(start)) = (args[0].as_array(), args[1].as_f64()) else {
        return Val::Undefined;
    };
    let n_items = items.len();
    let start = if start < 0.0 {
        n_items.saturating_sub(clamp_count(-start))
    } else {
        clamp_count(start).min(n_items)
    };
    let length = match &args[2] {
        Val::Undefined => n_items - start,
        other => match other.as_f64() {
            Some(length) => clamp_count(length),
            None => return Val::Undefined,
        },
    };
    let end = start.saturating_add(length).min(n_items);
    Val::Owned(Value::Array(items[start..end].to_vec()))
}

/// `OBJECTTOARRAY(object [, key_name [, value_name]])`.
fn object_to_array<'r>(args: &[Val<'r>]) -> Val<'r> {
    let Some(Value::Object(map)) = args[0].get() else {
        return Val::Undefined;
    };
    let name = |index: usize, default: &'static str| -> Option<String> {
        match &args[index] {
            Val::Undefined => Some(default.to_owned()),
            other => other.as_str().map(str::to_owned),
        }
    };
    let (Some(key_name), Some(value_name)) = (name(1, "k"), name(2, "v")) else {
        return Val::Undefined;
    };
    let entries = map
        .iter()
        .map(|(key, value)| {
            let mut entry = Map::new();
            entry.insert(key_name.clone(), Value::String(key.clone()));
            entry.insert(value_name.clone(), value.clone());
            Value::Object(entry)
        })
        .collect();
    Val::Owned(Value::Array(entries))
}

/// Folds one value into a running `MIN` (`wanted` = Less) or `MAX` (Greater).
fn keep_extreme(state: &mut Result<Option<Value>, ()>, value: &Value, wanted: Ordering) {
    if matches!(value, Value::Array(_) | Value::Object(_)) {
        *state = Err(());
        return;
    }
    if let Ok(best) = state {
        let replace = best
            .as_ref()
            .is_none_or(|current| sort_order(Some(value), Some(current)) == wanted);
        if replace {
            *best = Some(value.clone());
        }
    }
}

/// Running state of one aggregate over a group.
#[derive(Debug, Clone)]
pub(crate) enum Accumulator {
    Count(u64),
    /// Sum and count of numbers so far; `None` once a non-number was seen.
    Sum(Option<(f64, u64)>),
    Avg(Option<(f64, u64)>),
    /// Extreme value so far; `Err(())` once an array or object was seen.
    Min(Result<Option<Value>, ()>),
    Max(Result<Option<Value>, ()>),
}

impl Accumulator {
    pub(crate) fn new(function: AggregateFunction) -> Accumulator {
        match function {
            AggregateFunction::Count => Accumulator::Count(0),
            AggregateFunction::Sum => Accumulator::Sum(Some((0.0, 0))),
            AggregateFunction::Avg => Accumulator::Avg(Some((0.0, 0))),
            AggregateFunction::Min => Accumulator::Min(Ok(None)),
            AggregateFunction::Max => Accumulator::Max(Ok(None)),
        }
    }

    /// Adds one row's argument value. Undefined values are skipped by every aggregate.
    pub(crate) fn add(&mut self, value: &Val<'_>) {
        let Some(value) = value.get() else {
            return;
        };
        match self {
            Accumulator::Count(count) => *count += 1,
            Accumulator::Sum(state) | Accumulator::Avg(state) => {
                *state = match (*state, value.as_f64()) {
                    (Some((sum, count)), Some(number)) => Some((sum + number, count + 1)),
                    _ => None,
                };
            }
            Accumulator::Min(state) => keep_extreme(state, value, Ordering::Less),
            Accumulator::Max(state) => keep_extreme(state, value, Ordering::Greater),
        }
    }

    /// The aggregate's result; undefined where Cosmos returns no value.
    pub(crate) fn finish(self) -> Val<'static> {
        match self {
            Accumulator::Count(count) => Val::Owned(Value::from(count)),
            Accumulator::Sum(Some((sum, _))) => Val::number(sum),
            Accumulator::Avg(Some((sum, count))) if count > 0 => {
                #[expect(clippy::cast_precision_loss, reason = "row counts stay far below 2^53")]
                let count = count as f64;
                Val::number(sum / count)
            }
            Accumulator::Min(Ok(Some(value))) | Accumulator::Max(Ok(Some(value))) => {
                Val::Owned(value)
            }
            Accumulator::Sum(None)
            | Accumulator::Avg(_)
            | Accumulator::Min(_)
            | Accumulator::Max(_) => Val::Undefined,
        }
    }
}
