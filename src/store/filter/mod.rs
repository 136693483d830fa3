//! Metadata filters: equality, `IN` a set, numeric ranges, combined with `AND`, `OR`, `NOT`.
//!
//! Two written forms parse into the same [`Filter`]:
//! - an expression (CLI, SQL): `lang=en AND (year>=2020 OR NOT tag IN (a, "b c"))`; comparisons
//!   `=`, `!=`, `<`, `<=`, `>`, `>=`, `IN (...)`; `NOT` binds tighter than `AND`, which binds
//!   tighter than `OR`; parentheses group; keywords in any case. Values are numbers,
//!   `true`/`false`/`null`, `"quoted strings"` (`\` escapes the next character) or bare words
//!   (strings). A field named like a keyword (`not`) is written quoted;
//! - JSON (library, plugin): `{"lang": "en", "year": {"gte": 2020, "lt": 2025}, "tag": {"in": ["a", "b"]}}`;
//!   an object is the AND of its keys; a scalar means equality, an array means `IN`, an object
//!   holds operators `eq`, `ne`, `in`, `nin`, `gt`, `gte`, `lt`, `lte` (also spelled as Chroma
//!   does, `$eq`, ..., `$lte`). Keys starting with `$` combine
//!   filters: `{"$or": [F, ...]}`, `{"$and": [F, ...]}`, `{"$not": F}`, e.g.
//!   `{"$or": [{"lang": "en"}, {"$not": {"year": {"lt": 2020}}}]}`.
//!
//! `key!=value` is `NOT key=value`: it also matches documents without the field, and a field
//! holding an array matches when no element equals the value.
//!
//! Keys address top-level metadata fields; a key with dots (`a.b`) that is not itself a field
//! addresses a nested one. A field holding an array matches when any element matches.

//!
//! The module is split by job: `expr.rs` reads the expression form, `json.rs` the JSON form, and
//! this file holds the [`Filter`] they both build and its evaluation ([`Filter::matches`]). Both
//! readers build comparisons with one function (`comparison`) and bound nesting at the same
//! [`MAX_FILTER_DEPTH`], so the two forms of one filter parse to equal values.

mod expr;
mod json;

use serde_json::Value;

use crate::{Error, Result};

/// Either written form: JSON when the text starts with `{`, the expression form otherwise.
///
/// ```
/// use isovec::store::Filter;
/// let a: Filter = r#"{"year": {"gte": 2020}}"#.parse()?;
/// let b: Filter = "year>=2020".parse()?;
/// assert_eq!(a, b);
/// assert!(a.matches(&serde_json::json!({"year": 2021})));
/// # Ok::<(), isovec::Error>(())
/// ```
impl std::str::FromStr for Filter {
    type Err = Error;

    fn from_str(text: &str) -> Result<Filter> {
        if text.trim_start().starts_with('{') {
            let json: Value = serde_json::from_str(text)
                .map_err(|e| Error::InvalidInput(format!("filter is not valid JSON: {e}")))?;
            Filter::from_json(&json)
        } else {
            Filter::parse(text)
        }
    }
}

/// The deepest nesting a filter may have, in either form: parentheses, `NOT`s, `$and`/`$or`/
/// `$not`. Parsing, matching and dropping a filter recurse once per level, so an unbounded
/// depth (20,000 parentheses) would overflow the stack of whatever process runs isovec.
pub const MAX_FILTER_DEPTH: usize = 64;

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
    /// At least one sub-filter matches (an empty list matches nothing).
    Or(Vec<Filter>),
    /// The sub-filter does not match.
    Not(Box<Filter>),
    /// The field equals the value (numbers compare by value).
    Eq {
        /// The metadata field.
        key: String,
        /// The value it must equal.
        value: Value,
    },
    /// The field equals one of the values.
    In {
        /// The metadata field.
        key: String,
        /// The values it may equal.
        values: Vec<Value>,
    },
    /// The field is a number within the bounds.
    Range {
        /// The metadata field.
        key: String,
        /// The lower bound, if any.
        lower: Option<Bound>,
        /// The upper bound, if any.
        upper: Option<Bound>,
    },
}

impl Filter {
    /// Whether the filter lets every document through.
    pub fn is_trivial(&self) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(Filter::is_trivial),
            Filter::Or(parts) => parts.iter().any(Filter::is_trivial),
            _ => false,
        }
    }

    /// Whether a document with this metadata passes the filter.
    pub fn matches(&self, metadata: &Value) -> bool {
        match self {
            Filter::And(parts) => parts.iter().all(|f| f.matches(metadata)),
            Filter::Or(parts) => parts.iter().any(|f| f.matches(metadata)),
            Filter::Not(inner) => !inner.matches(metadata),
            Filter::Eq { key, value } => field(metadata, key).is_some_and(|v| any_elem(v, |x| values_equal(x, value))),
            Filter::In { key, values } => {
                field(metadata, key).is_some_and(|v| any_elem(v, |x| values.iter().any(|w| values_equal(x, w))))
            }
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

    /// Parses the expression form, e.g. `lang=en AND (year>=2020 OR tag IN (a,b))`; an empty
    /// expression lets every document through.
    pub fn parse(expr: &str) -> Result<Filter> {
        expr::parse(expr)
    }

    /// Parses the JSON form, e.g. `{"lang": "en", "year": {"gte": 2020}}` or
    /// `{"$or": [{"lang": "en"}, {"$not": {"year": {"lt": 2020}}}]}`.
    pub fn from_json(json: &Value) -> Result<Filter> {
        json::from_json_at(json, 0)
    }
}

/// The error for a JSON filter nested deeper than [`MAX_FILTER_DEPTH`].
fn too_deep() -> Error {
    Error::InvalidInput(format!("filter: {}", too_deep_message()))
}

/// Why a filter nested too deep is refused, with a way out; both forms say it.
fn too_deep_message() -> String {
    format!(
        "nested more than {MAX_FILTER_DEPTH} levels deep (parentheses, NOT, $and/$or/$not); \
         write it flatter, e.g. a IN (1, 2, 3) rather than nested ORs"
    )
}

/// One filter as it is, several as their AND.
fn simplify(mut parts: Vec<Filter>) -> Filter {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Filter::And(parts)
    }
}

/// `key op value` for the comparison operators of the expression form (`=`, `!=`, `<`, `<=`, `>`,
/// `>=`), as both written forms build them; a range needs a number.
fn comparison(key: &str, op: &str, value: Value) -> std::result::Result<Filter, String> {
    let key = key.to_string();
    match op {
        "=" => return Ok(Filter::Eq { key, value }),
        "!=" => return Ok(Filter::Not(Box::new(Filter::Eq { key, value }))),
        _ => {}
    }
    let n = value.as_f64().ok_or_else(|| format!("{key}{op}{value}: ranges need a number"))?;
    let (lower, upper) = match op {
        ">" => (Some(Bound { value: n, inclusive: false }), None),
        ">=" => (Some(Bound { value: n, inclusive: true }), None),
        "<" => (None, Some(Bound { value: n, inclusive: false })),
        "<=" => (None, Some(Bound { value: n, inclusive: true })),
        other => return Err(format!("unsupported operator {other}; use =, !=, <, <=, >, >= or IN")),
    };
    Ok(Filter::Range { key, lower, upper })
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    #[test]
    fn from_str_reads_both_forms() {
        let a: Filter = r#"{"year": {"gte": 2000}}"#.parse().unwrap();
        let b: Filter = "year>=2000".parse().unwrap();
        assert_eq!(a, b);
        assert!(a.matches(&json!({"year": 2000})) && !a.matches(&json!({"year": 1999})));
        let err = "{not json".parse::<Filter>().unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    fn hits(f: &Filter, docs: &[Value]) -> Vec<usize> {
        (0..docs.len()).filter(|&i| f.matches(&docs[i])).collect()
    }

    fn message(expr: &str) -> String {
        match Filter::parse(expr) {
            Ok(f) => panic!("{expr:?} should be rejected, parsed as {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn expression_and_json_forms_agree() {
        let a = Filter::parse("lang=en AND year>=2020 and tag IN (a, \"b c\", 3)").unwrap();
        let b = Filter::from_json(&json!({"lang": "en", "year": {"gte": 2020}, "tag": ["a", "b c", 3]})).unwrap();
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
    fn chromas_operator_spelling_means_the_same() {
        let chroma = Filter::from_json(&json!({"$and": [
            {"year": {"$gte": 2020, "$lt": 2025}},
            {"lang": {"$in": ["en", "fr"]}},
            {"tag": {"$nin": ["x"]}},
            {"kind": {"$ne": "draft"}},
            {"n": {"$eq": 3}},
        ]}))
        .unwrap();
        let ours =
            Filter::parse("year>=2020 AND year<2025 AND lang IN (en, fr) AND NOT tag IN (x) AND kind!=draft AND n=3")
                .unwrap();
        let docs = [
            json!({"year": 2021, "lang": "en", "tag": "y", "kind": "final", "n": 3}),
            json!({"year": 2025, "lang": "en", "tag": "y", "kind": "final", "n": 3}),
            json!({"year": 2021, "lang": "de", "tag": "y", "kind": "final", "n": 3}),
            json!({"year": 2021, "lang": "fr", "tag": "x", "kind": "final", "n": 3}),
            json!({"year": 2021, "lang": "fr", "kind": "draft", "n": 3}),
            json!({"year": 2021, "lang": "fr", "n": 3.0}),
            json!({"year": 2021, "lang": "fr", "n": 4}),
        ];
        let matched: Vec<bool> = docs.iter().map(|d| chroma.matches(d)).collect();
        assert_eq!(matched, [true, false, false, false, false, true, false]);
        for doc in &docs {
            assert_eq!(chroma.matches(doc), ours.matches(doc), "{doc}");
        }
        let e = Filter::from_json(&json!({"a": {"$near": 1}})).unwrap_err().to_string();
        assert!(e.contains("\"near\"") && e.contains("nin"), "{e}");
    }

    #[test]
    fn ranges_respect_inclusiveness() {
        let f = Filter::parse("x>1 AND x<=3").unwrap();
        let hits: Vec<i64> = (0..5).filter(|&x| f.matches(&json!({ "x": x }))).collect();
        assert_eq!(hits, vec![2, 3]);
        assert!(!f.matches(&json!({"x": "2"})), "strings are not numbers");
    }

    #[test]
    fn not_equal_is_the_complement_of_equal() {
        let docs = [
            json!({"x": 1}),
            json!({"x": 2}),
            json!({}),
            json!({"x": [1, 3]}),
            json!({"x": [2, 3]}),
            json!({"x": "1"}),
        ];
        assert_eq!(hits(&Filter::parse("x=1").unwrap(), &docs), [0, 3]);
        // Absent fields and arrays without the value pass; numbers compare by value, not text.
        assert_eq!(hits(&Filter::parse("x!=1").unwrap(), &docs), [1, 2, 4, 5]);
        assert_eq!(hits(&Filter::parse("x != 1.0").unwrap(), &docs), [1, 2, 4, 5]);
        assert_eq!(hits(&Filter::from_json(&json!({"x": {"ne": 1}})).unwrap(), &docs), [1, 2, 4, 5]);
    }

    #[test]
    fn or_not_and_parentheses() {
        let docs: Vec<Value> = (0..4).flat_map(|a| (0..4).map(move |b| json!({"a": a, "b": b}))).collect();
        let count = |expr: &str| hits(&Filter::parse(expr).unwrap(), &docs).len();
        assert_eq!(count("a=0 OR b=0"), 7);
        assert_eq!(count("NOT a=0"), 12);
        assert_eq!(count("not not a=0"), 4);
        // NOT binds tighter than AND, AND tighter than OR.
        assert_eq!(count("NOT a=0 AND b=0"), 3);
        assert_eq!(count("NOT (a=0 AND b=0)"), 15);
        assert_eq!(count("a=0 OR a=1 AND b=0"), 5);
        assert_eq!(count("(a=0 OR a=1) AND b=0"), 2);
        assert_eq!(count("a=0 AND b=0 OR a=1 AND b=1"), 2);
        assert_eq!(count("((a IN (0, 1)))"), 8);
        assert_eq!(
            Filter::parse("NOT a=0 AND b=0").unwrap(),
            Filter::And(vec![
                Filter::Not(Box::new(Filter::Eq { key: "a".into(), value: json!(0) })),
                Filter::Eq { key: "b".into(), value: json!(0) },
            ])
        );
    }

    #[test]
    fn quoting_keys_values_and_keywords() {
        let f = Filter::parse(r#""not"="a \"b\" c" AND "two words" IN ("x, y", OR)"#).unwrap();
        assert!(f.matches(&json!({"not": "a \"b\" c", "two words": "x, y"})));
        assert!(f.matches(&json!({"not": "a \"b\" c", "two words": "OR"})));
        assert!(!f.matches(&json!({"not": "a b c", "two words": "OR"})));
        // Quoted values stay strings; bare ones are typed.
        assert!(Filter::parse(r#"n="1""#).unwrap().matches(&json!({"n": "1"})));
        assert!(!Filter::parse(r#"n="1""#).unwrap().matches(&json!({"n": 1})));
        assert!(Filter::parse("n=true OR n=null").unwrap().matches(&json!({"n": null})));
        assert!(Filter::parse("").unwrap().is_trivial());
    }

    #[test]
    fn nested_keys() {
        let f = Filter::parse("a.b=1").unwrap();
        assert!(f.matches(&json!({"a": {"b": 1}})));
        assert!(!f.matches(&json!({"a": {"b": 2}})));
    }

    #[test]
    fn nesting_is_bounded_in_both_forms() {
        let nested = |n: usize| format!("{}a=1{}", "(".repeat(n), ")".repeat(n));
        let nots = |n: usize| format!("{}a=1", "NOT ".repeat(n));
        let doc = json!({"a": 1});
        // At the limit: parses and means what it says.
        assert!(Filter::parse(&nested(MAX_FILTER_DEPTH)).unwrap().matches(&doc));
        assert_eq!(Filter::parse(&nots(MAX_FILTER_DEPTH)).unwrap().matches(&doc), MAX_FILTER_DEPTH.is_multiple_of(2));
        // Past it, and far past it (20,000 levels overflowed the stack): a clear error.
        for expr in [nested(MAX_FILTER_DEPTH + 1), nested(20_000), nots(MAX_FILTER_DEPTH + 1), nots(20_000)] {
            let e = Filter::parse(&expr).unwrap_err().to_string();
            assert!(e.contains("nested more than 64 levels"), "{e}");
        }
        // JSON, built as a value (as the library and Python give it) and as text.
        let json_nots = |n: usize| (0..n).fold(json!({"a": 1}), |f, _| json!({"$not": f}));
        let json_ors = |n: usize| (0..n).fold(json!({"a": 1}), |f, _| json!({"$or": [f]}));
        assert!(Filter::from_json(&json_ors(MAX_FILTER_DEPTH)).unwrap().matches(&doc));
        assert!(Filter::from_json(&json_nots(MAX_FILTER_DEPTH)).is_ok());
        for deep in [json_nots(MAX_FILTER_DEPTH + 1), json_ors(MAX_FILTER_DEPTH + 1), json_ors(1_000)] {
            let e = Filter::from_json(&deep).unwrap_err().to_string();
            assert!(e.contains("nested more than 64 levels"), "{e}");
        }
        let text = format!("{}{{\"a\": 1}}{}", "{\"$not\": ".repeat(20_000), "}".repeat(20_000));
        assert!(text.parse::<Filter>().is_err());
    }

    #[test]
    fn errors_say_what_is_wrong_and_show_an_example() {
        let example = r#"; example: lang=en AND year>=2020 AND tag IN (a, "b c")"#;
        for (expr, expected) in [
            ("year >>= 2020", "expected a value after year>"),
            ("x", "expected =, !=, <, <=, >, >= or IN after x"),
            ("x=", "expected a value after x="),
            ("x !", "expected =, !=, <, <=, >, >= or IN after x"),
            ("x IN a", "expected '(' after x IN"),
            ("x IN (a", "expected ',' or ')' in x IN (...)"),
            ("x IN (a,)", "expected a value in x IN (...)"),
            ("x=1 AND", "AND at the end"),
            ("x=1 OR ", "OR at the end"),
            ("NOT", "NOT at the end"),
            ("x>abc", "x>\"abc\": ranges need a number"),
            ("\"x", "unterminated quoted string"),
            ("(x=1", "expected AND, OR or ')', found the end"),
            ("x=1)", "expected AND, OR or the end, found ')'"),
            ("x=1 y=2", "expected AND, OR or the end, found \"y\""),
            ("= 1", "expected a field name, found '='"),
            ("x=1 AND OR y=2", "expected =, !=, <, <=, >, >= or IN after OR"),
        ] {
            assert_eq!(message(expr), format!("filter {expr:?}: {expected}{example}"), "{expr}");
        }
    }

    #[test]
    fn json_combinators_and_their_errors() {
        let f = Filter::from_json(&json!({"$or": [{"lang": "en"}, {"$not": {"year": {"lt": 2020}}}], "n": {"ne": 0}}))
            .unwrap();
        assert!(f.matches(&json!({"lang": "en", "year": 2000, "n": 1})));
        assert!(f.matches(&json!({"lang": "fr", "year": 2021})));
        assert!(!f.matches(&json!({"lang": "fr", "year": 2019, "n": 1})));
        assert!(!f.matches(&json!({"lang": "en", "n": 0})));
        assert!(Filter::from_json(&json!({"$and": []})).unwrap().is_trivial());
        assert!(!Filter::from_json(&json!({"$or": []})).unwrap().matches(&json!({})));
        for (bad, expected) in [
            (json!({"x": {"near": 1}}), "unknown operator \"near\""),
            (json!([1]), "must be an object"),
            (json!({"$or": {"x": 1}}), "$or: needs an array"),
            (json!({"$xor": []}), "unknown combinator \"$xor\""),
            (json!({"$not": [1]}), "must be an object"),
            (json!({"x": {"gt": "a"}}), "ranges need a number"),
        ] {
            let e = Filter::from_json(&bad).expect_err(&bad.to_string()).to_string();
            assert!(e.contains(expected), "{bad}: {e}");
        }
    }

    /// A filter as the random test builds it, with its own evaluator below.
    #[derive(Clone, Debug)]
    enum Expr {
        Cmp(&'static str, &'static str, Value),
        In(&'static str, Vec<Value>),
        Not(Box<Expr>),
        And(Vec<Expr>),
        Or(Vec<Expr>),
    }

    const KEYS: [&str; 3] = ["a", "b", "c"];
    const OPS: [&str; 6] = ["=", "!=", "<", "<=", ">", ">="];

    fn random_scalar(rng: &mut StdRng) -> Value {
        match rng.random_range(0..5) {
            0 => json!("x"),
            1 => json!("y z"),
            _ => json!(rng.random_range(0..4)),
        }
    }

    fn random_expr(rng: &mut StdRng, depth: usize) -> Expr {
        let key = KEYS[rng.random_range(0..3)];
        match if depth == 0 { 0 } else { rng.random_range(0..5) } {
            0 => {
                let op = OPS[rng.random_range(0..OPS.len())];
                let value = if op == "=" || op == "!=" { random_scalar(rng) } else { json!(rng.random_range(0..4)) };
                Expr::Cmp(key, op, value)
            }
            1 => Expr::In(key, (0..rng.random_range(1..4)).map(|_| random_scalar(rng)).collect()),
            2 => Expr::Not(Box::new(random_expr(rng, depth - 1))),
            3 => Expr::And((0..rng.random_range(2..4)).map(|_| random_expr(rng, depth - 1)).collect()),
            _ => Expr::Or((0..rng.random_range(2..4)).map(|_| random_expr(rng, depth - 1)).collect()),
        }
    }

    fn random_doc(rng: &mut StdRng) -> Value {
        let mut doc = serde_json::Map::new();
        for key in KEYS {
            match rng.random_range(0..5) {
                0 => {}
                1 => {
                    doc.insert(key.into(), json!([random_scalar(rng), random_scalar(rng)]));
                }
                _ => {
                    doc.insert(key.into(), random_scalar(rng));
                }
            }
        }
        Value::Object(doc)
    }

    /// The meaning of an `Expr`, written out directly: a comparison holds if any element of the
    /// field (the field itself when it is not an array) satisfies it; `!=` is the negation of `=`.
    fn eval(e: &Expr, doc: &Value) -> bool {
        let elems = |key: &str| -> Vec<Value> {
            match doc.get(key) {
                None => vec![],
                Some(Value::Array(items)) => items.clone(),
                Some(v) => vec![v.clone()],
            }
        };
        match e {
            Expr::Cmp(key, "!=", v) => !eval(&Expr::Cmp(key, "=", v.clone()), doc),
            Expr::Cmp(key, "=", v) => elems(key).contains(v),
            Expr::Cmp(key, op, v) => {
                let limit = v.as_i64().unwrap();
                elems(key).iter().filter_map(Value::as_i64).any(|x| match *op {
                    "<" => x < limit,
                    "<=" => x <= limit,
                    ">" => x > limit,
                    _ => x >= limit,
                })
            }
            Expr::In(key, values) => elems(key).iter().any(|x| values.contains(x)),
            Expr::Not(inner) => !eval(inner, doc),
            Expr::And(parts) => parts.iter().all(|p| eval(p, doc)),
            Expr::Or(parts) => parts.iter().any(|p| eval(p, doc)),
        }
    }

    fn render_value(v: &Value, rng: &mut StdRng) -> String {
        match v {
            Value::String(s) if s.contains(' ') || rng.random_bool(0.5) => format!("{:?}", s),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }

    fn keyword(kw: &str, rng: &mut StdRng) -> String {
        if rng.random_bool(0.5) {
            kw.to_uppercase()
        } else {
            kw.to_lowercase()
        }
    }

    /// Text of `e`, parenthesised when its operator binds less tightly than `context` (OR 1,
    /// AND 2, NOT 3), and now and then when it need not be.
    fn render(e: &Expr, context: u8, rng: &mut StdRng) -> String {
        let (own, text) = match e {
            Expr::Cmp(key, op, v) => (
                4,
                format!(
                    "{key}{}{op}{}{}",
                    if rng.random_bool(0.5) { " " } else { "" },
                    " ".repeat(rng.random_range(0..2)),
                    render_value(v, rng)
                ),
            ),
            Expr::In(key, values) => {
                let items: Vec<String> = values.iter().map(|v| render_value(v, rng)).collect();
                (4, format!("{key} {} ({})", keyword("in", rng), items.join(", ")))
            }
            Expr::Not(inner) => (3, format!("{} {}", keyword("not", rng), render(inner, 3, rng))),
            Expr::And(parts) => {
                let sep = format!(" {} ", keyword("and", rng));
                (2, parts.iter().map(|p| render(p, 2, rng)).collect::<Vec<_>>().join(&sep))
            }
            Expr::Or(parts) => {
                let sep = format!(" {} ", keyword("or", rng));
                (1, parts.iter().map(|p| render(p, 1, rng)).collect::<Vec<_>>().join(&sep))
            }
        };
        if own < context || rng.random_bool(0.1) {
            format!("({text})")
        } else {
            text
        }
    }

    fn to_json(e: &Expr) -> Value {
        match e {
            Expr::Cmp(key, op, v) => {
                let name = match *op {
                    "=" => return json!({ *key: v }),
                    "!=" => "ne",
                    "<" => "lt",
                    "<=" => "lte",
                    ">" => "gt",
                    _ => "gte",
                };
                json!({ *key: { name: v } })
            }
            Expr::In(key, values) => json!({ *key: values }),
            Expr::Not(inner) => json!({"$not": to_json(inner)}),
            Expr::And(parts) => json!({"$and": parts.iter().map(to_json).collect::<Vec<_>>()}),
            Expr::Or(parts) => json!({"$or": parts.iter().map(to_json).collect::<Vec<_>>()}),
        }
    }

    #[test]
    fn random_filters_agree_with_a_direct_evaluation() {
        let mut rng = StdRng::seed_from_u64(16);
        let docs: Vec<Value> = (0..40).map(|_| random_doc(&mut rng)).collect();
        let (mut passed, mut total) = (0, 0);
        for _ in 0..400 {
            let e = random_expr(&mut rng, 3);
            let text = render(&e, 0, &mut rng);
            let parsed = Filter::parse(&text).unwrap_or_else(|err| panic!("{text}: {err}"));
            let from_json = Filter::from_json(&to_json(&e)).unwrap();
            for doc in &docs {
                let expected = eval(&e, doc);
                assert_eq!(parsed.matches(doc), expected, "{text} on {doc}");
                assert_eq!(from_json.matches(doc), expected, "{} on {doc}", to_json(&e));
                passed += expected as usize;
                total += 1;
            }
        }
        // Both outcomes are well represented, so the agreement is not that of constant answers.
        assert!(passed > total / 5 && passed < total * 4 / 5, "{passed} of {total} matched");
    }
}
