//! Checkpoints as ordinary Hugging Face BERT folders (config.json, tokenizer files,
//! model.safetensors with standard tensor names), plus a `training.json` describing the run.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;

pub use crate::encoder::training_info::{read_training_info, TrainingInfo, TRAINING_FILE};
use crate::encoder::{BertConfig, ModelDir};
use crate::{Error, Result};

/// Tokenizer files copied from the source model when present.
const TOKENIZER_FILES: [&str; 4] = ["tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"];

/// Writes a checkpoint folder, replacing `dir` only once the new folder is complete and on disk
/// (so a crash never leaves a half-written or missing best checkpoint).
pub fn write_checkpoint(
    dir: &Path,
    config: &BertConfig,
    tensors: &HashMap<String, Tensor>,
    tokenizer_from: &ModelDir,
    info: &TrainingInfo,
) -> Result<()> {
    let name = dir
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("{} cannot be a checkpoint folder", dir.display())))?
        .to_string_lossy()
        .into_owned();
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let staging = parent.join(format!(".{name}.writing"));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    }
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;

    let mut config_json = serde_json::to_value(config)?;
    if let Some(map) = config_json.as_object_mut() {
        // Other tools pick the architecture from these two fields.
        map.insert("model_type".into(), "bert".into());
        map.insert("architectures".into(), serde_json::json!(["BertModel"]));
    }
    let config_path = staging.join("config.json");
    std::fs::write(&config_path, serde_json::to_string_pretty(&config_json)?)
        .map_err(|e| Error::io(&config_path, e))?;

    for file in TOKENIZER_FILES {
        let from = tokenizer_from.path.join(file);
        if from.is_file() {
            let to = staging.join(file);
            std::fs::copy(&from, &to).map_err(|e| Error::io(&to, e))?;
        }
    }

    let contiguous =
        tensors.iter().map(|(k, t)| Ok((k.clone(), t.contiguous()?))).collect::<Result<HashMap<_, _>>>()?;
    let weights = staging.join("model.safetensors");
    candle_core::safetensors::save(&contiguous, &weights)?;

    let info_path = staging.join(TRAINING_FILE);
    std::fs::write(&info_path, serde_json::to_string_pretty(info)?).map_err(|e| Error::io(&info_path, e))?;

    // fsynced, then swapped in whole: a crash leaves the old checkpoint or the new one.
    crate::atomic_file::replace_dir(&staging, dir)?;
    Ok(())
}
