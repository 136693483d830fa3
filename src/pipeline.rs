//! The pipeline: encoder weights + pooling + optional transform + normalisation.
//!
//! It is the one value that travels through isovec: stored with a collection, applied at ingest
//! and at query time, evaluated. Two vectors are comparable only if their pipelines' ids are equal.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Result;

/// Identifies the encoder half of a pipeline: which weights and which pooling.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EncoderId {
    /// Human-readable model name (folder name).
    pub model: String,
    /// sha256 of the weights file, hex.
    pub weights_sha256: String,
    /// Pooling name, e.g. `mean`.
    pub pooling: String,
    /// Maximum number of tokens (longer inputs are truncated).
    pub max_length: usize,
}

/// Identifies a post-transform (whitening or flow) by kind and content hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransformId {
    /// `whiten`, `whiten-128`, `flow`, ...
    pub kind: String,
    /// sha256 of the transform's parameters, hex.
    pub sha256: String,
}

/// Identifies a whole pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PipelineId {
    pub encoder: EncoderId,
    pub transform: Option<TransformId>,
    /// Whether output vectors are L2-normalised.
    pub normalize: bool,
}

impl PipelineId {
    /// A short stable hex fingerprint of the whole id.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("PipelineId serialises");
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

impl std::fmt::Display for PipelineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.encoder.model, self.encoder.pooling)?;
        if let Some(t) = &self.transform {
            write!(f, "+{}", t.kind)?;
        }
        write!(f, " ({})", self.fingerprint())
    }
}

/// Anything that turns texts into vectors of one pipeline.
pub trait Embedder: Send + Sync {
    /// The pipeline the vectors come from.
    fn id(&self) -> &PipelineId;
    /// Number of dimensions of each output vector.
    fn dims(&self) -> usize;
    /// One vector per text, in input order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}
