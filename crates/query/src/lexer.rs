//! Turns query text into tokens.
//!
//! Words are not classified here: whether `value` is a keyword or a property name depends on
//! where it stands (`SELECT VALUE` against `c.value`), so the parser decides. Every token keeps
//! its byte span so errors can point at it.

use serde_json::{Number, Value};

use crate::error::QueryError;
use crate::parser::is_reserved;
use crate::value::number_value;

/// A punctuation or operator token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sym {
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Dot,
    Colon,
    Question,
    Coalesce,
    Star,
    Plus,
    Minus,
    Slash,
    Percent,
    Eq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Concat,
    BitOr,
    BitAnd,
    BitXor,
    Tilde,
    ShiftLeft,
    ShiftRight,
    ShiftRightZeroFill,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    /// An identifier or keyword, case preserved.
    Word(String),
    /// A numeric literal.
    Number(Number),
    /// A string literal with escapes resolved.
    Str(String),
    /// A parameter reference, including the leading `@`.
    Param(String),
    /// Punctuation or an operator.
    Sym(Sym),
    /// The end of the text.
    Eof,
}

/// A token and where it stands in the text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    /// Byte offset of the first character.
    pub(crate) start: usize,
    /// Byte offset one past the last character.
    pub(crate) end: usize,
}

/// Splits `text` into tokens, ending with one [`TokenKind::Eof`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let mut lexer = Lexer {
        text,
        bytes: text.as_bytes(),
        position: 0,
        tokens: Vec::new(),
    };
    lexer.run()?;
    Ok(lexer.tokens)
}

struct Lexer<'t> {
    text: &'t str,
    bytes: &'t [u8],
    position: usize,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn run(&mut self) -> Result<(), QueryError> {
        loop {
            self.skip_blanks_and_comments();
            let start = self.position;
            let Some(&byte) = self.bytes.get(start) else {
                self.push(TokenKind::Eof, start);
                return Ok(());
            };
            match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                    let end = self.word_end(start);
                    self.position = end;
                    self.push(TokenKind::Word(self.text[start..end].to_owned()), start);
                }
                b'@' => {
                    let end = self.word_end(start + 1);
                    if end == start + 1 {
                        return Err(QueryError::near(start, "@"));
                    }
                    self.position = end;
                    self.push(TokenKind::Param(self.text[start..end].to_owned()), start);
                }
                b'0'..=b'9' => self.number(start)?,
                b'.' if self.next_is_digit(start + 1) && !self.previous_ends_operand() => {
                    self.number(start)?
                }
                b'"' | b'\'' => self.string(start, byte)?,
                _ => self.symbol(start)?,
            }
        }
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token {
            kind,
            start,
            end: self.position,
        });
    }

    fn skip_blanks_and_comments(&mut self) {
        loop {
            match self.bytes.get(self.position) {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.position += 1,
                Some(b'-') if self.bytes.get(self.position + 1) == Some(&b'-') => {
                    while let Some(&byte) = self.bytes.get(self.position) {
                        if byte == b'\n' {
                            break;
                        }
                        self.position += 1;
                    }
                }
                _ => return,
            }
        }
    }

    fn word_end(&self, mut end: usize) -> usize {
        while let Some(byte) = self.bytes.get(end) {
            if byte.is_ascii_alphanumeric() || *byte == b'_' {
                end += 1;
            } else {
                break;
            }
        }
        end
    }

    fn next_is_digit(&self, at: usize) -> bool {
        self.bytes.get(at).is_some_and(u8::is_ascii_digit)
    }

    /// True when the previous token ends an operand, so that a following `.` is member access.
    fn previous_ends_operand(&self) -> bool {
        match self.tokens.last().map(|token| &token.kind) {
            Some(TokenKind::Word(word)) => !is_reserved(word),
            other => matches!(
                other,
                Some(
                    TokenKind::Param(_)
                        | TokenKind::Number(_)
                        | TokenKind::Str(_)
                        | TokenKind::Sym(Sym::RParen | Sym::RBracket | Sym::RBrace)
                )
            ),
        }
    }

    fn digits(&mut self) {
        while self.next_is_digit(self.position) {
            self.position += 1;
        }
    }

    fn number(&mut self, start: usize) -> Result<(), QueryError> {
        self.position = start;
        self.digits();
        let mut integral = true;
        if self.bytes.get(self.position) == Some(&b'.') {
            integral = false;
            self.position += 1;
            self.digits();
        }
        if matches!(self.bytes.get(self.position), Some(b'e' | b'E')) {
            let mut exponent = self.position + 1;
            if matches!(self.bytes.get(exponent), Some(b'+' | b'-')) {
                exponent += 1;
            }
            if !self.next_is_digit(exponent) {
                return Err(QueryError::near(start, &self.text[start..exponent]));
            }
            integral = false;
            self.position = exponent;
            self.digits();
        }
        if self
            .bytes
            .get(self.position)
            .is_some_and(|byte| byte.is_ascii_alphabetic() || *byte == b'_')
        {
            let end = self.word_end(self.position);
            return Err(QueryError::near(start, &self.text[start..end]));
        }
        let text = &self.text[start..self.position];
        let number = parse_number(text, integral).ok_or_else(|| {
            QueryError::syntax(start, format!("The number {text} is out of range."))
        })?;
        self.push(TokenKind::Number(number), start);
        Ok(())
    }

    fn string(&mut self, start: usize, quote: u8) -> Result<(), QueryError> {
        let mut value = String::new();
        let mut at = start + 1;
        loop {
            let Some(ch) = self.text[at..].chars().next() else {
                return Err(QueryError::syntax(
                    start,
                    "Syntax error, unterminated string literal.",
                ));
            };
            match ch {
                '\\' => {
                    let (decoded, next) = self.escape(at)?;
                    value.push(decoded);
                    at = next;
                }
                '\u{0}'..='\u{1f}' => {
                    return Err(QueryError::syntax(
                        at,
                        "Syntax error, control characters must be escaped in string literals.",
                    ));
                }
                _ if ch as u32 == u32::from(quote) => {
                    self.position = at + 1;
                    self.push(TokenKind::Str(value), start);
                    return Ok(());
                }
                _ => {
                    value.push(ch);
                    at += ch.len_utf8();
                }
            }
        }
    }

    /// Decodes the escape starting at the backslash at `at`; returns the character and the
    /// offset after the escape.
    fn escape(&self, at: usize) -> Result<(char, usize), QueryError> {
        let Some(&code) = self.bytes.get(at + 1) else {
            return Err(QueryError::syntax(
                at,
                "Syntax error, unterminated string literal.",
            ));
        };
        let simple = match code {
            b'"' => Some('"'),
            b'\'' => Some('\''),
            b'\\' => Some('\\'),
            b'/' => Some('/'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            _ => None,
        };
        if let Some(ch) = simple {
            return Ok((ch, at + 2));
        }
        if code != b'u' {
            let end = at + 1 + self.text[at + 1..].chars().next().map_or(0, char::len_utf8);
            return Err(QueryError::syntax(
                at,
                format!(
                    "Syntax error, invalid escape sequence '{}'.",
                    &self.text[at..end]
                ),
            ));
        }
        let first = self.hex4(at)?;
        if (0xD800..0xDC00).contains(&first)
            && self.bytes.get(at + 6) == Some(&b'\\')
            && self.bytes.get(at + 7) == Some(&b'u')
        {
            let second = self.hex4(at + 6)?;
            if (0xDC00..0xE000).contains(&second) {
                let combined = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                if let Some(ch) = char::from_u32(combined) {
                    return Ok((ch, at + 12));
                }
            }
        }
        match char::from_u32(first) {
            Some(ch) => Ok((ch, at + 6)),
            None => Err(QueryError::syntax(
                at,
                "Syntax error, a \\u escape encodes an unpaired surrogate.",
            )),
        }
    }

    /// Reads the four hex digits of the `\uXXXX` escape whose backslash is at `at`.
    fn hex4(&self, at: usize) -> Result<u32, QueryError> {
        let digits = self.bytes.get(at + 2..at + 6).unwrap_or_default();
        if digits.len() != 4 || !digits.iter().all(u8::is_ascii_hexdigit) {
            return Err(QueryError::syntax(
                at,
                "Syntax error, a \\u escape needs four hexadecimal digits.",
            ));
        }
        digits.iter().try_fold(0u32, |acc, digit| {
            let value = char::from(*digit).to_digit(16).ok_or_else(|| {
                QueryError::syntax(
                    at,
                    "Syntax error, a \\u escape needs four hexadecimal digits.",
                )
            })?;
            Ok(acc * 16 + value)
        })
    }

    fn symbol(&mut self, start: usize) -> Result<(), QueryError> {
        let rest = &self.bytes[start..];
        let (sym, len) = match rest {
            [b'>', b'>', b'>', ..] => (Sym::ShiftRightZeroFill, 3),
            [b'?', b'?', ..] => (Sym::Coalesce, 2),
            [b'|', b'|', ..] => (Sym::Concat, 2),
            [b'!', b'=', ..] | [b'<', b'>', ..] => (Sym::NotEq, 2),
            [b'<', b'=', ..] => (Sym::Le, 2),
            [b'>', b'=', ..] => (Sym::Ge, 2),
            [b'<', b'<', ..] => (Sym::ShiftLeft, 2),
            [b'>', b'>', ..] => (Sym::ShiftRight, 2),
            [b'(', ..] => (Sym::LParen, 1),
            [b')', ..] => (Sym::RParen, 1),
            [b'[', ..] => (Sym::LBracket, 1),
            [b']', ..] => (Sym::RBracket, 1),
            [b'{', ..] => (Sym::LBrace, 1),
            [b'}', ..] => (Sym::RBrace, 1),
            [b',', ..] => (Sym::Comma, 1),
            [b'.', ..] => (Sym::Dot, 1),
            [b':', ..] => (Sym::Colon, 1),
            [b'?', ..] => (Sym::Question, 1),
            [b'*', ..] => (Sym::Star, 1),
            [b'+', ..] => (Sym::Plus, 1),
            [b'-', ..] => (Sym::Minus, 1),
            [b'/', ..] => (Sym::Slash, 1),
            [b'%', ..] => (Sym::Percent, 1),
            [b'=', ..] => (Sym::Eq, 1),
            [b'<', ..] => (Sym::Lt, 1),
            [b'>', ..] => (Sym::Gt, 1),
            [b'|', ..] => (Sym::BitOr, 1),
            [b'&', ..] => (Sym::BitAnd, 1),
            [b'^', ..] => (Sym::BitXor, 1),
            [b'~', ..] => (Sym::Tilde, 1),
            _ => {
                let ch = self.text[start..].chars().next().unwrap_or('?');
                return Err(QueryError::near(start, &ch.to_string()));
            }
        };
        self.position = start + len;
        self.push(TokenKind::Sym(sym), start);
        Ok(())
    }
}

/// Parses a numeric literal's text. Integers that fit a u64 keep their exact value; everything
/// else becomes an f64, printed without a fraction when integral (`1.5e3` is `1500`). Returns
/// `None` for values out of the f64 range.
fn parse_number(text: &str, integral: bool) -> Option<Number> {
    if integral && let Ok(value) = text.parse::<u64>() {
        return Some(Number::from(value));
    }
    let value: f64 = text.parse().ok()?;
    match number_value(value)? {
        Value::Number(number) => Some(number),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text)
            .unwrap()
            .into_iter()
            .map(|token| token.kind)
            .collect()
    }

    #[test]
    fn member_access_dot_is_not_a_decimal_point() {
        assert_eq!(
            kinds("c.a"),
            vec![
                TokenKind::Word("c".into()),
                TokenKind::Sym(Sym::Dot),
                TokenKind::Word("a".into()),
                TokenKind::Eof
            ]
        );
        assert_eq!(
            kinds(".5"),
            vec![
                TokenKind::Number(Number::from_f64(0.5).unwrap()),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn strings_decode_escapes_and_surrogate_pairs() {
        assert_eq!(
            kinds(r#"'it\'s' "a\"b\n\u00e9\ud83d\ude00""#),
            vec![
                TokenKind::Str("it's".into()),
                TokenKind::Str("a\"b\né😀".into()),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn longest_operator_wins() {
        assert_eq!(
            kinds(">>> >> >= <> != ?? ||"),
            vec![
                TokenKind::Sym(Sym::ShiftRightZeroFill),
                TokenKind::Sym(Sym::ShiftRight),
                TokenKind::Sym(Sym::Ge),
                TokenKind::Sym(Sym::NotEq),
                TokenKind::Sym(Sym::NotEq),
                TokenKind::Sym(Sym::Coalesce),
                TokenKind::Sym(Sym::Concat),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn line_comments_are_skipped() {
        assert_eq!(
            kinds("1 -- comment\n2"),
            vec![
                TokenKind::Number(1u64.into()),
                TokenKind::Number(2u64.into()),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for text in [
            "'open",
            "\"bad \\x\"",
            "1e",
            "12abc",
            "#",
            "@",
            "'\\u12'",
            "é",
        ] {
            assert!(tokenize(text).is_err(), "{text} should not tokenize");
        }
    }
}
