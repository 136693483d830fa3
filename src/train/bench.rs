//! Training throughput: optimiser steps and tokens per second of unsupervised SimCSE.

use std::path::Path;
use std::time::Instant;

use candle_core::Device;
use serde::Serialize;

use super::optimizer::LinearSchedule;
use super::simcse::{ModelInit, SimcseConfig, Trainer, TrainingData};
use crate::{Error, Result};

/// Training throughput of one model configuration.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct TrainBench {
    /// Optimiser steps per second.
    pub steps_per_second: f64,
    /// Real (unpadded) tokens per second, both dropout views counted.
    pub tokens_per_second: f64,
    /// Sentences per batch.
    pub batch_size: usize,
    /// Maximum tokens per sentence.
    pub max_length: usize,
    /// Steps timed (after one warm-up step).
    pub steps: usize,
}

/// Times unsupervised SimCSE steps of the model in `model_dir` on `sentences` (cycled).
pub fn bench_train(
    model_dir: &Path,
    sentences: &[String],
    batch_size: usize,
    max_length: usize,
    steps: usize,
    device: &Device,
) -> Result<TrainBench> {
    let config = SimcseConfig { batch_size, max_length, ..SimcseConfig::unsupervised() };
    let mut trainer = Trainer::new(model_dir, &ModelInit::Pretrained, config, device)?;
    let data = trainer.tokenize_sentences(sentences)?;
    let TrainingData::Sentences(ids) = &data else {
        return Err(Error::InvalidInput("benchmark data must be sentences".into()));
    };
    if ids.len() < batch_size {
        return Err(Error::InvalidInput(format!("the benchmark needs at least {batch_size} sentences")));
    }
    let schedule = LinearSchedule { warmup_steps: 0, total_steps: steps + 1 };
    let batch_at = |k: usize| -> Vec<usize> { (0..batch_size).map(|i| (k * batch_size + i) % ids.len()).collect() };
    trainer.train_step(&data, &batch_at(0), &schedule)?;
    let mut tokens = 0usize;
    let started = Instant::now();
    for k in 1..=steps {
        let batch = batch_at(k);
        tokens += 2 * batch.iter().map(|&i| ids[i].len()).sum::<usize>();
        trainer.train_step(&data, &batch, &schedule)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainBench {
        steps_per_second: steps as f64 / seconds,
        tokens_per_second: tokens as f64 / seconds,
        batch_size,
        max_length,
        steps,
    })
}
