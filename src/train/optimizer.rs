//! AdamW with decoupled weight decay, a linear warm-up/decay schedule and global gradient-norm
//! clipping — the optimiser of the SimCSE recipes (Hugging Face Trainer defaults).
//!
//! candle-nn's `AdamW` decays every variable and has neither a schedule nor clipping, so
//! isovec has its own.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

use crate::{Error, Result};

/// AdamW hyper-parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// Peak learning rate (reached after warm-up).
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the second-moment root, for stability.
    pub eps: f64,
    /// Decoupled weight decay, applied to weights only (never biases or LayerNorm).
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    /// The Hugging Face Trainer defaults that the SimCSE scripts ran with (no weight decay).
    fn default() -> Self {
        AdamWConfig { lr: 3e-5, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0 }
    }
}

/// Whether weight decay applies to a variable, by its checkpoint name.
///
/// As in BERT's and SimCSE's training code: biases and LayerNorm parameters are not decayed,
/// because shrinking them towards zero changes what the layer computes rather than regularising.
pub fn decays(name: &str) -> bool {
    !(name.ends_with("bias") || name.contains("LayerNorm") || name.contains("layer_norm"))
}

/// Linear warm-up from 0 to the peak rate, then linear decay to 0 at the last step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearSchedule {
    /// Steps of warm-up.
    pub warmup_steps: usize,
    /// Total optimiser steps of the run.
    pub total_steps: usize,
}

impl LinearSchedule {
    /// The multiplier of the peak learning rate for the update made after `step` earlier updates.
    pub fn factor(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return step as f64 / self.warmup_steps as f64;
        }
        let rest = self.total_steps.saturating_sub(self.warmup_steps);
        if rest == 0 {
            return 0.0;
        }
        (self.total_steps.saturating_sub(step) as f64 / rest as f64).clamp(0.0, 1.0)
    }
}

struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    decay: bool,
}

/// AdamW over named variables.
pub struct AdamW {
    slots: Vec<Slot>,
    config: AdamWConfig,
    steps: usize,
}

impl AdamW {
    /// An optimiser for `vars` (name → variable); names decide which are decayed.
    pub fn new(mut vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let slots = vars
            .into_iter()
            .map(|(name, var)| Ok(Slot { decay: decays(&name), m: var.zeros_like()?, v: var.zeros_like()?, name, var }))
            .collect::<Result<Vec<_>>>()?;
        Ok(AdamW { slots, config, steps: 0 })
    }

    /// Updates made so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The variables, sorted by name.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &Var)> {
        self.slots.iter().map(|s| (s.name.as_str(), &s.var))
    }

    /// Names of the variables that weight decay applies to.
    pub fn decayed(&self) -> Vec<&str> {
        self.slots.iter().filter(|s| s.decay).map(|s| s.name.as_str()).collect()
    }

    /// One update at learning rate `lr`; a variable without a gradient is an error (it would
    /// silently never train).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.steps += 1;
        let c = &self.config;
        let t = self.steps as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2 = 1.0 - c.beta2.powi(t);
        for slot in &mut self.slots {
            let g = grads.get(slot.var.as_tensor()).ok_or_else(|| {
                Error::InvalidInput(format!("no gradient reached {}: the loss does not depend on it", slot.name))
            })?;
            slot.m = ((&slot.m * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            slot.v = ((&slot.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&slot.m / bias1)? / ((&slot.v / bias2)?.sqrt()? + c.eps)?)?;
            let theta = slot.var.as_tensor().detach();
            let theta = if slot.decay && c.weight_decay > 0.0 { (theta * (1.0 - lr * c.weight_decay))? } else { theta };
            slot.var.set(&(theta - (update * lr)?)?)?;
        }
        Ok(())
    }
}

/// Scales the gradients of `vars` so that their global L2 norm is at most `max_norm`;
/// returns the norm before clipping.
pub fn clip_grad_norm<'a>(
    grads: &mut GradStore,
    vars: impl IntoIterator<Item = &'a Var> + Clone,
    max_norm: f64,
) -> Result<f64> {
    let mut total = 0f64;
    for var in vars.clone() {
        if let Some(g) = grads.get(var.as_tensor()) {
            total += g.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        }
    }
    let norm = total.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        // The small constant keeps the clipped norm just under the limit, as PyTorch does.
        let scale = max_norm / (norm + 1e-6);
        for var in vars {
            if let Some(g) = grads.remove(var.as_tensor()) {
                grads.insert(var.as_tensor(), (g * scale)?);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn decay_skips_biases_and_layer_norm() {
        assert!(decays("encoder.layer.0.attention.self.query.weight"));
        assert!(decays("embeddings.word_embeddings.weight"));
        assert!(decays("mlp.dense.weight"));
        assert!(!decays("encoder.layer.0.attention.self.query.bias"));
        assert!(!decays("encoder.layer.0.output.LayerNorm.weight"));
        assert!(!decays("embeddings.LayerNorm.bias"));
    }

    #[test]
    fn schedule_warms_up_then_decays_linearly() {
        let s = LinearSchedule { warmup_steps: 10, total_steps: 110 };
        assert_eq!(s.factor(0), 0.0);
        assert!((s.factor(5) - 0.5).abs() < 1e-12);
        assert_eq!(s.factor(10), 1.0);
        assert!((s.factor(60) - 0.5).abs() < 1e-12);
        assert!((s.factor(109) - 0.01).abs() < 1e-12);
        assert_eq!(s.factor(110), 0.0);
        assert_eq!(s.factor(500), 0.0);
        let no_warmup = LinearSchedule { warmup_steps: 0, total_steps: 4 };
        let f: Vec<f64> = (0..4).map(|i| no_warmup.factor(i)).collect();
        assert_eq!(f, vec![1.0, 0.75, 0.5, 0.25]);
    }

    #[test]
    fn clipping_scales_global_norm_to_the_limit() {
        let dev = Device::Cpu;
        let a = Var::from_tensor(&Tensor::new(&[1f32, 2.], &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[[0f32, 0.]], &dev).unwrap()).unwrap();
        // loss = 3·a₀ + 4·b₀₀ → gradients (3, 0) and ((4, 0)): global norm 5.
        let loss = ((a.as_tensor().narrow(0, 0, 1).unwrap() * 3.0).unwrap()
            + (b.as_tensor().flatten_all().unwrap().narrow(0, 0, 1).unwrap() * 4.0).unwrap())
        .unwrap();
        let mut grads = loss.backward().unwrap();
        let norm = clip_grad_norm(&mut grads, [&a, &b], 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        let ga = grads.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        let gb = grads.get(b.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
        assert!((ga[0] - 0.6).abs() < 1e-5 && ga[1] == 0.0, "{ga:?}");
        assert!((gb[0][0] - 0.8).abs() < 1e-5, "{gb:?}");
        let after = (ga.iter().chain(&gb[0]).map(|x| (x * x) as f64).sum::<f64>()).sqrt();
        assert!((after - 1.0).abs() < 1e-5);
        // Under the limit nothing changes.
        let norm = clip_grad_norm(&mut grads, [&a, &b], 10.0).unwrap();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!((grads.get(a.as_tensor()).unwrap().to_vec1::<f32>().unwrap()[0] - 0.6).abs() < 1e-5);
    }

    /// AdamW against the update written out by hand in f64 for two steps.
    #[test]
    fn adamw_matches_hand_computation_and_skips_decay_on_bias() {
        let dev = Device::Cpu;
        let w = Var::from_tensor(&Tensor::new(&[1f32, -2.], &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&Tensor::new(&[0.5f32], &dev).unwrap()).unwrap();
        let cfg = AdamWConfig { lr: 0.1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.5 };
        let mut opt =
            AdamW::new(vec![("x.weight".into(), w.clone()), ("x.bias".into(), b.clone())], cfg.clone()).unwrap();
        assert_eq!(opt.decayed(), vec!["x.weight"]);
        // Reference in f64: loss = Σ w² + 3b, so g_w = 2w, g_b = 3.
        let (mut rw, mut rb) = ([1f64, -2.], 0.5f64);
        let (mut mw, mut vw, mut mb, mut vb) = ([0f64; 2], [0f64; 2], 0f64, 0f64);
        for t in 1..=2 {
            let loss = (w.as_tensor().sqr().unwrap().sum_all().unwrap()
                + (b.as_tensor().sum_all().unwrap() * 3.0).unwrap())
            .unwrap();
            let grads = loss.backward().unwrap();
            opt.step(&grads, cfg.lr).unwrap();
            let (b1, b2) = (1.0 - 0.9f64.powi(t), 1.0 - 0.99f64.powi(t));
            for i in 0..2 {
                let g = 2.0 * rw[i];
                mw[i] = 0.9 * mw[i] + 0.1 * g;
                vw[i] = 0.99 * vw[i] + 0.01 * g * g;
                rw[i] = rw[i] * (1.0 - 0.1 * 0.5) - 0.1 * (mw[i] / b1) / ((vw[i] / b2).sqrt() + 1e-8);
            }
            mb = 0.9 * mb + 0.1 * 3.0;
            vb = 0.99 * vb + 0.01 * 9.0;
            rb -= 0.1 * (mb / b1) / ((vb / b2).sqrt() + 1e-8);
        }
        let got_w = w.as_tensor().to_vec1::<f32>().unwrap();
        let got_b = b.as_tensor().to_vec1::<f32>().unwrap()[0];
        for i in 0..2 {
            assert!((got_w[i] as f64 - rw[i]).abs() < 1e-5, "{got_w:?} vs {rw:?}");
        }
        assert!((got_b as f64 - rb).abs() < 1e-6, "{got_b} vs {rb}");
        // Without decay the bias moves by exactly lr per step (Adam's normalised step), 0.5 → 0.3.
        assert!((got_b - 0.3).abs() < 1e-5);
    }
}
