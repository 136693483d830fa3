use nalgebra::DMatrix;

use super::*;
use crate::transform::synthetic::{anisotropic_gaussian, Gaussian};
use crate::transform::test_support::{encoder, two_pass_moments};

#[test]
fn streaming_moments_equal_two_pass_moments() {
    // 1000 is not a multiple of the 256-row buffer, so a partial block is folded in too.
    let data = anisotropic_gaussian(1000, 16, 5, 11);
    let mut acc = WhiteningAccumulator::new(encoder("mean"), 16);
    acc.push_batch(&data[..300]).unwrap();
    for v in &data[300..] {
        acc.push(v).unwrap();
    }
    assert_eq!(acc.count(), 1000);
    let (mean, cov) = acc.moments().unwrap();
    let (mean2, cov2) = two_pass_moments(&data);
    for (a, b) in mean.iter().zip(&mean2) {
        assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let scale = cov2.amax();
    assert!((&cov - &cov2).amax() < 1e-12 * scale, "{}", (&cov - &cov2).amax());
}

#[test]
fn full_whitening_gives_identity_covariance_and_zero_mean() {
    let data = anisotropic_gaussian(3000, 24, 24, 3);
    let w = fit_whitening(&data, &encoder("mean"), None).unwrap();
    assert_eq!(w.kind(), "whiten");
    assert_eq!((w.input_dims(), w.output_dims()), (24, 24));
    let out = w.apply(&encoder("mean"), &data).unwrap();
    let (mean, cov) = two_pass_moments(&out);
    assert!(mean.iter().all(|m| m.abs() < 1e-6), "{mean:?}");
    let err = (cov - DMatrix::<f64>::identity(24, 24)).amax();
    assert!(err < 1e-5, "max |cov − I| = {err}");
}

/// Data with a known covariance Q diag(s²) Qᵀ (Q a random rotation, s well separated).
fn known_spectrum(n: usize, seed: u64) -> (Vec<Vec<f32>>, DMatrix<f64>) {
    let d = 8;
    let scales = [10.0, 8.0, 6.0, 4.0, 2.0, 1.0, 0.5, 0.25];
    let mut g = Gaussian::new(seed);
    let q = DMatrix::from_fn(d, d, |_, _| g.sample()).qr().q();
    let data = (0..n)
        .map(|_| {
            let latent: Vec<f64> = scales.iter().map(|s| s * g.sample()).collect();
            (0..d).map(|i| (5.0 + (0..d).map(|j| q[(i, j)] * latent[j]).sum::<f64>()) as f32).collect()
        })
        .collect();
    (data, q)
}

#[test]
fn reduction_keeps_the_top_variance_directions() {
    let (data, q) = known_spectrum(20_000, 5);
    let k = 3;
    let w = fit_whitening(&data, &encoder("mean"), Some(k)).unwrap();
    assert_eq!(w.kind(), "whiten-3");
    assert_eq!(w.output_dims(), 3);
    // Unit-norm kept directions must span the same space as the true top-3 axes Q[:, :3].
    let mut directions = w.projection().clone();
    for mut col in directions.column_iter_mut() {
        let norm = col.norm();
        col /= norm;
    }
    let overlap = (directions.transpose() * q.columns(0, k)).norm_squared();
    assert!((overlap - k as f64).abs() < 0.01, "subspace overlap {overlap} of {k}");
    // Eigenvalues ≈ the true variances 100, 64, 36 (sampling error ~1-2%).
    for (got, want) in w.eigenvalues().iter().zip([100.0, 64.0, 36.0]) {
        assert!((got / want - 1.0).abs() < 0.05, "eigenvalue {got} vs {want}");
    }
    let out = w.apply(&encoder("mean"), &data).unwrap();
    let (_, cov) = two_pass_moments(&out);
    assert!((cov - DMatrix::<f64>::identity(k, k)).amax() < 1e-5);
}

#[test]
fn degenerate_covariance_keeps_the_rank_and_rejects_a_larger_k() {
    // 5 vectors in 16 dimensions span at most 4 directions around their mean.
    let data = anisotropic_gaussian(5, 16, 16, 1);
    let err = fit_whitening(&data, &encoder("mean"), Some(5)).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("only 4 of 16"), "{err}");
    // Full whitening keeps exactly the directions that have variance, whitened.
    let full = fit_whitening(&data, &encoder("mean"), None).unwrap();
    assert_eq!(full.output_dims(), 4);
    let (_, cov) = two_pass_moments(&full.apply(&encoder("mean"), &data).unwrap());
    assert!((cov - DMatrix::<f64>::identity(4, 4)).amax() < 1e-6);
    let w = fit_whitening(&data, &encoder("mean"), Some(4)).unwrap();
    assert_eq!(w.output_dims(), 4);
    assert!(fit_whitening(&data[..1], &encoder("mean"), Some(1)).is_err());
    assert!(fit_whitening(&data, &encoder("mean"), Some(17)).is_err());
    assert!(fit_whitening(&data, &encoder("mean"), Some(0)).is_err());
    assert!(fit_whitening(&[], &encoder("mean"), None).is_err());
}

#[test]
fn wrong_dimension_and_non_finite_input_are_errors() {
    let mut acc = WhiteningAccumulator::new(encoder("mean"), 4);
    assert!(matches!(acc.push(&[1.0, 2.0, 3.0]), Err(Error::Dimension { expected: 4, found: 3 })));
    assert!(matches!(acc.push(&[1.0, f32::NAN, 3.0, 4.0]), Err(Error::InvalidInput(_))));
    let data = anisotropic_gaussian(100, 4, 4, 2);
    let w = fit_whitening(&data, &encoder("mean"), None).unwrap();
    assert!(matches!(w.apply(&encoder("mean"), &[vec![0.0; 5]]), Err(Error::Dimension { expected: 4, found: 5 })));
}

#[test]
fn applying_to_another_encoders_vectors_is_a_mismatch_naming_both() {
    let data = anisotropic_gaussian(100, 4, 4, 2);
    let w = fit_whitening(&data, &encoder("mean"), None).unwrap();
    let err = w.apply(&encoder("cls"), &data).unwrap_err();
    match &err {
        Error::PipelineMismatch { expected, found } => {
            assert!(expected.contains("all-MiniLM-L6-v2/mean"), "{expected}");
            assert!(found.contains("all-MiniLM-L6-v2/cls"), "{found}");
        }
        other => panic!("expected a pipeline mismatch, got {other}"),
    }
}

#[test]
fn save_load_round_trip_gives_identical_outputs() {
    let data = anisotropic_gaussian(500, 12, 6, 9);
    let w = fit_whitening(&data, &encoder("mean"), Some(6)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("whiten.safetensors");
    w.save(&path).unwrap();
    let loaded = Whitening::load(&path).unwrap();
    assert_eq!(loaded.id(), w.id());
    assert_eq!(loaded.encoder(), w.encoder());
    assert_eq!(loaded.apply(&encoder("mean"), &data).unwrap(), w.apply(&encoder("mean"), &data).unwrap());
}
