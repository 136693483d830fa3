//! GELU (erf form) for inference on the CPU, with a vectorisable erf.
//!
//! candle's `gelu_erf` calls libm's scalar `erff` per element, which took ~17% of encoding time.
//! Here erf(x) ≈ x·P(x²)/Q(x²) on |x| ≤ 4 (clamped beyond, where erf is 1 to 1.5e-8): a rational
//! fit whose error is below 5e-7 in f32, branch-free so the compiler vectorises it.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::Result;

// P[0] is fitted: close to 2/√π, but not it.
#[allow(clippy::approx_constant)]
const P: [f32; 6] = [1.128_379_1, 0.185_675_67, 0.052_197_553, 0.003_587_117, 0.000_285_003_1, 2.137_493_7e-6];
const Q: [f32; 6] = [1.0, 0.497_883_45, 0.112_222_59, 0.014_603_174, 0.001_127_307, 3.901_155_8e-5];

/// erf(x) to within 5e-7.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let t = x * x;
    let p = ((((P[5] * t + P[4]) * t + P[3]) * t + P[2]) * t + P[1]) * t + P[0];
    let q = ((((Q[5] * t + Q[4]) * t + Q[3]) * t + Q[2]) * t + Q[1]) * t + Q[0];
    x * p / q
}

#[inline(always)]
pub(super) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
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
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && x.is_contiguous() {
        Ok(x.apply_op1_no_bwd(&FastGelu)?)
    } else {
        Ok(x.gelu_erf()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn gelu_matches_candle() {
        let xs: Vec<f32> = (-2000..2000).map(|i| i as f32 / 150.0).collect();
        let t = Tensor::new(xs.as_slice(), &candle_core::Device::Cpu).unwrap();
        let ours = gelu_erf(&t).unwrap().to_vec1::<f32>().unwrap();
        let theirs = t.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let d = ours.iter().zip(&theirs).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 2e-6, "max diff {d}");
    }
}
