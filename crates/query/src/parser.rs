//! Recursive descent for clauses, Pratt parsing for expressions.
//!
//! Operator precedence, loosest first (from the Cosmos grammar, with `NOT` placed as in ANSI
//! SQL so that `NOT c.a = 1` means `NOT (c.a = 1)`):
//!
//! | level | operators |
//! | --- | --- |
//! | 1 | `? :` (right associative) |
//! | 2 | `??` |
//! | 3 | `OR` |
//! | 4 | `AND` |
//! | 5 | `NOT` (prefix) |
//! | 6 | `[NOT] IN`, `[NOT] LIKE`, `[NOT] BETWEEN` |
//! | 7 | <code>&#124;&#124;</code> |
//! | 8 | <code>&#124;</code> |
//! | 9 | `^` |
//! | 10 | `&` |
//! | 11 | `=` `!=` `<>` |
//! | 12 | `<` `<=` `>` `>=` |
//! | 13 | `<<` `>>` `>>>` |
//! | 14 | `+` `-` |
//! | 15 | `*` `/` `%` |
//! | 16 | unary `-` `+` `~` |
//! | 17 | `.name`, `[index]` |
//!
//! Keywords are case-insensitive and reserved except after a dot, so `c.value` and `c.order`
//! are property accesses.

use serde_json::Value;

use crate::ast::{
    BinaryOp, Collection, Count, Expr, OffsetLimit, OrderItem, PathStep, SelectItem, SelectQuery,
    Selection, Source, UnaryOp,
};
use crate::error::QueryError;
use crate::functions::{self, Callable};
use crate::lexer::{Sym, Token, TokenKind, tokenize};
use crate::{MAX_NESTING_DEPTH, with_stack};

/// Words that cannot be used as identifiers (aliases, unqualified names).
const RESERVED: &[&str] = &[
    "AND",
    "ARRAY",
    "AS",
    "ASC",
    "BETWEEN",
    "BY",
    "DESC",
    "DISTINCT",
    "ESCAPE",
    "EXISTS",
    "FALSE",
    "FROM",
    "GROUP",
    "IN",
    "JOIN",
    "LIKE",
    "LIMIT",
    "NOT",
    "NULL",
    "OFFSET",
    "OR",
    "ORDER",
    "SELECT",
    "TOP",
    "TRUE",
    "UDF",
    "UNDEFINED",
    "VALUE",
    "WHERE",
];

const PREC_CONDITIONAL: u8 = 1;
const PREC_COALESCE: u8 = 2;
const PREC_OR: u8 = 3;
const PREC_AND: u8 = 4;
const PREC_NOT: u8 = 5;
const PREC_PREDICATE: u8 = 6;
const PREC_UNARY: u8 = 16;

/// Parses a complete `SELECT` query.
pub(crate) fn parse_query(text: &str) -> Result<SelectQuery, QueryError> {
    let mut parser = Parser::new(text)?;
    let query = parser.select_query()?;
    parser.expect_end()?;
    Ok(query)
}

/// Parses `FROM ... [WHERE ...]` (a patch or feed condition) or a complete `SELECT` query.
pub(crate) fn parse_condition(text: &str) -> Result<SelectQuery, QueryError> {
    let mut parser = Parser::new(text)?;
    if parser.at_keyword("SELECT") {
        let query = parser.select_query()?;
        parser.expect_end()?;
        return Ok(query);
    }
    parser.expect_keyword("FROM")?;
    let sources = parser.sources()?;
    let filter = if parser.eat_keyword("WHERE") {
        Some(parser.expr()?)
    } else {
        None
    };
    parser.expect_end()?;
    // A condition has no SELECT clause; it selects the first source's value (`SELECT *` when
    // there are no joins, since `*` needs a single source).
    let select = match sources.as_slice() {
        [_] => Selection::Star,
        [first, ..] => Selection::Value(Expr::Ident {
            name: first.alias.clone(),
            position: first.position,
        }),
        [] => Selection::Star,
    };
    Ok(SelectQuery {
        distinct: false,
        top: None,
        select,
        sources,
        filter,
        group_by: Vec::new(),
        order_by: Vec::new(),
        offset_limit: None,
        n_aggregates: 0,
    })
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

/// How an infix token continues an expression.
enum Infix {
    Binary(BinaryOp),
    And,
    Or,
    Conditional,
    /// `IN`, `LIKE` or `BETWEEN`, possibly after `NOT`.
    Predicate {
        keyword: &'static str,
        negated: bool,
    },
}

impl<'t> Parser<'t> {
    fn new(text: &'t str) -> Result<Parser<'t>, QueryError> {
        Ok(Parser {
            text,
            tokens: tokenize(text)?,
            at: 0,
            depth: 0,
        })
    }

    // ----- token helpers -------------------------------------------------------------------

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    fn peek_at(&self, offset: usize) -> &Token {
        let last = self.tokens.len() - 1;
        &self.tokens[(self.at + offset).min(last)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    fn error_at(&self, token: &Token) -> QueryError {
        if token.kind == TokenKind::Eof {
            return QueryError::syntax(token.start, "Syntax error, unexpected end of query.");
        }
        QueryError::near(token.start, &self.text[token.start..token.end])
    }

    fn error_here(&self) -> QueryError {
        self.error_at(self.peek())
    }

    fn keyword_at(&self, offset: usize, keyword: &str) -> bool {
        matches!(&self.peek_at(offset).kind, TokenKind::Word(word) if word.eq_ignore_ascii_case(keyword))
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.keyword_at(0, keyword)
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.at_keyword(keyword);
        if found {
            self.advance();
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), QueryError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(self.error_here())
        }
    }

    fn at_sym(&self, sym: Sym) -> bool {
        self.peek().kind == TokenKind::Sym(sym)
    }

    fn eat_sym(&mut self, sym: Sym) -> bool {
        let found = self.at_sym(sym);
        if found {
            self.advance();
        }
        found
    }

    fn expect_sym(&mut self, sym: Sym) -> Result<(), QueryError> {
        if self.eat_sym(sym) {
            Ok(())
        } else {
            Err(self.error_here())
        }
    }

    fn expect_end(&self) -> Result<(), QueryError> {
        if self.peek().kind == TokenKind::Eof {
            Ok(())
        } else {
            Err(self.error_here())
        }
    }

    /// True when the current token is a word usable as an identifier.
    fn at_identifier(&self) -> bool {
        matches!(&self.peek().kind, TokenKind::Word(word) if !is_reserved(word))
    }

    /// Consumes an identifier (a non-reserved word).
    fn identifier(&mut self) -> Result<String, QueryError> {
        match &self.peek().kind {
            TokenKind::Word(word) if !is_reserved(word) => {
                let word = word.clone();
                self.advance();
                Ok(word)
            }
            _ => Err(self.error_here()),
        }
    }

    /// Consumes any word, reserved or not (property names after a dot).
    fn any_word(&mut self) -> Result<String, QueryError> {
        match &self.peek().kind {
            TokenKind::Word(word) => {
                let word = word.clone();
                self.advance();
                Ok(word)
            }
            _ => Err(self.error_here()),
        }
    }

    fn enter(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(QueryError::NestingTooDeep {
                position: self.peek().start,
                limit: MAX_NESTING_DEPTH,
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ----- clauses -------------------------------------------------------------------------

    fn select_query(&mut self) -> Result<SelectQuery, QueryError> {
        self.enter()?;
        let result = with_stack(|| self.select_query_body());
        self.leave();
        result
    }

    fn select_query_body(&mut self) -> Result<SelectQuery, QueryError> {
        self.expect_keyword("SELECT")?;
        let distinct = self.eat_keyword("DISTINCT");
        let top = if self.eat_keyword("TOP") {
            Some(self.count()?)
        } else {
            None
        };
        let select = self.selection()?;
        let sources = if self.eat_keyword("FROM") {
            self.sources()?
        } else {
            Vec::new()
        };
        let filter = if self.eat_keyword("WHERE") {
            Some(self.expr()?)
        } else {
            None
        };
        let mut group_by = Vec::new();
        if self.eat_keyword("GROUP") {
            self.expect_keyword("BY")?;
            group_by = self.expr_list()?;
        }
        let mut order_by = Vec::new();
        if self.eat_keyword("ORDER") {
            self.expect_keyword("BY")?;
            // `ORDER BY RANK FullTextScore(...)` or `RANK RRF(...)`: a word after `RANK`
            // cannot start an ordinary sort key.
            if self.at_keyword("RANK") && matches!(self.peek_at(1).kind, TokenKind::Word(_)) {
                return Err(QueryError::Invalid(
                    "'ORDER BY RANK' orders by full-text or hybrid search scores, which \
                     Tributary does not support"
                        .to_owned(),
                ));
            }
            loop {
                let expr = self.expr()?;
                let descending = if self.eat_keyword("DESC") {
                    true
                } else {
                    self.eat_keyword("ASC");
                    false
                };
                order_by.push(OrderItem { expr, descending });
                if !self.eat_sym(Sym::Comma) {
                    break;
                }
            }
        }
        let offset_limit = if self.eat_keyword("OFFSET") {
            let offset = self.count()?;
            self.expect_keyword("LIMIT")?;
            let limit = self.count()?;
            Some(OffsetLimit { offset, limit })
        } else {
            None
        };
        Ok(SelectQuery {
            distinct,
            top,
            select,
            sources,
            filter,
            group_by,
            order_by,
            offset_limit,
            n_aggregates: 0,
        })
    }

    /// A `TOP`, `OFFSET` or `LIMIT` count: a non-negative integer literal or a parameter.
    fn count(&mut self) -> Result<Count, QueryError> {
        let token = self.advance();
        match &token.kind {
            TokenKind::Number(number) => match number.as_u64() {
                Some(count) => Ok(Count::Literal(count)),
                None => Err(self.error_at(&token)),
            },
            TokenKind::Param(name) => Ok(Count::Parameter(name.clone())),
            _ => Err(self.error_at(&token)),
        }
    }

    fn selection(&mut self) -> Result<Selection, QueryError> {
        if self.eat_sym(Sym::Star) {
            return Ok(Selection::Star);
        }
        if self.eat_keyword("VALUE") {
            let expr = self.expr()?;
            // `SELECT VALUE expr AS alias` is accepted; the alias has no effect.
            if self.eat_keyword("AS") {
                self.identifier()?;
            }
            return Ok(Selection::Value(expr));
        }
        let mut items = Vec::new();
        let mut n_unnamed = 0;
        loop {
            let position = self.peek().start;
            let expr = self.expr()?;
            let name = if self.eat_keyword("AS") || self.at_identifier() {
                self.identifier()?
            } else {
                implied_name(&expr).unwrap_or_else(|| {
                    n_unnamed += 1;
                    format!("${n_unnamed}")
                })
            };
            if items.iter().any(|item: &SelectItem| item.name == name) {
                return Err(QueryError::Invalid(format!(
                    "The select list names the property '{name}' more than once (at byte {position})."
                )));
            }
            items.push(SelectItem { name, expr });
            if !self.eat_sym(Sym::Comma) {
                break;
            }
        }
        Ok(Selection::List(items))
    }

    fn sources(&mut self) -> Result<Vec<Source>, QueryError> {
        let mut sources = vec![self.source()?];
        while self.eat_keyword("JOIN") {
            sources.push(self.source()?);
        }
        Ok(sources)
    }

    fn source(&mut self) -> Result<Source, QueryError> {
        let position = self.peek().start;
        if self.at_identifier() && self.keyword_at(1, "IN") {
            let alias = self.identifier()?;
            self.advance();
            let (collection, _) = self.collection()?;
            return Ok(Source {
                alias,
                iterate: true,
                collection,
                position,
            });
        }
        let (collection, inferred) = self.collection()?;
        let alias = if self.eat_keyword("AS") || self.at_identifier() {
            self.identifier()?
        } else {
            inferred.ok_or_else(|| {
                QueryError::Invalid(format!(
                    "The source at byte {position} needs an alias (add 'AS name')."
                ))
            })?
        };
        Ok(Source {
            alias,
            iterate: false,
            collection,
            position,
        })
    }

    /// A source collection and the alias it implies when none is given.
    fn collection(&mut self) -> Result<(Collection, Option<String>), QueryError> {
        if self.at_sym(Sym::LParen) && self.keyword_at(1, "SELECT") {
            self.advance();
            let query = self.select_query()?;
            self.expect_sym(Sym::RParen)?;
            return Ok((Collection::Subquery(Box::new(query)), None));
        }
        let position = self.peek().start;
        let name = self.identifier()?;
        let mut inferred = Some(name.clone());
        let mut steps = Vec::new();
        loop {
            if self.eat_sym(Sym::Dot) {
                let property = self.any_word()?;
                inferred = Some(property.clone());
                steps.push(PathStep::Property(property));
            } else if self.eat_sym(Sym::LBracket) {
                let token = self.advance();
                match &token.kind {
                    TokenKind::Str(property) => {
                        inferred = Some(property.clone());
                        steps.push(PathStep::Property(property.clone()));
                    }
                    TokenKind::Number(number) => {
                        let index = number.as_u64().ok_or_else(|| self.error_at(&token))?;
                        inferred = None;
                        steps.push(PathStep::Index(index));
                    }
                    _ => return Err(self.error_at(&token)),
                }
                self.expect_sym(Sym::RBracket)?;
            } else {
                break;
            }
        }
        let root = Expr::Ident { name, position };
        Ok((Collection::Path { root, steps }, inferred))
    }

    // ----- expressions ---------------------------------------------------------------------

    fn expr(&mut self) -> Result<Expr, QueryError> {
        self.binary(0)
    }

    fn expr_list(&mut self) -> Result<Vec<Expr>, QueryError> {
        let mut list = vec![self.expr()?];
        while self.eat_sym(Sym::Comma) {
            list.push(self.expr()?);
        }
        Ok(list)
    }

    /// The infix operator at the current token and its precedence, if any.
    fn infix(&self) -> Option<(Infix, u8)> {
        let binary = |op, precedence| Some((Infix::Binary(op), precedence));
        match &self.peek().kind {
            TokenKind::Sym(sym) => match sym {
                Sym::Question => Some((Infix::Conditional, PREC_CONDITIONAL)),
                Sym::Coalesce => binary(BinaryOp::Coalesce, PREC_COALESCE),
                Sym::Concat => binary(BinaryOp::Concat, 7),
                Sym::BitOr => binary(BinaryOp::BitOr, 8),
                Sym::BitXor => binary(BinaryOp::BitXor, 9),
                Sym::BitAnd => binary(BinaryOp::BitAnd, 10),
                Sym::Eq => binary(BinaryOp::Eq, 11),
                Sym::NotEq => binary(BinaryOp::NotEq, 11),
                Sym::Lt => binary(BinaryOp::Lt, 12),
                Sym::Le => binary(BinaryOp::Le, 12),
                Sym::Gt => binary(BinaryOp::Gt, 12),
                Sym::Ge => binary(BinaryOp::Ge, 12),
                Sym::ShiftLeft => binary(BinaryOp::ShiftLeft, 13),
                Sym::ShiftRight => binary(BinaryOp::ShiftRight, 13),
                Sym::ShiftRightZeroFill => binary(BinaryOp::ShiftRightZeroFill, 13),
                Sym::Plus => binary(BinaryOp::Add, 14),
                Sym::Minus => binary(BinaryOp::Sub, 14),
                Sym::Star => binary(BinaryOp::Mul, 15),
                Sym::Slash => binary(BinaryOp::Div, 15),
                Sym::Percent => binary(BinaryOp::Mod, 15),
                _ => None,
            },
            TokenKind::Word(word) => {
                let predicate = |offset: usize| {
                    ["IN", "LIKE", "BETWEEN"]
                        .into_iter()
                        .find(|keyword| self.keyword_at(offset, keyword))
                };
                if word.eq_ignore_ascii_case("OR") {
                    Some((Infix::Or, PREC_OR))
                } else if word.eq_ignore_ascii_case("AND") {
                    Some((Infix::And, PREC_AND))
                } else if word.eq_ignore_ascii_case("NOT") {
                    predicate(1).map(|keyword| {
                        (
                            Infix::Predicate {
                                keyword,
                                negated: true,
                            },
                            PREC_PREDICATE,
                        )
                    })
                } else {
                    predicate(0).map(|keyword| {
                        (
                            Infix::Predicate {
                                keyword,
                                negated: false,
                            },
                            PREC_PREDICATE,
                        )
                    })
                }
            }
            _ => None,
        }
    }

    /// Parses an expression whose infix operators all bind at least as tightly as `min`.
    ///
    /// A chain like `a + b + c` builds a left-deep tree without recursing, so each operator
    /// after the first counts as one more level against [`MAX_NESTING_DEPTH`]; only `AND` and
    /// `OR` chains, which are kept flat, are free.
    fn binary(&mut self, min: u8) -> Result<Expr, QueryError> {
        self.enter()?;
        let depth_on_entry = self.depth;
        let result = with_stack(|| self.binary_chain(min));
        self.depth = depth_on_entry;
        self.leave();
        result
    }

    fn binary_chain(&mut self, min: u8) -> Result<Expr, QueryError> {
        let mut left = self.prefix()?;
        let mut n_chained = 0;
        while let Some((infix, precedence)) = self.infix() {
            if precedence < min {
                break;
            }
            self.advance();
            if !matches!(infix, Infix::And | Infix::Or) {
                if n_chained > 0 {
                    self.enter()?;
                }
                n_chained += 1;
            }
            left = match infix {
                Infix::And | Infix::Or => {
                    let right = self.binary(precedence + 1)?;
                    let is_and = matches!(infix, Infix::And);
                    match left {
                        Expr::And(mut operands) if is_and => {
                            operands.push(right);
                            Expr::And(operands)
                        }
                        Expr::Or(mut operands) if !is_and => {
                            operands.push(right);
                            Expr::Or(operands)
                        }
                        other if is_and => Expr::And(vec![other, right]),
                        other => Expr::Or(vec![other, right]),
                    }
                }
                Infix::Binary(op) => {
                    let right = self.binary(precedence + 1)?;
                    Expr::Binary(op, Box::new(left), Box::new(right))
                }
                Infix::Conditional => {
                    let then = self.binary(0)?;
                    self.expect_sym(Sym::Colon)?;
                    let otherwise = self.binary(PREC_CONDITIONAL)?;
                    Expr::Conditional {
                        condition: Box::new(left),
                        then: Box::new(then),
                        otherwise: Box::new(otherwise),
                    }
                }
                Infix::Predicate { keyword, negated } => {
                    if negated {
                        self.advance();
                    }
                    self.predicate(keyword, negated, left)?
                }
            };
        }
        Ok(left)
    }

    /// The rest of `value [NOT] IN (...)`, `LIKE pattern [ESCAPE 'c']` or `BETWEEN a AND b`.
    fn predicate(
        &mut self,
        keyword: &'static str,
        negated: bool,
        value: Expr,
    ) -> Result<Expr, QueryError> {
        let operand_precedence = PREC_PREDICATE + 1;
        let value = Box::new(value);
        match keyword {
            "IN" => {
                self.expect_sym(Sym::LParen)?;
                let list = self.expr_list()?;
                self.expect_sym(Sym::RParen)?;
                Ok(Expr::In {
                    value,
                    list,
                    negated,
                })
            }
            "LIKE" => {
                let pattern = Box::new(self.binary(operand_precedence)?);
                let escape = if self.eat_keyword("ESCAPE") {
                    let token = self.advance();
                    match &token.kind {
                        TokenKind::Str(text) if text.chars().count() == 1 => text.chars().next(),
                        _ => {
                            return Err(QueryError::syntax(
                                token.start,
                                "Syntax error, ESCAPE takes a string literal of one character.",
                            ));
                        }
                    }
                } else {
                    None
                };
                Ok(Expr::Like {
                    value,
                    pattern,
                    escape,
                    negated,
                })
            }
            _ => {
                let low = Box::new(self.binary(operand_precedence)?);
                self.expect_keyword("AND")?;
                let high = Box::new(self.binary(operand_precedence)?);
                Ok(Expr::Between {
                    value,
                    low,
                    high,
                    negated,
                })
            }
        }
    }

    fn prefix(&mut self) -> Result<Expr, QueryError> {
        if self.eat_keyword("NOT") {
            let operand = self.binary(PREC_NOT)?;
            return Ok(Expr::Unary(UnaryOp::Not, Box::new(operand)));
        }
        let unary = match self.peek().kind {
            TokenKind::Sym(Sym::Minus) => Some(UnaryOp::Minus),
            TokenKind::Sym(Sym::Plus) => Some(UnaryOp::Plus),
            TokenKind::Sym(Sym::Tilde) => Some(UnaryOp::BitNot),
            _ => None,
        };
        if let Some(op) = unary {
            self.advance();
            let operand = self.binary(PREC_UNARY)?;
            return Ok(fold_negative_literal(op, operand));
        }
        let primary = self.primary()?;
        self.postfix(primary)
    }

    fn postfix(&mut self, mut expr: Expr) -> Result<Expr, QueryError> {
        loop {
            if self.eat_sym(Sym::Dot) {
                let name = self.any_word()?;
                expr = Expr::Property(Box::new(expr), name);
            } else if self.eat_sym(Sym::LBracket) {
                let index = self.expr()?;
                self.expect_sym(Sym::RBracket)?;
                expr = match index {
                    Expr::Literal(Value::String(name)) => Expr::Property(Box::new(expr), name),
                    other => Expr::Index(Box::new(expr), Box::new(other)),
                };
            } else {
                return Ok(expr);
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let token = self.advance();
        match token.kind {
            TokenKind::Number(number) => Ok(Expr::Literal(Value::Number(number))),
            TokenKind::Str(text) => Ok(Expr::Literal(Value::String(text))),
            TokenKind::Param(name) => Ok(Expr::Parameter(name)),
            TokenKind::Sym(Sym::LBracket) => {
                let items = if self.eat_sym(Sym::RBracket) {
                    Vec::new()
                } else {
                    let items = self.expr_list()?;
                    self.expect_sym(Sym::RBracket)?;
                    items
                };
                Ok(Expr::Array(items))
            }
            TokenKind::Sym(Sym::LBrace) => self.object(token.start),
            TokenKind::Sym(Sym::LParen) => {
                if self.at_keyword("SELECT") {
                    let query = self.select_query()?;
                    self.expect_sym(Sym::RParen)?;
                    return Ok(Expr::Subquery(Box::new(query)));
                }
                let inner = self.expr()?;
                self.expect_sym(Sym::RParen)?;
                Ok(inner)
            }
            TokenKind::Word(ref word) => self.word(word, &token),
            TokenKind::Sym(_) | TokenKind::Eof => Err(self.error_at(&token)),
        }
    }

    fn word(&mut self, word: &str, token: &Token) -> Result<Expr, QueryError> {
        let upper = word.to_ascii_uppercase();
        match upper.as_str() {
            "TRUE" => return Ok(Expr::Literal(Value::Bool(true))),
            "FALSE" => return Ok(Expr::Literal(Value::Bool(false))),
            "NULL" => return Ok(Expr::Literal(Value::Null)),
            "UNDEFINED" => return Ok(Expr::Undefined),
            "EXISTS" | "ARRAY" => {
                self.expect_sym(Sym::LParen)?;
                if !self.at_keyword("SELECT") {
                    return Err(self.error_here());
                }
                let query = Box::new(self.select_query()?);
                self.expect_sym(Sym::RParen)?;
                return Ok(if upper == "EXISTS" {
                    Expr::Exists(query)
                } else {
                    Expr::ArraySubquery(query)
                });
            }
            "UDF" if self.at_sym(Sym::Dot) => {
                self.advance();
                let name = self.any_word()?.to_owned();
                let args = self.call_arguments()?;
                return Ok(Expr::UserFunctionCall { name, args });
            }
            _ => {}
        }
        if self.at_sym(Sym::LParen) {
            return self.call(word, token.start);
        }
        if is_reserved(word) {
            return Err(self.error_at(token));
        }
        Ok(Expr::Ident {
            name: word.to_owned(),
            position: token.start,
        })
    }

    /// `(expr, ...)` after a function's name.
    fn call_arguments(&mut self) -> Result<Vec<Expr>, QueryError> {
        self.expect_sym(Sym::LParen)?;
        if self.eat_sym(Sym::RParen) {
            return Ok(Vec::new());
        }
        let args = self.expr_list()?;
        self.expect_sym(Sym::RParen)?;
        Ok(args)
    }

    fn call(&mut self, name: &str, position: usize) -> Result<Expr, QueryError> {
        let args = self.call_arguments()?;
        match functions::resolve(name, args.len())? {
            Callable::Scalar(function) => Ok(Expr::Call { function, args }),
            Callable::Aggregate(function) => {
                let arg = args.into_iter().next().ok_or_else(|| self.error_here())?;
                Ok(Expr::Aggregate {
                    function,
                    arg: Box::new(arg),
                    slot: 0,
                    position,
                })
            }
        }
    }

    fn object(&mut self, position: usize) -> Result<Expr, QueryError> {
        let mut properties: Vec<(String, Expr)> = Vec::new();
        if self.eat_sym(Sym::RBrace) {
            return Ok(Expr::Object(properties));
        }
        loop {
            let token = self.advance();
            let name = match token.kind {
                TokenKind::Str(name) | TokenKind::Word(name) => name,
                _ => return Err(self.error_at(&token)),
            };
            self.expect_sym(Sym::Colon)?;
            let value = self.expr()?;
            if properties.iter().any(|(existing, _)| *existing == name) {
                return Err(QueryError::Invalid(format!(
                    "The object created at byte {position} names the property '{name}' more than once."
                )));
            }
            properties.push((name, value));
            if !self.eat_sym(Sym::Comma) {
                break;
            }
        }
        self.expect_sym(Sym::RBrace)?;
        Ok(Expr::Object(properties))
    }
}

/// True for keywords that cannot be used as identifiers.
pub(crate) fn is_reserved(word: &str) -> bool {
    RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(word))
}

/// The output property name a select item gets without `AS`: the last property name of a path,
/// or the alias itself. Other expressions get `$1`, `$2`...
fn implied_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Property(_, name) | Expr::Ident { name, .. } => Some(name.clone()),
        _ => None,
    }
}

/// Turns `-5` into the literal -5 (keeping integers exact); other operands stay unary.
fn fold_negative_literal(op: UnaryOp, operand: Expr) -> Expr {
    if op == UnaryOp::Minus
        && let Expr::Literal(Value::Number(number)) = &operand
    {
        if let Some(integer) = number.as_u64().and_then(|value| i64::try_from(value).ok()) {
            return Expr::Literal(Value::from(-integer));
        }
        if let Some(negated) = number
            .as_f64()
            .and_then(|value| serde_json::Number::from_f64(-value))
        {
            return Expr::Literal(Value::Number(negated));
        }
    }
    Expr::Unary(op, Box::new(operand))
}
