//! Anisotropy diagnostics for a set of sentence vectors: how narrow a cone they occupy.
//!
//! Raw BERT sentence vectors have a high cosine between any two sentences and most of their
//! variance in a few directions; whitening, flows and SimCSE should lower both numbers.

use nalgebra::DMatrix;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::vector::cosine;

pub use super::token_frequency::{frequency_table, FreqBucketRow};

/// Number of histogram bins over [-1, 1] (width 0.05).
pub const HISTOGRAM_BINS: usize = 40;

/// Rows per block when accumulating the covariance (bounds memory at ~12 MB per thread).
const COVARIANCE_BLOCK: usize = 4096;

/// Anisotropy diagnostics of a vector set.
#[derive(Clone, Debug, PartialEq)]
pub struct Anisotropy {
    /// Vectors used (those with the first vector's dimension).
    pub vectors: usize,
    /// Vectors left out because their dimension differs from the first vector's.
    pub skipped: usize,
    /// Mean cosine over random pairs of distinct vectors (0 for a zero vector).
    pub mean_cosine: f64,
    /// Share of the total variance on the largest covariance eigenvalue.
    pub top1_variance_share: f64,
    /// Share of the total variance on the 10 largest covariance eigenvalues.
    pub top10_variance_share: f64,
    /// Random-pair cosines as (bin low, bin high, count), [`HISTOGRAM_BINS`] bins over [-1, 1].
    pub cosine_histogram: Vec<(f64, f64, usize)>,
}

/// Measures the anisotropy of `vectors` from `pairs` random pairs drawn with `seed`.
///
/// Vectors whose dimension differs from the first one's are left out (counted in `skipped`).
/// With fewer than two vectors the cosine statistics are 0 and the histogram counts are 0.
pub fn analyze(vectors: &[Vec<f32>], pairs: usize, seed: u64) -> Anisotropy {
    let dims = vectors.first().map_or(0, Vec::len);
    let used: Vec<&[f32]> = vectors.iter().filter(|v| v.len() == dims).map(Vec::as_slice).collect();
    let cosines = random_pair_cosines(&used, pairs, seed);
    let finite: Vec<f64> = cosines.iter().copied().filter(|c| c.is_finite()).collect();
    let mean_cosine = if cosines.is_empty() {
        0.0
    } else {
        // NaN inputs make the mean NaN on purpose: the vectors are broken and must not look fine.
        cosines.iter().sum::<f64>() / cosines.len() as f64
    };
    let (top1, top10) = variance_shares(&used, dims);
    Anisotropy {
        vectors: used.len(),
        skipped: vectors.len() - used.len(),
        mean_cosine,
        top1_variance_share: top1,
        top10_variance_share: top10,
        cosine_histogram: histogram(&finite),
    }
}

/// Cosines of `pairs` uniformly drawn pairs (i, j), i ≠ j; the same seed gives the same pairs.
fn random_pair_cosines(vectors: &[&[f32]], pairs: usize, seed: u64) -> Vec<f64> {
    let n = vectors.len();
    if n < 2 {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let picks: Vec<(usize, usize)> = (0..pairs)
        .map(|_| {
            let i = rng.random_range(0..n);
            // Draw j from the n − 1 others without rejection.
            let j = rng.random_range(0..n - 1);
            (i, if j >= i { j + 1 } else { j })
        })
        .collect();
    picks.par_iter().map(|&(i, j)| cosine(vectors[i], vectors[j])).collect()
}

fn histogram(cosines: &[f64]) -> Vec<(f64, f64, usize)> {
    let width = 2.0 / HISTOGRAM_BINS as f64;
    let mut counts = vec![0usize; HISTOGRAM_BINS];
    for &c in cosines {
        let bin = ((c.clamp(-1.0, 1.0) + 1.0) / width).floor() as usize;
        counts[bin.min(HISTOGRAM_BINS - 1)] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(b, count)| (-1.0 + b as f64 * width, -1.0 + (b + 1) as f64 * width, count))
        .collect()
}

/// Shares of the total variance on the 1 and 10 largest eigenvalues of the covariance (f64).
fn variance_shares(vectors: &[&[f32]], dims: usize) -> (f64, f64) {
    let n = vectors.len();
    if n < 2 || dims == 0 {
        return (0.0, 0.0);
    }
    let mut mean = vec![0.0f64; dims];
    for v in vectors {
        for (m, &x) in mean.iter_mut().zip(v.iter()) {
            *m += x as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    // Σ (x − μ)(x − μ)ᵀ in blocks: each block is a d×b matrix B, and B·Bᵀ goes through
    // nalgebra's blocked GEMM, far faster than summing outer products one vector at a time.
    let scatter = vectors
        .par_chunks(COVARIANCE_BLOCK)
        .map(|block| {
            let centred = DMatrix::from_fn(dims, block.len(), |r, c| block[c][r] as f64 - mean[r]);
            &centred * centred.transpose()
        })
        .reduce(|| DMatrix::zeros(dims, dims), |a, b| a + b);
    let covariance = scatter / (n - 1) as f64;
    let mut eigen: Vec<f64> = covariance
        .symmetric_eigenvalues()
        .iter()
        // Round-off can make a zero eigenvalue slightly negative; variance cannot be.
        .map(|&e| e.max(0.0))
        .collect();
    eigen.sort_by(|a, b| b.total_cmp(a));
    let total: f64 = eigen.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return (0.0, 0.0);
    }
    let top = |k: usize| eigen.iter().take(k).sum::<f64>() / total;
    (top(1), top(10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_directions_have_cosine_one() {
        let vectors = vec![vec![1.0, 2.0], vec![2.0, 4.0], vec![0.5, 1.0]];
        let a = analyze(&vectors, 100, 7);
        assert!((a.mean_cosine - 1.0).abs() < 1e-9);
        assert_eq!(a.cosine_histogram.len(), HISTOGRAM_BINS);
        assert_eq!(a.cosine_histogram[HISTOGRAM_BINS - 1].2, 100);
        assert!((a.cosine_histogram[0].0 + 1.0).abs() < 1e-12);
        assert!((a.cosine_histogram[HISTOGRAM_BINS - 1].1 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn sampled_mean_cosine_matches_the_exact_mean_and_is_seeded() {
        // 30 vectors; exact mean over all ordered pairs i ≠ j computed independently.
        let vectors: Vec<Vec<f32>> = (0..30)
            .map(|i| {
                let t = i as f32 * 0.7;
                vec![t.cos() + 0.5, t.sin(), (i % 3) as f32 - 1.0]
            })
            .collect();
        let mut exact = 0.0;
        let mut count = 0.0;
        for i in 0..30 {
            for j in 0..30 {
                if i != j {
                    exact += cosine(&vectors[i], &vectors[j]);
                    count += 1.0;
                }
            }
        }
        exact /= count;
        let a = analyze(&vectors, 200_000, 42);
        assert!((a.mean_cosine - exact).abs() < 0.01, "{} vs {exact}", a.mean_cosine);
        assert_eq!(a, analyze(&vectors, 200_000, 42));
        assert_ne!(a.mean_cosine, analyze(&vectors, 200_000, 43).mean_cosine);
        let counted: usize = a.cosine_histogram.iter().map(|b| b.2).sum();
        assert_eq!(counted, 200_000);
    }

    #[test]
    fn variance_shares_match_closed_form_2d_eigenvalues() {
        let vectors: Vec<Vec<f32>> = (0..50)
            .map(|i| {
                let x = ((i * 7) % 13) as f32 - 6.0;
                vec![x, 0.5 * x + ((i * 5) % 11) as f32 * 0.3]
            })
            .collect();
        // Independent: covariance entries by hand, eigenvalues of [[a, b], [b, c]].
        let n = vectors.len() as f64;
        let mx = vectors.iter().map(|v| v[0] as f64).sum::<f64>() / n;
        let my = vectors.iter().map(|v| v[1] as f64).sum::<f64>() / n;
        let (mut a, mut b, mut c) = (0.0, 0.0, 0.0);
        for v in &vectors {
            let (dx, dy) = (v[0] as f64 - mx, v[1] as f64 - my);
            a += dx * dx;
            b += dx * dy;
            c += dy * dy;
        }
        let half = ((a - c) / 2.0).hypot(b);
        let big = (a + c) / 2.0 + half;
        let an = analyze(&vectors, 10, 1);
        assert!((an.top1_variance_share - big / (a + c)).abs() < 1e-9);
        assert!((an.top10_variance_share - 1.0).abs() < 1e-9);
    }

    #[test]
    fn variance_share_is_rotation_invariant() {
        // ±3e1, ±e2, ±e3: covariance diag(18, 2, 2)/5 → top-1 share 18/22, in any rotation.
        let axes = [[3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let (s, c) = (0.6f32, 0.8f32);
        let rotate = |v: [f32; 3]| vec![c * v[0] - s * v[1], s * v[0] + c * v[1], v[2]];
        let vectors: Vec<Vec<f32>> = axes.iter().flat_map(|&v| [rotate(v), rotate(v.map(|x| -x))]).collect();
        let an = analyze(&vectors, 10, 1);
        assert!((an.top1_variance_share - 18.0 / 22.0).abs() < 1e-6);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        let empty = analyze(&[], 10, 0);
        assert_eq!((empty.vectors, empty.mean_cosine), (0, 0.0));
        let one = analyze(&[vec![1.0, 0.0]], 10, 0);
        assert_eq!(one.top1_variance_share, 0.0);
        let mixed = analyze(&[vec![1.0, 0.0], vec![0.0, 1.0], vec![1.0]], 10, 0);
        assert_eq!((mixed.vectors, mixed.skipped), (2, 1));
        assert!(mixed.mean_cosine.abs() < 1e-12);
        let zeros = analyze(&[vec![0.0, 0.0], vec![0.0, 0.0]], 10, 0);
        assert_eq!((zeros.mean_cosine, zeros.top1_variance_share), (0.0, 0.0));
        let nan = analyze(&[vec![f32::NAN, 0.0], vec![1.0, 0.0]], 10, 0);
        assert!(nan.mean_cosine.is_nan());
    }
}
