//! Paired randomisation test: is the difference of two systems' mean per-query score more than
//! chance? (Smucker, Allan and Carterette, 2007: the test IR evaluations should use.)
//!
//! Under the null hypothesis the two systems are exchangeable on each query, so each per-query
//! difference is as likely to have either sign. The p-value is the share of sign assignments
//! whose mean difference is at least as far from 0 as the observed one (two-sided), estimated
//! from `rounds` random assignments, counting the observed one: `(hits + 1) / (rounds + 1)`.
//!
//! Also the percentile bootstrap confidence interval of a mean per-query score (Efron and
//! Tibshirani, 1993): the queries resampled with replacement `rounds` times, the interval the
//! middle `level` of the resampled means.

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

/// Resamplings drawn by [`bootstrap_mean_ci`] unless told otherwise.
pub const BOOTSTRAP_ROUNDS: usize = 2_000;

/// The percentile bootstrap interval holding the middle `level` (e.g. 0.95) of the means of
/// `rounds` resamplings of `values`; `None` for no values, no rounds or a level outside (0, 1).
pub fn bootstrap_mean_ci(values: &[f64], rounds: usize, level: f64, seed: u64) -> Option<(f64, f64)> {
    if values.is_empty() || rounds == 0 || !(level > 0.0 && level < 1.0) {
        return None;
    }
    let n = values.len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut means: Vec<f64> =
        (0..rounds).map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    let at = |q: f64| means[((q * rounds as f64).floor() as usize).min(rounds - 1)];
    Some((at(tail), at(1.0 - tail)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_interval_matches_the_normal_approximation_of_a_mean() {
        // 400 draws of a skewed score in [0, 1]; for a mean of that many the bootstrap interval
        // is close to mean ± 1.96 · s / √n (computed here independently, in closed form).
        let mut state = 7u64;
        let values: Vec<f64> = (0..400)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 11) as f64 / (1u64 << 53) as f64).powi(3)
            })
            .collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        let half = 1.96 * sd / n.sqrt();
        let (lo, hi) = bootstrap_mean_ci(&values, 4_000, 0.95, 1).unwrap();
        assert!(lo < mean && mean < hi, "{lo} {mean} {hi}");
        assert!(((hi - lo) / (2.0 * half) - 1.0).abs() < 0.1, "width {} vs {}", hi - lo, 2.0 * half);
        assert!(((lo + hi) / 2.0 - mean).abs() < 0.15 * half);
        // Seeded: the same interval again; a narrower level gives a narrower interval.
        assert_eq!(bootstrap_mean_ci(&values, 4_000, 0.95, 1), Some((lo, hi)));
        let (lo80, hi80) = bootstrap_mean_ci(&values, 4_000, 0.80, 1).unwrap();
        assert!(lo80 > lo && hi80 < hi);
        // Constant scores have no spread; nothing to resample is no interval.
        assert_eq!(bootstrap_mean_ci(&[0.5; 10], 100, 0.95, 0), Some((0.5, 0.5)));
        assert_eq!(bootstrap_mean_ci(&[], 100, 0.95, 0), None);
        assert_eq!(bootstrap_mean_ci(&values, 100, 1.0, 0), None);
    }

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
