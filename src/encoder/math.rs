//! The CPU engine's element-wise math on rows of f32: the attention softmax (with a vectorisable
//! exp), GELU (with a vectorisable erf), LayerNorm, and the bias, activation and residual
//! passes that finish each block of a matrix product. It lies beside both backends, not inside
//! `cpu/`, because candle's BERT uses it too: neither backend depends on the other.
//!
//! Every function is branch-free over its row so that the compiler vectorises it, and the row
//! passes are compiled for AVX-512, AVX2 + FMA and the baseline ([`multiversion!`]). Accuracy:
//! exp within 3e-7 relative on x ≤ 0, erf within 5e-7; LayerNorm sums in f64. Done as candle
//! ops the softmax read and wrote the score tensor three times and called libm's scalar `expf`
//! per element (~12 % of encoding 256-token abstracts), and candle's GELU called scalar `erff`
//! (~17 %). candle's BERT reuses [`softmax_row`] and [`gelu`] in its inference ops
//! (`encoder::candle_ops`).

use crate::simd::multiversion;

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
pub(crate) fn softmax_row(x: &[f32], mask: &[f32], scale: f32, out: &mut [f32]) {
    for ((o, &v), &m) in out.iter_mut().zip(x).zip(mask) {
        *o = v * scale + m;
    }
    softmax_in_place(out);
}

multiversion! {
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

// P[0] is fitted: close to 2/√π, but not it.
#[allow(clippy::approx_constant)]
const P: [f32; 6] = [1.128_379_1, 0.185_675_67, 0.052_197_553, 0.003_587_117, 0.000_285_003_1, 2.137_493_7e-6];
const Q: [f32; 6] = [1.0, 0.497_883_45, 0.112_222_59, 0.014_603_174, 0.001_127_307, 3.901_155_8e-5];

/// erf(x) to within 5e-7: x·P(x²)/Q(x²) on |x| ≤ 4, a rational fit, clamped beyond (where
/// erf is 1 to 1.5e-8).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let t = x * x;
    let p = ((((P[5] * t + P[4]) * t + P[3]) * t + P[2]) * t + P[1]) * t + P[0];
    let q = ((((Q[5] * t + Q[4]) * t + Q[3]) * t + Q[2]) * t + Q[1]) * t + Q[0];
    x * p / q
}

/// GELU, erf form.
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// LayerNorm parameters.
pub(super) struct Norm {
    pub(super) weight: Vec<f32>,
    pub(super) bias: Vec<f32>,
    pub(super) eps: f32,
}

impl Norm {
    /// Normalises one row in place (mean and variance in two passes, in f64 sums).
    #[inline(always)]
    pub(super) fn apply(&self, row: &mut [f32]) {
        let n = row.len() as f64;
        let mean = lane_sum(row, f64::from) / n;
        let var = lane_sum(row, |v| (f64::from(v) - mean).powi(2)) / n;
        let inv = (1.0 / (var + f64::from(self.eps)).sqrt()) as f32;
        let mean = mean as f32;
        for ((v, &w), &b) in row.iter_mut().zip(&self.weight).zip(&self.bias) {
            *v = (*v - mean) * inv * w + b;
        }
    }
}

/// Σ f(v) over `row` in [`SUM_LANES`] independent f64 sums, added at the end: the compiler
/// vectorises them (one running sum would be a chain of dependent scalar additions).
#[inline(always)]
fn lane_sum(row: &[f32], f: impl Fn(f32) -> f64) -> f64 {
    let mut lanes = [0f64; SUM_LANES];
    let chunks = row.chunks_exact(SUM_LANES);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for chunk in chunks {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// Independent sums of [`lane_sum`]: two AVX-512 registers of f64.
const SUM_LANES: usize = 16;

multiversion! {
    /// Rows (each as wide as `bias`) += bias.
    pub(super) fn add_bias(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v += b);
        }
    }
}

multiversion! {
    /// Rows (each as wide as `bias`) ← GELU(row + bias).
    pub(super) fn add_bias_gelu(rows: &mut [f32], bias: &[f32]) {
        for row in rows.chunks_mut(bias.len()) {
            row.iter_mut().zip(bias).for_each(|(v, &b)| *v = gelu(*v + b));
        }
    }
}

multiversion! {
    /// Rows (each as wide as `bias`) ← LayerNorm(row + bias + the residual's row at the same place).
    pub(super) fn add_residual_norm(rows: &mut [f32], bias: &[f32], residual: &[f32], norm: &Norm) {
        for (row, res) in rows.chunks_mut(bias.len()).zip(residual.chunks(bias.len())) {
            for ((v, &b), &x) in row.iter_mut().zip(bias).zip(res) {
                *v += b + x;
            }
            norm.apply(row);
        }
    }
}

#[cfg(test)]
mod tests {
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

    /// erf by its Taylor series in f64 (exact to 1e-15 on |x| ≤ 3, where it converges quickly).
    fn erf_series(x: f64) -> f64 {
        let (mut term, mut sum, mut n) = (x, x, 0.0);
        while term.abs() > 1e-17 {
            n += 1.0;
            term *= -x * x / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_matches_series() {
        for i in -3000..=3000 {
            let x = i as f64 / 1000.0;
            let d = (erf(x as f32) as f64 - erf_series(x)).abs();
            assert!(d < 6e-7, "erf({x}): off by {d}");
        }
        assert!((erf(7.0) - 1.0).abs() < 1e-6 && (erf(-30.0) + 1.0).abs() < 1e-6);
    }
}
