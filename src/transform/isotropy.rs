//! Measures of how isotropic a set of vectors is.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::vector::cosine;

/// Mean cosine similarity of `pairs` random pairs of distinct vectors (seeded; f64).
///
/// Raw BERT sentence vectors give a value far above 0 (they sit in a narrow cone); an isotropic
/// space gives ≈ 0. A pair with a zero vector counts as cosine 0. Returns NaN when there are
/// fewer than two vectors or `pairs` is 0.
pub fn mean_random_pair_cosine(vectors: &[Vec<f32>], pairs: usize, seed: u64) -> f64 {
    let n = vectors.len();
    if n < 2 || pairs == 0 {
        return f64::NAN;
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut total = 0.0;
    for _ in 0..pairs {
        let i = rng.random_range(0..n);
        // Draw j from the other n − 1 vectors so that a vector is never paired with itself.
        let mut j = rng.random_range(0..n - 1);
        if j >= i {
            j += 1;
        }
        total += cosine(&vectors[i], &vectors[j]);
    }
    total / pairs as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_directions_give_one_and_opposite_pairs_give_minus_one() {
        let same = vec![vec![1.0, 2.0, 3.0], vec![2.0, 4.0, 6.0], vec![0.5, 1.0, 1.5]];
        assert!((mean_random_pair_cosine(&same, 100, 1) - 1.0).abs() < 1e-12);
        let opposite = vec![vec![1.0, -2.0], vec![-1.0, 2.0]];
        assert!((mean_random_pair_cosine(&opposite, 50, 2) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn orthogonal_pairs_give_zero_and_degenerate_input_gives_nan() {
        let basis = vec![vec![1.0, 0.0, 0.0], vec![0.0, 1.0, 0.0], vec![0.0, 0.0, 3.0]];
        assert!(mean_random_pair_cosine(&basis, 100, 3).abs() < 1e-12);
        assert!(mean_random_pair_cosine(&basis[..1], 100, 3).is_nan());
    }
}
