//! Evaluation building blocks: STS Spearman, BEIR retrieval metrics, ANN recall, anisotropy.
//!
//! Nothing here encodes text: every function takes similarity scores or vectors, so the same
//! code scores any pipeline.

pub mod anisotropy;
pub mod ann;
#[cfg(feature = "report")]
pub mod histogram_svg;
pub mod pseudo_queries;
pub mod retrieval;
#[cfg(feature = "report")]
pub mod retrieval_charts;
pub mod retrieval_run;
pub mod significance;
pub mod spearman;
pub mod sts;
pub mod sts_table;
pub mod text_file;
pub mod token_frequency;
