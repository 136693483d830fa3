//! `training.json`: what a fine-tuned model folder (an isovec training checkpoint) records about
//! its training, the pooling to encode with among it. Read wherever such a folder is used as a
//! model (evaluation, reports); written by `train::checkpoint`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The file that records how a checkpoint was trained.
pub const TRAINING_FILE: &str = "training.json";

/// What `training.json` holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// Optimiser steps taken when the checkpoint was written.
    pub step: usize,
    /// STS-B dev Spearman ×100 at that step, if evaluated.
    pub stsb_dev_spearman: Option<f64>,
    /// Alignment on STS-B dev positive pairs at that step.
    pub alignment: Option<f64>,
    /// Uniformity on STS-B dev sentences at that step.
    pub uniformity: Option<f64>,
    /// The pooling to encode with (`cls` when the MLP is kept: it is saved as BERT's pooler).
    pub pooling: String,
    /// Whether `pooler.dense.*` holds SimCSE's trained MLP (rather than the source model's pooler).
    pub pooler_is_simcse_mlp: bool,
    /// The model folder training started from.
    pub source_model: PathBuf,
    /// The training arguments, as given.
    pub args: serde_json::Value,
}

/// Reads `training.json` of a checkpoint, if it has one.
pub fn read_training_info(dir: &Path) -> Result<Option<TrainingInfo>> {
    let path = dir.join(TRAINING_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    Ok(Some(serde_json::from_str(&text)?))
}
