//! Loading and using an encoder leaves the host process alone: the environment is unchanged.
//! (The one test of this file, so no other test thread reads or changes the environment.)

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use isovec::encoder::{Bert, BertConfig, Encoder, EncoderOptions, Pooling};

#[test]
fn loading_an_encoder_does_not_set_candle_num_threads() {
    // Unset first, so that an encoder that sets it when absent is caught.
    std::env::remove_var("CANDLE_NUM_THREADS");
    let dir = tempfile::tempdir().unwrap();
    let vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello", "world"];
    std::fs::write(dir.path().join("vocab.txt"), vocab.join("\n")).unwrap();
    let mut cfg = BertConfig::tiny(vocab.len(), 8, 1, 2);
    cfg.max_position_embeddings = 16;
    std::fs::write(dir.path().join("config.json"), serde_json::to_string(&cfg).unwrap()).unwrap();
    let weights = VarMap::new();
    Bert::load(VarBuilder::from_varmap(&weights, DType::F32, &Device::Cpu), &cfg, false).unwrap();
    weights.save(dir.path().join("model.safetensors")).unwrap();

    let encoder = Encoder::load(dir.path(), EncoderOptions::default()).unwrap();
    let encoded = encoder.encode(&["hello world", "world"], &[Pooling::Mean]).unwrap();
    assert_eq!(encoded.vectors[0].len(), 2);
    assert_eq!(encoded.vectors[0][0].len(), 8);
    assert_eq!(std::env::var_os("CANDLE_NUM_THREADS"), None);
}
