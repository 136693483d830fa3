//! Channel mixing between flow steps: a fixed reversal (the released BERT-flow code) or Glow's
//! learned invertible 1×1 convolution, parametrised as W = P L (U + diag(sign ⊙ exp(log_s))).

use candle_core::{DType, Tensor, Var};
use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use super::init::{Init, Param};
use crate::{Error, Result};

/// Which channel mixing the flow steps use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PermutationKind {
    /// Reverse the order of the dimensions (fixed, log-determinant 0); the default.
    Reverse,
    /// A learned invertible n × n map in LU form, initialised from a random rotation.
    Lu,
}

/// The mixing of one flow step over n dimensions.
#[derive(Debug)]
pub(crate) enum Permutation {
    /// Fixed reversal; `index` is n−1, …, 0.
    Reverse { index: Tensor },
    /// Learned LU-parametrised 1×1 convolution.
    Lu(LuConv),
}

/// y = x Wᵀ with W = P L U_s: P fixed permutation, L unit lower-triangular, U_s upper-triangular
/// with diagonal sign ⊙ exp(log_s); log|det W| = Σ log_s.
#[derive(Debug)]
pub(crate) struct LuConv {
    /// n × n permutation matrix (fixed).
    perm: Var,
    /// n × n; only the strictly lower part is used.
    lower: Var,
    /// n × n; only the strictly upper part is used.
    upper: Var,
    /// 1 × n.
    log_s: Var,
    /// 1 × n signs of U's diagonal (fixed).
    sign_s: Var,
    lower_mask: Tensor,
    upper_mask: Tensor,
    eye: Tensor,
}

impl Permutation {
    /// A mixing over `dims` dimensions.
    pub fn new(kind: PermutationKind, dims: usize, init: &mut Init) -> Result<Self> {
        match kind {
            PermutationKind::Reverse => {
                let order: Vec<u32> = (0..dims as u32).rev().collect();
                Ok(Permutation::Reverse {
                    index: Tensor::from_vec(order, dims, &init.device)?,
                })
            }
            PermutationKind::Lu => Ok(Permutation::Lu(LuConv::new(dims, init)?)),
        }
    }

    /// Mixes x (batch × n); returns the output and the log-determinant (a scalar) if not 0.
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        match self {
            Permutation::Reverse { index } => Ok((x.index_select(index, 1)?, None)),
            Permutation::Lu(lu) => lu.forward(x),
        }
    }

    /// Undoes [`Permutation::forward`].
    pub fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        match self {
            // Reversal is its own inverse.
            Permutation::Reverse { index } => Ok(y.index_select(index, 1)?),
            Permutation::Lu(lu) => lu.inverse(y),
        }
    }

    /// The parameters, named under `prefix` (none for the reversal).
    pub fn params(&self, prefix: &str, out: &mut Vec<Param>) {
        if let Permutation::Lu(lu) = self {
            out.push(Param::fixed(format!("{prefix}.perm"), &lu.perm));
            out.push(Param::trainable(format!("{prefix}.lower"), &lu.lower));
            out.push(Param::trainable(format!("{prefix}.upper"), &lu.upper));
            out.push(Param::trainable(format!("{prefix}.log_s"), &lu.log_s));
            out.push(Param::fixed(format!("{prefix}.sign_s"), &lu.sign_s));
        }
    }
}

impl LuConv {
    /// LU factors of a random rotation (seeded through `init`).
    fn new(n: usize, init: &mut Init) -> Result<Self> {
        let gaussian = DMatrix::from_fn(n, n, |_, _| init.sample());
        let rotation = gaussian.qr().q();
        // nalgebra gives P_r · Q = L · U, so Q = P_rᵀ L U.
        let lu = rotation.lu();
        let mut row_perm = DMatrix::<f64>::identity(n, n);
        lu.p().permute_rows(&mut row_perm);
        let perm = row_perm.transpose();
        let lower = lu.l();
        let upper = lu.u();
        let diag: Vec<f64> = (0..n).map(|i| upper[(i, i)]).collect();
        let row_major = |m: &DMatrix<f64>| m.transpose().as_slice().to_vec();
        let (rows, cols) = (n, n);
        let device = init.device.clone();
        let dtype = init.dtype;
        let mask = |keep: fn(usize, usize) -> bool| -> Result<Tensor> {
            let v: Vec<f64> = (0..rows * cols)
                .map(|k| if keep(k / cols, k % cols) { 1.0 } else { 0.0 })
                .collect();
            Ok(Tensor::from_vec(v, (rows, cols), &device)?.to_dtype(dtype)?)
        };
        Ok(LuConv {
            perm: init.with_values(row_major(&perm), n, n)?,
            lower: init.with_values(row_major(&lower), n, n)?,
            upper: init.with_values(row_major(&upper), n, n)?,
            log_s: init.with_values(diag.iter().map(|d| d.abs().ln()).collect(), 1, n)?,
            sign_s: init.with_values(diag.iter().map(|d| d.signum()).collect(), 1, n)?,
            lower_mask: mask(|r, c| r > c)?,
            upper_mask: mask(|r, c| r < c)?,
            eye: mask(|r, c| r == c)?,
        })
    }

    /// L (unit lower) and U_s (upper with the scaled diagonal).
    fn factors(&self) -> Result<(Tensor, Tensor)> {
        let l = ((self.lower.as_tensor() * &self.lower_mask)? + &self.eye)?;
        let diag = (self.sign_s.as_tensor() * self.log_s.exp()?)?;
        let u = ((self.upper.as_tensor() * &self.upper_mask)? + self.eye.broadcast_mul(&diag)?)?;
        Ok((l, u))
    }

    fn forward(&self, x: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let (l, u) = self.factors()?;
        // x Wᵀ = x U_sᵀ Lᵀ Pᵀ: three batch × n × n products, W itself is never formed.
        let y = x
            .matmul(&u.t()?)?
            .matmul(&l.t()?)?
            .matmul(&self.perm.as_tensor().t()?)?;
        Ok((y, Some(self.log_s.sum_all()?)))
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let (l, u) = self.factors()?;
        let w = self.perm.as_tensor().matmul(&l)?.matmul(&u)?;
        let n = w.dim(0)?;
        let values: Vec<f64> = w.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let inverse = DMatrix::from_row_slice(n, n, &values)
            .try_inverse()
            .ok_or_else(|| {
                Error::Transform("the flow's 1×1 convolution is singular; re-fit it".into())
            })?;
        let inv_t: Vec<f64> = inverse.as_slice().to_vec(); // column-major W⁻¹ = row-major W⁻ᵀ
        let inv_t = Tensor::from_vec(inv_t, (n, n), y.device())?.to_dtype(y.dtype())?;
        Ok(y.matmul(&inv_t)?)
    }
}
