//! Opening a recorded pipeline on this machine: finding its model by content hash, rebuilding
//! its transform from the record, and checking that the result is the recorded pipeline.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{shared, EncodedSpec, EncoderId, ModelLocation, Pipeline, PipelineSpec};
use crate::encoder::fetch::cache_dir;
use crate::encoder::{default_model_dir, EncoderOptions, ModelDir};
use crate::{Embedder, Error, Result};

/// Environment variable: more places to look for models, separated like `PATH` (`:` on Unix);
/// each is a model folder or a folder of model folders.
pub const MODEL_PATH_ENV: &str = "ISOVEC_MODEL_PATH";

impl Pipeline {
    /// Opens the pipeline `spec` records: its model found by content hash ([`find_model`]),
    /// loaded with `options` (their maximum length is the recorded one), its transform rebuilt
    /// from the record. The result has the recorded id, or this is an error.
    ///
    /// [`open_shared`](super::open_shared) does the same once per process.
    pub fn open(spec: &PipelineSpec, options: &EncoderOptions) -> Result<Pipeline> {
        Self::open_with_model(spec, None, options)
    }

    /// Like [`Pipeline::open`], with the model in `model` (which must be the recorded one) if given.
    pub fn open_with_model(spec: &PipelineSpec, model: Option<&Path>, options: &EncoderOptions) -> Result<Pipeline> {
        let encoded = spec.encoded()?;
        let id = &encoded.id;
        let dir = find_model(&id.encoder, Some(&encoded.model), model)?;
        let encoder = shared::encoder(&dir, Some(id.encoder.max_length), options)?;
        let transform = transform_of(encoded)?;
        let pipeline =
            Pipeline::with_prefixes(encoder, id.encoder.pooling.parse()?, id.encoder.prefixes.clone(), transform)?;
        if pipeline.id() != id {
            return Err(Error::PipelineMismatch {
                expected: id.to_string(),
                found: format!("{} (built from {})", pipeline.id(), dir.display()),
            });
        }
        Ok(pipeline)
    }
}

/// The recorded transform, rebuilt; an error if the id names one the record lacks.
fn transform_of(spec: &EncodedSpec) -> Result<Option<Arc<crate::transform::Transform>>> {
    match (&spec.id.transform, &spec.transform) {
        (None, _) => Ok(None),
        (Some(_), Some(stored)) => Ok(Some(Arc::new(stored.load(&spec.id, "the pipeline record")?))),
        (Some(t), None) => Err(Error::InvalidInput(format!(
            "the pipeline {} needs its transform `{}` (sha256 {}…), and its record does not hold it: \
             give the transform file",
            spec.id,
            t.kind,
            t.sha256.get(..12).unwrap_or(&t.sha256)
        ))),
    }
}

/// The folder of the model `id` names, found by its files' content hash.
///
/// `explicit`, if given, must be that model. Otherwise the places looked at are, in order: the
/// `recorded` folder; the default model's folder if it was the default model; the folders in
/// isovec's model cache (`<cache>/models/*`, the one named like the model first); the folders
/// [`MODEL_PATH_ENV`] names. A folder holding other files is passed over. Found nowhere, the
/// error names the model, its hash, every place looked at and how to point isovec at it.
pub fn find_model(id: &EncoderId, recorded: Option<&ModelLocation>, explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return match check_model(dir, id) {
            Ok(()) => Ok(dir.to_path_buf()),
            Err(what) => Err(Error::PipelineMismatch {
                expected: format!("the model {} ({})", id.model, short_hash(id)),
                found: format!(
                    "{} at {}; leave the model out to use the recorded one, or re-embed the collection \
                     (`isovec reembed`) to change its model",
                    what,
                    dir.display()
                ),
            }),
        };
    }
    let mut looked: Vec<(PathBuf, String)> = Vec::new();
    let try_dir = |dir: PathBuf, looked: &mut Vec<(PathBuf, String)>| -> Option<PathBuf> {
        if looked.iter().any(|(d, _)| *d == dir) {
            return None;
        }
        match check_model(&dir, id) {
            Ok(()) => Some(dir),
            Err(what) => {
                looked.push((dir, what));
                None
            }
        }
    };
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(location) = recorded {
        candidates.extend(location.path.clone());
        if location.default_model {
            candidates.push(default_model_dir());
        }
    }
    let models = cache_dir().join("models");
    candidates.push(models.join(&id.model));
    candidates.extend(subfolders(&models));
    let search_path = std::env::var_os(MODEL_PATH_ENV);
    for place in search_path.iter().flat_map(std::env::split_paths) {
        if place.as_os_str().is_empty() {
            continue;
        }
        candidates.push(place.clone());
        candidates.extend(subfolders(&place));
    }
    for dir in candidates {
        if let Some(found) = try_dir(dir, &mut looked) {
            return Ok(found);
        }
    }
    let places: Vec<String> = looked.iter().map(|(dir, what)| format!("  {}: {what}", dir.display())).collect();
    let search_path = match std::env::var(MODEL_PATH_ENV) {
        Ok(v) if !v.is_empty() => format!("{MODEL_PATH_ENV}={v}"),
        _ => format!("{MODEL_PATH_ENV} is not set"),
    };
    Err(Error::Model(format!(
        "the model {} ({}) is not on this machine; looked at:\n{}\n({search_path}). Put the model's folder in \
         {}, or name the folder that holds it in {MODEL_PATH_ENV}, or give the model folder explicitly \
         (--model DIR, model_dir=..., 'model:DIR')",
        id.model,
        short_hash(id),
        if places.is_empty() { "  (nowhere)".to_string() } else { places.join("\n") },
        models.display()
    )))
}

/// Checks that `dir` holds the model `id` names; the error says what is there instead.
fn check_model(dir: &Path, id: &EncoderId) -> std::result::Result<(), String> {
    if !dir.is_dir() {
        return Err("no folder there".into());
    }
    let model = ModelDir::open(dir).map_err(|e| format!("not a usable model folder ({e})"))?;
    let weights = model.weights_sha256().map_err(|e| format!("unreadable ({e})"))?;
    if weights != id.weights_sha256 {
        return Err(format!("a different model (weights sha256 {}…)", &weights[..12.min(weights.len())]));
    }
    if let Some(expected) = &id.files_sha256 {
        let files = model.files_sha256(&weights).map_err(|e| format!("unreadable ({e})"))?;
        if &files != expected {
            return Err(format!(
                "the same weights with other config or tokenizer files (files sha256 {}…)",
                &files[..12.min(files.len())]
            ));
        }
    }
    Ok(())
}

/// The model's hash as error messages show it.
fn short_hash(id: &EncoderId) -> String {
    match &id.files_sha256 {
        Some(files) => format!("files sha256 {}…", &files[..12.min(files.len())]),
        None => format!("weights sha256 {}…", &id.weights_sha256[..12.min(id.weights_sha256.len())]),
    }
}

/// The folders inside `dir`, sorted, hidden ones (such as a partial download) left out.
fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    out
}
