//! A pipeline's identity comes from the files that determine its vectors, not from folder names;
//! stores written before that (fixtures/store-d029160) keep opening and searching.
//!
//! Every test here builds the same tiny BERT folder (fixed weights, vocab.txt), so none needs a
//! downloaded model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use isovec::encoder::{Bert, BertConfig, Encoder, EncoderOptions, Pooling};
use isovec::store::{CollectionConfig, SearchParams, Store, TextDoc};
use isovec::{Embedder, Pipeline};

/// The vocabulary of the tiny model: BERT's special tokens, then lower-case words.
const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "ran", "on", "mat", "in", "park", "bread",
    "rises", "oven", "hot", "ship", "sails", "sea", "cold", "rain", "falls", "city", "night", "music", "plays", "loud",
];

/// The documents of the fixture store.
const DOCS: &[(&str, &str)] = &[
    ("d1", "the cat sat on the mat"),
    ("d2", "a dog ran in the park"),
    ("d3", "the bread rises in the hot oven"),
    ("d4", "a ship sails on the cold sea"),
    ("d5", "the rain falls on the city at night"),
    ("d6", "loud music plays in the city"),
];

/// Writes the tiny model folder: config.json, vocab.txt and model.safetensors whose every value
/// is a fixed function of the tensor's name and position (the same bytes on every run).
fn write_tiny_model(dir: &Path) {
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
                None => (0..n).map(|j| ((k * 7919 + j) as f32 * 0.618).sin() * 0.2).collect(),
            };
            (name.clone(), Tensor::from_vec(values, shape.as_slice(), &Device::Cpu).unwrap())
        })
        .collect();
    candle_core::safetensors::save(&tensors.into_iter().collect(), dir.join("model.safetensors")).unwrap();
}

fn tiny_pipeline(dir: &Path, transform: Option<&Path>) -> Pipeline {
    let encoder = Arc::new(Encoder::load(dir, EncoderOptions::default()).unwrap());
    let transform = transform.map(|p| Arc::new(isovec::transform::Transform::load(p).unwrap()));
    Pipeline::new(encoder, Pooling::Mean, transform).unwrap()
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-d029160")
}

/// Writes fixtures/store-d029160 (run once, at commit d029160, with
/// `cargo test --release --test pipeline_identity -- --ignored make_fixture`): a store with the
/// collection `raw` (tiny model, mean pooling) and `whitened` (plus a whitening fitted on the
/// documents, saved beside the store as whiten.safetensors).
#[test]
#[ignore]
fn make_fixture() {
    let out = fixture();
    assert!(!out.exists(), "{} exists; remove it first", out.display());
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny-bert");
    write_tiny_model(&model);
    let raw = tiny_pipeline(&model, None);
    let texts: Vec<&str> = DOCS.iter().map(|d| d.1).collect();
    let whitening = isovec::transform::fit_whitening(&raw.embed(&texts).unwrap(), &raw.id().encoder, Some(4)).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let transform_file = out.join("whiten.safetensors");
    isovec::transform::Transform::from(whitening).save(&transform_file).unwrap();
    let whitened = tiny_pipeline(&model, Some(&transform_file));
    let store = Store::open(out.join("store")).unwrap();
    for (name, pipeline) in [("raw", &raw), ("whitened", &whitened)] {
        let collection = store.create_collection(name, CollectionConfig::new(pipeline.dims(), pipeline.id().clone())).unwrap();
        let docs: Vec<TextDoc> = DOCS
            .iter()
            .map(|(id, text)| TextDoc { id: id.to_string(), text: text.to_string(), metadata: serde_json::Value::Null })
            .collect();
        collection.add_texts(pipeline, &docs).unwrap();
    }
    store.close().unwrap();
}
