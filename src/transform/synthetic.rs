//! Seeded synthetic data for tests and benchmarks: anisotropic gaussian "sentence vectors".

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Seeded standard-normal sampler.
pub struct Gaussian {
    rng: StdRng,
}

impl Gaussian {
    /// A sampler seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Gaussian { rng: StdRng::seed_from_u64(seed) }
    }

    /// One N(0, 1) sample.
    pub fn sample(&mut self) -> f64 {
        self.rng.sample(StandardNormal)
    }
}

/// `n` vectors of `dims` dimensions drawn from N(μ, A Aᵀ + 0.05² I): a random mean far from the
/// origin and a random covariance whose `rank` leading directions dominate with decaying scales,
/// like raw BERT vectors (they sit in a narrow cone and are strongly anisotropic).
pub fn anisotropic_gaussian(n: usize, dims: usize, rank: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut g = Gaussian::new(seed);
    let mean: Vec<f64> = (0..dims).map(|_| 2.0 + g.sample()).collect();
    // Column j of A has scale 1/(1+j): a decaying spectrum.
    let a: Vec<Vec<f64>> = (0..rank).map(|j| (0..dims).map(|_| g.sample() / (1.0 + j as f64)).collect()).collect();
    (0..n)
        .map(|_| {
            let latent: Vec<f64> = (0..rank).map(|_| g.sample()).collect();
            (0..dims)
                .map(|i| {
                    let mixed: f64 = a.iter().zip(&latent).map(|(col, l)| col[i] * l).sum();
                    (mean[i] + mixed + 0.05 * g.sample()) as f32
                })
                .collect()
        })
        .collect()
}
