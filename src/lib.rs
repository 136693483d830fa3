//! isovec: an embedded semantic-search store.
//!
//! Text is encoded by a BERT-family model, pooled, optionally made isotropic (whitening,
//! BERT-flow) or encoded by a contrastively fine-tuned encoder (SimCSE), and kept in an HNSW
//! index persisted in sled.
//!
//! Open a store, add texts, search them, filter by metadata, open the collection again with
//! nothing else said, and adopt a transform by re-embedding (a tiny model stands in for the
//! default one, which `isovec model fetch` installs):
//!
//! ```
//! use std::sync::Arc;
//! use isovec::progress::Silent;
//! use isovec::transform::TransformKind;
//! use isovec::{Embedder, Encoder, EncoderOptions, Filter, Pipeline, Pooling, SearchParams, Store, TextDoc};
//!
//! # fn main() -> isovec::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let model_dir = dir.path().join("model");
//! # isovec::test_support::tiny_model::write_tiny_model(&model_dir);
//! // An encoder (here a tiny BERT folder; in an application `encoder::default_model_dir()`),
//! // mean pooling, no transform.
//! let encoder = Arc::new(Encoder::load(&model_dir, EncoderOptions::default())?);
//! let pipeline = Pipeline::new(encoder.clone(), Pooling::Mean, None)?;
//!
//! // A store is a directory; a collection holds one pipeline's vectors and records the
//! // pipeline (model reference, pooling, transform), so it needs nothing else afterwards.
//! let store = Store::open(dir.path().join("store"))?;
//! let docs = store.get_or_create_collection_for("docs", &pipeline)?;
//! let texts = [
//!     ("d1", "the cat sat on the mat", 2013),
//!     ("d2", "a dog ran in the park", 2021),
//!     ("d3", "the bread rises in the hot oven", 2022),
//!     ("d4", "a ship sails on the cold sea", 2019),
//!     ("d5", "the rain falls on the city at night", 2024),
//!     ("d6", "loud music plays in the city", 2020),
//! ];
//! let batch: Vec<TextDoc> = texts
//!     .iter()
//!     .map(|(id, text, year)| TextDoc { id: id.to_string(), text: text.to_string(), metadata: serde_json::json!({ "year": year }) })
//!     .collect();
//! docs.add_texts(&batch)?;
//!
//! // Search by text: a document's own text finds it first.
//! let hits = docs.search_text("the cat sat on the mat", &SearchParams::k(3))?;
//! assert_eq!(hits[0].id, "d1");
//! assert!((hits[0].score - 1.0).abs() < 1e-4);
//!
//! // Filter by metadata (the expression form; JSON works too).
//! let recent: Filter = "year >= 2020".parse()?;
//! let hits = docs.search_text("the city at night", &SearchParams::k(10).with_filter(recent))?;
//! let mut ids: Vec<&str> = hits.iter().map(|h| h.id.as_str()).collect();
//! ids.sort();
//! assert_eq!(ids, ["d2", "d3", "d5", "d6"]);
//!
//! // Fit a transform on the raw vectors (whitening to 4 dimensions), build its pipeline, and
//! // re-embed the collection into it: swapped in under the same name once complete.
//! let vectors = pipeline.embed(&texts.map(|t| t.1))?;
//! let whiten = TransformKind::Whiten { dims: Some(4) }.fit(&vectors, &pipeline.id().encoder, &Silent)?;
//! let whitened = Pipeline::new(encoder, Pooling::Mean, Some(Arc::new(whiten)))?;
//! store.reembed("docs", &whitened, &Silent)?;
//! let docs = store.collection("docs")?;
//! assert_eq!(docs.get("d4")?.unwrap().vector.len(), 4);
//! assert_eq!(docs.search_text("a ship sails on the cold sea", &SearchParams::k(1))?[0].id, "d4");
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! The core needs none of them; `default-features = false` leaves them out.
//! - `cli`: the `isovec` command line (clap, indicatif progress bars, log output); turns on `report`.
//! - `report`: SVG charts of the evaluation report ([`eval::histogram_svg`], [`eval::retrieval_charts`]).
//! - `async`: [`store::AsyncStore`], the store for tokio services.
//! - `server`: `isovec serve`, a store over HTTP/JSON for many processes (in the binary; turns on
//!   `cli` and `async`).
//! - `cuda`: the encoder on NVIDIA GPUs.
//! - `test-support`: isovec's own tests only (their helpers, and the internals they reach).

#![warn(missing_docs)]

pub mod api;
mod atomic_file;
// The command line: private, except to isovec's own tests (the `test-support` feature), which
// call its functions directly; the binary runs it through [`cli_main`].
#[cfg(all(feature = "cli", feature = "test-support"))]
#[allow(missing_docs)]
pub mod cli;
#[cfg(all(feature = "cli", not(feature = "test-support")))]
mod cli;
pub mod encoder;
pub mod error;
pub mod eval;
pub mod parquet_io;
pub mod pipeline;
pub mod progress;
#[cfg(feature = "server")]
mod server;
mod simd;
pub mod store;
mod table;
/// Helpers of isovec's own tests (a tiny model, the benchmark data folder): only with the
/// `test-support` feature, which isovec's dev-dependency on itself turns on.
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod train;
pub mod transform;
mod user_file;
pub mod vector;

/// The `isovec` command line, as the binary runs it: parses the process's arguments, runs the
/// command, prints errors to stderr, and returns the exit code.
#[cfg(feature = "cli")]
pub use cli::main as cli_main;
// The types most programs need, at the crate's root; the modules hold the rest.
pub use encoder::{Encoder, EncoderOptions, Pooling};
pub use error::{Error, Result};
pub use pipeline::{
    Embedded, Embedder, EncoderId, Pipeline, PipelineId, PipelineRequest, PipelineSpec, Prefixes, TokenSpans,
    TransformChoice, TransformId,
};
pub use store::{Collection, Doc, Filter, Hit, SearchMode, SearchParams, Store, TextDoc};
