//! What a store records about the pipeline that made a collection's vectors: enough to open it
//! again ([`crate::Pipeline::open`]) with nothing else to say.
//!
//! The record is JSON (in the collection's sled tree, and in an exported Parquet file's
//! metadata). It holds the pipeline's id (the model files' hashes, pooling, maximum length,
//! prefixes, the transform's hash), where the model was loaded from, and the transform itself:
//! its file's bytes, base64, with their sha256. The id stays what identifies the vectors; the
//! rest only helps find and rebuild the pipeline, and is checked against the id when used.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Embedder, Pipeline, PipelineId};
use crate::transform::Transform;
use crate::{Error, Result};

/// Version of the record this isovec writes and reads.
pub const SPEC_VERSION: u32 = 1;

/// How a collection's vectors are made, as a store records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineSpec {
    /// Format version ([`SPEC_VERSION`]).
    pub version: u32,
    /// Where the vectors come from.
    pub vectors: VectorSource,
}

/// Where a collection's vectors come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "lowercase")]
// One per collection, read once: the size of the small variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum VectorSource {
    /// An isovec pipeline, which [`crate::Pipeline::open`] rebuilds.
    Encoded(EncodedSpec),
    /// Vectors made outside isovec (by another model): they are searched by vector, and no text
    /// can be encoded into them.
    External {
        /// The model's name, as the user gave it.
        name: String,
        /// Number of dimensions of every vector.
        dims: usize,
    },
}

/// An isovec pipeline as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodedSpec {
    /// The pipeline's identity: model files, pooling, maximum length, prefixes, transform.
    pub id: PipelineId,
    /// Where the model was loaded from.
    pub model: ModelLocation,
    /// The transform's parameters, if the pipeline has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<StoredTransform>,
}

/// Where a pipeline's model was loaded from; the model is also looked for elsewhere by its
/// content hash ([`crate::pipeline::find_model`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelLocation {
    /// The model folder, absolute (`None` if its path is not UTF-8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// Whether it was the default model: then the default model's folder is looked at too
    /// (wherever `ISOVEC_MODEL` or `ISOVEC_HOME` put it on this machine).
    #[serde(default)]
    pub default_model: bool,
}

/// A transform's file bytes, kept in the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredTransform {
    /// sha256 of `safetensors`, hex: checked before the bytes are read.
    pub sha256: String,
    /// The transform's file (safetensors), base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub safetensors: Vec<u8>,
}

impl PipelineSpec {
    /// The record of a loaded pipeline.
    pub fn of(pipeline: &Pipeline) -> Result<PipelineSpec> {
        let path = pipeline.encoder().path();
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let default_model = std::fs::canonicalize(crate::encoder::default_model_dir()).is_ok_and(|d| d == absolute);
        let transform = pipeline.transform().map(|t| StoredTransform::of(t)).transpose()?;
        Ok(PipelineSpec {
            version: SPEC_VERSION,
            vectors: VectorSource::Encoded(EncodedSpec {
                id: pipeline.id().clone(),
                model: ModelLocation { path: absolute.to_str().map(PathBuf::from), default_model },
                transform,
            }),
        })
    }

    /// The record of vectors made outside isovec by the model `name`.
    pub fn external(name: &str, dims: usize) -> PipelineSpec {
        PipelineSpec { version: SPEC_VERSION, vectors: VectorSource::External { name: name.to_string(), dims } }
    }

    /// The isovec pipeline this records, or an error saying that the vectors were made elsewhere.
    pub fn encoded(&self) -> Result<&EncodedSpec> {
        match &self.vectors {
            VectorSource::Encoded(e) => Ok(e),
            VectorSource::External { name, dims } => Err(Error::InvalidInput(format!(
                "the vectors were made outside isovec (model {name:?}, {dims} dimensions), so isovec cannot encode \
                 texts into them: give each document's vector with its text (Rust `upsert`, Python \
                 `add(embeddings=...)`, `isovec index --vectors FILE.npy`), and search with a query vector from that \
                 model, or lexically"
            ))),
        }
    }

    /// The record as JSON bytes.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Reads a record; `origin` names where it was read from in errors.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<PipelineSpec> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let damaged = |e: serde_json::Error| Error::Damaged {
            what: format!("{origin}: the recorded pipeline is not readable ({e})"),
            path: None,
        };
        let Versioned { version } = serde_json::from_slice(bytes).map_err(damaged)?;
        if version != SPEC_VERSION {
            return Err(Error::InvalidInput(format!(
                "{origin}: the recorded pipeline has format version {version}, and this isovec reads version \
                 {SPEC_VERSION}: use the isovec that wrote it, or re-embed the collection with this one"
            )));
        }
        serde_json::from_slice(bytes).map_err(damaged)
    }
}

impl StoredTransform {
    /// Copies a transform's parameters.
    pub fn of(transform: &Transform) -> Result<StoredTransform> {
        let safetensors = transform.to_bytes()?;
        Ok(StoredTransform { sha256: hex::encode(Sha256::digest(&safetensors)), safetensors })
    }

    /// The transform, after checking the bytes' sha256 and that it is the one `id` names.
    pub fn load(&self, id: &PipelineId, origin: &str) -> Result<Transform> {
        let damaged =
            |what: String| Error::Damaged { what: format!("{origin}: the stored transform {what}"), path: None };
        if hex::encode(Sha256::digest(&self.safetensors)) != self.sha256 {
            return Err(damaged("does not match its checksum; the record is damaged".into()));
        }
        let transform = Transform::from_bytes(&self.safetensors, Path::new(origin))?;
        if id.transform.as_ref() != Some(&transform.id()) {
            return Err(damaged(format!("is {}, not the pipeline's {:?}", transform.kind(), id.transform)));
        }
        Ok(transform)
    }
}

/// Bytes as one base64 string (standard alphabet, padded).
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    #[test]
    fn a_newer_record_is_refused_with_what_to_do() {
        let json = br#"{"version": 99, "vectors": {"source": "external", "name": "m", "dims": 3}}"#;
        let e = PipelineSpec::from_json(json, "collection x").unwrap_err().to_string();
        assert!(e.contains("version 99") && e.contains("re-embed"), "{e}");
    }

    #[test]
    fn external_records_round_trip() {
        let spec = PipelineSpec::external("openai-small", 1536);
        let back = PipelineSpec::from_json(&spec.to_json().unwrap(), "x").unwrap();
        assert_eq!(back, spec);
        let e = back.encoded().unwrap_err().to_string();
        assert!(e.contains("openai-small") && e.contains("1536"), "{e}");
    }

    #[test]
    fn transform_bytes_are_checked() {
        let bytes = base64::engine::general_purpose::STANDARD.encode(b"not a transform");
        let stored = StoredTransform { sha256: "0".repeat(64), safetensors: bytes.into_bytes() };
        let id: PipelineId = serde_json::from_value(serde_json::json!({
            "encoder": {"model": "m", "weights_sha256": "0", "pooling": "mean", "max_length": 8},
            "transform": {"kind": "whiten", "sha256": "0"},
            "normalize": true
        }))
        .unwrap();
        let e = stored.load(&id, "collection x").unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }
}
