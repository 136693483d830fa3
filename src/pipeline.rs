//! The pipeline: encoder weights + pooling + optional transform + normalisation.
//!
//! It is the one value that travels through isovec: stored with a collection, applied at ingest
//! and at query time, evaluated. Two vectors are comparable only if their pipelines' ids are equal.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::vector::normalize;
use crate::Result;

/// Identifies the encoder half of a pipeline: which model files and which pooling.
///
/// Two ids are equal when they name the same content: the same model files (see
/// [`EncoderId::files_sha256`]), pooling and maximum length. The model's name is a label only, so
/// renaming or moving a model folder keeps its id.
///
/// Ids written before isovec hashed the model files (stores and transform files made by isovec
/// up to commit d029160) have no `files_sha256`: such a legacy id recorded only the weights, and
/// it equals every id with the same weights, pooling and maximum length. That is what it promised
/// when it was written, and it keeps those stores and transforms working with the same model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EncoderId {
    /// Human-readable model name (the folder's name when it was loaded); not part of the identity.
    pub model: String,
    /// sha256 of the weights file, hex.
    pub weights_sha256: String,
    /// sha256 over the files that determine the vectors (weights, `config.json`, the tokenizer's
    /// files), hex, as [`crate::encoder::ModelDir::files_sha256`] computes it; `None` in legacy ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_sha256: Option<String>,
    /// Pooling name, e.g. `mean`.
    pub pooling: String,
    /// Maximum number of tokens (longer inputs are truncated).
    pub max_length: usize,
}

impl PartialEq for EncoderId {
    fn eq(&self, other: &Self) -> bool {
        let same_files = match (&self.files_sha256, &other.files_sha256) {
            (Some(a), Some(b)) => a == b,
            // A legacy id knows only the weights (see the type's documentation).
            _ => true,
        };
        same_files
            && self.weights_sha256 == other.weights_sha256
            && self.pooling == other.pooling
            && self.max_length == other.max_length
    }
}

impl Eq for EncoderId {}

impl std::hash::Hash for EncoderId {
    /// Hashes what legacy and current ids share, so that equal ids hash alike.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.weights_sha256.hash(state);
        self.pooling.hash(state);
        self.max_length.hash(state);
    }
}

/// Identifies a post-transform (whitening or flow) by kind and content hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransformId {
    /// `whiten`, `whiten-128`, `flow`, ...
    pub kind: String,
    /// sha256 of the transform's parameters, hex.
    pub sha256: String,
}

/// Identifies a whole pipeline: equal ids mean comparable vectors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PipelineId {
    /// The encoder and pooling.
    pub encoder: EncoderId,
    /// The post-transform, if any.
    pub transform: Option<TransformId>,
    /// Whether output vectors are L2-normalised.
    pub normalize: bool,
}

impl PipelineId {
    /// A short stable hex fingerprint of the whole id, the model's name left out.
    pub fn fingerprint(&self) -> String {
        let mut unnamed = self.clone();
        unnamed.encoder.model.clear();
        let json = serde_json::to_vec(&unnamed).expect("PipelineId serialises");
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
    /// Like [`Embedder::embed`], also counting the texts cut at the encoder's length limit; by
    /// default from [`Embedder::token_spans`] (none for an embedder that does not show its
    /// tokens). isovec's [`Pipeline`] counts them as it tokenizes, reading no further into a text
    /// than its input holds.
    fn embed_counting_cuts(&self, texts: &[&str]) -> Result<Embedded> {
        let mut truncated = 0;
        for text in texts {
            if let Some(tokens) = self.token_spans(text)? {
                truncated += usize::from(tokens.spans.len() > tokens.capacity);
            }
        }
        Ok(Embedded { vectors: self.embed(texts)?, truncated })
    }
    /// The tokens of `text` as the encoder sees them before its length limit; `None` for an
    /// embedder that does not say (its long texts are neither counted as cut nor split).
    fn token_spans(&self, text: &str) -> Result<Option<TokenSpans>> {
        let _ = text;
        Ok(None)
    }
}

/// A text's tokens as byte ranges in it, and how many fit in one encoder input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSpans {
    /// Byte range of each token in the text, in order; special tokens left out, none cut.
    pub spans: Vec<std::ops::Range<usize>>,
    /// Tokens one input holds besides the special tokens: the rest of a longer text is cut.
    pub capacity: usize,
}

/// A complete pipeline: an encoder, a pooling, an optional fitted transform, L2 normalisation.
pub struct Pipeline {
    encoder: std::sync::Arc<crate::encoder::Encoder>,
    pooling: crate::encoder::Pooling,
    transform: Option<std::sync::Arc<crate::transform::Transform>>,
    id: PipelineId,
}

impl Pipeline {
    /// Builds a pipeline; a transform fitted on another encoder or pooling is an error.
    pub fn new(
        encoder: std::sync::Arc<crate::encoder::Encoder>,
        pooling: crate::encoder::Pooling,
        transform: Option<std::sync::Arc<crate::transform::Transform>>,
    ) -> Result<Self> {
        encoder.check_pooling(pooling)?;
        let encoder_id = encoder.id(pooling);
        if let Some(t) = &transform {
            if t.encoder() != &encoder_id {
                return Err(crate::Error::PipelineMismatch {
                    expected: format!("{} fitted on {}", t.kind(), describe(t.encoder())),
                    found: describe(&encoder_id),
                });
            }
        }
        let id = PipelineId { encoder: encoder_id, transform: transform.as_ref().map(|t| t.id()), normalize: true };
        Ok(Pipeline { encoder, pooling, transform, id })
    }

    /// The encoder.
    pub fn encoder(&self) -> &crate::encoder::Encoder {
        &self.encoder
    }

    /// The pooling.
    pub fn pooling(&self) -> crate::encoder::Pooling {
        self.pooling
    }

    /// Encodes, transforms and normalises texts, calling `progress(n)` after each batch.
    pub fn embed_with_progress(&self, texts: &[&str], progress: &(dyn Fn(usize) + Sync)) -> Result<Embedded> {
        let encoded = self.encoder.encode_with_progress(texts, &[self.pooling], progress)?;
        let truncated = encoded.truncated;
        let raw = encoded.vectors.into_iter().next().unwrap_or_default();
        Ok(Embedded { vectors: self.apply(raw)?, truncated })
    }

    /// The pipeline's vectors from the encoder's raw pooled ones (this pipeline's encoder and
    /// pooling): the transform, if any, then unit length (a zero vector stays zero, see
    /// [`crate::vector`]). Evaluation, training and the store all get their vectors through here.
    pub fn apply(&self, raw: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        let mut vectors = match &self.transform {
            Some(t) => t.apply(&self.id.encoder, &raw)?,
            None => raw,
        };
        for v in &mut vectors {
            normalize(v);
        }
        Ok(vectors)
    }
}

/// Vectors of a pipeline, and how many texts were truncated on the way.
#[derive(Clone, Debug, Default)]
pub struct Embedded {
    /// One unit-length vector per text, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// How many texts were cut at the maximum length.
    pub truncated: usize,
}

impl Embedder for Pipeline {
    fn id(&self) -> &PipelineId {
        &self.id
    }
    fn dims(&self) -> usize {
        match &self.transform {
            Some(t) => t.output_dims(),
            None => self.encoder.dims(),
        }
    }
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed_with_progress(texts, &|_| {})?.vectors)
    }
    fn embed_counting_cuts(&self, texts: &[&str]) -> Result<Embedded> {
        self.embed_with_progress(texts, &|_| {})
    }
    fn token_spans(&self, text: &str) -> Result<Option<TokenSpans>> {
        Ok(Some(self.encoder.tokenizer().token_spans(text)?))
    }
}

fn describe(id: &EncoderId) -> String {
    format!(
        "{} ({}…) pooling {} max length {}",
        id.model,
        &id.weights_sha256[..id.weights_sha256.len().min(8)],
        id.pooling,
        id.max_length
    )
}
