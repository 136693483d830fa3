//! Post-transforms that make pooled sentence vectors isotropic: whitening and BERT-flow.
//!
//! A transform is fitted on the vectors of one encoder + pooling and remembers that encoder's
//! [`EncoderId`]; applying it to vectors of any other encoder or pooling is an error, because the
//! fitted statistics mean nothing there. Both kinds are saved as a small safetensors file whose
//! metadata names the kind, the encoder and the configuration ([`Transform::load`] detects the
//! kind).

mod file;
pub mod flow;
mod isotropy;
mod kind;
pub mod synthetic;
pub mod whiten;

use std::path::Path;

use crate::{EncoderId, Error, Result, TransformId};

pub use flow::{fit_flow, measure_flow_fit, CouplingKind, Flow, FlowConfig, FlowFitTiming, PermutationKind};
pub use isotropy::mean_random_pair_cosine;
pub use kind::TransformKind;
pub use whiten::{fit_whitening, Whitening, WhiteningAccumulator};

/// A fitted post-transform of one encoder's sentence vectors.
#[derive(Debug)]
pub enum Transform {
    /// Whitening, optionally reducing to the k top directions.
    Whiten(Whitening),
    /// A trained BERT-flow.
    Flow(Flow),
}

impl Transform {
    /// Short name of the transform: `whiten`, `whiten-128`, `flow`.
    pub fn kind(&self) -> String {
        match self {
            Transform::Whiten(w) => w.kind(),
            Transform::Flow(f) => f.kind(),
        }
    }

    /// Kind plus sha256 of the parameters: equal ids mean equal outputs.
    pub fn id(&self) -> TransformId {
        match self {
            Transform::Whiten(w) => w.id(),
            Transform::Flow(f) => f.id(),
        }
    }

    /// The encoder + pooling the transform was fitted on.
    pub fn encoder(&self) -> &EncoderId {
        match self {
            Transform::Whiten(w) => w.encoder(),
            Transform::Flow(f) => f.encoder(),
        }
    }

    /// Number of dimensions of the vectors the transform accepts.
    pub fn input_dims(&self) -> usize {
        match self {
            Transform::Whiten(w) => w.input_dims(),
            Transform::Flow(f) => f.input_dims(),
        }
    }

    /// Number of dimensions of the vectors the transform returns.
    pub fn output_dims(&self) -> usize {
        match self {
            Transform::Whiten(w) => w.output_dims(),
            Transform::Flow(f) => f.output_dims(),
        }
    }

    /// Transforms vectors that came from `encoder`; another encoder or pooling is an error.
    pub fn apply(&self, encoder: &EncoderId, vectors: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        match self {
            Transform::Whiten(w) => w.apply(encoder, vectors),
            Transform::Flow(f) => f.apply(encoder, vectors),
        }
    }

    /// Writes the transform to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        match self {
            Transform::Whiten(w) => w.save(path),
            Transform::Flow(f) => f.save(path),
        }
    }

    /// Reads a transform file written by [`Transform::save`], whatever its kind.
    pub fn load(path: &Path) -> Result<Transform> {
        Self::from_file(file::TransformFile::load(path)?, path)
    }

    /// The transform as its file's bytes (safetensors), as a store keeps it.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        match self {
            Transform::Whiten(w) => w.to_file().to_bytes(),
            Transform::Flow(f) => f.to_file()?.to_bytes(),
        }
    }

    /// Reads bytes written by [`Transform::to_bytes`]; `origin` names where they come from in errors.
    pub fn from_bytes(bytes: &[u8], origin: &Path) -> Result<Transform> {
        Self::from_file(file::TransformFile::from_bytes(bytes, origin)?, origin)
    }

    fn from_file(stored: file::TransformFile, path: &Path) -> Result<Transform> {
        match stored.family.as_str() {
            whiten::FAMILY => Ok(Transform::Whiten(Whitening::from_file(stored, path)?)),
            flow::FAMILY => Ok(Transform::Flow(Flow::from_file(stored, path)?)),
            other => Err(Error::Transform(format!(
                "{}: unknown transform kind `{other}` (this isovec knows `{}` and `{}`); \
                 re-fit it with this version of isovec",
                path.display(),
                whiten::FAMILY,
                flow::FAMILY
            ))),
        }
    }
}

impl From<Whitening> for Transform {
    fn from(w: Whitening) -> Self {
        Transform::Whiten(w)
    }
}

impl From<Flow> for Transform {
    fn from(f: Flow) -> Self {
        Transform::Flow(f)
    }
}

/// A readable one-line name of an encoder id for error messages.
fn describe_encoder(e: &EncoderId) -> String {
    let short = e.weights_sha256.get(..12).unwrap_or(&e.weights_sha256);
    format!("{}/{} (weights {short}, max_length {})", e.model, e.pooling, e.max_length)
}

/// Checks that vectors come from the encoder a transform was fitted on and have its dimension.
fn check_input(fitted_on: &EncoderId, dims: usize, encoder: &EncoderId, vectors: &[Vec<f32>]) -> Result<()> {
    if fitted_on != encoder {
        return Err(Error::PipelineMismatch {
            expected: format!("vectors of {}", describe_encoder(fitted_on)),
            found: format!(
                "vectors of {}; fit a transform on this encoder and pooling instead",
                describe_encoder(encoder)
            ),
        });
    }
    check_dims(dims, vectors)
}

/// Checks that every vector has `dims` dimensions.
fn check_dims(dims: usize, vectors: &[Vec<f32>]) -> Result<()> {
    match vectors.iter().find(|v| v.len() != dims) {
        Some(v) => Err(Error::Dimension { expected: dims, found: v.len() }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
