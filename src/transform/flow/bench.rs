//! Timing of flow fitting on synthetic data, for a `bench` command or the `flow_fit` example.

use std::time::Instant;

use super::{fit_flow, FlowConfig};
use crate::progress::Silent;
use crate::transform::synthetic::anisotropic_gaussian;
use crate::{EncoderId, Result};

/// Wall-clock time of one [`fit_flow`] run on synthetic data.
#[derive(Clone, Debug)]
pub struct FlowFitTiming {
    /// Training vectors.
    pub vectors: usize,
    /// Their dimension.
    pub dims: usize,
    /// Adam steps taken.
    pub steps: usize,
    /// Seconds the fit took (data generation excluded).
    pub seconds: f64,
    /// Mean loss (bits/dim) over the last 10% of steps.
    pub final_loss: f64,
}

/// Fits a flow on `vectors` synthetic anisotropic vectors of `dims` dimensions and times it
/// (for a `bench` command: ~20-40k vectors of 384 dims is the STS-sized case).
pub fn measure_flow_fit(vectors: usize, dims: usize, config: &FlowConfig) -> Result<FlowFitTiming> {
    let data = anisotropic_gaussian(vectors, dims, (dims / 4).max(1), 7);
    let encoder = EncoderId {
        model: "synthetic".into(),
        weights_sha256: String::new(),
        files_sha256: None,
        pooling: "none".into(),
        max_length: 0,
        prefixes: Default::default(),
    };
    let start = Instant::now();
    let flow = fit_flow(&data, &encoder, config, &Silent)?;
    let seconds = start.elapsed().as_secs_f64();
    let losses = flow.training_losses();
    let tail = &losses[losses.len() - (losses.len() / 10).max(1)..];
    Ok(FlowFitTiming {
        vectors,
        dims,
        steps: losses.len(),
        seconds,
        final_loss: tail.iter().sum::<f64>() / tail.len() as f64,
    })
}
