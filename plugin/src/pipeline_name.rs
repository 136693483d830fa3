//! The string that names a pipeline in SQL, and the pipeline it names.
//!
//! Forms (the optional `pipeline` argument of `isovec_embed` and `isovec_collection`):
//! - NULL, `''` or `default`: the default model (`$ISOVEC_MODEL`, else
//!   `~/.cache/isovec/models/all-MiniLM-L6-v2`) with mean pooling;
//! - `model:DIR` or just `DIR`, optionally `#POOLING` (e.g. `model:/models/bert#cls`): a Hugging
//!   Face BERT folder, mean pooling unless named;
//! - `transform:PATH`: a transform file (`isovec fit whiten|flow`) on the encoder, pooling and
//!   prefixes it was fitted on, its model found by content hash ([`isovec::pipeline::find_model`]);
//! - `store:DIR#COLLECTION` (`#COLLECTION` defaults to `default`): that collection's pipeline,
//!   opened from the collection's record;
//! - `external:NAME#DIMS` (`isovec_collection` only): vectors of `DIMS` dimensions made outside
//!   isovec by the model `NAME` (any name that tells them apart): the collection takes each row's
//!   vector as a BLOB and is searched by a query vector or lexically; no text is encoded into it
//!   ([`isovec::store::Store::get_or_create_external_collection`]).
//!
//! The first three are built by the library ([`PipelineRequest::load`]); a collection's own
//! pipeline always comes from its record ([`isovec::store::Collection::pipeline`]).

use std::path::PathBuf;
use std::sync::Arc;

use isovec::encoder::Pooling;
use isovec::pipeline::{find_model, ModelLocation};
use isovec::transform::Transform;
use isovec::{Error, Pipeline, PipelineRequest, Result, TransformChoice};

use crate::{cache, store_root};

/// A parsed pipeline string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PipelineName {
    /// The default model with mean pooling.
    Default,
    /// A model folder and a pooling.
    Model { dir: PathBuf, pooling: Pooling },
    /// A transform file.
    Transform(PathBuf),
    /// The pipeline of a store's collection.
    Collection { store: PathBuf, collection: String },
    /// Vectors made outside isovec by the model `model`, of `dims` dimensions: no pipeline.
    External { model: String, dims: usize },
}

impl PipelineName {
    /// Parses the SQL form; `None` (SQL NULL) is the default pipeline.
    pub fn parse(text: Option<&str>) -> Result<PipelineName> {
        let text = text.map(str::trim).unwrap_or("");
        if text.is_empty() || text == "default" {
            return Ok(PipelineName::Default);
        }
        if let Some(path) = text.strip_prefix("transform:") {
            return nonempty(path, text).map(|p| PipelineName::Transform(p.into()));
        }
        if let Some(rest) = text.strip_prefix("external:") {
            let usage = || {
                Error::InvalidInput(format!(
                    "pipeline {text:?}: name vectors made outside isovec as 'external:NAME#DIMS', the model's name \
                     and its vectors' dimensions, e.g. 'external:text-embedding-3-small#1536'"
                ))
            };
            let (model, dims) = rest.rsplit_once('#').ok_or_else(usage)?;
            let dims = dims.trim().parse::<usize>().ok().filter(|d| *d > 0).ok_or_else(usage)?;
            if model.trim().is_empty() {
                return Err(usage());
            }
            return Ok(PipelineName::External { model: model.trim().to_string(), dims });
        }
        if let Some(rest) = text.strip_prefix("store:") {
            let (store, collection) = rest.split_once('#').unwrap_or((rest, "default"));
            return Ok(PipelineName::Collection {
                store: nonempty(store, text)?.into(),
                collection: nonempty(collection, text)?.into(),
            });
        }
        let rest = text.strip_prefix("model:").unwrap_or(text);
        let (dir, pooling) = match rest.rsplit_once('#') {
            Some((dir, pooling)) => (dir, pooling.parse::<Pooling>()?),
            None => (rest, Pooling::Mean),
        };
        Ok(PipelineName::Model { dir: nonempty(dir, text)?.into(), pooling })
    }

    /// The pipeline this names: a collection's from its record, the others from the per-process
    /// cache ([`cache::pipeline`]), loaded the first time; vectors made outside isovec have none.
    pub fn resolve(&self) -> Result<Arc<Pipeline>> {
        match self {
            PipelineName::Collection { store, collection } => {
                cache::store(store, false)?.collection(collection)?.pipeline()
            }
            PipelineName::External { model, dims } => Err(Error::InvalidInput(format!(
                "'external:{model}#{dims}' names vectors made outside isovec, which isovec cannot encode texts into: \
                 make them with that model, give them to isovec_upsert as BLOBs and search with a query vector"
            ))),
            _ => cache::pipeline(self, || self.load()),
        }
    }

    /// Loads the pipeline a model, transform or the default names.
    fn load(&self) -> Result<Arc<Pipeline>> {
        let request = match self {
            PipelineName::Default => PipelineRequest::default(),
            PipelineName::Model { dir, pooling } => {
                // SQL names any folder, so it must be inside the store root, if one is set.
                store_root::check_path(dir, "model folder", "model folders")?;
                if !dir.is_dir() {
                    return Err(Error::Model(format!(
                        "no model folder at {}; name a Hugging Face BERT folder (`model:DIR[#POOLING]`)",
                        dir.display()
                    )));
                }
                PipelineRequest { model: Some(dir.clone()), pooling: Some(*pooling), ..Default::default() }
            }
            PipelineName::Transform(path) => {
                store_root::check_path(path, "transform file", "transform files")?;
                let transform = Arc::new(Transform::load(path)?);
                // The model it was fitted on, wherever isovec finds models (the default one too).
                let anywhere = ModelLocation { path: None, default_model: true };
                let model = find_model(transform.encoder(), Some(&anywhere), None)?;
                let transform = Some(TransformChoice::Loaded(transform));
                PipelineRequest { model: Some(model), transform, ..Default::default() }
            }
            PipelineName::Collection { .. } | PipelineName::External { .. } => {
                return Err(Error::InvalidInput("a collection's pipeline is opened from its record".into()))
            }
        };
        request.load(&crate::precision::encoder_options()?)
    }
}

fn nonempty<'a>(part: &'a str, whole: &str) -> Result<&'a str> {
    if part.trim().is_empty() {
        Err(Error::InvalidInput(format!(
            "pipeline {whole:?} is incomplete; use a model folder, `model:DIR[#POOLING]`, `transform:PATH`, \
             `store:DIR#COLLECTION` or `external:NAME#DIMS`"
        )))
    } else {
        Ok(part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(PipelineName::parse(None).unwrap(), PipelineName::Default);
        assert_eq!(PipelineName::parse(Some(" default ")).unwrap(), PipelineName::Default);
        assert_eq!(
            PipelineName::parse(Some("model:/m/bert#cls")).unwrap(),
            PipelineName::Model { dir: "/m/bert".into(), pooling: Pooling::Cls }
        );
        assert_eq!(
            PipelineName::parse(Some("/m/bert")).unwrap(),
            PipelineName::Model { dir: "/m/bert".into(), pooling: Pooling::Mean }
        );
        assert_eq!(
            PipelineName::parse(Some("transform:w.safetensors")).unwrap(),
            PipelineName::Transform("w.safetensors".into())
        );
        assert_eq!(
            PipelineName::parse(Some("store:st#docs")).unwrap(),
            PipelineName::Collection { store: "st".into(), collection: "docs".into() }
        );
        assert_eq!(
            PipelineName::parse(Some("store:st")).unwrap(),
            PipelineName::Collection { store: "st".into(), collection: "default".into() }
        );
        assert_eq!(
            PipelineName::parse(Some(" external:text-embedding-3-small#1536 ")).unwrap(),
            PipelineName::External { model: "text-embedding-3-small".into(), dims: 1536 }
        );
        // The last `#` separates the dimensions: a name may hold one.
        assert_eq!(
            PipelineName::parse(Some("external:org/m#v2#8")).unwrap(),
            PipelineName::External { model: "org/m#v2".into(), dims: 8 }
        );
    }

    #[test]
    fn rejects_incomplete_forms() {
        for bad in [
            "transform:",
            "store:#docs",
            "store:st#",
            "model:#mean",
            "model:/m#nopool",
            "external:m",
            "external:m#0",
            "external:m#-3",
            "external:m#x",
            "external:#8",
        ] {
            assert!(PipelineName::parse(Some(bad)).is_err(), "{bad} should be rejected");
        }
    }
}
