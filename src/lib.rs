//! isovec: an embedded semantic-search store.
//!
//! Text is encoded by a BERT-family model, pooled, optionally made isotropic (whitening,
//! BERT-flow) or encoded by a contrastively fine-tuned encoder (SimCSE), and kept in an HNSW
//! index persisted in sled.
//!
//! ```no_run
//! use std::sync::Arc;
//! use isovec::encoder::{default_model_dir, Encoder, EncoderOptions, Pooling};
//! use isovec::store::{CollectionConfig, SearchParams, Store, TextDoc};
//! use isovec::{Embedder, Pipeline};
//!
//! # fn main() -> isovec::Result<()> {
//! // The default model (installed by `isovec model fetch`), mean pooling, no transform.
//! let encoder = Arc::new(Encoder::load(&default_model_dir(), EncoderOptions::default())?);
//! let pipeline = Pipeline::new(encoder, Pooling::Mean, None)?;
//!
//! let store = Store::open("my-store")?;
//! let config = CollectionConfig::new(pipeline.dims(), pipeline.id().clone());
//! let docs = store.get_or_create_collection("docs", config)?;
//! docs.add_texts(&pipeline, &[TextDoc {
//!     id: "v1".into(),
//!     text: "Vaccines train the immune system to fight infection.".into(),
//!     metadata: serde_json::json!({ "topic": "health", "year": 2013 }),
//! }])?;
//! for hit in docs.search_text(&pipeline, "how do vaccines work", &SearchParams::k(5))? {
//!     println!("{:.3} {} {}", hit.score, hit.id, hit.text);
//! }
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! The core needs none of them; `default-features = false` leaves them out.
//! - `cli`: the `isovec` command line (clap, indicatif progress bars, log output); turns on `report`.
//! - `report`: SVG charts of the evaluation report ([`eval::histogram_svg`], [`eval::retrieval_charts`]).
//! - `async`: [`store::AsyncStore`], the store for tokio services.
//! - `cuda`: the encoder on NVIDIA GPUs.

pub mod atomic_file;
#[cfg(feature = "cli")]
#[doc(hidden)]
pub mod cli;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod parquet_io;
pub mod pipeline;
pub mod progress;
mod simd;
pub mod store;
#[doc(hidden)]
pub mod test_support;
pub mod train;
pub mod transform;

pub use error::{Error, Result};
pub use pipeline::{Embedder, EncoderId, Pipeline, PipelineId, TokenSpans, TransformId};
