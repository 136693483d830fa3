//! Activation normalisation (Glow): y = (x + b) ⊙ exp(s), per dimension, initialised from data.

use candle_core::{Tensor, Var};

use super::init::{Init, Param};
use crate::Result;

/// Added to the standard deviation at data-dependent init so constant dimensions stay finite.
const INIT_EPS: f64 = 1e-6;
/// At init, no dimension's standard deviation is taken below this fraction of the mean one.
///
/// Sentence vectors after a final LayerNorm lie in a hyperplane: some directions have (almost)
/// no variance. Scaling those by 1/std ≈ 1e6 in every step compounds through the flow and
/// overflows after the first update; the floor keeps each actnorm's scale moderate.
const INIT_STD_FLOOR: f64 = 1e-2;

/// Per-dimension bias and log-scale.
#[derive(Debug)]
pub(crate) struct ActNorm {
    /// 1 × n.
    bias: Var,
    /// 1 × n.
    log_scale: Var,
}

impl ActNorm {
    /// An identity actnorm over `dims` dimensions (to be initialised from data).
    pub fn new(dims: usize, init: &Init) -> Result<Self> {
        Ok(ActNorm { bias: init.zeros(1, dims)?, log_scale: init.zeros(1, dims)? })
    }

    /// Normalises `x` (batch × n). With `data_init`, first sets b and s so that this batch's
    /// outputs have zero mean and unit variance per dimension. Returns the output and the
    /// log-determinant Σ s (a scalar, the same for every vector).
    pub fn forward(&self, x: &Tensor, data_init: bool) -> Result<(Tensor, Tensor)> {
        if data_init {
            let x = x.detach();
            let mean = x.mean_keepdim(0)?;
            let std = x.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?.sqrt()?;
            let floor =
                (std.mean_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()? * INIT_STD_FLOOR).max(0.0);
            let std = std.maximum(floor)?;
            self.bias.set(&mean.neg()?)?;
            self.log_scale.set(&(std + INIT_EPS)?.log()?.neg()?)?;
        }
        let y = x.broadcast_add(self.bias.as_tensor())?.broadcast_mul(&self.log_scale.exp()?)?;
        Ok((y, self.log_scale.sum_all()?))
    }

    /// Undoes [`ActNorm::forward`].
    pub fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        Ok(y.broadcast_mul(&self.log_scale.neg()?.exp()?)?.broadcast_sub(self.bias.as_tensor())?)
    }

    /// The parameters, named under `prefix`.
    pub fn params(&self, prefix: &str, out: &mut Vec<Param>) {
        out.push(Param::trainable(format!("{prefix}.bias"), &self.bias));
        out.push(Param::trainable(format!("{prefix}.log_scale"), &self.log_scale));
    }
}
