//! Maximum-likelihood training of the flow on cached (frozen) sentence vectors with Adam.

use candle_core::{DType, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::adam::Adam;
use super::config::FlowConfig;
use super::glow::Glow;
use crate::progress::Progress;
use crate::{Error, Result};

/// Weight of the newest loss in the smoothed loss told to the progress.
const SMOOTHING: f64 = 0.05;

/// Number of Adam steps `config` takes over `n` vectors.
pub(crate) fn step_count(n: usize, config: &FlowConfig) -> usize {
    ((config.epochs * n as f64) / config.batch_size as f64).ceil().max(1.0) as usize
}

/// Trains `glow` on `data` (n × d, f32); returns the loss (bits/dim) of every step.
pub(crate) fn train(glow: &Glow, data: &Tensor, config: &FlowConfig, progress: &dyn Progress) -> Result<Vec<f64>> {
    let n = data.dim(0)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.shuffle(&mut rng);

    let init_rows = config.init_batch_size.min(n);
    let init_batch = rows(data, &order[..init_rows])?;
    glow.forward(&init_batch, true)?;

    let trainable = glow.params().into_iter().filter(|p| p.trainable).map(|p| p.var).collect();
    let mut adam = Adam::new(trainable, config.learning_rate);

    let steps = step_count(n, config);
    progress.start("flow", steps);
    let mut losses = Vec::with_capacity(steps);
    let mut smoothed = None;
    let mut cursor = 0;
    for step in 0..steps {
        if cursor >= n {
            order.shuffle(&mut rng);
            cursor = 0;
        }
        let end = (cursor + config.batch_size).min(n);
        let batch = rows(data, &order[cursor..end])?;
        cursor = end;
        let loss = glow.nll_bits_per_dim(&batch, false)?;
        let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        if !value.is_finite() {
            progress.finish();
            return Err(Error::Transform(format!(
                "flow training diverged at step {step} (loss {value}); \
                 lower the learning rate or check the vectors for NaN"
            )));
        }
        adam.backward_step(&loss)?;
        losses.push(value);
        let s = smoothed.map_or(value, |s: f64| (1.0 - SMOOTHING) * s + SMOOTHING * value);
        smoothed = Some(s);
        progress.message(&format!("loss {s:.3} bits/dim"));
        progress.advance(1);
    }
    progress.finish();
    Ok(losses)
}

/// The rows of `data` at `indices`.
fn rows(data: &Tensor, indices: &[u32]) -> Result<Tensor> {
    let index = Tensor::from_slice(indices, indices.len(), data.device())?;
    Ok(data.index_select(&index, 0)?)
}
