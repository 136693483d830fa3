//! The multi-scale Glow flow over a d-dimensional vector (a 1×1×d image): levels of
//! (actnorm → permutation → coupling) steps; after each level but the last, the second half of
//! the dimensions is split off and scored under N(0, I).

use candle_core::{DType, Device, Tensor};

use super::actnorm::ActNorm;
use super::config::FlowConfig;
use super::coupling::Coupling;
use super::init::{Init, Param};
use super::permutation::Permutation;
use crate::{Error, Result};

/// One flow step: actnorm → permutation → coupling.
#[derive(Debug)]
struct FlowStep {
    norm: ActNorm,
    mix: Permutation,
    coupling: Coupling,
}

/// One level: its steps run over `dims` dimensions.
#[derive(Debug)]
struct Level {
    dims: usize,
    steps: Vec<FlowStep>,
}

/// The whole flow u → z. z keeps each split-off part at the positions it was split from:
/// z = [final part | part split after level L−1 | … | part split after level 1].
#[derive(Debug)]
pub(crate) struct Glow {
    dims: usize,
    levels: Vec<Level>,
}

/// Per-vector log-determinant, kept as a scalar part (same for all vectors) and a per-vector
/// part, so volume terms that do not depend on the vector cost one scalar op each.
#[derive(Default)]
struct LogDet {
    shared: Option<Tensor>,
    per_vector: Option<Tensor>,
}

impl LogDet {
    fn add_shared(&mut self, t: Tensor) -> Result<()> {
        self.shared = Some(match self.shared.take() {
            None => t,
            Some(s) => (s + t)?,
        });
        Ok(())
    }

    fn add_per_vector(&mut self, t: Tensor) -> Result<()> {
        self.per_vector = Some(match self.per_vector.take() {
            None => t,
            Some(s) => (s + t)?,
        });
        Ok(())
    }

    /// The log-determinant of each of `batch` vectors.
    fn total(self, batch: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        let per = match self.per_vector {
            Some(p) => p,
            None => Tensor::zeros(batch, dtype, device)?,
        };
        Ok(match self.shared {
            Some(s) => per.broadcast_add(&s)?,
            None => per,
        })
    }
}

/// Dimensions each level runs over: d, ⌈d/2⌉, ⌈⌈d/2⌉/2⌉, …; each must be ≥ 2 so that the
/// coupling has two non-empty parts.
pub(crate) fn level_dims(dims: usize, levels: usize) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(levels);
    let mut n = dims;
    for level in 0..levels {
        if n < 2 {
            return Err(Error::InvalidInput(format!(
                "a {levels}-level flow halves the {dims} dimensions down to {n} at level {}; \
                 each level needs at least 2, so use fewer levels or longer vectors",
                level + 1
            )));
        }
        out.push(n);
        n -= n / 2;
    }
    Ok(out)
}

impl Glow {
    /// A flow over `dims` dimensions with parameters drawn from `config.seed`.
    pub fn new(dims: usize, config: &FlowConfig, dtype: DType, device: &Device) -> Result<Self> {
        config.validate()?;
        let mut init = Init::new(config.seed, dtype, device.clone());
        let levels = level_dims(dims, config.levels)?
            .into_iter()
            .map(|n| {
                let steps = (0..config.steps_per_level)
                    .map(|_| {
                        Ok(FlowStep {
                            norm: ActNorm::new(n, &init)?,
                            mix: Permutation::new(config.permutation, n, &mut init)?,
                            coupling: Coupling::new(config.coupling, n, config.width, &mut init)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Level { dims: n, steps })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Glow { dims, levels })
    }

    /// Number of dimensions of u and z.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// Maps u (batch × d) to z and log|det ∂z/∂u| per vector. With `data_init`, every actnorm is
    /// first initialised from this batch (Glow's data-dependent init).
    pub fn forward(&self, u: &Tensor, data_init: bool) -> Result<(Tensor, Tensor)> {
        let batch = u.dim(0)?;
        let mut logdet = LogDet::default();
        let mut h = u.clone();
        let mut split_off = Vec::with_capacity(self.levels.len());
        for (i, level) in self.levels.iter().enumerate() {
            for step in &level.steps {
                let (y, ld) = step.norm.forward(&h, data_init)?;
                logdet.add_shared(ld)?;
                let (y, ld) = step.mix.forward(&y)?;
                if let Some(ld) = ld {
                    logdet.add_shared(ld)?;
                }
                let (y, ld) = step.coupling.forward(&y, data_init)?;
                if let Some(ld) = ld {
                    logdet.add_per_vector(ld)?;
                }
                h = y;
            }
            if i + 1 < self.levels.len() {
                let kept = level.dims - level.dims / 2;
                split_off.push(h.narrow(1, kept, level.dims / 2)?);
                h = h.narrow(1, 0, kept)?;
            }
        }
        let mut parts = vec![h];
        parts.extend(split_off.into_iter().rev());
        let z = Tensor::cat(&parts, 1)?;
        Ok((z, logdet.total(batch, u.dtype(), u.device())?))
    }

    /// Maps z back to u (the inverse of [`Glow::forward`]).
    pub fn inverse(&self, z: &Tensor) -> Result<Tensor> {
        let last = self.levels.len() - 1;
        let mut h = z.narrow(1, 0, self.levels[last].dims)?;
        for (i, level) in self.levels.iter().enumerate().rev() {
            if i < last {
                let kept = level.dims - level.dims / 2;
                let split = z.narrow(1, kept, level.dims / 2)?;
                h = Tensor::cat(&[&h, &split], 1)?;
            }
            for step in level.steps.iter().rev() {
                let y = step.coupling.inverse(&h)?;
                let y = step.mix.inverse(&y)?;
                h = step.norm.inverse(&y)?;
            }
        }
        Ok(h)
    }

    /// Mean negative log-likelihood of the batch u in bits per dimension:
    /// −(log N(z; 0, I) + log|det ∂z/∂u|) / (d ln 2).
    pub fn nll_bits_per_dim(&self, u: &Tensor, data_init: bool) -> Result<Tensor> {
        let (z, logdet) = self.forward(u, data_init)?;
        let d = self.dims as f64;
        let log_2pi = (2.0 * std::f64::consts::PI).ln();
        // Mean over the batch of −log p(u) = ½‖z‖² + ½ d log 2π − logdet.
        let half_sq = (z.sqr()?.sum(1)?.mean_all()? * 0.5)?;
        let nll = ((half_sq - logdet.mean_all()?)? + 0.5 * d * log_2pi)?;
        Ok((nll / (d * std::f64::consts::LN_2))?)
    }

    /// Every parameter, named by position (`level0.step1.coupling.w1`, …).
    pub fn params(&self) -> Vec<Param> {
        let mut out = Vec::new();
        for (i, level) in self.levels.iter().enumerate() {
            for (j, step) in level.steps.iter().enumerate() {
                let prefix = format!("level{i}.step{j}");
                step.norm.params(&format!("{prefix}.actnorm"), &mut out);
                step.mix.params(&format!("{prefix}.permutation"), &mut out);
                step.coupling.params(&format!("{prefix}.coupling"), &mut out);
            }
        }
        out
    }
}
