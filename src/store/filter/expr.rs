//! The expression form of a filter (`lang=en AND (year>=2020 OR NOT tag IN (a, "b c"))`), read
//! with winnow into a [`Filter`]; the grammar is written out below.
//!
//! Invariants: every failure the grammar can reach carries a message that names what was
//! expected and what was found (the caller adds the expression and an example); nesting
//! (parentheses and `NOT`) stops at [`MAX_FILTER_DEPTH`], so parsing never recurses without bound.

use serde_json::Value;
use winnow::combinator::{alt, opt, preceded, repeat};
use winnow::error::{ErrMode, ModalResult, ParserError};
use winnow::prelude::*;
use winnow::token::{any, none_of, take_while};

use super::{comparison, simplify, too_deep_message, Filter, MAX_FILTER_DEPTH};
use crate::{Error, Result};

/// [`Filter::parse`]: the whole expression, or a syntax error that quotes it.
pub(super) fn parse(expr: &str) -> Result<Filter> {
    if expr.trim().is_empty() {
        return Ok(Filter::And(Vec::new()));
    }
    let mut input = expr;
    let parsed = or_expr(&mut input, 0).and_then(|f| {
        space(&mut input)?;
        if input.is_empty() {
            Ok(f)
        } else {
            fail(format!("expected AND, OR or the end, found {}", next_piece(input)))
        }
    });
    parsed.map_err(|e| {
        let message = match e {
            ErrMode::Backtrack(Syntax(Some(m))) | ErrMode::Cut(Syntax(Some(m))) => m,
            // Every failure the grammar can reach carries a message; this is a fallback.
            _ => format!("cannot parse the filter near {}", next_piece(input)),
        };
        syntax(expr, &message)
    })
}

// The grammar:
//
//   or_expr    := and_expr (OR and_expr)*
//   and_expr   := unary (AND unary)*
//   unary      := NOT unary | '(' or_expr ')' | comparison
//   comparison := key ( ('=' | '!=' | '<' | '<=' | '>' | '>=') value | IN '(' value (',' value)* ')' )
//   key, value := "quoted string" | bare word

/// Why a parser stopped: `None` lets the caller try something else; a message is a syntax error
/// to report as it is (raised as `ErrMode::Cut`, so no alternative swallows it).
#[derive(Debug)]
struct Syntax(Option<String>);

impl<'a> ParserError<&'a str> for Syntax {
    type Inner = Self;
    fn from_input(_input: &&'a str) -> Self {
        Syntax(None)
    }
    fn into_inner(self) -> std::result::Result<Self, Self> {
        Ok(self)
    }
}

type Parsed<T> = ModalResult<T, Syntax>;

/// Characters that end a bare word.
const SPECIAL: &str = "(),=<>!\"";

fn fail<T>(message: String) -> Parsed<T> {
    Err(ErrMode::Cut(Syntax(Some(message))))
}

fn space(input: &mut &str) -> Parsed<()> {
    take_while(0.., char::is_whitespace).void().parse_next(input)
}

fn word<'a>(input: &mut &'a str) -> Parsed<&'a str> {
    take_while(1.., |c: char| !c.is_whitespace() && !SPECIAL.contains(c)).parse_next(input)
}

/// A double-quoted string; `\` takes the next character as it is.
fn quoted(input: &mut &str) -> Parsed<String> {
    '"'.parse_next(input)?;
    let text: String = repeat(0.., alt((preceded('\\', any), none_of(['"', '\\'])))).parse_next(input)?;
    match opt('"').parse_next(input)? {
        Some(_) => Ok(text),
        None => fail("unterminated quoted string".into()),
    }
}

/// Skips spaces and takes `kw` (any case) as a whole word, or takes nothing.
fn keyword(kw: &'static str) -> impl FnMut(&mut &str) -> Parsed<bool> {
    move |input: &mut &str| {
        let found = opt(preceded(space, word.verify(|w: &str| w.eq_ignore_ascii_case(kw)))).parse_next(input)?;
        Ok(found.is_some())
    }
}

/// What follows a keyword: `next` at nesting `depth`, or an error that names the keyword when
/// the input ends.
fn operand(input: &mut &str, kw: &str, next: fn(&mut &str, usize) -> Parsed<Filter>, depth: usize) -> Parsed<Filter> {
    space(input)?;
    if input.is_empty() {
        return fail(format!("{kw} at the end"));
    }
    next(input, depth)
}

// Each rule takes the nesting depth of what it parses; `unary` counts a level for `NOT` and
// for parentheses and stops at MAX_FILTER_DEPTH.

fn or_expr(input: &mut &str, depth: usize) -> Parsed<Filter> {
    let mut parts = vec![and_expr(input, depth)?];
    while keyword("or")(input)? {
        parts.push(operand(input, "OR", and_expr, depth)?);
    }
    Ok(if parts.len() == 1 { parts.remove(0) } else { Filter::Or(parts) })
}

fn and_expr(input: &mut &str, depth: usize) -> Parsed<Filter> {
    let mut parts = vec![unary(input, depth)?];
    while keyword("and")(input)? {
        parts.push(operand(input, "AND", unary, depth)?);
    }
    Ok(simplify(parts))
}

fn unary(input: &mut &str, depth: usize) -> Parsed<Filter> {
    if keyword("not")(input)? {
        if depth >= MAX_FILTER_DEPTH {
            return Err(ErrMode::Cut(Syntax(Some(too_deep_message()))));
        }
        return Ok(Filter::Not(Box::new(operand(input, "NOT", unary, depth + 1)?)));
    }
    space(input)?;
    if opt('(').parse_next(input)?.is_some() {
        if depth >= MAX_FILTER_DEPTH {
            return Err(ErrMode::Cut(Syntax(Some(too_deep_message()))));
        }
        let inner = operand(input, "'('", or_expr, depth + 1)?;
        space(input)?;
        if opt(')').parse_next(input)?.is_none() {
            return fail(format!("expected AND, OR or ')', found {}", next_piece(input)));
        }
        return Ok(inner);
    }
    condition(input)
}

/// One comparison: `key op value` or `key IN (values)`.
fn condition(input: &mut &str) -> Parsed<Filter> {
    let Some(key) = opt(alt((quoted, word.map(str::to_string)))).parse_next(input)? else {
        return fail(format!("expected a field name, found {}", next_piece(input)));
    };
    space(input)?;
    if let Some(op) = opt(alt(("!=", "<=", ">=", "=", "<", ">"))).parse_next(input)? {
        space(input)?;
        let Some(v) = opt(value).parse_next(input)? else {
            return fail(format!("expected a value after {key}{op}"));
        };
        return comparison(&key, op, v).or_else(fail);
    }
    if keyword("in")(input)? {
        space(input)?;
        if opt('(').parse_next(input)?.is_none() {
            return fail(format!("expected '(' after {key} IN"));
        }
        let mut values = Vec::new();
        loop {
            space(input)?;
            let Some(v) = opt(value).parse_next(input)? else {
                return fail(format!("expected a value in {key} IN (...)"));
            };
            values.push(v);
            space(input)?;
            match opt(alt((',', ')'))).parse_next(input)? {
                Some(',') => continue,
                Some(_) => break,
                None => return fail(format!("expected ',' or ')' in {key} IN (...)")),
            }
        }
        return Ok(Filter::In { key, values });
    }
    fail(format!("expected =, !=, <, <=, >, >= or IN after {key}"))
}

/// A value: a quoted string, or a bare word read as a number, boolean, null or string.
fn value(input: &mut &str) -> Parsed<Value> {
    alt((quoted.map(Value::String), word.map(bare_value))).parse_next(input)
}

fn bare_value(w: &str) -> Value {
    match w {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        "null" => Value::Null,
        _ => match w.parse::<i64>() {
            Ok(i) => Value::from(i),
            Err(_) => match w.parse::<f64>() {
                Ok(f) if f.is_finite() => Value::from(f),
                _ => Value::String(w.to_string()),
            },
        },
    }
}

/// The next token of `rest`, as an error message shows it.
fn next_piece(rest: &str) -> String {
    let rest = rest.trim_start();
    let Some(c) = rest.chars().next() else {
        return "the end".into();
    };
    if c == '"' {
        return match quoted.parse_peek(rest) {
            Ok((_, s)) => format!("\"{s}\""),
            Err(_) => "an unterminated quoted string".into(),
        };
    }
    match word.parse_peek(rest) {
        Ok((_, w)) => format!("{w:?}"),
        Err(_) => format!("'{c}'"),
    }
}

fn syntax(expr: &str, message: &str) -> Error {
    Error::InvalidInput(format!("filter {expr:?}: {message}; example: lang=en AND year>=2020 AND tag IN (a, \"b c\")"))
}
