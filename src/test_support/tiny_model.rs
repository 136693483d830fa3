//! A tiny BERT folder (config.json, vocab.txt, model.safetensors) with fixed weights, for tests
//! and doc examples that must not need a downloaded model. The bytes are the same on every run:
//! fixtures/store-d029160 was written with this model.
//!
//! Panics on failure (it is test code).

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::encoder::{Bert, BertConfig};

/// The vocabulary of the tiny model: BERT's special tokens, then lower-case words.
pub const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "ran", "on", "mat", "in", "park",
    "bread", "rises", "oven", "hot", "ship", "sails", "sea", "cold", "rain", "falls", "city", "night", "music",
    "plays", "loud",
];

/// Writes the tiny model folder: config.json, vocab.txt and model.safetensors whose every value
/// is a fixed function of the tensor's name and position (the same bytes on every run).
pub fn write_tiny_model(dir: &Path) {
    write_tiny_model_variant(dir, 0)
}

/// The tiny model with other weights for each `variant` (0 is the fixture's).
pub fn write_tiny_model_variant(dir: &Path, variant: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let config = BertConfig::tiny(VOCAB.len(), 16, 2, 2);
    std::fs::write(dir.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
    std::fs::write(dir.join("vocab.txt"), VOCAB.join("\n") + "\n").unwrap();
    // The tensor names and shapes are those the model loads.
    let varmap = VarMap::new();
    Bert::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), &config, true).unwrap();
    let shapes: BTreeMap<String, Vec<usize>> =
        varmap.data().lock().unwrap().iter().map(|(name, var)| (name.clone(), var.dims().to_vec())).collect();
    let tensors: BTreeMap<String, Tensor> = shapes
        .iter()
        .enumerate()
        .map(|(k, (name, shape))| {
            let n: usize = shape.iter().product();
            // LayerNorms start as the identity (scale 1, shift 0), as in a fresh BERT, so that
            // pooled vectors of different texts point in different directions.
            let values: Vec<f32> = match name.rsplit_once("LayerNorm.") {
                Some((_, "weight")) => vec![1.0; n],
                Some(_) => vec![0.0; n],
                None => (0..n).map(|j| ((k * 7919 + j + variant * 104_729) as f32 * 0.618).sin() * 0.2).collect(),
            };
            (name.clone(), Tensor::from_vec(values, shape.as_slice(), &Device::Cpu).unwrap())
        })
        .collect();
    candle_core::safetensors::save(&tensors.into_iter().collect(), dir.join("model.safetensors")).unwrap();
}
