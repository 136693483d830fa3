//! isovec: an embedded semantic-search store.
//!
//! Text is encoded by a BERT-family model, pooled, optionally made isotropic (whitening,
//! BERT-flow) or encoded by a contrastively fine-tuned encoder (SimCSE), and kept in an HNSW
//! index persisted in sled.

#[doc(hidden)]
pub mod cli;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod pipeline;
pub mod store;
pub mod train;
pub mod transform;

pub use error::{Error, Result};
pub use pipeline::{Embedder, EncoderId, Pipeline, PipelineId, TransformId};
