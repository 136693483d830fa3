//! Documents' metadata in memory, with an inverted index that finds the documents a filter
//! allows without evaluating it on every document.
//!
//! Derived state, rebuilt from sled at open and kept in step with every write under the
//! collection's state lock. Invariants, enforced here:
//! - `all` holds exactly the internal ids of `values`, and each field index holds an id under a
//!   value exactly when [`Filter::matches`]' field lookup (`filter::field` and `any_elem`) finds that
//!   value for it: top-level keys as they are, dotted paths into nested objects unless a top-level
//!   key spells the path, array elements one level deep;
//! - [`Metadata::allowed`] returns what evaluating the filter on every document returns, sorted;
//!   a filter the index cannot answer (a non-scalar value to compare with) is evaluated on every
//!   document instead.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound as Edge;

use serde_json::Value;

use crate::store::filter::{Bound, Filter};

/// A scalar as the index keys it: numbers by value (so 3 and 3.0 are one key), as filters
/// compare them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Scalar {
    Number(u64),
    Text(String),
    Bool(bool),
    Null,
}

impl Scalar {
    fn of(v: &Value) -> Option<Scalar> {
        Some(match v {
            Value::Number(_) => Scalar::Number(ordered(v.as_f64()?)),
            Value::String(s) => Scalar::Text(s.clone()),
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Null => Scalar::Null,
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

/// `x`'s bits mapped to an unsigned integer of the same order (-0.0 and 0.0 are one key).
fn ordered(x: f64) -> u64 {
    let bits = if x == 0.0 { 0.0f64.to_bits() } else { x.to_bits() };
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// The documents holding each value of one field.
#[derive(Default)]
struct FieldIndex {
    equal: HashMap<Scalar, BTreeSet<u64>>,
    /// Numeric values, in order, for ranges.
    numbers: BTreeMap<u64, BTreeSet<u64>>,
}

/// Every document's metadata (documents without any are absent) and the index over it.
#[derive(Default)]
pub(crate) struct Metadata {
    values: HashMap<u64, Value>,
    fields: HashMap<String, FieldIndex>,
    all: BTreeSet<u64>,
}

impl Metadata {
    /// The metadata of internal id `iid`.
    pub(crate) fn get(&self, iid: &u64) -> Option<&Value> {
        self.values.get(iid)
    }

    /// Records `value` as `iid`'s metadata (replacing what it had).
    pub(crate) fn insert(&mut self, iid: u64, value: Value) {
        self.remove(&iid);
        for (path, v) in paths(&value) {
            for elem in elements(v) {
                let field = self.fields.entry(path.clone()).or_default();
                if let Some(s) = Scalar::of(elem) {
                    field.equal.entry(s).or_default().insert(iid);
                }
                if let Some(x) = elem.as_f64() {
                    field.numbers.entry(ordered(x)).or_default().insert(iid);
                }
            }
        }
        self.all.insert(iid);
        self.values.insert(iid, value);
    }

    /// Forgets `iid`'s metadata.
    pub(crate) fn remove(&mut self, iid: &u64) {
        let Some(value) = self.values.remove(iid) else { return };
        self.all.remove(iid);
        for (path, v) in paths(&value) {
            let Some(field) = self.fields.get_mut(&path) else { continue };
            for elem in elements(v) {
                if let Some(s) = Scalar::of(elem) {
                    if let Some(ids) = field.equal.get_mut(&s) {
                        ids.remove(iid);
                        if ids.is_empty() {
                            field.equal.remove(&s);
                        }
                    }
                }
                if let Some(x) = elem.as_f64() {
                    let key = ordered(x);
                    if let Some(ids) = field.numbers.get_mut(&key) {
                        ids.remove(iid);
                        if ids.is_empty() {
                            field.numbers.remove(&key);
                        }
                    }
                }
            }
            if field.equal.is_empty() && field.numbers.is_empty() {
                self.fields.remove(&path);
            }
        }
    }

    /// The internal ids whose metadata `filter` allows, sorted.
    pub(crate) fn allowed(&self, filter: &Filter) -> Vec<u64> {
        self.indexed(filter).unwrap_or_else(|| self.scanned(filter))
    }

    /// [`Metadata::allowed`] by evaluating the filter on every document (what the index must equal).
    pub(crate) fn scanned(&self, filter: &Filter) -> Vec<u64> {
        let mut ids: Vec<u64> = self.values.iter().filter(|(_, m)| filter.matches(m)).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids
    }

    /// The ids `filter` allows, from the index; `None` if it compares with a non-scalar value.
    fn indexed(&self, filter: &Filter) -> Option<Vec<u64>> {
        Some(match filter {
            Filter::Eq { key, value } => self.equal(key, &Scalar::of(value)?),
            Filter::In { key, values } => {
                let mut sets = Vec::with_capacity(values.len());
                for v in values {
                    sets.push(self.equal(key, &Scalar::of(v)?));
                }
                union(sets)
            }
            Filter::Range { key, lower, upper } => {
                let Some(field) = self.fields.get(key) else { return Some(Vec::new()) };
                // -0.0 and 0.0 share a key, and no bound tells them apart either.
                let edge = |b: &Option<Bound>| match b {
                    None => Edge::Unbounded,
                    Some(b) if b.inclusive => Edge::Included(ordered(b.value)),
                    Some(b) => Edge::Excluded(ordered(b.value)),
                };
                let (lo, hi) = (edge(lower), edge(upper));
                if empty_range(&lo, &hi) {
                    return Some(Vec::new());
                }
                union(field.numbers.range((lo, hi)).map(|(_, ids)| ids.iter().copied().collect()).collect())
            }
            Filter::And(parts) => {
                let mut sets = Vec::with_capacity(parts.len());
                for p in parts {
                    sets.push(self.indexed(p)?);
                }
                sets.sort_by_key(Vec::len);
                let mut sets = sets.into_iter();
                match sets.next() {
                    None => self.all.iter().copied().collect(),
                    Some(first) => sets.fold(first, |acc, s| intersect(&acc, &s)),
                }
            }
            Filter::Or(parts) => {
                let mut sets = Vec::with_capacity(parts.len());
                for p in parts {
                    sets.push(self.indexed(p)?);
                }
                union(sets)
            }
            Filter::Not(inner) => {
                // Both sorted: one pass over `all`, stepping through `excluded` beside it.
                let excluded = self.indexed(inner)?;
                let mut next = excluded.iter().peekable();
                let mut out = Vec::with_capacity(self.all.len().saturating_sub(excluded.len()));
                for &id in &self.all {
                    while next.next_if(|&&e| e < id).is_some() {}
                    if next.next_if_eq(&&id).is_none() {
                        out.push(id);
                    }
                }
                out
            }
        })
    }

    fn equal(&self, key: &str, value: &Scalar) -> Vec<u64> {
        self.fields
            .get(key)
            .and_then(|f| f.equal.get(value))
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// Whether no key lies between `lo` and `hi` (`BTreeMap::range` panics on such bounds).
fn empty_range(lo: &Edge<u64>, hi: &Edge<u64>) -> bool {
    match (lo, hi) {
        (Edge::Included(a), Edge::Included(b)) => a > b,
        (Edge::Included(a), Edge::Excluded(b)) | (Edge::Excluded(a), Edge::Included(b)) => a >= b,
        (Edge::Excluded(a), Edge::Excluded(b)) => a >= b,
        _ => false,
    }
}

/// The sorted union of sorted id lists.
fn union(sets: Vec<Vec<u64>>) -> Vec<u64> {
    let mut out: Vec<u64> = sets.into_iter().flatten().collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The ids in both sorted lists.
fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().min(b.len())));
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The values a field lookup compares: an array's elements, else the value itself.
fn elements(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// Every key a filter can name in `meta`, with the value its lookup finds: the top-level keys,
/// and the dotted paths into nested objects that no top-level key spells (a nested key with a
/// dot cannot be named, as the lookup splits at every dot).
fn paths(meta: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    let Value::Object(top) = meta else { return out };
    for (key, value) in top {
        out.push((key.clone(), value));
        if !key.contains('.') {
            nested(key, value, top, &mut out);
        }
    }
    out
}

fn nested<'a>(
    prefix: &str,
    value: &'a Value,
    top: &serde_json::Map<String, Value>,
    out: &mut Vec<(String, &'a Value)>,
) {
    let Value::Object(map) = value else { return };
    for (key, sub) in map {
        if key.contains('.') {
            continue;
        }
        let path = format!("{prefix}.{key}");
        if !top.contains_key(&path) {
            out.push((path.clone(), sub));
        }
        nested(&path, sub, top, out);
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    use super::*;

    fn random_value(rng: &mut StdRng, depth: usize) -> Value {
        match rng.random_range(0..if depth == 0 { 6 } else { 8 }) {
            0 => json!(rng.random_range(-3..4)),
            1 => json!(f64::from(rng.random_range(-6..8)) / 2.0),
            2 => json!(["a", "b", "c"][rng.random_range(0..3)]),
            3 => json!(rng.random_bool(0.5)),
            4 => Value::Null,
            5 => json!([rng.random_range(0..4), "a", [1, 2]]),
            _ => {
                let mut m = serde_json::Map::new();
                for key in ["x", "y", "a.b"] {
                    if rng.random_bool(0.5) {
                        m.insert(key.to_string(), random_value(rng, depth - 1));
                    }
                }
                Value::Object(m)
            }
        }
    }

    fn random_filter(rng: &mut StdRng, depth: usize) -> Filter {
        const KEYS: [&str; 6] = ["x", "y", "a", "a.b", "a.x", "a.y.x"];
        let key = KEYS[rng.random_range(0..KEYS.len())].to_string();
        let scalar = |rng: &mut StdRng| match rng.random_range(0..5) {
            0 => json!(rng.random_range(-3..4)),
            1 => json!(f64::from(rng.random_range(-6..8)) / 2.0),
            2 => json!(["a", "b", "c"][rng.random_range(0..3)]),
            3 => json!(rng.random_bool(0.5)),
            _ => Value::Null,
        };
        let bound = |rng: &mut StdRng| {
            rng.random_bool(0.7)
                .then(|| Bound { value: f64::from(rng.random_range(-6..8)) / 2.0, inclusive: rng.random_bool(0.5) })
        };
        match if depth == 0 { rng.random_range(0..3) } else { rng.random_range(0..7) } {
            0 => Filter::Eq { key, value: scalar(rng) },
            1 => Filter::In { key, values: (0..rng.random_range(0..4)).map(|_| scalar(rng)).collect() },
            2 => Filter::Range { key, lower: bound(rng), upper: bound(rng) },
            3 => Filter::Not(Box::new(random_filter(rng, depth - 1))),
            4 => Filter::Or((0..rng.random_range(0..3)).map(|_| random_filter(rng, depth - 1)).collect()),
            5 => Filter::Eq { key, value: json!([1, 2]) },
            _ => Filter::And((0..rng.random_range(0..3)).map(|_| random_filter(rng, depth - 1)).collect()),
        }
    }

    #[test]
    fn the_index_allows_what_evaluating_every_document_allows() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut meta = Metadata::default();
        for round in 0..4 {
            // Inserts, replacements and removals between rounds of random filters.
            for _ in 0..300 {
                let iid = rng.random_range(0..400);
                if rng.random_bool(0.2) {
                    meta.remove(&iid);
                } else {
                    let value = random_value(&mut rng, 2);
                    let value = if value.is_object() { value } else { json!({"x": value, "a": {"b": 1}}) };
                    meta.insert(iid, value);
                }
            }
            for _ in 0..400 {
                let f = random_filter(&mut rng, 3);
                assert_eq!(meta.allowed(&f), meta.scanned(&f), "round {round}: {f:?}");
            }
        }
        // Removing everything leaves no trace.
        let ids: Vec<u64> = meta.values.keys().copied().collect();
        for id in ids {
            meta.remove(&id);
        }
        assert!(meta.fields.is_empty() && meta.all.is_empty());
    }

    #[test]
    fn keys_are_found_as_the_filter_finds_them() {
        let mut meta = Metadata::default();
        meta.insert(1, json!({"a": {"b": 1}, "n": -0.0}));
        meta.insert(2, json!({"a.b": 2, "a": {"b": 1}, "n": [0, 5]}));
        meta.insert(3, json!({"a": {"b.c": 3}}));
        let eq = |key: &str, value: Value| meta.allowed(&Filter::Eq { key: key.into(), value });
        assert_eq!(eq("a.b", json!(1)), vec![1]); // 2's top-level "a.b" hides its nested one
        assert_eq!(eq("a.b", json!(2)), vec![2]);
        assert_eq!(eq("a.b.c", json!(3)), Vec::<u64>::new());
        assert_eq!(eq("n", json!(0)), vec![1, 2]);
        let above_zero =
            Filter::Range { key: "n".into(), lower: Some(Bound { value: 0.0, inclusive: false }), upper: None };
        assert_eq!(meta.allowed(&above_zero), vec![2]);
        assert_eq!(meta.allowed(&above_zero), meta.scanned(&above_zero));
    }
}
