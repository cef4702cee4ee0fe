//! Query text from a parsed (unbound) query: what the query planner writes into the
//! rewritten queries it hands to the SDKs, which send them back to be parsed again.
//!
//! Every compound expression is printed in parentheses, so the text parses back to the same
//! tree whatever the operators' precedence.

use std::fmt::{self, Write};

use serde_json::Value;

use crate::ast::{
    BinaryOp, Collection, Count, Expr, OrderItem, PathStep, SelectQuery, Selection, Source, UnaryOp,
};
use crate::functions;

/// The text of a whole query.
pub(crate) fn query(query: &SelectQuery) -> String {
    let mut out = String::new();
    write_query(&mut out, query).expect("writing to a String cannot fail");
    out
}

/// The text of one expression.
pub(crate) fn expr(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr).expect("writing to a String cannot fail");
    out
}

fn write_query(out: &mut String, query: &SelectQuery) -> fmt::Result {
    out.push_str("SELECT ");
    if query.distinct {
        out.push_str("DISTINCT ");
    }
    if let Some(top) = &query.top {
        out.push_str("TOP ");
        write_count(out, top)?;
        out.push(' ');
    }
    write_selection(out, &query.select)?;
    write_sources(out, &query.sources)?;
    if let Some(filter) = &query.filter {
        out.push_str(" WHERE ");
        write_expr(out, filter)?;
    }
    write_group_by(out, &query.group_by)?;
    write_order_by(out, &query.order_by)?;
    if let Some(offset_limit) = &query.offset_limit {
        out.push_str(" OFFSET ");
        write_count(out, &offset_limit.offset)?;
        out.push_str(" LIMIT ");
        write_count(out, &offset_limit.limit)?;
    }
    Ok(())
}

fn write_count(out: &mut String, count: &Count) -> fmt::Result {
    match count {
        Count::Literal(n) => write!(out, "{n}"),
        Count::Parameter(name) => {
            out.push_str(name);
            Ok(())
        }
    }
}

fn write_selection(out: &mut String, selection: &Selection) -> fmt::Result {
    match selection {
        Selection::Star => out.push('*'),
        Selection::Value(value) => {
            out.push_str("VALUE ");
            write_expr(out, value)?;
        }
        Selection::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, &item.expr)?;
                // Names the parser gives unnamed items (`$1`) are given again, in the same
                // order, when the text is parsed back; they cannot be written after `AS`.
                if is_identifier(&item.name) {
                    out.push_str(" AS ");
                    out.push_str(&item.name);
                }
            }
        }
    }
    Ok(())
}

fn write_sources(out: &mut String, sources: &[Source]) -> fmt::Result {
    for (i, source) in sources.iter().enumerate() {
        out.push_str(if i == 0 { " FROM " } else { " JOIN " });
        if source.iterate {
            out.push_str(&source.alias);
            out.push_str(" IN ");
            write_collection(out, &source.collection)?;
        } else if is_bare_alias(source) {
            out.push_str(&source.alias);
        } else {
            write_collection(out, &source.collection)?;
            out.push_str(" AS ");
            out.push_str(&source.alias);
        }
    }
    Ok(())
}

/// True for a source written as its alias alone (`FROM c`).
fn is_bare_alias(source: &Source) -> bool {
    matches!(
        &source.collection,
        Collection::Path { root: Expr::Ident { name, .. }, steps }
            if steps.is_empty() && *name == source.alias
    )
}

fn write_collection(out: &mut String, collection: &Collection) -> fmt::Result {
    match collection {
        Collection::Path { root, steps } => {
            write_expr(out, root)?;
            for step in steps {
                match step {
                    PathStep::Property(name) => write_property(out, name)?,
                    PathStep::Index(index) => write!(out, "[{index}]")?,
                }
            }
            Ok(())
        }
        Collection::Subquery(subquery) => {
            out.push('(');
            write_query(out, subquery)?;
            out.push(')');
            Ok(())
        }
    }
}

fn write_group_by(out: &mut String, keys: &[Expr]) -> fmt::Result {
    for (i, key) in keys.iter().enumerate() {
        out.push_str(if i == 0 { " GROUP BY " } else { ", " });
        write_expr(out, key)?;
    }
    Ok(())
}

fn write_order_by(out: &mut String, items: &[OrderItem]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        out.push_str(if i == 0 { " ORDER BY " } else { ", " });
        write_expr(out, &item.expr)?;
        out.push_str(if item.descending { " DESC" } else { " ASC" });
    }
    Ok(())
}

/// `.name` where `name` is an identifier, `["name"]` otherwise.
fn write_property(out: &mut String, name: &str) -> fmt::Result {
    if is_identifier(name) {
        out.push('.');
        out.push_str(name);
        Ok(())
    } else {
        write!(out, "[{}]", Value::from(name))
    }
}

/// True for a name that can be written bare: a letter or `_`, then letters, digits and `_`,
/// and not a keyword.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !crate::parser::is_reserved(name)
}

fn write_list(out: &mut String, items: &[Expr], separator: &str) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        write_expr(out, item)?;
    }
    Ok(())
}

fn write_subquery(out: &mut String, keyword: &str, query: &SelectQuery) -> fmt::Result {
    out.push_str(keyword);
    out.push('(');
    write_query(out, query)?;
    out.push(')');
    Ok(())
}

fn write_expr(out: &mut String, expr: &Expr) -> fmt::Result {
    match expr {
        Expr::Literal(value) => write!(out, "{value}"),
        Expr::Undefined => {
            out.push_str("undefined");
            Ok(())
        }
        Expr::Parameter(name) => {
            out.push_str(name);
            Ok(())
        }
        Expr::Ident { name, .. } => {
            out.push_str(name);
            Ok(())
        }
        Expr::Var { .. } => unreachable!("queries are printed before they are bound"),
        Expr::Property(inner, name) => {
            write_expr(out, inner)?;
            write_property(out, name)
        }
        Expr::Index(inner, index) => {
            write_expr(out, inner)?;
            out.push('[');
            write_expr(out, index)?;
            out.push(']');
            Ok(())
        }
        Expr::Array(items) => {
            out.push('[');
            write_list(out, items, ", ")?;
            out.push(']');
            Ok(())
        }
        Expr::Object(properties) => {
            out.push('{');
            for (i, (name, value)) in properties.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write!(out, "{}: ", Value::from(name.as_str()))?;
                write_expr(out, value)?;
            }
            out.push('}');
            Ok(())
        }
        Expr::Unary(op, operand) => {
            out.push_str(match op {
                UnaryOp::Not => "(NOT ",
                UnaryOp::Minus => "(-",
                UnaryOp::Plus => "(+",
                UnaryOp::BitNot => "(~",
            });
            write_expr(out, operand)?;
            out.push(')');
            Ok(())
        }
        Expr::Binary(op, left, right) => {
            out.push('(');
            write_expr(out, left)?;
            write!(out, " {} ", binary_symbol(*op))?;
            write_expr(out, right)?;
            out.push(')');
            Ok(())
        }
        Expr::And(terms) | Expr::Or(terms) => {
            let separator = if matches!(expr, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            out.push('(');
            write_list(out, terms, separator)?;
            out.push(')');
            Ok(())
        }
        Expr::Between {
            value,
            low,
            high,
            negated,
        } => {
            out.push('(');
            write_expr(out, value)?;
            out.push_str(if *negated {
                " NOT BETWEEN "
            } else {
                " BETWEEN "
            });
            write_expr(out, low)?;
            out.push_str(" AND ");
            write_expr(out, high)?;
            out.push(')');
            Ok(())
        }
        Expr::In {
            value,
            list,
            negated,
        } => {
            out.push('(');
            write_expr(out, value)?;
            out.push_str(if *negated { " NOT IN (" } else { " IN (" });
            write_list(out, list, ", ")?;
            out.push_str("))");
            Ok(())
        }
        Expr::Like {
            value,
            pattern,
            escape,
            negated,
        } => {
            out.push('(');
            write_expr(out, value)?;
            out.push_str(if *negated { " NOT LIKE " } else { " LIKE " });
            write_expr(out, pattern)?;
            if let Some(escape) = escape {
                write!(out, " ESCAPE {}", Value::from(escape.to_string()))?;
            }
            out.push(')');
            Ok(())
        }
        Expr::Conditional {
            condition,
            then,
            otherwise,
        } => {
            out.push('(');
            write_expr(out, condition)?;
            out.push_str(" ? ");
            write_expr(out, then)?;
            out.push_str(" : ");
            write_expr(out, otherwise)?;
            out.push(')');
            Ok(())
        }
        Expr::Call { function, args } => {
            out.push_str(functions::scalar_name(*function));
            out.push('(');
            write_list(out, args, ", ")?;
            out.push(')');
            Ok(())
        }
        Expr::UserFunctionCall { name, args } => {
            out.push_str("udf.");
            out.push_str(name);
            out.push('(');
            write_list(out, args, ", ")?;
            out.push(')');
            Ok(())
        }
        Expr::Aggregate { function, arg, .. } => {
            out.push_str(functions::aggregate_name(*function));
            out.push('(');
            write_expr(out, arg)?;
            out.push(')');
            Ok(())
        }
        Expr::Exists(query) => write_subquery(out, "EXISTS", query),
        Expr::ArraySubquery(query) => write_subquery(out, "ARRAY", query),
        Expr::Subquery(query) => write_subquery(out, "", query),
    }
}

fn binary_symbol(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Eq => "=",
        BinaryOp::NotEq => "!=",
        BinaryOp::Lt => "<",
        BinaryOp::Le => "<=",
        BinaryOp::Gt => ">",
        BinaryOp::Ge => ">=",
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Mod => "%",
        BinaryOp::Concat => "||",
        BinaryOp::BitAnd => "&",
        BinaryOp::BitOr => "|",
        BinaryOp::BitXor => "^",
        BinaryOp::ShiftLeft => "<<",
        BinaryOp::ShiftRight => ">>",
        BinaryOp::ShiftRightZeroFill => ">>>",
        BinaryOp::Coalesce => "??",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printing a parsed query and parsing the text again gives the same tree.
    #[track_caller]
    fn round_trips(text: &str) {
        let parsed = crate::parser::parse_query(text).expect("the query parses");
        let printed = query(&parsed);
        let reparsed = crate::parser::parse_query(&printed)
            .unwrap_or_else(|error| panic!("{printed:?} does not parse back: {error}"));
        assert_eq!(
            strip_positions(reparsed),
            strip_positions(parsed),
            "{text:?} printed as {printed:?}"
        );
    }

    /// The tree with byte positions zeroed: the printed text puts things elsewhere.
    fn strip_positions(query: SelectQuery) -> String {
        let debug = format!("{query:?}");
        let mut out = String::new();
        let mut rest = debug.as_str();
        while let Some(at) = rest.find("position: ") {
            out.push_str(&rest[..at + "position: ".len()]);
            rest = rest[at + "position: ".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
            out.push('0');
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn every_clause_round_trips() {
        for text in [
            "SELECT * FROM c",
            "SELECT DISTINCT TOP 5 VALUE c.x FROM c WHERE c.a = 1 ORDER BY c.x DESC",
            "SELECT c.a, c.b AS bee, c.a + 1, {\"n\": c.n, \"odd-name\": 2} FROM c JOIN t IN c.tags",
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk IN ('a', 'b') AND NOT IS_DEFINED(c.gone)",
            "SELECT c.team, SUM(c.score) AS total FROM c GROUP BY c.team",
            "SELECT * FROM c WHERE c.n BETWEEN 1 AND 10 OR c.name LIKE 'a!%%' ESCAPE '!'",
            "SELECT * FROM c WHERE (c.a ?? 3) > -2 AND ~c.bits & 4 = 4 AND c[\"odd key\"][0] = 'x'",
            "SELECT * FROM c WHERE EXISTS (SELECT VALUE t FROM t IN c.tags WHERE t = @tag)",
            "SELECT ARRAY(SELECT VALUE t.n FROM t IN c.tags) AS ns, (SELECT VALUE 1) AS one FROM c",
            "SELECT * FROM c WHERE c.a ? true : undefined OFFSET @skip LIMIT 10",
            "SELECT * FROM (SELECT VALUE c.inner FROM c) AS i WHERE i.SELECT = 'kw'",
            "SELECT * FROM root r WHERE STARTSWITH(r.id, \"quote\\\"d\", true) ORDER BY r._ts, r.id DESC",
        ] {
            round_trips(text);
        }
    }
}
