//! Seeded creation of the flow's parameters (candle's own random init cannot be seeded on CPU).

use candle_core::{DType, Device, Tensor, Var};

use crate::transform::synthetic::Gaussian;
use crate::Result;

/// A named parameter of the flow; `trainable` is false for fixed buffers stored with the weights.
#[derive(Clone, Debug)]
pub(crate) struct Param {
    pub name: String,
    pub var: Var,
    pub trainable: bool,
}

impl Param {
    /// A trainable parameter.
    pub fn trainable(name: String, var: &Var) -> Self {
        Param { name, var: var.clone(), trainable: true }
    }

    /// A fixed buffer.
    pub fn fixed(name: String, var: &Var) -> Self {
        Param { name, var: var.clone(), trainable: false }
    }
}

/// Creates parameters of one dtype on one device from a seeded normal sampler.
pub(crate) struct Init {
    gaussian: Gaussian,
    pub dtype: DType,
    pub device: Device,
}

impl Init {
    /// A creator seeded with `seed`.
    pub fn new(seed: u64, dtype: DType, device: Device) -> Self {
        Init { gaussian: Gaussian::new(seed), dtype, device }
    }

    /// A rows × cols parameter with N(0, std²) entries.
    pub fn normal(&mut self, rows: usize, cols: usize, std: f64) -> Result<Var> {
        let values: Vec<f64> = (0..rows * cols).map(|_| std * self.gaussian.sample()).collect();
        self.with_values(values, rows, cols)
    }

    /// A rows × cols parameter of zeros.
    pub fn zeros(&self, rows: usize, cols: usize) -> Result<Var> {
        Ok(Var::zeros((rows, cols), self.dtype, &self.device)?)
    }

    /// A rows × cols parameter with the given row-major values.
    pub fn with_values(&self, values: Vec<f64>, rows: usize, cols: usize) -> Result<Var> {
        let t = Tensor::from_vec(values, (rows, cols), &self.device)?.to_dtype(self.dtype)?;
        Ok(Var::from_tensor(&t)?)
    }

    /// One N(0, 1) sample.
    pub fn sample(&mut self) -> f64 {
        self.gaussian.sample()
    }
}
