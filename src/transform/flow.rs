//! BERT-flow (Li et al. 2020): an invertible Glow-style flow trained by maximum likelihood to map
//! frozen sentence vectors u to z ~ N(0, I); the transform is u ↦ z.
//!
//! Odd sizes are fine: a coupling over n dimensions conditions the last ⌈n/2⌉ on the first
//! ⌊n/2⌋, and a split keeps the first ⌈n/2⌉ (so 384 → 192 → 96 and 45 → 23 → 12). A
//! configuration that would leave fewer than 2 dimensions at some level is rejected.
//!
//! Directions without variance are projected away first (see [`subspace`]): the flow runs in the
//! r ≤ d directions that vary, so a flow maps d-dimensional vectors to r-dimensional ones.

mod actnorm;
mod adam;
mod bench;
mod config;
mod coupling;
mod glow;
mod init;
mod permutation;
mod subspace;
mod train;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

pub use bench::{measure_flow_fit, FlowFitTiming};
pub use config::FlowConfig;
pub use coupling::CouplingKind;
pub use permutation::PermutationKind;

use super::check_input;
use super::file::{StoredTensor, TransformFile};
use crate::progress::Progress;
use crate::{EncoderId, Error, Result, TransformId};
use glow::Glow;
use subspace::Subspace;

/// Family name of flows in transform files.
pub(crate) const FAMILY: &str = "flow";

/// Names of the subspace tensors in flow files.
const SUBSPACE_BASIS: &str = "subspace.basis";
const SUBSPACE_OFFSET: &str = "subspace.offset";

/// Vectors per forward pass when applying a trained flow.
const APPLY_CHUNK: usize = 4096;

/// A trained BERT-flow for one encoder's vectors.
#[derive(Debug)]
pub struct Flow {
    encoder: EncoderId,
    config: FlowConfig,
    /// Projection onto the directions with variance; `None` when all have some.
    subspace: Option<Subspace>,
    glow: Glow,
    /// Loss (bits/dim) of every training step; empty for a loaded flow.
    losses: Vec<f64>,
}

/// Configuration stored in the file's metadata.
#[derive(Serialize, Deserialize)]
struct StoredConfig {
    /// Dimensions the glow runs in.
    dims: usize,
    /// Dimensions of accepted vectors when a subspace projection precedes the glow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_dims: Option<usize>,
    flow: FlowConfig,
}

/// Trains a flow on `vectors` of `encoder` (f32 on the CPU), seeded by `config.seed`; each step
/// is told to `progress`, with the smoothed loss as the message.
pub fn fit_flow(
    vectors: &[Vec<f32>],
    encoder: &EncoderId,
    config: &FlowConfig,
    progress: &dyn Progress,
) -> Result<Flow> {
    config.validate()?;
    let first = vectors
        .first()
        .ok_or_else(|| Error::InvalidInput("the flow needs vectors to train on; got none".to_string()))?;
    let dims = first.len();
    super::check_dims(dims, vectors)?;
    if vectors.len() < 2 {
        return Err(Error::InvalidInput("the flow needs at least 2 vectors to train on; fit on more sentences".into()));
    }
    if vectors.iter().flatten().any(|v| !v.is_finite()) {
        return Err(Error::InvalidInput("a training vector holds NaN or infinity; check the encoder output".into()));
    }
    let subspace = Subspace::fit(vectors, encoder)?;
    let device = Device::Cpu;
    let data = match &subspace {
        Some(s) => to_tensor(&s.project(vectors), s.dims(), &device)?,
        None => to_tensor(vectors, dims, &device)?,
    };
    let glow = Glow::new(data.dim(1)?, config, DType::F32, &device)?;
    let losses = train::train(&glow, &data, config, progress)?;
    tracing::info!(steps = losses.len(), final_loss = losses.last().copied().unwrap_or(f64::NAN), "flow trained");
    Ok(Flow { encoder: encoder.clone(), config: config.clone(), subspace, glow, losses })
}

impl Flow {
    /// `flow`.
    pub fn kind(&self) -> String {
        FAMILY.to_string()
    }

    /// Kind plus sha256 of configuration and weights.
    pub fn id(&self) -> TransformId {
        let sha256 = match self.to_file() {
            Ok(file) => file.parameters_sha256(),
            // Reading weights from CPU tensors cannot fail; keep the id total anyway.
            Err(e) => format!("unreadable-weights: {e}"),
        };
        TransformId { kind: self.kind(), sha256 }
    }

    /// The encoder + pooling it was trained on.
    pub fn encoder(&self) -> &EncoderId {
        &self.encoder
    }

    /// Dimension of accepted vectors.
    pub fn input_dims(&self) -> usize {
        self.subspace.as_ref().map_or(self.glow.dims(), Subspace::input_dims)
    }

    /// Dimension of returned vectors: the input's, less the directions without variance in the
    /// training vectors.
    pub fn output_dims(&self) -> usize {
        self.glow.dims()
    }

    /// The configuration it was built and trained with.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// Loss (bits/dim) of each training step; empty for a flow read from a file.
    pub fn training_losses(&self) -> &[f64] {
        &self.losses
    }

    /// Maps vectors u of `encoder` to z (the isotropic representation).
    pub fn apply(&self, encoder: &EncoderId, vectors: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        check_input(&self.encoder, self.input_dims(), encoder, vectors)?;
        match &self.subspace {
            Some(s) => self.map_chunks(&s.project(vectors), |u| Ok(self.glow.forward(u, false)?.0)),
            None => self.map_chunks(vectors, |u| Ok(self.glow.forward(u, false)?.0)),
        }
    }

    /// Maps z back to u (the inverse of [`Flow::apply`]).
    pub fn invert(&self, z: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        super::check_dims(self.output_dims(), z)?;
        let u = self.map_chunks(z, |t| self.glow.inverse(t))?;
        Ok(match &self.subspace {
            Some(s) => s.lift(&u),
            None => u,
        })
    }

    fn map_chunks(&self, vectors: &[Vec<f32>], f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(vectors.len());
        for chunk in vectors.chunks(APPLY_CHUNK) {
            let t = to_tensor(chunk, self.glow.dims(), &Device::Cpu)?;
            out.extend(f(&t)?.detach().to_dtype(DType::F32)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }

    /// Writes the flow (weights, configuration, encoder) to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        self.to_file()?.save(path)
    }

    /// Reads a flow file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::from_file(TransformFile::load(path)?, path)
    }

    pub(crate) fn to_file(&self) -> Result<TransformFile> {
        let config = StoredConfig {
            dims: self.glow.dims(),
            input_dims: self.subspace.as_ref().map(Subspace::input_dims),
            flow: self.config.clone(),
        };
        let mut tensors = Vec::new();
        if let Some(s) = &self.subspace {
            let (basis, offset) = s.parts();
            let (d, r) = (s.input_dims(), s.dims());
            tensors.push(StoredTensor::from_f64(SUBSPACE_BASIS, vec![d, r], &basis));
            tensors.push(StoredTensor::from_f64(SUBSPACE_OFFSET, vec![d], offset));
        }
        for p in self.glow.params() {
            let t = p.var.as_tensor().detach();
            let shape = t.dims().to_vec();
            let values: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            tensors.push(StoredTensor::from_f32(&p.name, shape, &values));
        }
        Ok(TransformFile {
            family: FAMILY.to_string(),
            encoder: self.encoder.clone(),
            config: serde_json::to_string(&config)?,
            tensors,
        })
    }

    pub(crate) fn from_file(file: TransformFile, path: &Path) -> Result<Self> {
        let damaged = |what: String| {
            Error::Transform(format!(
                "{}: damaged flow file ({what}); re-fit it with `isovec fit flow`",
                path.display()
            ))
        };
        if file.family != FAMILY {
            return Err(damaged(format!("holds a `{}` transform", file.family)));
        }
        let config: StoredConfig = serde_json::from_str(&file.config).map_err(|e| damaged(e.to_string()))?;
        config.flow.validate().map_err(|e| damaged(e.to_string()))?;
        // Check sizes against the stored tensors before allocating parameters for them, so a
        // damaged configuration cannot make us allocate more than the file itself holds.
        let one_step = FlowConfig { levels: 1, steps_per_level: 1, width: 1, ..config.flow.clone() };
        let per_step = Glow::new(2, &one_step, DType::F32, &Device::Cpu)?.params().len();
        let subspace_tensors = if config.input_dims.is_some() { 2 } else { 0 };
        let expected = config
            .flow
            .levels
            .checked_mul(config.flow.steps_per_level)
            .and_then(|n| n.checked_mul(per_step))
            .and_then(|n| n.checked_add(subspace_tensors));
        if expected != Some(file.tensors.len()) {
            return Err(damaged(format!(
                "{} tensors for {} levels × {} steps",
                file.tensors.len(),
                config.flow.levels,
                config.flow.steps_per_level
            )));
        }
        file.tensor("level0.step0.actnorm.bias", &[1, config.dims], path)?;
        file.tensor("level0.step0.coupling.w1", &[config.dims / 2, config.flow.width], path)?;
        let subspace = match config.input_dims {
            Some(d) if d <= config.dims => {
                return Err(damaged(format!("subspace of {} in {d} dimensions", config.dims)))
            }
            Some(d) => {
                let basis = file.tensor(SUBSPACE_BASIS, &[d, config.dims], path)?.to_f64();
                let offset = file.tensor(SUBSPACE_OFFSET, &[d], path)?.to_f64();
                if basis.iter().chain(&offset).any(|v| !v.is_finite()) {
                    return Err(damaged("subspace holds NaN or infinity".into()));
                }
                Some(Subspace::from_parts(d, config.dims, &basis, offset))
            }
            None => None,
        };
        let glow =
            Glow::new(config.dims, &config.flow, DType::F32, &Device::Cpu).map_err(|e| damaged(e.to_string()))?;
        for p in &glow.params() {
            let stored = file.tensor(&p.name, p.var.dims(), path)?;
            let values = stored.to_f32();
            if values.iter().any(|v| !v.is_finite()) {
                return Err(damaged(format!("tensor {} holds NaN or infinity", p.name)));
            }
            let t = Tensor::from_vec(values, p.var.shape(), &Device::Cpu)?;
            p.var.set(&t)?;
        }
        Ok(Flow { encoder: file.encoder, config: config.flow, subspace, glow, losses: Vec::new() })
    }
}

/// Stacks vectors of `dims` dimensions into an n × d f32 tensor.
fn to_tensor(vectors: &[Vec<f32>], dims: usize, device: &Device) -> Result<Tensor> {
    let flat: Vec<f32> = vectors.iter().flatten().copied().collect();
    Ok(Tensor::from_vec(flat, (vectors.len(), dims), device)?)
}

#[cfg(test)]
mod tests;
