//! Rank correlation (Spearman) and linear correlation (Pearson), as STS evaluation uses them.

/// Average ranks, 1-based: tied values share the mean of the ranks they span.
///
/// Sorting uses `f64::total_cmp`, so NaN never panics (positive NaNs rank after every number).
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut out = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        // Extend over the run of values equal to the first one of the run.
        let mut end = start + 1;
        while end < order.len() && x[order[end]].total_cmp(&x[order[start]]).is_eq() {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end; their mean is (start+1+end)/2.
        let shared = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            out[i] = shared;
        }
        start = end;
    }
    out
}

/// Pearson correlation of two equally long series.
///
/// Defined values where the formula is not: 0.0 when either series has zero variance or fewer
/// than two elements (no linear relation can be measured), NaN when the lengths differ (a
/// caller bug that must not look like a score).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    if x.len() != y.len() {
        return f64::NAN;
    }
    let n = x.len();
    if n < 2 {
        return 0.0;
    }
    let mean_x = x.iter().sum::<f64>() / n as f64;
    let mean_y = y.iter().sum::<f64>() / n as f64;
    // Centred sums: numerically far better than the one-pass Σxy − n·x̄·ȳ form.
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - mean_x, b - mean_y);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    let denom = (sxx * syy).sqrt();
    if denom == 0.0 || !denom.is_finite() {
        return 0.0;
    }
    (sxy / denom).clamp(-1.0, 1.0)
}

/// Spearman rank correlation: Pearson correlation of the tie-averaged ranks.
///
/// Same defined values as [`pearson`]: 0.0 for a constant series, NaN for unequal lengths.
pub fn spearman(x: &[f64], y: &[f64]) -> f64 {
    if x.len() != y.len() {
        return f64::NAN;
    }
    pearson(&ranks(x), &ranks(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ranks_average_ties() {
        // sorted: 10 (rank 1), 20 20 (ranks 2,3 → 2.5), 30 (rank 4)
        assert_eq!(ranks(&[20.0, 10.0, 30.0, 20.0]), vec![2.5, 1.0, 4.0, 2.5]);
        // three-way tie over ranks 1,2,3 → 2 each; then 4
        assert_eq!(ranks(&[5.0, 5.0, 9.0, 5.0]), vec![2.0, 2.0, 4.0, 2.0]);
        assert!(ranks(&[]).is_empty());
        // NaN does not panic and ranks last
        assert_eq!(ranks(&[f64::NAN, 1.0]), vec![2.0, 1.0]);
    }

    #[test]
    fn ranks_match_a_counting_definition() {
        // Independent definition: rank = 1 + #smaller + (#equal others)/2.
        let x: Vec<f64> = (0..200).map(|i| ((i * 37) % 23) as f64 * 0.5).collect();
        let fast = ranks(&x);
        for (i, &xi) in x.iter().enumerate() {
            let smaller = x.iter().filter(|&&v| v < xi).count() as f64;
            let equal_others = x.iter().filter(|&&v| v == xi).count() as f64 - 1.0;
            assert!(close(fast[i], 1.0 + smaller + equal_others / 2.0));
        }
    }

    #[test]
    fn pearson_hand_computed() {
        // x̄ = 2.5, ȳ = 5; dx = (-1.5,-0.5,0.5,1.5), dy = (-3,-1,0,4)
        // Σdxdy = 4.5+0.5+0+6 = 11, Σdx² = 5, Σdy² = 26 → r = 11/√130
        let r = pearson(&[1.0, 2.0, 3.0, 4.0], &[2.0, 4.0, 5.0, 9.0]);
        assert!(close(r, 11.0 / 130f64.sqrt()));
        assert!(close(pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0));
    }

    #[test]
    fn spearman_without_ties_matches_the_d_squared_formula() {
        // ranks equal the values; d = (-1,1,-1,1,0), Σd² = 4 → ρ = 1 − 6·4/(5·24) = 0.8
        let rho = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[2.0, 1.0, 4.0, 3.0, 5.0]);
        assert!(close(rho, 0.8));
    }

    #[test]
    fn spearman_with_ties_hand_computed() {
        // ranks x = (1, 2.5, 2.5, 4), ranks y = (1, 3, 2, 4), both means 2.5
        // dx = (-1.5, 0, 0, 1.5), dy = (-1.5, 0.5, -0.5, 1.5)
        // Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 → ρ = 4.5/√22.5 = 3/√10
        let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]);
        assert!(close(rho, 3.0 / 10f64.sqrt()));
    }

    #[test]
    fn spearman_is_invariant_to_monotone_maps() {
        let x: Vec<f64> = (0..50).map(|i| ((i * 13) % 17) as f64 - 8.0).collect();
        let y: Vec<f64> = (0..50).map(|i| ((i * 7) % 11) as f64).collect();
        let cubed: Vec<f64> = x.iter().map(|v| v * v * v).collect();
        assert!(close(spearman(&x, &cubed), 1.0));
        let neg: Vec<f64> = x.iter().map(|v| -v.exp()).collect();
        assert!(close(spearman(&x, &neg), -1.0));
        assert!(close(spearman(&cubed, &y), spearman(&x, &y)));
    }

    #[test]
    fn degenerate_inputs_have_defined_values() {
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), 0.0);
        assert_eq!(pearson(&[2.0, 2.0], &[1.0, 5.0]), 0.0);
        assert_eq!(spearman(&[1.0], &[2.0]), 0.0);
        assert_eq!(spearman(&[], &[]), 0.0);
        assert!(spearman(&[1.0, 2.0], &[1.0]).is_nan());
    }
}
