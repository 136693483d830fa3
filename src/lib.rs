//! isovec: an embedded semantic-search store.
//!
//! Text is encoded by a BERT-family model, pooled, optionally made isotropic (whitening,
//! BERT-flow) or encoded by a contrastively fine-tuned encoder (SimCSE), and kept in an HNSW
//! index persisted in sled.

pub mod error;
pub mod pipeline;

pub use error::{Error, Result};
pub use pipeline::{Embedder, EncoderId, PipelineId, TransformId};
pub mod encoder;
pub mod train;
pub mod cli;
