//! Alignment and uniformity of sentence vectors (Wang & Isola 2020), the two properties SimCSE
//! uses to explain contrastive training. Both are computed on L2-normalised vectors.

use rayon::prelude::*;

use crate::{Error, Result};

fn normalized(v: &[f32]) -> Vec<f64> {
    let norm = v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt().max(1e-12);
    v.iter().map(|&x| x as f64 / norm).collect()
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Mean ‖f(x) − f(x⁺)‖² over positive pairs (`a[i]`, `b[i]`); lower is better.
pub fn alignment(a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        return Err(Error::InvalidInput(format!(
            "alignment needs the same, non-zero number of vectors on both sides (got {} and {})",
            a.len(),
            b.len()
        )));
    }
    let total: f64 = a.iter().zip(b).map(|(x, y)| squared_distance(&normalized(x), &normalized(y))).sum();
    Ok(total / a.len() as f64)
}

/// log mean exp(−2‖f(x) − f(y)‖²) over all distinct pairs of `vectors`; lower is more uniform.
pub fn uniformity(vectors: &[Vec<f32>]) -> Result<f64> {
    let n = vectors.len();
    if n < 2 {
        return Err(Error::InvalidInput("uniformity needs at least two vectors".into()));
    }
    let unit: Vec<Vec<f64>> = vectors.iter().map(|v| normalized(v)).collect();
    // Sum of exp over pairs i < j; terms are ≤ 1, so f64 holds millions of them without trouble.
    let total: f64 = (0..n)
        .into_par_iter()
        .map(|i| unit[i + 1..].iter().map(|u| (-2.0 * squared_distance(&unit[i], u)).exp()).sum::<f64>())
        .sum();
    let pairs = (n * (n - 1) / 2) as f64;
    Ok((total / pairs).ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_of_known_pairs() {
        // Identical directions (different lengths) are perfectly aligned; orthogonal unit vectors are
        // √2 apart, so ‖·‖² = 2; the mean is 1.
        let a = vec![vec![1.0, 0.0], vec![0.0, 3.0]];
        let b = vec![vec![2.0, 0.0], vec![1.0, 0.0]];
        assert!((alignment(&a, &b).unwrap() - 1.0).abs() < 1e-12);
        assert!(alignment(&a, &b[..1]).is_err());
    }

    #[test]
    fn uniformity_of_known_configurations() {
        // Two antipodal points: ‖x−y‖² = 4, so uniformity = −8.
        let antipodal = vec![vec![1.0, 0.0], vec![-1.0, 0.0]];
        assert!((uniformity(&antipodal).unwrap() + 8.0).abs() < 1e-12);
        // Three points of an equilateral triangle on the circle: ‖x−y‖² = 3 for every pair → −6.
        let s = 3f32.sqrt() / 2.0;
        let triangle = vec![vec![1.0, 0.0], vec![-0.5, s], vec![-0.5, -s]];
        assert!((uniformity(&triangle).unwrap() + 6.0).abs() < 1e-6);
        // Collapsed vectors are the least uniform possible: 0.
        let collapsed = vec![vec![1.0, 1.0]; 4];
        assert!(uniformity(&collapsed).unwrap().abs() < 1e-12);
    }
}
