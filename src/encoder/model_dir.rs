//! Finding and reading the files of a Hugging Face BERT folder.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};

use super::config::BertConfig;
use crate::{user_file, Error, Result};

/// The files of a model folder, located and checked to exist.
#[derive(Clone, Debug)]
pub struct ModelDir {
    /// The folder itself.
    pub path: PathBuf,
    /// `config.json`.
    pub config: PathBuf,
    /// `tokenizer.json`, if the folder has one.
    pub tokenizer_json: Option<PathBuf>,
    /// `vocab.txt`, if the folder has one.
    pub vocab_txt: Option<PathBuf>,
    /// `model.safetensors` or `pytorch_model.bin`.
    pub weights: PathBuf,
}

impl ModelDir {
    /// Locates the files of a model folder; a missing one is an error that names it.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            return Err(Error::Model(format!(
                "{} is not a folder: pass a Hugging Face BERT folder (config.json, tokenizer.json \
                 or vocab.txt, model.safetensors or pytorch_model.bin), or run `isovec model fetch` \
                 for the default model",
                path.display()
            )));
        }
        // Only regular files count (a FIFO or device of that name is as good as missing).
        let file = |name: &str| {
            let p = path.join(name);
            p.is_file().then_some(p)
        };
        let config =
            file("config.json").ok_or_else(|| Error::Model(format!("{}: config.json is missing", path.display())))?;
        let tokenizer_json = file("tokenizer.json");
        let vocab_txt = file("vocab.txt");
        if tokenizer_json.is_none() && vocab_txt.is_none() {
            return Err(Error::Model(format!(
                "{}: neither tokenizer.json nor vocab.txt is there; copy the tokenizer files of the model into the folder",
                path.display()
            )));
        }
        let weights = file("model.safetensors").or_else(|| file("pytorch_model.bin")).ok_or_else(|| {
            Error::Model(format!(
                "{}: no weights: neither model.safetensors nor pytorch_model.bin is there",
                path.display()
            ))
        })?;
        for (file, limit, what) in [
            (Some(&config), user_file::MAX_CONFIG_BYTES, "model config.json"),
            (tokenizer_json.as_ref(), user_file::MAX_TOKENIZER_BYTES, "tokenizer file"),
            (vocab_txt.as_ref(), user_file::MAX_TOKENIZER_BYTES, "vocabulary file"),
            (Some(&weights), user_file::MAX_WEIGHTS_BYTES, "weights file"),
        ] {
            if let Some(file) = file {
                user_file::check_regular(file, limit, what)?;
            }
        }
        Ok(ModelDir { path: path.to_path_buf(), config, tokenizer_json, vocab_txt, weights })
    }

    /// The folder's name, used as the model's human-readable name.
    pub fn name(&self) -> String {
        self.path
            .canonicalize()
            .unwrap_or_else(|_| self.path.clone())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "model".into())
    }

    /// Reads `config.json`.
    pub fn read_config(&self) -> Result<BertConfig> {
        let text = user_file::read_regular_text(&self.config, user_file::MAX_CONFIG_BYTES, "model config.json")?;
        serde_json::from_str(&text)
            .map_err(|e| Error::Model(format!("{}: not a BERT config: {e}", self.config.display())))
    }

    /// Whether the tokenizer lower-cases, from `tokenizer_config.json` (default: true, as BERT uncased).
    pub fn lowercase(&self) -> bool {
        user_file::read_regular_text(
            &self.path.join("tokenizer_config.json"),
            user_file::MAX_CONFIG_BYTES,
            "tokenizer_config.json",
        )
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("do_lower_case").and_then(|b| b.as_bool()))
        .unwrap_or(true)
    }

    /// sha256 of the weights file, hex.
    pub fn weights_sha256(&self) -> Result<String> {
        sha256_file(&self.weights)
    }

    /// sha256 over the files that determine the vectors, given the weights' sha256: `config.json`,
    /// and `tokenizer.json`, or else `vocab.txt` with the lower-casing flag the tokenizer uses.
    ///
    /// Each part is hashed as the tokenizer and model read it (file bytes), so any edit to those
    /// files changes the result; the folder's name and other files do not.
    pub fn files_sha256(&self, weights_sha256: &str) -> Result<String> {
        let mut manifest =
            format!("isovec model files 1\nweights {weights_sha256}\nconfig.json {}\n", sha256_file(&self.config)?);
        match (&self.tokenizer_json, &self.vocab_txt) {
            (Some(json), _) => manifest += &format!("tokenizer.json {}\n", sha256_file(json)?),
            (None, Some(vocab)) => {
                manifest += &format!("vocab.txt {}\nlowercase {}\n", sha256_file(vocab)?, self.lowercase())
            }
            (None, None) => {
                return Err(Error::Model(format!(
                    "{}: neither tokenizer.json nor vocab.txt is there",
                    self.path.display()
                )))
            }
        }
        Ok(hex::encode(Sha256::digest(manifest.as_bytes())))
    }

    /// Reads every tensor of the weights file as f32, with any `bert.` prefix removed.
    pub fn read_weights(&self, device: &Device) -> Result<HashMap<String, Tensor>> {
        let context =
            |e: candle_core::Error| Error::Model(format!("{}: cannot read weights: {e}", self.weights.display()));
        let raw: Vec<(String, Tensor)> = if self.weights.extension().is_some_and(|e| e == "bin") {
            candle_core::pickle::read_all(&self.weights).map_err(context)?
        } else {
            candle_core::safetensors::load(&self.weights, device).map_err(context)?.into_iter().collect()
        };
        let has_prefix = raw.iter().any(|(k, _)| k.starts_with("bert."));
        let mut out = HashMap::with_capacity(raw.len());
        for (name, tensor) in raw {
            let name = match (has_prefix, name.strip_prefix("bert.")) {
                (true, Some(stripped)) => stripped.to_string(),
                (true, None) => continue, // heads (cls.*) of a pre-training checkpoint
                (false, _) => name,
            };
            let tensor = tensor.to_dtype(DType::F32).and_then(|t| t.to_device(device)).map_err(context)?;
            out.insert(name, tensor);
        }
        Ok(out)
    }
}

/// sha256 of a file, hex, read in chunks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}
