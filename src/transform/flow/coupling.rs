//! Coupling layer: the second part of the vector is shifted (additive) or shifted and scaled
//! (affine) by a small network of the first part, which passes through unchanged.

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use super::actnorm::ActNorm;
use super::init::{Init, Param};
use crate::Result;

/// Standard deviation of the hidden dense layers' initial weights (Glow's default); the
/// actnorm after each rescales anyway.
const HIDDEN_INIT_STD: f64 = 0.05;

/// Offset added before the sigmoid of the affine scale, so that a zero network output gives a
/// scale of sigmoid(2) ≈ 0.88 (Glow's choice, keeps early training stable).
const AFFINE_SCALE_OFFSET: f64 = 2.0;

/// How the coupling changes the second part.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CouplingKind {
    /// x₂ + NN(x₁): volume-preserving (log-determinant 0); the released BERT-flow default.
    Additive,
    /// (x₂ + shift(x₁)) ⊙ sigmoid(raw_scale(x₁) + 2).
    Affine,
}

/// One coupling layer over n dimensions: x₁ = first ⌊n/2⌋, x₂ = the other ⌈n/2⌉.
#[derive(Debug)]
pub(crate) struct Coupling {
    kind: CouplingKind,
    /// ⌊n/2⌋.
    first: usize,
    /// ⌈n/2⌉.
    second: usize,
    w1: Var,
    norm1: ActNorm,
    w2: Var,
    norm2: ActNorm,
    /// Zero-initialised, so the layer starts as the identity.
    w3: Var,
    b3: Var,
}

impl Coupling {
    /// A coupling over `dims` (≥ 2) dimensions with a hidden width of `width`.
    pub fn new(kind: CouplingKind, dims: usize, width: usize, init: &mut Init) -> Result<Self> {
        let first = dims / 2;
        let second = dims - first;
        let out = match kind {
            CouplingKind::Additive => second,
            CouplingKind::Affine => 2 * second,
        };
        Ok(Coupling {
            kind,
            first,
            second,
            w1: init.normal(first, width, HIDDEN_INIT_STD)?,
            norm1: ActNorm::new(width, init)?,
            w2: init.normal(width, width, HIDDEN_INIT_STD)?,
            norm2: ActNorm::new(width, init)?,
            w3: init.zeros(width, out)?,
            b3: init.zeros(1, out)?,
        })
    }

    /// NN(x₁) = dense(w→out)(relu(actnorm(dense(w→w)(relu(actnorm(dense(n₁→w)(x₁))))))).
    /// The dense layers before an actnorm have no bias: the actnorm's bias replaces it.
    fn network(&self, first: &Tensor, data_init: bool) -> Result<Tensor> {
        let h = first.matmul(self.w1.as_tensor())?;
        let h = self.norm1.forward(&h, data_init)?.0.relu()?;
        let h = h.matmul(self.w2.as_tensor())?;
        let h = self.norm2.forward(&h, data_init)?.0.relu()?;
        Ok(h.matmul(self.w3.as_tensor())?.broadcast_add(self.b3.as_tensor())?)
    }

    /// The shift and log-scale (affine only) the network gives for x₁.
    fn shift_and_log_scale(&self, first: &Tensor, data_init: bool) -> Result<(Tensor, Option<Tensor>)> {
        let h = self.network(first, data_init)?;
        match self.kind {
            CouplingKind::Additive => Ok((h, None)),
            CouplingKind::Affine => {
                let shift = h.narrow(1, 0, self.second)?;
                let raw = (h.narrow(1, self.second, self.second)? + AFFINE_SCALE_OFFSET)?;
                // log sigmoid(a) = −log(1 + e^(−a)).
                let log_scale = (raw.neg()?.exp()? + 1.0)?.log()?.neg()?;
                Ok((shift, Some(log_scale)))
            }
        }
    }

    /// Transforms x (batch × n); returns the output and, for affine couplings, the per-vector
    /// log-determinant (batch).
    pub fn forward(&self, x: &Tensor, data_init: bool) -> Result<(Tensor, Option<Tensor>)> {
        let x1 = x.narrow(1, 0, self.first)?;
        let x2 = x.narrow(1, self.first, self.second)?;
        let (shift, log_scale) = self.shift_and_log_scale(&x1, data_init)?;
        let shifted = (x2 + shift)?;
        let (y2, logdet) = match log_scale {
            None => (shifted, None),
            Some(ls) => ((shifted * ls.exp()?)?, Some(ls.sum(1)?)),
        };
        Ok((Tensor::cat(&[&x1, &y2], 1)?, logdet))
    }

    /// Undoes [`Coupling::forward`].
    pub fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let y1 = y.narrow(1, 0, self.first)?;
        let y2 = y.narrow(1, self.first, self.second)?;
        let (shift, log_scale) = self.shift_and_log_scale(&y1, false)?;
        let unscaled = match log_scale {
            None => y2,
            Some(ls) => (y2 * ls.neg()?.exp()?)?,
        };
        Ok(Tensor::cat(&[&y1, &(unscaled - shift)?], 1)?)
    }

    /// The parameters, named under `prefix`.
    pub fn params(&self, prefix: &str, out: &mut Vec<Param>) {
        out.push(Param::trainable(format!("{prefix}.w1"), &self.w1));
        self.norm1.params(&format!("{prefix}.norm1"), out);
        out.push(Param::trainable(format!("{prefix}.w2"), &self.w2));
        self.norm2.params(&format!("{prefix}.norm2"), out);
        out.push(Param::trainable(format!("{prefix}.w3"), &self.w3));
        out.push(Param::trainable(format!("{prefix}.b3"), &self.b3));
    }
}
