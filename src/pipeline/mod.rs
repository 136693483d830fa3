//! The pipeline: encoder weights + pooling + prefixes + optional transform + normalisation.
//!
//! It is the one value that travels through isovec: recorded with a collection ([`PipelineSpec`]),
//! opened again from that record by every front end ([`Pipeline::open`], [`open_shared`]),
//! applied at ingest and at query time, evaluated. Two vectors are comparable only if their
//! pipelines' ids are equal.

mod id;
mod open;
pub mod passages;
mod request;
mod shared;
mod spec;

use std::sync::Arc;

pub(crate) use id::describe;
pub use id::{EncoderId, PipelineId, Prefixes, TransformId};
pub use open::{find_model, MODEL_PATH_ENV};
pub use request::{PipelineRequest, TransformChoice};
pub use shared::open_shared;
pub use spec::{EncodedSpec, ModelLocation, PipelineSpec, StoredTransform, VectorSource, SPEC_VERSION};

pub use crate::encoder::tokenizer::TokenSpans;
use crate::encoder::{Encoder, Pooling};
use crate::transform::Transform;
use crate::vector::normalize;
use crate::Result;

/// Anything that turns texts into vectors of one pipeline.
pub trait Embedder: Send + Sync {
    /// The pipeline the vectors come from.
    fn id(&self) -> &PipelineId;
    /// Number of dimensions of each output vector.
    fn dims(&self) -> usize;
    /// One vector per document text, in input order.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
    /// One vector per query text, in input order: [`Embedder::embed`] unless the pipeline puts
    /// another prefix before queries than before documents.
    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed(texts)
    }
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
    /// The tokens of document `text` as the encoder sees them before its length limit; `None`
    /// for an embedder that does not say (its long texts are neither counted as cut nor split).
    fn token_spans(&self, text: &str) -> Result<Option<TokenSpans>> {
        let _ = text;
        Ok(None)
    }
    /// What a store records so that the pipeline can be opened again from the store alone
    /// ([`Pipeline::open`]); `None` for an embedder isovec cannot rebuild (the store then
    /// records nothing, and every search must be given the embedder).
    fn spec(&self) -> Result<Option<PipelineSpec>> {
        Ok(None)
    }
}

/// A complete pipeline: an encoder, a pooling, prefixes, an optional fitted transform, L2
/// normalisation.
pub struct Pipeline {
    encoder: Arc<Encoder>,
    pooling: Pooling,
    transform: Option<Arc<Transform>>,
    id: PipelineId,
}

impl Pipeline {
    /// Builds a pipeline without prefixes; a transform fitted on another encoder or pooling is
    /// an error.
    pub fn new(encoder: Arc<Encoder>, pooling: Pooling, transform: Option<Arc<Transform>>) -> Result<Self> {
        Self::with_prefixes(encoder, pooling, Prefixes::default(), transform)
    }

    /// Builds a pipeline that puts `prefixes` before queries and documents; a transform fitted
    /// on another encoder, pooling or prefixes is an error.
    pub fn with_prefixes(
        encoder: Arc<Encoder>,
        pooling: Pooling,
        prefixes: Prefixes,
        transform: Option<Arc<Transform>>,
    ) -> Result<Self> {
        encoder.check_pooling(pooling)?;
        let encoder_id = EncoderId { prefixes, ..encoder.id(pooling) };
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
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The shared encoder.
    pub fn shared_encoder(&self) -> &Arc<Encoder> {
        &self.encoder
    }

    /// The pooling.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The prefixes put before queries and documents.
    pub fn prefixes(&self) -> &Prefixes {
        &self.id.encoder.prefixes
    }

    /// The transform, if any.
    pub fn transform(&self) -> Option<&Arc<Transform>> {
        self.transform.as_ref()
    }

    /// Encodes, transforms and normalises document texts, calling `progress(n)` after each batch.
    pub fn embed_with_progress(&self, texts: &[&str], progress: &(dyn Fn(usize) + Sync)) -> Result<Embedded> {
        self.embed_prefixed(&self.id.encoder.prefixes.document, texts, progress)
    }

    fn embed_prefixed(&self, prefix: &str, texts: &[&str], progress: &(dyn Fn(usize) + Sync)) -> Result<Embedded> {
        let prefixed: Vec<String>;
        let texts: Vec<&str> = if prefix.is_empty() {
            texts.to_vec()
        } else {
            prefixed = texts.iter().map(|t| format!("{prefix}{t}")).collect();
            prefixed.iter().map(String::as_str).collect()
        };
        let encoded = self.encoder.encode_with_progress(&texts, &[self.pooling], progress)?;
        let truncated = encoded.truncated;
        let raw = encoded.vectors.into_iter().next().unwrap_or_default();
        Ok(Embedded { vectors: self.apply(raw)?, truncated })
    }

    /// The pipeline's vectors from the encoder's raw pooled ones (this pipeline's encoder,
    /// pooling and prefixes): the transform, if any, then unit length (a zero vector stays zero,
    /// see [`crate::vector`]). Evaluation, training and the store all get their vectors through
    /// here.
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
    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        Ok(self.embed_prefixed(&self.id.encoder.prefixes.query, texts, &|_| {})?.vectors)
    }
    fn embed_counting_cuts(&self, texts: &[&str]) -> Result<Embedded> {
        self.embed_with_progress(texts, &|_| {})
    }
    fn token_spans(&self, text: &str) -> Result<Option<TokenSpans>> {
        let tokenizer = self.encoder.tokenizer();
        let mut tokens = tokenizer.token_spans(text)?;
        let prefix = &self.id.encoder.prefixes.document;
        if !prefix.is_empty() {
            // The prefix's tokens come first in every input and leave that much less room.
            let taken = tokenizer.token_spans(prefix)?.spans.len();
            tokens.capacity = tokens.capacity.saturating_sub(taken).max(1);
        }
        Ok(Some(tokens))
    }
    fn spec(&self) -> Result<Option<PipelineSpec>> {
        PipelineSpec::of(self).map(Some)
    }
}
