//! Metadata filters: equality, `IN` a set, numeric ranges, and their conjunction.
//!
//! Two written forms parse into the same [`Filter`]:
//! - an expression (CLI): `lang=en AND year>=2020 AND tag IN (a, "b c")`; operators `=`, `<`,
//!   `<=`, `>`, `>=`, `IN (...)`, clauses joined by `AND` (any case); values are numbers,
//!   `true`/`false`/`null`, `"quoted strings"` or bare words (strings);
//! - JSON (library, plugin): `{"lang": "en", "year": {"gte": 2020, "lt": 2025}, "tag": {"in": ["a", "b"]}}`;
//!   an object is the AND of its keys; a scalar means equality, an array means `IN`, an object
//!   holds operators `eq`, `in`, `gt`, `gte`, `lt`, `lte`.
//!
//! Keys address top-level metadata fields; a key with dots (`a.b`) that is not itself a field
//! addresses a nested one. A field holding an array matches when any element matches.

use serde_json::Value;

use crate::{Error, Result};

/// One end of a numeric range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    /// The limit.
    pub value: f64,
    /// Whether the limit itself is allowed.
    pub inclusive: bool,
}

/// A predicate on a document's metadata.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// Every sub-filter matches (an empty list matches everything).
    And(Vec<Filter>),
    /// The field equals the value (numbers compare by value).
    Eq { key: String, value: Value },
    /// The field equals one of the values.
    In { key: String, values: Vec<Value> },
    /// The field is a number within the bounds.
    Range {
        key: String,
        lower: Option<Bound>,
        upper: Option<Bound>,
    },
}

impl Filter {
    /// Whether the filter lets every document through.
    pub fn is_trivial(&self) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(Filter::is_trivial),
            _ => false,
        }
    }

    /// Whether a document with this metadata passes the filter.
    pub fn matches(&self, metadata: &Value) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|f| f.matches(metadata)),
            Filter::Eq { key, value } => field(metadata, key).is_some_and(|v| any_elem(v, |x| values_equal(x, value))),
            Filter::In { key, values } => field(metadata, key)
                .is_some_and(|v| any_elem(v, |x| values.iter().any(|w| values_equal(x, w)))),
            Filter::Range { key, lower, upper } => field(metadata, key).is_some_and(|v| {
                any_elem(v, |x| {
                    let Some(n) = x.as_f64() else { return false };
                    let above = lower.is_none_or(|b| if b.inclusive { n >= b.value } else { n > b.value });
                    let below = upper.is_none_or(|b| if b.inclusive { n <= b.value } else { n < b.value });
                    above && below
                })
            }),
        }
    }

    /// Parses the expression form, e.g. `lang=en AND year>=2020 AND tag IN (a,b)`.
    pub fn parse(expr: &str) -> Result<Filter> {
        let tokens = tokenize(expr)?;
        let mut parts = Vec::new();
        let mut pos = 0;
        while pos < tokens.len() {
            let key = match &tokens[pos] {
                Token::Word(w) | Token::Quoted(w) => w.clone(),
                other => return Err(syntax(expr, &format!("expected a field name, found {other}"))),
            };
            pos += 1;
            match tokens.get(pos) {
                Some(Token::Op(op)) => {
                    let op = op.clone();
                    let value = tokens
                        .get(pos + 1)
                        .and_then(Token::value)
                        .ok_or_else(|| syntax(expr, &format!("expected a value after {key}{op}")))?;
                    pos += 2;
                    parts.push(comparison(&key, &op, value).map_err(|m| syntax(expr, &m))?);
                }
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => {
                    pos += 1;
                    if tokens.get(pos) != Some(&Token::Open) {
                        return Err(syntax(expr, &format!("expected '(' after {key} IN")));
                    }
                    pos += 1;
                    let mut values = Vec::new();
                    loop {
                        let value = tokens
                            .get(pos)
                            .and_then(Token::value)
                            .ok_or_else(|| syntax(expr, &format!("expected a value in {key} IN (...)")))?;
                        values.push(value);
                        pos += 1;
                        match tokens.get(pos) {
                            Some(Token::Comma) => pos += 1,
                            Some(Token::Close) => {
                                pos += 1;
                                break;
                            }
                            _ => return Err(syntax(expr, &format!("expected ',' or ')' in {key} IN (...)"))),
                        }
                    }
                    parts.push(Filter::In { key, values });
                }
                _ => return Err(syntax(expr, &format!("expected =, <, <=, >, >= or IN after {key}"))),
            }
            match tokens.get(pos) {
                None => {}
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {
                    pos += 1;
                    if pos == tokens.len() {
                        return Err(syntax(expr, "AND at the end"));
                    }
                }
                Some(other) => return Err(syntax(expr, &format!("expected AND, found {other}"))),
            }
        }
        Ok(simplify(parts))
    }

    /// Parses the JSON form, e.g. `{"lang": "en", "year": {"gte": 2020}}`.
    pub fn from_json(json: &Value) -> Result<Filter> {
        let Value::Object(map) = json else {
            return Err(Error::InvalidInput(format!(
                "a JSON filter must be an object like {{\"lang\": \"en\", \"year\": {{\"gte\": 2020}}}}, got {json}"
            )));
        };
        let mut parts = Vec::new();
        for (key, cond) in map {
            match cond {
                Value::Array(values) => parts.push(Filter::In { key: key.clone(), values: values.clone() }),
                Value::Object(ops) => {
                    for (op, value) in ops {
                        let part = match op.as_str() {
                            "eq" => Filter::Eq { key: key.clone(), value: value.clone() },
                            "in" => match value {
                                Value::Array(values) => Filter::In { key: key.clone(), values: values.clone() },
                                _ => return Err(Error::InvalidInput(format!("filter {key}: \"in\" needs an array, got {value}"))),
                            },
                            "gt" | "gte" | "lt" | "lte" => {
                                let sym = match op.as_str() {
                                    "gt" => ">",
                                    "gte" => ">=",
                                    "lt" => "<",
                                    _ => "<=",
                                };
                                comparison(key, sym, value.clone()).map_err(Error::InvalidInput)?
                            }
                            other => {
                                return Err(Error::InvalidInput(format!(
                                    "filter {key}: unknown operator {other:?}; use eq, in, gt, gte, lt or lte"
                                )))
                            }
                        };
                        parts.push(part);
                    }
                }
                scalar => parts.push(Filter::Eq { key: key.clone(), value: scalar.clone() }),
            }
        }
        Ok(simplify(parts))
    }
}

fn simplify(mut parts: Vec<Filter>) -> Filter {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Filter::And(parts)
    }
}

fn comparison(key: &str, op: &str, value: Value) -> std::result::Result<Filter, String> {
    if op == "=" {
        return Ok(Filter::Eq { key: key.to_string(), value });
    }
    let n = value
        .as_f64()
        .ok_or_else(|| format!("{key}{op}{value}: ranges need a number"))?;
    let (lower, upper) = match op {
        ">" => (Some(Bound { value: n, inclusive: false }), None),
        ">=" => (Some(Bound { value: n, inclusive: true }), None),
        "<" => (None, Some(Bound { value: n, inclusive: false })),
        "<=" => (None, Some(Bound { value: n, inclusive: true })),
        other => return Err(format!("unsupported operator {other}; use =, <, <=, >, >= or IN")),
    };
    Ok(Filter::Range { key: key.to_string(), lower, upper })
}

/// The field a key addresses: the top-level field of that name, else a dotted path.
fn field<'a>(metadata: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(v) = metadata.get(key) {
        return Some(v);
    }
    if !key.contains('.') {
        return None;
    }
    key.split('.').try_fold(metadata, |v, part| v.get(part))
}

fn any_elem(v: &Value, pred: impl Fn(&Value) -> bool) -> bool {
    match v {
        Value::Array(items) => items.iter().any(pred),
        other => pred(other),
    }
}

fn values_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Op(String),
    Open,
    Close,
    Comma,
}

impl Token {
    fn value(&self) -> Option<Value> {
        match self {
            Token::Quoted(s) => Some(Value::String(s.clone())),
            Token::Word(w) => Some(match w.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => match w.parse::<i64>() {
                    Ok(i) => Value::from(i),
                    Err(_) => match w.parse::<f64>() {
                        Ok(f) if f.is_finite() => Value::from(f),
                        _ => Value::String(w.clone()),
                    },
                },
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Word(w) => write!(f, "{w:?}"),
            Token::Quoted(w) => write!(f, "\"{w}\""),
            Token::Op(o) => write!(f, "{o:?}"),
            Token::Open => write!(f, "'('"),
            Token::Close => write!(f, "')'"),
            Token::Comma => write!(f, "','"),
        }
    }
}

fn tokenize(expr: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(syntax(expr, "unterminated quoted string")),
                        Some('\\') => match chars.next() {
                            Some(e) => s.push(e),
                            None => return Err(syntax(expr, "unterminated quoted string")),
                        },
                        Some('"') => break,
                        Some(ch) => s.push(ch),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            '=' | '<' | '>' | '!' => {
                chars.next();
                let mut op = c.to_string();
                if chars.peek() == Some(&'=') && c != '=' {
                    chars.next();
                    op.push('=');
                }
                if op == "!" || op == "!=" {
                    return Err(syntax(expr, "'!=' is not supported; use =, <, <=, >, >= or IN"));
                }
                tokens.push(Token::Op(op));
            }
            _ => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || "(),=<>!\"".contains(ch) {
                        break;
                    }
                    w.push(ch);
                    chars.next();
                }
                tokens.push(Token::Word(w));
            }
        }
    }
    Ok(tokens)
}

fn syntax(expr: &str, message: &str) -> Error {
    Error::InvalidInput(format!(
        "filter {expr:?}: {message}; example: lang=en AND year>=2020 AND tag IN (a, \"b c\")"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expression_and_json_forms_agree() {
        let a = Filter::parse("lang=en AND year>=2020 and tag IN (a, \"b c\", 3)").unwrap();
        let b = Filter::from_json(&json!({"lang": "en", "year": {"gte": 2020}, "tag": ["a", "b c", 3]}))
            .unwrap();
        // serde_json's map is sorted by key, so compare by behaviour on a grid of documents.
        for doc in [
            json!({"lang": "en", "year": 2021, "tag": "a"}),
            json!({"lang": "en", "year": 2019, "tag": "a"}),
            json!({"lang": "fr", "year": 2021, "tag": "b c"}),
            json!({"lang": "en", "year": 2020, "tag": ["x", "b c"]}),
            json!({"lang": "en", "year": 2020.0, "tag": 3}),
            json!({"lang": "en", "tag": "a"}),
        ] {
            assert_eq!(a.matches(&doc), b.matches(&doc), "{doc}");
        }
        assert!(a.matches(&json!({"lang": "en", "year": 2020, "tag": ["x", "b c"]})));
        assert!(!a.matches(&json!({"lang": "en", "year": 2019, "tag": "a"})));
        assert!(!a.matches(&json!({"lang": "en", "tag": "a"})));
    }

    #[test]
    fn ranges_respect_inclusiveness() {
        let f = Filter::parse("x>1 AND x<=3").unwrap();
        let hits: Vec<i64> = (0..5).filter(|&x| f.matches(&json!({ "x": x }))).collect();
        assert_eq!(hits, vec![2, 3]);
        assert!(!f.matches(&json!({"x": "2"})), "strings are not numbers");
    }

    #[test]
    fn nested_keys_and_bad_syntax() {
        let f = Filter::parse("a.b=1").unwrap();
        assert!(f.matches(&json!({"a": {"b": 1}})));
        assert!(!f.matches(&json!({"a": {"b": 2}})));
        for bad in ["x", "x=", "x IN (a", "x=1 AND", "x=1 OR y=2", "x!=1", "x>abc", "\"x"] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
        assert!(Filter::from_json(&json!({"x": {"near": 1}})).is_err());
        assert!(Filter::from_json(&json!([1])).is_err());
    }
}
