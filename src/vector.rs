//! Vector arithmetic every part of isovec shares: dot product, unit length, cosine, exact top-k.
//!
//! **The zero-vector rule.** A vector that is zero (or holds NaN or infinity) has no direction:
//! [`normalize`] leaves it as it is and says so, [`cosine`] with it is 0, and where a direction
//! is required — a vector entering the store, a query — [`normalized`] refuses it with an error.

use std::collections::BinaryHeap;

use crate::{Error, Result};

/// Σ a_j · b_j over two f32 slices (the shorter length), with the widest SIMD the CPU has.
pub use crate::simd::dot;

/// Scales `v` to unit length in place (the norm taken in f64); a zero or non-finite vector is
/// left as it is and `false` returned.
pub fn normalize(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return false;
    }
    v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
    true
}

/// The vector scaled to unit length, or an error for a zero or non-finite vector.
pub fn normalized(v: &[f32]) -> Result<Vec<f32>> {
    let mut unit = v.to_vec();
    if !normalize(&mut unit) {
        return Err(Error::InvalidInput(
            "vector is zero or contains NaN/infinity; cosine similarity needs a non-zero finite vector".into(),
        ));
    }
    Ok(unit)
}

/// Cosine similarity of two vectors, in f64; 0 if either is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (*x as f64, *y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa.sqrt() * bb.sqrt())
    }
}

/// A scored neighbour: id and cosine similarity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// The id (a store's internal id, or a row number).
    pub internal_id: u64,
    /// Cosine similarity to the query.
    pub score: f32,
}

/// Exact top-`k` by dot product (cosine, for unit vectors) over `(id, vector)` pairs, best
/// first; ties go to the smaller id.
pub fn exact_top_k<'a>(query: &[f32], k: usize, items: impl Iterator<Item = (u64, &'a [f32])>) -> Vec<Scored> {
    let mut best = TopK::new(k);
    for (id, v) in items {
        best.push(dot(query, v), id);
    }
    best.into_sorted()
}

/// The `k` highest scores seen, ties to the smaller id.
pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<MinEntry>,
}

#[derive(PartialEq)]
struct MinEntry(f32, u64);
impl Eq for MinEntry {}
impl PartialOrd for MinEntry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MinEntry {
    // Reversed: the heap's top is the worst entry kept.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        TopK { k, heap: BinaryHeap::with_capacity(k + 1) }
    }

    pub(crate) fn would_take(&self, score: f32) -> bool {
        self.heap.len() < self.k || self.heap.peek().is_some_and(|w| score >= w.0)
    }

    pub(crate) fn push(&mut self, score: f32, iid: u64) {
        self.heap.push(MinEntry(score, iid));
        if self.heap.len() > self.k {
            self.heap.pop();
        }
    }

    pub(crate) fn into_sorted(self) -> Vec<Scored> {
        let mut out: Vec<Scored> =
            self.heap.into_iter().map(|MinEntry(score, internal_id)| Scored { internal_id, score }).collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.internal_id.cmp(&b.internal_id)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_makes_unit_length_and_leaves_zero_alone() {
        let mut v = vec![3.0f32, 4.0];
        assert!(normalize(&mut v));
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = vec![0.0f32; 3];
        assert!(!normalize(&mut zero));
        assert_eq!(zero, [0.0; 3]);
        let mut nan = vec![f32::NAN, 1.0];
        assert!(!normalize(&mut nan));
        assert!(normalized(&[0.0, 0.0]).is_err());
        assert!(normalized(&[f32::INFINITY, 0.0]).is_err());
        let u = normalized(&[1.0, 2.0, 2.0]).unwrap();
        assert!((u.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() - 1.0).abs() < 1e-7);
    }

    #[test]
    fn cosine_matches_the_angle() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12);
        assert!((cosine(&[2.0, 0.0], &[-5.0, 0.0]) + 1.0).abs() < 1e-12);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn exact_top_k_equals_a_full_sort_in_f64() {
        let mut s = 7u64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % 2001) as f32 / 1000.0 - 1.0
        };
        let docs: Vec<Vec<f32>> =
            (0..300).map(|_| normalized(&(0..19).map(|_| next()).collect::<Vec<_>>()).unwrap()).collect();
        let query = normalized(&(0..19).map(|_| next()).collect::<Vec<_>>()).unwrap();
        let got = exact_top_k(&query, 20, docs.iter().enumerate().map(|(i, d)| (i as u64, d.as_slice())));
        let mut want: Vec<(f64, usize)> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.iter().zip(&query).map(|(a, b)| *a as f64 * *b as f64).sum(), i))
            .collect();
        want.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let ids: Vec<usize> = got.iter().map(|s| s.internal_id as usize).collect();
        assert_eq!(ids, want[..20].iter().map(|w| w.1).collect::<Vec<_>>());
        for (s, w) in got.iter().zip(&want) {
            assert!((s.score as f64 - w.0).abs() < 1e-6);
        }
        // Ties go to the smaller id; k beyond the items gives them all.
        let same = [1.0f32, 0.0];
        let tied = exact_top_k(&same, 5, [(9u64, &same[..]), (2, &same[..]), (5, &same[..])].into_iter());
        assert_eq!(tied.iter().map(|s| s.internal_id).collect::<Vec<_>>(), [2, 5, 9]);
        assert!(exact_top_k(&same, 0, std::iter::once((1u64, &same[..]))).is_empty());
    }
}
