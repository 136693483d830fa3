//! A dense layer y = x Wᵀ + b. In inference on a few CPU rows (one short query) it takes each
//! output as a dot product of an input row with a weight row: the matrix library packs the whole
//! weight matrix on every call, which for a 15-token query was ~45% of the encoding time — more
//! than the arithmetic. The encoder's CPU engine (`encoder::cpu`) replaced this path for
//! encoding; it stays for SimCSE's evaluation of its trainee (see `encoder::candle_ops`).

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Module, Shape, Tensor};
use candle_nn::{Linear, VarBuilder};

use crate::simd::{dot, dot4};
use crate::Result;

/// Up to this many rows (tokens in the batch) inference takes the dot-product path.
pub const SMALL_ROWS: usize = 32;

/// A dense layer; its parameters are candle-nn's `Linear` ones (`weight` out × in, `bias` out).
pub struct Dense {
    linear: Linear,
}

impl Dense {
    /// Loads `weight` and `bias` for `input` → `output` features.
    pub fn load(input: usize, output: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Dense { linear: candle_nn::linear(input, output, vb)? })
    }

    /// The parameters: `weight` (out × in) and `bias` (out).
    pub fn linear(&self) -> &Linear {
        &self.linear
    }

    /// x Wᵀ + b over the last dimension of `x`; `fused` (inference) allows the few-rows path.
    pub fn forward(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        let rows = x.elem_count() / x.dim(candle_core::D::Minus1)?.max(1);
        let small = fused
            && rows <= SMALL_ROWS
            && x.device().is_cpu()
            && x.dtype() == DType::F32
            && x.is_contiguous()
            && self.linear.weight().is_contiguous()
            && self.linear.bias().is_some_and(|b| b.is_contiguous());
        match (small, self.linear.bias()) {
            (true, Some(bias)) => Ok(x.apply_op3_no_bwd(self.linear.weight(), bias, &RowDots)?),
            _ => Ok(self.linear.forward(x)?),
        }
    }
}

struct RowDots;

impl CustomOp3 for RowDots {
    fn name(&self) -> &'static str {
        "isovec-dense-row-dots"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        x_layout: &Layout,
        w: &CpuStorage,
        w_layout: &Layout,
        b: &CpuStorage,
        b_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(x), CpuStorage::F32(w), CpuStorage::F32(b)) = (x, w, b) else {
            candle_core::bail!("dense row dots: f32 only")
        };
        let (Some((x0, x1)), Some((w0, w1)), Some((b0, b1))) =
            (x_layout.contiguous_offsets(), w_layout.contiguous_offsets(), b_layout.contiguous_offsets())
        else {
            candle_core::bail!("dense row dots: contiguous inputs only")
        };
        let (outputs, inputs) = w_layout.shape().dims2()?;
        let dims = x_layout.shape().dims();
        if dims.last() != Some(&inputs) || b1 - b0 != outputs {
            candle_core::bail!("dense row dots: x {:?}, weight {:?}", x_layout.shape(), w_layout.shape())
        }
        let (x, w, b) = (&x[x0..x1], &w[w0..w1], &b[b0..b1]);
        let rows = x.len() / inputs.max(1);
        let mut out = vec![0f32; rows * outputs];
        // Weight row outside, input rows inside (four at a time): each weight row is read once.
        let x_rows: Vec<&[f32]> = x.chunks_exact(inputs).collect();
        for (n, (w_row, &bias)) in w.chunks_exact(inputs).zip(b).enumerate() {
            let mut m = 0;
            while m + 4 <= rows {
                let d = dot4([x_rows[m], x_rows[m + 1], x_rows[m + 2], x_rows[m + 3]], w_row);
                for (k, v) in d.into_iter().enumerate() {
                    out[(m + k) * outputs + n] = v + bias;
                }
                m += 4;
            }
            for (k, x_row) in x_rows.iter().enumerate().skip(m) {
                out[k * outputs + n] = dot(x_row, w_row) + bias;
            }
        }
        let mut shape = dims.to_vec();
        *shape.last_mut().expect("checked above") = outputs;
        Ok((CpuStorage::F32(out), Shape::from(shape)))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use candle_nn::VarMap;

    use super::*;

    #[test]
    fn few_rows_path_equals_candle_linear() {
        let map = VarMap::new();
        let vb = VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu);
        let dense = Dense::load(48, 20, vb.pp("d")).unwrap();
        // Non-trivial bias (candle-nn initialises it uniformly too; make sure it is not zero).
        let bias = dense.linear.bias().unwrap().to_vec1::<f32>().unwrap();
        assert!(bias.iter().any(|&v| v != 0.0));
        for rows in [1usize, 7, SMALL_ROWS] {
            let x = Tensor::randn(0f32, 1.0, (1, rows, 48), &Device::Cpu).unwrap();
            let fast = dense.forward(&x, true).unwrap();
            let reference = dense.linear.forward(&x).unwrap();
            assert_eq!(fast.dims(), &[1, rows, 20]);
            let diff = (fast - reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "{rows} rows: max |diff| {diff}");
        }
    }
}
