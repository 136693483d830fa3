//! The flow's architecture and training options (defaults = the released BERT-flow code).

use serde::{Deserialize, Serialize};

use super::coupling::CouplingKind;
use super::permutation::PermutationKind;
use crate::{Error, Result};

/// Architecture and training options of a BERT-flow.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FlowConfig {
    /// Number of levels; after each but the last, half of the dimensions are split off.
    pub levels: usize,
    /// Flow steps (actnorm → permutation → coupling) per level.
    pub steps_per_level: usize,
    /// Hidden width of the coupling networks.
    pub width: usize,
    /// Additive (default) or affine coupling.
    pub coupling: CouplingKind,
    /// Fixed reversal (default) or learned LU 1×1 map.
    pub permutation: PermutationKind,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Passes over the training vectors (fractions allowed, e.g. 0.15).
    pub epochs: f64,
    /// Vectors per Adam step.
    pub batch_size: usize,
    /// Vectors (the first of the shuffled data) used for the actnorms' data-dependent init.
    pub init_batch_size: usize,
    /// Seed of parameter init and shuffling: equal seeds give equal flows.
    pub seed: u64,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            levels: 3,
            steps_per_level: 3,
            width: 32,
            coupling: CouplingKind::Additive,
            permutation: PermutationKind::Reverse,
            learning_rate: 1e-3,
            epochs: 1.0,
            batch_size: 32,
            init_batch_size: 256,
            seed: 0,
        }
    }
}

impl FlowConfig {
    /// Checks that every option is usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::InvalidInput(format!("flow configuration: {what}")));
        if self.levels == 0 {
            return bad("levels must be at least 1");
        }
        if self.steps_per_level == 0 {
            return bad("steps_per_level must be at least 1");
        }
        if self.width == 0 {
            return bad("width must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate must be a positive number");
        }
        if !(self.epochs.is_finite() && self.epochs > 0.0) {
            return bad("epochs must be a positive number");
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1");
        }
        if self.init_batch_size < 2 {
            return bad("init_batch_size must be at least 2 (a variance needs two vectors)");
        }
        Ok(())
    }
}
