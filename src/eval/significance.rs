//! Paired randomisation test: is the difference of two systems' mean per-query score more than
//! chance? (Smucker, Allan and Carterette, 2007: the test IR evaluations should use.)
//!
//! Under the null hypothesis the two systems are exchangeable on each query, so each per-query
//! difference is as likely to have either sign. The p-value is the share of sign assignments
//! whose mean difference is at least as far from 0 as the observed one (two-sided), estimated
//! from `rounds` random assignments, counting the observed one: `(hits + 1) / (rounds + 1)`.

use rand::{Rng, SeedableRng};

/// Random sign assignments drawn by [`paired_randomization_p`] unless told otherwise.
pub const DEFAULT_ROUNDS: usize = 10_000;

/// Two-sided p-value of the mean of `a[i] − b[i]` (the same queries, in the same order).
/// `None` when the lengths differ or there are no queries.
pub fn paired_randomization_p(a: &[f64], b: &[f64], rounds: usize, seed: u64) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let observed = diffs.iter().sum::<f64>().abs();
    // A relative tolerance keeps assignments equal to the observed sum from losing by rounding.
    let tolerance = 1e-9 * diffs.iter().map(|d| d.abs()).sum::<f64>();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut at_least = 0usize;
    for _ in 0..rounds {
        let s: f64 = diffs.iter().map(|d| if rng.random::<bool>() { *d } else { -*d }).sum();
        if s.abs() + tolerance >= observed {
            at_least += 1;
        }
    }
    Some((at_least + 1) as f64 / (rounds + 1) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exact p-value: every one of the 2^n sign assignments.
    fn exhaustive_p(a: &[f64], b: &[f64]) -> f64 {
        let diffs: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
        let observed = diffs.iter().sum::<f64>().abs();
        let n = diffs.len();
        let mut at_least = 0usize;
        for mask in 0u32..(1 << n) {
            let s: f64 = diffs.iter().enumerate().map(|(i, d)| if mask >> i & 1 == 1 { -*d } else { *d }).sum();
            if s.abs() + 1e-12 >= observed {
                at_least += 1;
            }
        }
        at_least as f64 / (1u64 << n) as f64
    }

    #[test]
    fn agrees_with_the_exhaustive_test() {
        let a = [0.9, 0.4, 0.7, 0.3, 0.8, 0.6, 0.65, 0.2, 0.55, 0.75, 0.5, 0.45];
        let b = [0.5, 0.45, 0.6, 0.1, 0.7, 0.65, 0.3, 0.25, 0.5, 0.4, 0.52, 0.3];
        let exact = exhaustive_p(&a, &b);
        let estimate = paired_randomization_p(&a, &b, 200_000, 7).unwrap();
        // Standard error of the estimate ≈ sqrt(p(1−p)/rounds) ≤ 0.0012.
        assert!((estimate - exact).abs() < 0.005, "{estimate} vs {exact}");
        assert!(exact < 0.05, "the pair was built to differ: {exact}");
    }

    #[test]
    fn identical_systems_are_not_significant_and_lengths_must_match() {
        let a = [0.3, 0.5, 0.9];
        assert_eq!(paired_randomization_p(&a, &a, 1000, 1), Some(1.0));
        assert_eq!(paired_randomization_p(&a, &a[..2], 1000, 1), None);
        assert_eq!(paired_randomization_p(&[], &[], 1000, 1), None);
        // One large consistent gain over 30 queries is far from chance.
        let hi = vec![1.0; 30];
        let lo = vec![0.0; 30];
        let p = paired_randomization_p(&hi, &lo, 10_000, 3).unwrap();
        assert!(p < 0.001, "{p}");
    }
}
