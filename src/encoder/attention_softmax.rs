//! Attention probabilities for inference on the CPU: softmax(scores · scale + mask) over the last
//! dimension in one pass, with a vectorisable exp.
//!
//! Done as three candle ops (scale, broadcast mask add, softmax) this reads and writes the whole
//! batch × heads × seq × seq score tensor three times and calls libm's scalar `expf` per element:
//! on 256-token abstracts that was ~12% of encoding time.

use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor};

use crate::Result;

/// log2(e).
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two so that n·ln2 is exact in the high part (Cody–Waite).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2²³: adding it rounds a float of magnitude < 2²² to an integer held in the low bits.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// Below this e^x is under f32's smallest normal number; it is taken as 0.
const EXP_MIN: f32 = -87.0;

/// e^x for x ≤ 0 (relative error < 3e-7; 0 below −87, where e^x < 1.7e-38).
///
/// x = n·ln2 + r with |r| ≤ ln2/2, e^r by Cephes' degree-6 polynomial, 2ⁿ built from its bits:
/// only multiplies, adds and integer bit operations, so loops over it vectorise.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    // Written so that NaN counts as an underflow too (it compares false).
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    let underflow = !(x >= EXP_MIN);
    let x = if x > EXP_MIN { x } else { EXP_MIN };
    let shifted = x * LOG2_E + ROUND_MAGIC;
    let n = shifted - ROUND_MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    // Cephes' 5.0000001e-1, which is 0.5 in f32.
    p = p * r + 0.5;
    let er = p * r * r + r + 1.0;
    // The low bits of `shifted` hold n (two's complement); n ≥ −126, so n + 127 is a valid exponent.
    let n_bits = shifted.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    let two_n = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if underflow {
        0.0
    } else {
        er * two_n
    }
}

/// Lanes of the reductions: independent accumulators let the compiler use SIMD registers.
const LANES: usize = 8;

/// softmax(x · scale + mask) of one row into `out`. Each step is a separate branch-free loop
/// (maps, and reductions over [`LANES`] accumulators) so that every one of them vectorises.
#[inline(always)]
fn softmax_row(x: &[f32], mask: &[f32], scale: f32, out: &mut [f32]) {
    for ((o, &v), &m) in out.iter_mut().zip(x).zip(mask) {
        *o = v * scale + m;
    }
    softmax_in_place(out);
}

crate::simd::multiversion! {
    /// softmax(row · scale) in place for each row of `len` values: the attention probabilities
    /// of a text without padding.
    pub(super) fn scaled_softmax_rows(rows: &mut [f32], len: usize, scale: f32) {
        for row in rows.chunks_mut(len) {
            for o in row.iter_mut() {
                *o *= scale;
            }
            softmax_in_place(row);
        }
    }
}

/// softmax over `out`, in place.
#[inline(always)]
fn softmax_in_place(out: &mut [f32]) {
    let max = reduce(out, f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
    for o in out.iter_mut() {
        *o = exp_nonpositive(*o - max);
    }
    let inv = 1.0 / reduce(out, 0.0, |a, b| a + b);
    for o in out.iter_mut() {
        *o *= inv;
    }
}

/// Folds `values` with `f` over [`LANES`] accumulators, then folds those.
#[inline(always)]
fn reduce(values: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = f(*a, v);
        }
    }
    let mut total = acc.into_iter().fold(init, &f);
    for &v in rest {
        total = f(total, v);
    }
    total
}

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

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    #[test]
    fn exp_matches_f64_exp_over_the_softmax_range() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let exact = f64::from(x).exp();
            let rel = (f64::from(exp_nonpositive(x)) - exact).abs() / exact;
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!((exp_nonpositive(-1e4), exp_nonpositive(f32::NEG_INFINITY)), (0.0, 0.0));
    }

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
}
