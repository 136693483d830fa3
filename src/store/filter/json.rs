//! The JSON form of a filter (`{"lang": "en", "year": {"gte": 2020}}`, `{"$or": [...]}`), read
//! into a [`Filter`].
//!
//! Invariants: an object is the AND of its keys; only `$and`, `$or` and `$not` may start with
//! `$` (anything else is an error that lists them); operators are `eq`, `ne`, `in`, `nin`, `gt`,
//! `gte`, `lt`, `lte`, with or without a leading `$`; nesting stops at [`MAX_FILTER_DEPTH`].

use serde_json::Value;

use super::{comparison, simplify, too_deep, Filter, MAX_FILTER_DEPTH};
use crate::{Error, Result};

/// [`Filter::from_json`] for a filter nested `depth` levels deep.
pub(super) fn from_json_at(json: &Value, depth: usize) -> Result<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(too_deep());
    }
    let Value::Object(map) = json else {
        return Err(Error::InvalidInput(format!(
            "a JSON filter must be an object like {{\"lang\": \"en\", \"year\": {{\"gte\": 2020}}}}, got {json}"
        )));
    };
    let mut parts = Vec::new();
    for (key, cond) in map {
        match key.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = cond else {
                    return Err(Error::InvalidInput(format!(
                        "filter {key}: needs an array of filter objects, e.g. {{\"{key}\": [{{\"lang\": \"en\"}}, {{\"year\": 2020}}]}}; got {cond}"
                    )));
                };
                let subs = items.iter().map(|f| from_json_at(f, depth + 1)).collect::<Result<Vec<_>>>()?;
                parts.push(if key == "$and" { Filter::And(subs) } else { Filter::Or(subs) });
            }
            "$not" => parts.push(Filter::Not(Box::new(from_json_at(cond, depth + 1)?))),
            other if other.starts_with('$') => {
                return Err(Error::InvalidInput(format!(
                    "filter: unknown combinator {other:?}; use \"$and\", \"$or\" or \"$not\" (a field whose name starts with '$' needs the expression form)"
                )))
            }
            _ => field_conditions(key, cond, &mut parts)?,
        }
    }
    Ok(simplify(parts))
}

/// The conditions of one field of the JSON form, appended to `parts`.
fn field_conditions(key: &str, cond: &Value, parts: &mut Vec<Filter>) -> Result<()> {
    let ops = match cond {
        Value::Array(values) => {
            parts.push(Filter::In { key: key.to_string(), values: values.clone() });
            return Ok(());
        }
        Value::Object(ops) => ops,
        scalar => {
            parts.push(Filter::Eq { key: key.to_string(), value: scalar.clone() });
            return Ok(());
        }
    };
    for (op, value) in ops {
        // Chroma's spelling (`$gte`) is accepted too.
        let op = op.strip_prefix('$').unwrap_or(op);
        let part = match op {
            "eq" | "ne" => {
                comparison(key, if op == "eq" { "=" } else { "!=" }, value.clone()).map_err(Error::InvalidInput)?
            }
            "in" | "nin" => match value {
                Value::Array(values) => {
                    let within = Filter::In { key: key.to_string(), values: values.clone() };
                    if op == "in" {
                        within
                    } else {
                        Filter::Not(Box::new(within))
                    }
                }
                _ => return Err(Error::InvalidInput(format!("filter {key}: \"{op}\" needs an array, got {value}"))),
            },
            "gt" | "gte" | "lt" | "lte" => {
                let sym = match op {
                    "gt" => ">",
                    "gte" => ">=",
                    "lt" => "<",
                    _ => "<=",
                };
                comparison(key, sym, value.clone()).map_err(Error::InvalidInput)?
            }
            other => {
                return Err(Error::InvalidInput(format!(
                "filter {key}: unknown operator {other:?}; use eq, ne, in, nin, gt, gte, lt or lte (with or without \
                     a leading $)"
            )))
            }
        };
        parts.push(part);
    }
    Ok(())
}
