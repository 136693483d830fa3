//! BERT configuration, deserialised straight from a checkpoint's `config.json`.

use serde::{Deserialize, Serialize};

/// The fields of a Hugging Face BERT `config.json` that isovec's BERT uses.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    /// Number of tokens in the vocabulary (rows of the word embedding).
    pub vocab_size: usize,
    /// Width of the hidden states (the token vectors).
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer (`hidden_size` must be a multiple of it).
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer inside each transformer layer.
    pub intermediate_size: usize,
    /// Activation of the feed-forward layer (`gelu`, the default).
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Dropout on hidden states while training (SimCSE's noise); 0.1 by default.
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities while training; 0.1 by default.
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    /// Longest input in tokens (rows of the position embedding); 512 by default.
    #[serde(default = "default_max_position")]
    pub max_position_embeddings: usize,
    /// Number of token types (segments); 2 by default.
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    /// Epsilon of the layer normalisations; 1e-12 by default.
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    /// Token id of padding; 0 by default.
    #[serde(default)]
    pub pad_token_id: usize,
    /// Everything else in the file, kept so a written checkpoint loses nothing.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_max_position() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

impl BertConfig {
    /// A small configuration for tests and training from scratch.
    pub fn tiny(vocab_size: usize, hidden: usize, layers: usize, heads: usize) -> Self {
        BertConfig {
            vocab_size,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            intermediate_size: hidden * 4,
            hidden_act: default_hidden_act(),
            hidden_dropout_prob: 0.1,
            attention_probs_dropout_prob: 0.1,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            extra: serde_json::Map::new(),
        }
    }
}
