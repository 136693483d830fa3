//! The string that names a pipeline in SQL, and how it is resolved to a loaded [`Pipeline`].
//!
//! Forms (the optional `pipeline` argument of `isovec_embed` and `isovec_collection`):
//! - NULL, `''` or `default`: the default model (`$ISOVEC_MODEL`, else
//!   `~/.cache/isovec/models/all-MiniLM-L6-v2`) with mean pooling;
//! - `model:DIR` or just `DIR`, optionally `#POOLING` (e.g. `model:/models/bert#cls`): a Hugging
//!   Face BERT folder, mean pooling unless named;
//! - `transform:PATH`: a transform file (`isovec fit whiten|flow`) on the encoder and pooling it
//!   was fitted on (found among the models already loaded, the default model folder and
//!   `~/.cache/isovec/models/<name>`);
//! - `store:DIR#COLLECTION` (`#COLLECTION` defaults to `default`): that collection's pipeline.
//!
//! A collection's pipeline is found from its id alone: its model as for `transform:`, its
//! transform among the transform files loaded in this process (load one with
//! `isovec_embed('x', 'transform:PATH')` or `isovec_collection(...)`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use isovec::encoder::fetch::cache_dir;
use isovec::encoder::{default_model_dir, Encoder, Pooling};
use isovec::{EncoderId, Error, Pipeline, PipelineId, Result};

use crate::{cache, store_root};

/// A parsed pipeline string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipelineSpec {
    /// A model folder and a pooling name.
    Model { dir: PathBuf, pooling: String },
    /// A transform file.
    Transform(PathBuf),
    /// The pipeline of a store's collection.
    Collection { store: PathBuf, collection: String },
}

impl PipelineSpec {
    /// Parses the SQL form; `None` (SQL NULL) is the default pipeline.
    pub fn parse(text: Option<&str>) -> Result<PipelineSpec> {
        let text = text.map(str::trim).unwrap_or("");
        if text.is_empty() || text == "default" {
            return Ok(PipelineSpec::Model { dir: default_model_dir(), pooling: Pooling::Mean.name().into() });
        }
        if let Some(path) = text.strip_prefix("transform:") {
            return nonempty(path, text).map(|p| PipelineSpec::Transform(p.into()));
        }
        if let Some(rest) = text.strip_prefix("store:") {
            let (store, collection) = rest.split_once('#').unwrap_or((rest, "default"));
            return Ok(PipelineSpec::Collection {
                store: nonempty(store, text)?.into(),
                collection: nonempty(collection, text)?.into(),
            });
        }
        let rest = text.strip_prefix("model:").unwrap_or(text);
        let (dir, pooling) = match rest.rsplit_once('#') {
            Some((dir, pooling)) => (dir, pooling.parse::<Pooling>()?.name()),
            None => (rest, Pooling::Mean.name()),
        };
        Ok(PipelineSpec::Model { dir: nonempty(dir, text)?.into(), pooling: pooling.into() })
    }

    /// Loads (or takes from the cache) the pipeline this names.
    pub fn resolve(&self) -> Result<Arc<Pipeline>> {
        match self {
            PipelineSpec::Model { dir, pooling } => {
                // SQL names any other folder, so it must be inside the store root, if one is set.
                if *dir != default_model_dir() {
                    store_root::check_path(dir, "model folder", "model folders")?;
                }
                if !dir.join("model.safetensors").is_file() && *dir == default_model_dir() {
                    return Err(Error::Model(format!(
                        "the default model is not installed at {}: run `isovec model fetch` (or set ISOVEC_MODEL)",
                        dir.display()
                    )));
                }
                let encoder = cache::encoder(dir, None)?;
                build(encoder, pooling.parse()?, None)
            }
            PipelineSpec::Transform(path) => {
                store_root::check_path(path, "transform file", "transform files")?;
                let transform = cache::transform_file(path)?;
                let encoder = find_encoder(transform.encoder())?;
                build(encoder, transform.encoder().pooling.parse()?, Some(transform))
            }
            PipelineSpec::Collection { store, collection } => {
                let store = cache::store(store, false)?;
                let collection = store.collection(collection)?;
                pipeline_for_id(&collection.config().pipeline)
            }
        }
    }
}

fn nonempty<'a>(part: &'a str, whole: &str) -> Result<&'a str> {
    if part.trim().is_empty() {
        Err(Error::InvalidInput(format!(
            "pipeline {whole:?} is incomplete; use a model folder, `model:DIR[#POOLING]`, `transform:PATH` or `store:DIR#COLLECTION`"
        )))
    } else {
        Ok(part)
    }
}

fn build(
    encoder: Arc<Encoder>,
    pooling: Pooling,
    transform: Option<Arc<isovec::transform::Transform>>,
) -> Result<Arc<Pipeline>> {
    let id =
        PipelineId { encoder: encoder.id(pooling), transform: transform.as_ref().map(|t| t.id()), normalize: true };
    if let Some(p) = cache::pipeline(&id) {
        return Ok(p);
    }
    Ok(cache::remember_pipeline(Pipeline::new(encoder, pooling, transform)?))
}

/// The pipeline that produces `id` (a collection's), from the models and transforms at hand.
pub fn pipeline_for_id(id: &PipelineId) -> Result<Arc<Pipeline>> {
    if let Some(p) = cache::pipeline(id) {
        return Ok(p);
    }
    if !id.normalize {
        return Err(Error::InvalidInput(format!(
            "pipeline {id} does not normalise its vectors; this isovec only builds normalising pipelines"
        )));
    }
    let transform = match &id.transform {
        None => None,
        Some(t) => Some(cache::loaded_transform(t).ok_or_else(|| {
            Error::InvalidInput(format!(
                "the pipeline {id} needs its transform `{}` (sha256 {}…), which is not loaded; load its file first, \
                 e.g. SELECT isovec_embed('x', 'transform:/path/to/file.safetensors')",
                t.kind,
                t.sha256.get(..12).unwrap_or(&t.sha256)
            ))
        })?),
    };
    let encoder = find_encoder(&id.encoder)?;
    let pipeline = build(encoder, id.encoder.pooling.parse()?, transform)?;
    use isovec::Embedder;
    if pipeline.id() != id {
        return Err(Error::PipelineMismatch {
            expected: id.to_string(),
            found: format!("{} (built from the files at hand)", pipeline.id()),
        });
    }
    Ok(pipeline)
}

/// The encoder that produces `id`: one loaded already, else the default model folder or
/// `<isovec cache>/models/<name>` if its files match.
fn find_encoder(id: &EncoderId) -> Result<Arc<Encoder>> {
    if let Some(e) = cache::loaded_encoder(id) {
        return Ok(e);
    }
    let mut tried: Vec<PathBuf> = Vec::new();
    for dir in [default_model_dir(), cache_dir().join("models").join(&id.model)] {
        if tried.contains(&dir) {
            continue;
        }
        tried.push(dir.clone());
        if !has_model(&dir) {
            continue;
        }
        // A model with fewer positions than id.max_length cannot be it; skip it.
        if let Ok(e) = cache::encoder(&dir, Some(id.max_length)) {
            if e.produces(id) {
                return Ok(e);
            }
        }
    }
    let tried: Vec<String> = tried.iter().map(|d| d.display().to_string()).collect();
    Err(Error::Model(format!(
        "model {} (weights sha256 {}…, max length {}) is needed but is not in [{}]; install it there, \
         or load its folder first, e.g. SELECT isovec_embed('x', 'model:/path/to/{}')",
        id.model,
        id.weights_sha256.get(..12).unwrap_or(&id.weights_sha256),
        id.max_length,
        tried.join(", "),
        id.model
    )))
}

fn has_model(dir: &Path) -> bool {
    dir.join("model.safetensors").is_file() || dir.join("pytorch_model.bin").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert!(
            matches!(PipelineSpec::parse(None).unwrap(), PipelineSpec::Model { dir, .. } if dir == default_model_dir())
        );
        assert_eq!(
            PipelineSpec::parse(Some("model:/m/bert#cls")).unwrap(),
            PipelineSpec::Model { dir: "/m/bert".into(), pooling: "cls".into() }
        );
        assert_eq!(
            PipelineSpec::parse(Some("/m/bert")).unwrap(),
            PipelineSpec::Model { dir: "/m/bert".into(), pooling: "mean".into() }
        );
        assert_eq!(
            PipelineSpec::parse(Some("transform:w.safetensors")).unwrap(),
            PipelineSpec::Transform("w.safetensors".into())
        );
        assert_eq!(
            PipelineSpec::parse(Some("store:st#docs")).unwrap(),
            PipelineSpec::Collection { store: "st".into(), collection: "docs".into() }
        );
        assert_eq!(
            PipelineSpec::parse(Some("store:st")).unwrap(),
            PipelineSpec::Collection { store: "st".into(), collection: "default".into() }
        );
    }

    #[test]
    fn rejects_incomplete_forms() {
        for bad in ["transform:", "store:#docs", "store:st#", "model:#mean", "model:/m#nopool"] {
            assert!(PipelineSpec::parse(Some(bad)).is_err(), "{bad} should be rejected");
        }
    }
}
