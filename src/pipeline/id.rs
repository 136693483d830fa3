//! The identities of pipelines: which model files, pooling, prefixes and transform made a vector.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Identifies the encoder half of a pipeline: which model files and which pooling.
///
/// Two ids are equal when they name the same content: the same model files (see
/// [`EncoderId::files_sha256`]), pooling and maximum length. The model's name is a label only, so
/// renaming or moving a model folder keeps its id.
///
/// Ids written before isovec hashed the model files (stores and transform files made by isovec
/// up to commit d029160) have no `files_sha256`: such a legacy id recorded only the weights, and
/// it equals every id with the same weights, pooling and maximum length. That is what it promised
/// when it was written, and it keeps those stores and transforms working with the same model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EncoderId {
    /// Human-readable model name (the folder's name when it was loaded); not part of the identity.
    pub model: String,
    /// sha256 of the weights file, hex.
    pub weights_sha256: String,
    /// sha256 over the files that determine the vectors (weights, `config.json`, the tokenizer's
    /// files), hex, as [`crate::encoder::ModelDir::files_sha256`] computes it; `None` in legacy ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_sha256: Option<String>,
    /// Pooling name, e.g. `mean`.
    pub pooling: String,
    /// Maximum number of tokens (longer inputs are truncated).
    pub max_length: usize,
    /// Texts put before queries and documents; none in ids written before prefixes existed.
    #[serde(default, skip_serializing_if = "Prefixes::is_empty")]
    pub prefixes: Prefixes,
}

/// Texts put before each query and each document before they are encoded: `query: ` and
/// `passage: ` for e5-style models, an instruction before queries for bge-style ones. They change
/// the vectors, so they are part of the encoder's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Prefixes {
    /// Put before every query.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// Put before every document (and every text a transform is fitted on).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub document: String,
}

impl Prefixes {
    /// The prefixes a user named: `None` if neither, else the one not named empty.
    pub fn named(query: Option<String>, document: Option<String>) -> Option<Prefixes> {
        match (query, document) {
            (None, None) => None,
            (q, d) => Some(Prefixes { query: q.unwrap_or_default(), document: d.unwrap_or_default() }),
        }
    }

    /// No prefix on either side.
    pub fn is_empty(&self) -> bool {
        self.query.is_empty() && self.document.is_empty()
    }
}

impl PartialEq for EncoderId {
    fn eq(&self, other: &Self) -> bool {
        let same_files = match (&self.files_sha256, &other.files_sha256) {
            (Some(a), Some(b)) => a == b,
            // A legacy id knows only the weights (see the type's documentation).
            _ => true,
        };
        same_files
            && self.weights_sha256 == other.weights_sha256
            && self.pooling == other.pooling
            && self.max_length == other.max_length
            && self.prefixes == other.prefixes
    }
}

impl Eq for EncoderId {}

impl std::hash::Hash for EncoderId {
    /// Hashes what legacy and current ids share, so that equal ids hash alike.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.weights_sha256.hash(state);
        self.pooling.hash(state);
        self.max_length.hash(state);
        self.prefixes.hash(state);
    }
}

/// Identifies a post-transform (whitening or flow) by kind and content hash.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransformId {
    /// `whiten`, `whiten-128`, `flow`, ...
    pub kind: String,
    /// sha256 of the transform's parameters, hex.
    pub sha256: String,
}

/// The pooling name of vectors made outside isovec ([`PipelineId::external`]).
const EXTERNAL_POOLING: &str = "external";

/// Identifies a whole pipeline: equal ids mean comparable vectors.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PipelineId {
    /// The encoder and pooling.
    pub encoder: EncoderId,
    /// The post-transform, if any.
    pub transform: Option<TransformId>,
    /// Whether output vectors are L2-normalised.
    pub normalize: bool,
}

impl PipelineId {
    /// The id of vectors made outside isovec by the model `name`: they compare with vectors of
    /// the same name and dimension only (`pooling` reads `external`).
    pub fn external(name: &str, dims: usize) -> PipelineId {
        PipelineId {
            encoder: EncoderId {
                model: name.to_string(),
                weights_sha256: format!("external:{name}:{dims}"),
                files_sha256: None,
                pooling: EXTERNAL_POOLING.to_string(),
                max_length: 0,
                prefixes: Prefixes::default(),
            },
            transform: None,
            normalize: true,
        }
    }

    /// Whether this is [`PipelineId::external`]'s.
    pub fn is_external(&self) -> bool {
        self.encoder.pooling == EXTERNAL_POOLING
    }

    /// A short stable hex fingerprint of the whole id, the model's name left out.
    pub fn fingerprint(&self) -> String {
        let mut unnamed = self.clone();
        unnamed.encoder.model.clear();
        let json = serde_json::to_vec(&unnamed).expect("PipelineId serialises");
        hex::encode(&Sha256::digest(&json)[..8])
    }
}

impl std::fmt::Display for PipelineId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.encoder.model, self.encoder.pooling)?;
        let prefixes = &self.encoder.prefixes;
        if !prefixes.is_empty() {
            write!(f, " prefixes {:?}/{:?}", prefixes.query, prefixes.document)?;
        }
        if let Some(t) = &self.transform {
            write!(f, "+{}", t.kind)?;
        }
        write!(f, " ({})", self.fingerprint())
    }
}

pub(crate) fn describe(id: &EncoderId) -> String {
    format!(
        "{} ({}…) pooling {} max length {}",
        id.model,
        &id.weights_sha256[..id.weights_sha256.len().min(8)],
        id.pooling,
        id.max_length
    )
}
