//! Evaluation building blocks: STS Spearman, BEIR retrieval metrics, ANN recall, anisotropy.
//!
//! Nothing here encodes text: every function takes similarity scores or vectors, so the same
//! code scores any pipeline.

pub mod ann;
pub mod retrieval;
pub mod spearman;
pub mod sts;
pub mod text_file;
