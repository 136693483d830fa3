//! InfoNCE on cosine similarity, the SimCSE objective.

use candle_core::{DType, Tensor, D};

use crate::{Error, Result};

/// Rows scaled to unit length (a zero row stays zero instead of becoming NaN).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    Ok(x.broadcast_div(&norm)?)
}

/// Mean InfoNCE loss of a batch.
///
/// Row `i` of `anchors` should be closest to row `i` of `positives`; every other positive, and
/// every row of `hard_negatives` (the supervised recipe's contradictions), is a negative:
/// ℓᵢ = −log exp(cos(aᵢ, pᵢ)/τ) / (Σⱼ exp(cos(aᵢ, pⱼ)/τ) + Σⱼ exp(cos(aᵢ, nⱼ)/τ)).
pub fn info_nce(
    anchors: &Tensor,
    positives: &Tensor,
    hard_negatives: Option<&Tensor>,
    temperature: f64,
) -> Result<Tensor> {
    let (b, d) = anchors.dims2()?;
    if positives.dims2()? != (b, d) {
        return Err(Error::InvalidInput(format!(
            "InfoNCE: anchors are {:?} but positives are {:?}; both must be (batch, dims)",
            anchors.dims(),
            positives.dims()
        )));
    }
    if temperature <= 0.0 {
        return Err(Error::InvalidInput(format!("temperature must be positive, got {temperature}")));
    }
    let candidates = match hard_negatives {
        Some(n) => {
            if n.dim(1)? != d {
                return Err(Error::Dimension { expected: d, found: n.dim(1)? });
            }
            Tensor::cat(&[positives, n], 0)?
        }
        None => positives.clone(),
    };
    let a = l2_normalize(anchors)?;
    let c = l2_normalize(&candidates)?;
    let logits = (a.matmul(&c.t()?)? / temperature)?;
    let targets = Tensor::arange(0u32, b as u32, anchors.device())?;
    let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
    Ok(loss.to_dtype(DType::F32)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The loss written out directly in f64, sharing no code with the tensor version.
    fn reference(anchors: &[Vec<f64>], candidates: &[Vec<f64>], tau: f64) -> f64 {
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cos = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (norm(a) * norm(b));
        let mut total = 0.0;
        for (i, a) in anchors.iter().enumerate() {
            let denom: f64 = candidates.iter().map(|c| (cos(a, c) / tau).exp()).sum();
            total += -((cos(a, &candidates[i]) / tau).exp() / denom).ln();
        }
        total / anchors.len() as f64
    }

    fn rows(flat: &[f64], d: usize) -> Vec<Vec<f64>> {
        flat.chunks(d).map(|c| c.to_vec()).collect()
    }

    fn check(b: usize, with_negatives: bool) {
        let dev = Device::Cpu;
        let d = 5;
        let groups = if with_negatives { 3 } else { 2 };
        let tau = 0.1;
        // Deterministic pseudo-random embeddings.
        let flat: Vec<f64> = (0..groups * b * d).map(|i| ((i * 7919 % 101) as f64 / 50.0) - 1.0).collect();
        let e = Var::from_tensor(&Tensor::from_vec(flat.clone(), (groups * b, d), &dev).unwrap()).unwrap();
        let t = e.as_tensor();
        let neg = with_negatives.then(|| t.narrow(0, 2 * b, b).unwrap());
        let loss = info_nce(&t.narrow(0, 0, b).unwrap(), &t.narrow(0, b, b).unwrap(), neg.as_ref(), tau).unwrap();
        let f = |x: &[f64]| {
            let r = rows(x, d);
            reference(&r[..b], &r[b..], tau)
        };
        let value = loss.to_scalar::<f32>().unwrap() as f64;
        assert!((value - f(&flat)).abs() < 1e-5, "{value} vs {}", f(&flat));
        let grad = loss.backward().unwrap().get(t).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let h = 1e-6;
        for k in 0..flat.len() {
            let mut plus = flat.clone();
            plus[k] += h;
            let mut minus = flat.clone();
            minus[k] -= h;
            let numeric = (f(&plus) - f(&minus)) / (2.0 * h);
            assert!((grad[k] - numeric).abs() < 1e-6 * (1.0 + numeric.abs()), "∂/∂e[{k}]: {} vs {numeric}", grad[k]);
        }
    }

    #[test]
    fn info_nce_value_and_gradient_match_direct_computation() {
        check(4, false);
    }

    #[test]
    fn info_nce_with_hard_negatives_matches_direct_computation() {
        check(3, true);
    }

    #[test]
    fn info_nce_rejects_mismatched_shapes_and_bad_temperature() {
        let dev = Device::Cpu;
        let a = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        let p = Tensor::zeros((3, 3), DType::F32, &dev).unwrap();
        assert!(info_nce(&a, &p, None, 0.05).is_err());
        assert!(info_nce(&a, &a, None, 0.0).is_err());
    }
}
