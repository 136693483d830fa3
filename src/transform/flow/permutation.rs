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

/// y = x Wᵀ with W = P L U_s: P a fixed permutation, L unit lower-triangular, U_s upper-triangular
/// with diagonal sign ⊙ exp(log_s); log|det W| = Σ log_s.
#[derive(Debug)]
pub(crate) struct LuConv {
    /// 1 × n: P[i, order[i]] = 1 (fixed; stored as floats, exact below 2²⁴).
    order: Var,
    /// n × n, Lᵀ (stored transposed so that the forward product and its gradient need no
    /// strided copies); only the strictly upper part is used.
    lower_t: Var,
    /// n × n, Uᵀ; only the strictly lower part is used.
    upper_t: Var,
    /// 1 × n.
    log_s: Var,
    /// 1 × n signs of U's diagonal (fixed).
    sign_s: Var,
    /// 1 strictly below the diagonal.
    below: Tensor,
    /// 1 strictly above the diagonal.
    above: Tensor,
}

impl Permutation {
    /// A mixing over `dims` dimensions.
    pub fn new(kind: PermutationKind, dims: usize, init: &mut Init) -> Result<Self> {
        match kind {
            PermutationKind::Reverse => {
                let order: Vec<u32> = (0..dims as u32).rev().collect();
                Ok(Permutation::Reverse { index: Tensor::from_vec(order, dims, &init.device)? })
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
            out.push(Param::fixed(format!("{prefix}.order"), &lu.order));
            out.push(Param::trainable(format!("{prefix}.lower_t"), &lu.lower_t));
            out.push(Param::trainable(format!("{prefix}.upper_t"), &lu.upper_t));
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
        // nalgebra gives P_r · Q = L · U, so Q = P_rᵀ L U and P = P_rᵀ.
        let lu = rotation.lu();
        let mut row_perm = DMatrix::<f64>::identity(n, n);
        lu.p().permute_rows(&mut row_perm);
        // Row i of P = P_rᵀ is column i of P_r; its single 1 sits at row `order[i]` of P_r.
        let order: Vec<f64> = (0..n).map(|i| row_perm.column(i).imax() as f64).collect();
        let lower = lu.l();
        let upper = lu.u();
        let diag: Vec<f64> = (0..n).map(|i| upper[(i, i)]).collect();
        // The column-major storage of M is the row-major storage of Mᵀ.
        let transposed = |m: &DMatrix<f64>| m.as_slice().to_vec();
        let mask = |keep: fn(usize, usize) -> bool| -> Result<Tensor> {
            let v: Vec<f64> = (0..n * n).map(|k| if keep(k / n, k % n) { 1.0 } else { 0.0 }).collect();
            Ok(Tensor::from_vec(v, (n, n), &init.device)?.to_dtype(init.dtype)?)
        };
        Ok(LuConv {
            order: init.with_values(order, 1, n)?,
            lower_t: init.with_values(transposed(&lower), n, n)?,
            upper_t: init.with_values(transposed(&upper), n, n)?,
            log_s: init.with_values(diag.iter().map(|d| d.abs().ln()).collect(), 1, n)?,
            sign_s: init.with_values(diag.iter().map(|d| d.signum()).collect(), 1, n)?,
            below: mask(|r, c| r > c)?,
            above: mask(|r, c| r < c)?,
        })
    }

    /// The permutation as an index vector for `index_select`, checked to be a permutation.
    fn order_index(&self) -> Result<Tensor> {
        let order: Vec<f32> = self.order.as_tensor().flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
        let n = order.len();
        let mut seen = vec![false; n];
        let mut index = Vec::with_capacity(n);
        for &o in &order {
            let i = o as usize;
            if o.fract() != 0.0 || o < 0.0 || i >= n || seen[i] {
                return Err(Error::Transform(
                    "the flow's 1×1 convolution holds an invalid permutation; re-fit it".into(),
                ));
            }
            seen[i] = true;
            index.push(i as u32);
        }
        Ok(Tensor::from_vec(index, n, self.order.device())?)
    }

    /// The diagonal of U_s: sign ⊙ exp(log_s), 1 × n.
    fn diagonal(&self) -> Result<Tensor> {
        Ok((self.sign_s.as_tensor() * self.log_s.exp()?)?)
    }

    fn forward(&self, x: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        // x Wᵀ = ((x U_sᵀ) Lᵀ) Pᵀ, W is never formed. The unit diagonal of L and the diagonal
        // of U_s are applied as row-wise products (batch × n) instead of n × n additions: the
        // n × n element-wise work is what dominates the cost of this layer.
        let strict_upper_t = (self.upper_t.as_tensor() * &self.below)?;
        let h = (x.matmul(&strict_upper_t)? + x.broadcast_mul(&self.diagonal()?)?)?;
        let strict_lower_t = (self.lower_t.as_tensor() * &self.above)?;
        let h = (h.matmul(&strict_lower_t)? + &h)?;
        let y = h.index_select(&self.order_index()?, 1)?;
        Ok((y, Some(self.log_s.sum_all()?)))
    }

    fn inverse(&self, y: &Tensor) -> Result<Tensor> {
        let n = self.order.dims()[1];
        let index: Vec<u32> = self.order_index()?.to_vec1()?;
        let mut inverse_order = vec![0u32; n];
        for (i, &o) in index.iter().enumerate() {
            inverse_order[o as usize] = i as u32;
        }
        let h = y.index_select(&Tensor::from_vec(inverse_order, n, y.device())?, 1)?;
        // Solve L and U_s by forming them in f64 and inverting their product.
        let to_f64 = |t: &Tensor| -> Result<DMatrix<f64>> {
            let v: Vec<f64> = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
            Ok(DMatrix::from_row_slice(n, n, &v))
        };
        let strict_lower = to_f64(&(self.lower_t.as_tensor() * &self.above)?)?.transpose();
        let strict_upper = to_f64(&(self.upper_t.as_tensor() * &self.below)?)?.transpose();
        let diag: Vec<f64> = self.diagonal()?.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
        let lu = (strict_lower + DMatrix::identity(n, n))
            * (strict_upper + DMatrix::from_diagonal(&nalgebra::DVector::from_vec(diag)));
        let inverse = lu
            .try_inverse()
            .ok_or_else(|| Error::Transform("the flow's 1×1 convolution is singular; re-fit it".into()))?;
        // Row form x = h (LU)⁻ᵀ; the column-major storage of (LU)⁻¹ is the row-major (LU)⁻ᵀ.
        let inv_t = Tensor::from_vec(inverse.as_slice().to_vec(), (n, n), y.device())?.to_dtype(y.dtype())?;
        Ok(h.matmul(&inv_t)?)
    }
}
