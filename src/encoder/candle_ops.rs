//! candle custom ops of candle's BERT in [`Mode::Infer`](super::Mode::Infer): the attention
//! softmax with its mask and GELU, on contiguous f32 CPU tensors (anything else takes candle's
//! own ops), over the CPU engine's row math ([`super::math`]). With the few-rows
//! dense layer ([`super::dense`]) they are what the engine replaced for encoding.
//!
//! Why they stay: the [`Encoder`](super::Encoder) never reaches them (on the CPU in f32 or
//! bf16 it runs the engine), but SimCSE evaluates its trainee on STS-B dev through candle's
//! BERT in `Mode::Infer` (`train::simcse`, model selection): the trainee's weights are candle
//! variables that change at every step, which the engine would have to copy and pack again for
//! each evaluation, and these ops keep that evaluation fast and its scores, so the models it
//! selects, what they were. Invariant: each op equals candle's composition of ops within 1e-6
//! (softmax) and 2e-6 (GELU), tested below; none has a backward pass, so training itself
//! (`Mode::Train`, `Mode::Differentiable`) never uses them.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};

use super::math::{gelu, softmax_row};
use crate::Result;

struct MaskedSoftmax {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "isovec-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        scores: &CpuStorage,
        scores_layout: &Layout,
        mask: &CpuStorage,
        mask_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(scores), CpuStorage::F32(mask)) = (scores, mask) else {
            candle_core::bail!("masked softmax: f32 only")
        };
        let (Some((s0, s1)), Some((m0, m1))) = (scores_layout.contiguous_offsets(), mask_layout.contiguous_offsets())
        else {
            candle_core::bail!("masked softmax: contiguous inputs only")
        };
        let (b, _, _, k) = scores_layout.shape().dims4()?;
        if mask_layout.shape().dims() != [b, 1, 1, k] {
            candle_core::bail!("masked softmax: mask {:?} for scores {:?}", mask_layout.shape(), scores_layout.shape())
        }
        let (scores, mask) = (&scores[s0..s1], &mask[m0..m1]);
        let rows_per_item = scores.len() / (b * k).max(1);
        let mut out = vec![0f32; scores.len()];
        for (i, (x, o)) in scores.chunks_exact(k).zip(out.chunks_exact_mut(k)).enumerate() {
            let item = i / rows_per_item;
            softmax_row(x, &mask[item * k..(item + 1) * k], self.scale, o);
        }
        Ok((CpuStorage::F32(out), scores_layout.shape().clone()))
    }
}

/// softmax(scores · scale + mask) over the last dimension, for inference (no backward pass).
/// `scores` is (batch, heads, queries, keys), `mask` additive (batch, 1, 1, keys). The fused
/// kernel runs on contiguous f32 CPU tensors; anything else takes candle's ops.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    let fused = scores.device().is_cpu()
        && scores.dtype() == DType::F32
        && mask.dtype() == DType::F32
        && scores.is_contiguous()
        && mask.is_contiguous();
    if fused {
        Ok(scores.apply_op2_no_bwd(mask, &MaskedSoftmax { scale: scale as f32 })?)
    } else {
        let scaled = (scores * scale)?.broadcast_add(mask)?;
        Ok(candle_nn::ops::softmax_last_dim(&scaled)?)
    }
}

struct FastGelu;

impl CustomOp1 for FastGelu {
    fn name(&self) -> &'static str {
        "isovec-fast-gelu-erf"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else { candle_core::bail!("fast gelu: f32 only") };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("fast gelu: contiguous input only")
        };
        let out: Vec<f32> = data[start..end].iter().map(|&x| gelu(x)).collect();
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// GELU (erf form): the fast kernel for contiguous f32 on the CPU, candle's `gelu_erf` otherwise.
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 && x.is_contiguous() {
        Ok(x.apply_op1_no_bwd(&FastGelu)?)
    } else {
        Ok(x.gelu_erf()?)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn fused_softmax_equals_candle_ops_on_a_masked_batch() {
        let (b, h, q, k) = (3, 4, 5, 7);
        let scores: Vec<f32> = (0..b * h * q * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let scores = Tensor::from_vec(scores, (b, h, q, k), &Device::Cpu).unwrap();
        // Item 0 sees all keys, item 1 the first 4, item 2 the first 1.
        let lengths = [7usize, 4, 1];
        let mask: Vec<f32> =
            lengths.iter().flat_map(|&n| (0..k).map(move |j| if j < n { 0.0 } else { -1e4 })).collect();
        let mask = Tensor::from_vec(mask, (b, 1, 1, k), &Device::Cpu).unwrap();
        let scale = 1.0 / 8f64.sqrt();
        let fused = masked_softmax(&scores, &mask, scale).unwrap();
        let reference = candle_nn::ops::softmax(&(&scores * scale).unwrap().broadcast_add(&mask).unwrap(), 3).unwrap();
        let diff = (fused.clone() - reference).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "max |fused − candle| = {diff}");
        // Masked keys get no weight; every row sums to 1.
        let p: Vec<Vec<Vec<Vec<f32>>>> = (0..b).map(|i| fused.get(i).unwrap().to_vec3::<f32>().unwrap()).collect();
        for (i, item) in p.iter().enumerate() {
            for row in item.iter().flatten() {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
                assert!(row[lengths[i]..].iter().all(|&v| v == 0.0), "masked key got weight: {row:?}");
            }
        }
    }

    #[test]
    fn gelu_matches_candle() {
        let xs: Vec<f32> = (-2000..2000).map(|i| i as f32 / 150.0).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let ours = gelu_erf(&t).unwrap().to_vec1::<f32>().unwrap();
        let theirs = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let d = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 2e-6, "max diff {d}");
    }
}
