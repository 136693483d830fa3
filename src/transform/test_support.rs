//! Helpers shared by the transform tests.

use nalgebra::DMatrix;

use crate::EncoderId;

/// An encoder id that differs from others only by its pooling.
pub(crate) fn encoder(pooling: &str) -> EncoderId {
    EncoderId {
        model: "all-MiniLM-L6-v2".into(),
        weights_sha256: "ab".repeat(32),
        files_sha256: Some("cd".repeat(32)),
        pooling: pooling.into(),
        max_length: 128,
        prefixes: Default::default(),
    }
}

/// Mean and population covariance by the textbook two-pass formula in f64.
pub(crate) fn two_pass_moments(vectors: &[Vec<f32>]) -> (Vec<f64>, DMatrix<f64>) {
    let d = vectors[0].len();
    let n = vectors.len() as f64;
    let mut mean = vec![0.0; d];
    for v in vectors {
        for (m, &x) in mean.iter_mut().zip(v) {
            *m += f64::from(x) / n;
        }
    }
    let mut cov = DMatrix::zeros(d, d);
    for v in vectors {
        for i in 0..d {
            for j in 0..d {
                cov[(i, j)] += (f64::from(v[i]) - mean[i]) * (f64::from(v[j]) - mean[j]) / n;
            }
        }
    }
    (mean, cov)
}
