//! Seeded synthetic data for tests and benchmarks: anisotropic gaussian "sentence vectors".

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Seeded standard-normal sampler (Box–Muller), so no extra distribution crate is needed.
pub struct Gaussian {
    rng: StdRng,
    spare: Option<f64>,
}

impl Gaussian {
    /// A sampler seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Gaussian {
            rng: StdRng::seed_from_u64(seed),
            spare: None,
        }
    }

    /// One N(0, 1) sample.
    pub fn sample(&mut self) -> f64 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        // 1 − u keeps the logarithm's argument in (0, 1].
        let u: f64 = 1.0 - self.rng.random::<f64>();
        let v: f64 = self.rng.random::<f64>();
        let r = (-2.0 * u.ln()).sqrt();
        let theta = std::f64::consts::TAU * v;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

/// `n` vectors of `dims` dimensions drawn from N(μ, A Aᵀ + 0.05² I): a random mean far from the
/// origin and a random covariance whose `rank` leading directions dominate with decaying scales,
/// like raw BERT vectors (they sit in a narrow cone and are strongly anisotropic).
pub fn anisotropic_gaussian(n: usize, dims: usize, rank: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut g = Gaussian::new(seed);
    let mean: Vec<f64> = (0..dims).map(|_| 2.0 + g.sample()).collect();
    // Column j of A has scale 1/(1+j): a decaying spectrum.
    let a: Vec<Vec<f64>> = (0..rank)
        .map(|j| (0..dims).map(|_| g.sample() / (1.0 + j as f64)).collect())
        .collect();
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
