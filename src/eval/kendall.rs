//! Kendall's τ-b: how alike two orderings of the same items are, with ties (Kendall, 1945).
//! Used to ask whether pseudo-queries rank pipelines as labelled queries do.

/// τ-b of two equally long score lists: (concordant − discordant) pairs over the geometric mean
/// of the pairs not tied in each list; a pair tied in both counts in neither. `None` when the
/// lengths differ or a list has no untied pair.
pub fn kendall_tau_b(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() {
        return None;
    }
    let (mut concordant, mut discordant, mut ties_x, mut ties_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..xs.len() {
        for j in i + 1..xs.len() {
            let (dx, dy) = (xs[i] - xs[j], ys[i] - ys[j]);
            match (dx == 0.0, dy == 0.0) {
                (true, true) => {}
                (true, false) => ties_x += 1,
                (false, true) => ties_y += 1,
                _ if (dx > 0.0) == (dy > 0.0) => concordant += 1,
                _ => discordant += 1,
            }
        }
    }
    let n1 = (concordant + discordant + ties_x) as f64;
    let n2 = (concordant + discordant + ties_y) as f64;
    (n1 > 0.0 && n2 > 0.0).then(|| (concordant - discordant) as f64 / (n1 * n2).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_reversal_and_ties() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(kendall_tau_b(&x, &x), Some(1.0));
        let reversed: Vec<f64> = x.iter().rev().copied().collect();
        assert_eq!(kendall_tau_b(&x, &reversed), Some(-1.0));
        // One swapped neighbour pair of five: (10 − 2·1) / 10.
        assert!((kendall_tau_b(&x, &[2.0, 1.0, 3.0, 4.0, 5.0]).unwrap() - 0.8).abs() < 1e-12);
        // Ties: pairs (1,2) tied in x, (2,3) tied in y, the 4 others concordant: 4 / √(5·5).
        let t = kendall_tau_b(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 2.0, 3.0]).unwrap();
        assert!((t - 0.8).abs() < 1e-12, "{t}");
        assert_eq!(kendall_tau_b(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(kendall_tau_b(&x, &x[..3]), None);
    }
}
