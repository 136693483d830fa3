//! Evaluation building blocks: STS Spearman, BEIR retrieval metrics, ANN recall, anisotropy.
//!
//! The metrics take similarity scores or vectors, so the same code scores any pipeline; the
//! comparisons (`retrieval_run`, `advise`) encode the texts of each pipeline they compare.

pub mod advise;
pub mod anisotropy;
pub mod ann;
#[cfg(feature = "report")]
pub mod histogram_svg;
pub mod kendall;
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
