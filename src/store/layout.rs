//! The on-disk layout of a store: files in the store directory, sled trees, keys and records.
//!
//! A store directory holds:
//! - `isovec-store.json`: the marker that says "this is an isovec store" and its format version;
//! - `LOCK`: an advisory lock held by the process that has the store open;
//! - `sled/`: the sled database, the source of truth;
//! - `index/<collection>/snap-<seq>/`: HNSW snapshots (derived state, rebuilt when absent), and
//!   the full-text index in `index/<collection>/text/`.
//!
//! sled holds one tree `collections` (name → [`CollectionConfig`] as JSON) and one tree per
//! collection, `col/<name>` (`col/<name>@<generation>` and `index/<name>@<generation>` for a
//! collection re-embedded [`CollectionConfig::generation`] times; a tree or index folder that no
//! configuration names is the leftover of an interrupted creation or re-embedding and is removed
//! when the store opens), whose keys start with a one-byte tag:
//! - `d` + external id → [`DocRecord`] (internal id, number of passages, text);
//! - `v` + internal id (u64 big-endian) → [`VectorRecord`] (external id, vector), live documents only;
//!   a document indexed as `n` passages has `n` of them, internal ids `internal_id..internal_id + n`;
//! - `m` + internal id → metadata as JSON, live documents with non-empty metadata only (each
//!   passage's internal id holds a copy, so filters need no passage → document lookup);
//! - `p` + internal id → the document's first internal id (u64 LE), for each passage after the
//!   first: searches report a document once, under its first internal id;
//! - `t` + internal id → empty: a tombstone, an internal id that may still be in the HNSW
//!   snapshot but is deleted or replaced;
//! - `#seq`, `#count`, `#points`, `#manifest`: the last sequence number, the number of live
//!   documents, the number of live vectors (absent in stores written before passages existed,
//!   where it equals `#count`), and the snapshot manifest;
//! - `#pipeline`: the [`crate::PipelineSpec`] that made the vectors, as JSON with the transform's
//!   parameters inside (absent in collections written before isovec recorded pipelines, and in
//!   collections of vectors given without one). Written before the configuration that makes the
//!   collection exist, so a collection never exists without the record it was created with;
//! - `#advice`: the search `isovec advise` chose for the collection's vectors, as JSON
//!   ([`crate::store::AdvisedSearch`]; absent until `advise` runs, and in a re-embedded
//!   generation until it runs again).
//!
//! Invariant (enforced in `collection.rs`, one `apply_batch` per write): internal ids are sequence
//! numbers (one per vector: a document of `n` passages takes `n`), allocated in increasing order, so "writes newer than the snapshot" are exactly the
//! vectors whose internal id is greater than the manifest's sequence number.

use serde::{Deserialize, Serialize};

use crate::{Error, PipelineId, Result};

/// File in the store directory that marks it as an isovec store.
pub const MARKER_FILE: &str = "isovec-store.json";
/// Advisory lock file, held while a process has the store open.
pub const LOCK_FILE: &str = "LOCK";
/// While `isovec serve` owns the store: its process id and address (`PID URL`), so that a
/// process that finds the store locked is told where to reach it.
pub const SERVER_FILE: &str = "isovec-server";
/// Folder of the sled database.
pub const SLED_DIR: &str = "sled";
/// Folder of the HNSW snapshots, one sub-folder per collection.
pub const INDEX_DIR: &str = "index";
/// Store format version written in the marker file.
pub const FORMAT_VERSION: u32 = 1;
/// sled tree of collection configurations.
pub const COLLECTIONS_TREE: &[u8] = b"collections";

/// Key of the last sequence number used in a collection tree.
pub const SEQ_KEY: &[u8] = b"#seq";
/// Key of the number of live documents in a collection tree.
pub const COUNT_KEY: &[u8] = b"#count";
/// Key of the number of live vectors (passages) in a collection tree; absent means `#count`.
pub const POINTS_KEY: &[u8] = b"#points";
/// Key of the snapshot manifest in a collection tree.
pub const MANIFEST_KEY: &[u8] = b"#manifest";
/// Key of the recorded pipeline in a collection tree.
pub const PIPELINE_KEY: &[u8] = b"#pipeline";
/// Key of the advised search (`isovec advise`) in a collection tree.
pub const ADVICE_KEY: &[u8] = b"#advice";

/// Tag of document records (external id → internal id, text).
pub const DOC_TAG: u8 = b'd';
/// Tag of vector records (internal id → external id, vector).
pub const VECTOR_TAG: u8 = b'v';
/// Tag of metadata records (internal id → JSON).
pub const META_TAG: u8 = b'm';
/// Tag of tombstones (internal id → nothing).
pub const TOMB_TAG: u8 = b't';
/// Tag of passage records (internal id of a passage after the first → the document's first).
pub const PASSAGE_TAG: u8 = b'p';

/// Content of the marker file.
#[derive(Debug, Serialize, Deserialize)]
pub struct Marker {
    /// Always `isovec`.
    pub kind: String,
    /// Store format version.
    pub format: u32,
}

/// Similarity used to compare vectors of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Cosine similarity (vectors are normalised inside the index; scores are cosines).
    Cosine,
}

/// Largest number of dimensions a collection may have.
pub const MAX_DIMS: usize = 65_536;
/// Largest candidate-list width (`ef_construction`, `ef_search`) a collection may have: a search
/// reserves memory for that many candidates, and far fewer already find every point.
pub const MAX_EF: usize = 100_000;

/// HNSW construction and search parameters of a collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HnswParams {
    /// Maximum number of links per node and layer (2..=255).
    pub m: usize,
    /// Width of the candidate list while building (1..=[`MAX_EF`]).
    pub ef_construction: usize,
    /// Default width of the candidate list while searching (48: recall@10 0.985 on the 100k
    /// MiniLM benchmark set; raise it per query for more recall, at fewer queries/s).
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams { m: 24, ef_construction: 100, ef_search: 48 }
    }
}

/// What a collection is: its vectors' dimension, metric, index parameters and pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollectionConfig {
    /// Number of dimensions of every vector.
    pub dims: usize,
    /// How vectors are compared.
    pub metric: Metric,
    /// The pipeline whose vectors the collection holds.
    pub pipeline: PipelineId,
    /// HNSW parameters.
    pub hnsw: HnswParams,
    /// BM25 parameters of the full-text index (stores written before it existed get the defaults).
    #[serde(default)]
    pub lexical: LexicalParams,
    /// How many times the collection was re-embedded: names its tree and index folder.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl CollectionConfig {
    /// A cosine collection for `pipeline` with default HNSW parameters.
    pub fn new(dims: usize, pipeline: PipelineId) -> Self {
        CollectionConfig {
            dims,
            metric: Metric::Cosine,
            pipeline,
            hnsw: HnswParams::default(),
            lexical: Default::default(),
            generation: 0,
        }
    }

    /// Checks the values the index cannot work with.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_DIMS).contains(&self.dims) {
            return Err(Error::InvalidInput(format!(
                "collection dims = {} is out of range; use a value in 1..={MAX_DIMS}",
                self.dims
            )));
        }
        self.hnsw.validate()?;
        self.lexical.validate()
    }
}

impl HnswParams {
    /// Checks the values the graph cannot be built with: an `m` below 2 links nothing useful,
    /// above 255 only costs memory (and stores written with hnsw_rs held it in one byte), and a
    /// candidate list of width 0 or huge finds nothing or exhausts memory.
    pub fn validate(&self) -> Result<()> {
        if !(2..=255).contains(&self.m) {
            return Err(Error::InvalidInput(format!(
                "HNSW m = {} is out of range; use a value in 2..=255 (16–48 is typical)",
                self.m
            )));
        }
        for (what, ef) in [("ef_construction", self.ef_construction), ("ef_search", self.ef_search)] {
            if !(1..=MAX_EF).contains(&ef) {
                return Err(Error::InvalidInput(format!(
                    "HNSW {what} = {ef} is out of range; use a value in 1..={MAX_EF} (32–400 is typical)"
                )));
            }
        }
        Ok(())
    }
}

/// BM25 parameters of a collection's full-text index.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LexicalParams {
    /// Term-frequency saturation (0 = presence only); default 1.2.
    pub k1: f32,
    /// Length normalisation, 0 (none) to 1 (full); default 0.75.
    pub b: f32,
}

impl Default for LexicalParams {
    fn default() -> Self {
        LexicalParams { k1: 1.2, b: 0.75 }
    }
}

impl LexicalParams {
    /// Errors unless `k1` is finite and ≥ 0 and `b` lies in [0, 1].
    pub fn validate(&self) -> Result<()> {
        if !(self.k1.is_finite() && self.k1 >= 0.0) {
            return Err(Error::InvalidInput(format!(
                "BM25 k1 must be a finite number ≥ 0 (usual: 1.2), got {}",
                self.k1
            )));
        }
        if !(self.b.is_finite() && (0.0..=1.0).contains(&self.b)) {
            return Err(Error::InvalidInput(format!("BM25 b must lie in [0, 1] (usual: 0.75), got {}", self.b)));
        }
        Ok(())
    }
}

/// Parses and checks the configuration of collection `name` as stored in sled.
pub fn stored_config(name: &str, bytes: &[u8]) -> Result<CollectionConfig> {
    let config: CollectionConfig = serde_json::from_slice(bytes).map_err(|e| damaged_config(name, &e.to_string()))?;
    check_stored(name, &config)?;
    Ok(config)
}

/// Checks a configuration read back from the store, naming the collection if it is damaged.
pub fn check_stored(name: &str, config: &CollectionConfig) -> Result<()> {
    config.validate().map_err(|e| damaged_config(name, &e.to_string()))
}

fn damaged_config(name: &str, what: &str) -> Error {
    Error::Damaged {
        what: format!(
            "collection {name:?}: its stored configuration is damaged ({what}); restore the store from a \
             backup, or drop the collection and index its documents again"
        ),
        path: None,
    }
}

/// Checks that a collection name is usable as a folder name: 1–64 of `[A-Za-z0-9_.-]`.
pub fn validate_collection_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "invalid collection name {name:?}: use 1–64 letters, digits, '_', '-' or '.' (not leading)"
        )))
    }
}

/// Name of the sled tree of a collection.
pub fn collection_tree(name: &str, generation: u32) -> Vec<u8> {
    format!("col/{}", storage_name(name, generation)).into_bytes()
}

/// The name of a collection's tree (after `col/`) and index folder: `name`, or `name@generation`.
pub fn storage_name(name: &str, generation: u32) -> String {
    match generation {
        0 => name.to_string(),
        g => format!("{name}@{g}"),
    }
}

/// The collection name and generation of a tree or index folder's name (see [`storage_name`]).
pub fn parse_storage_name(storage: &str) -> (&str, u32) {
    match storage.rsplit_once('@') {
        Some((name, g)) => match g.parse() {
            Ok(g) => (name, g),
            Err(_) => (storage, 0),
        },
        None => (storage, 0),
    }
}

/// Key of a document record.
pub fn doc_key(external_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + external_id.len());
    key.push(DOC_TAG);
    key.extend_from_slice(external_id.as_bytes());
    key
}

/// Key of a record addressed by internal id (vector, metadata or tombstone).
pub fn internal_key(tag: u8, internal_id: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = tag;
    key[1..].copy_from_slice(&internal_id.to_be_bytes());
    key
}

/// The internal id of a key made by [`internal_key`].
pub fn internal_id_of(key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .get(1..9)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| damaged("key of an internal-id record is not 9 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// A u64 counter value as stored.
pub fn encode_u64(value: u64) -> [u8; 8] {
    value.to_le_bytes()
}

/// A stored u64 counter (absent means 0).
pub fn decode_u64(bytes: Option<&[u8]>) -> Result<u64> {
    match bytes {
        None => Ok(0),
        Some(b) => {
            let arr: [u8; 8] = b.try_into().map_err(|_| damaged("counter record is not 8 bytes"))?;
            Ok(u64::from_le_bytes(arr))
        }
    }
}

/// A document record: which internal ids hold the document now, and its text.
#[derive(Clone, Debug, PartialEq)]
pub struct DocRecord {
    /// Internal id of the first (or only) vector: the sequence number of the write that stored
    /// this version.
    pub internal_id: u64,
    /// Number of vectors (passages), at internal ids `internal_id..internal_id + passages`; 1
    /// unless the text was indexed as passages.
    pub passages: u32,
    /// The document text.
    pub text: String,
}

/// Set in the stored internal id of a record with several passages. Internal ids are sequence
/// numbers, far below 2^63, so a record written before passages existed never has it.
const PASSAGES_FLAG: u64 = 1 << 63;

impl DocRecord {
    /// Bytes: internal id (u64 LE) then UTF-8 text, as before passages existed; a record of
    /// several passages sets [`PASSAGES_FLAG`] in the id and puts their number (u32 LE) before
    /// the text.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.text.len());
        if self.passages > 1 {
            out.extend_from_slice(&(self.internal_id | PASSAGES_FLAG).to_le_bytes());
            out.extend_from_slice(&self.passages.to_le_bytes());
        } else {
            out.extend_from_slice(&self.internal_id.to_le_bytes());
        }
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Parses [`DocRecord::encode`]'s bytes (and those of stores written before passages).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(damaged("document record shorter than 8 bytes"));
        }
        let (id, mut text) = bytes.split_at(8);
        let mut internal_id = u64::from_le_bytes(id.try_into().map_err(|_| damaged("document id"))?);
        let mut passages = 1;
        if internal_id & PASSAGES_FLAG != 0 {
            internal_id &= !PASSAGES_FLAG;
            let count: [u8; 4] = text
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| damaged("document record of passages without their number"))?;
            passages = u32::from_le_bytes(count);
            if passages < 2 {
                return Err(damaged("document record of passages says it has fewer than 2"));
            }
            text = &text[4..];
        }
        let text = String::from_utf8(text.to_vec()).map_err(|_| damaged("document text is not UTF-8"))?;
        Ok(DocRecord { internal_id, passages, text })
    }

    /// The internal ids of the document's vectors.
    pub fn internal_ids(&self) -> std::ops::Range<u64> {
        self.internal_id..self.internal_id + u64::from(self.passages)
    }
}

/// A vector record: the external id that owns the vector, and the vector as given.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorRecord {
    /// External id of the document.
    pub external_id: String,
    /// The vector, as given by the caller (not normalised).
    pub vector: Vec<f32>,
}

impl VectorRecord {
    /// Bytes: id length (u32 LE), id, then f32 LE values.
    pub fn encode(external_id: &str, vector: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + external_id.len() + 4 * vector.len());
        out.extend_from_slice(&(external_id.len() as u32).to_le_bytes());
        out.extend_from_slice(external_id.as_bytes());
        for x in vector {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out
    }

    /// Only the external id of [`VectorRecord::encode`]'s bytes (search hits need no vector).
    pub fn decode_external_id(bytes: &[u8]) -> Result<String> {
        let len_bytes: [u8; 4] = bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| damaged("vector record shorter than 4 bytes"))?;
        let id = bytes
            .get(4..4 + u32::from_le_bytes(len_bytes) as usize)
            .ok_or_else(|| damaged("vector record id truncated"))?;
        String::from_utf8(id.to_vec()).map_err(|_| damaged("vector record id is not UTF-8"))
    }

    /// Parses [`VectorRecord::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let external_id = Self::decode_external_id(bytes)?;
        let rest = &bytes[4 + external_id.len()..];
        if !rest.len().is_multiple_of(4) {
            return Err(damaged("vector record length is not a multiple of 4"));
        }
        let vector = rest.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(VectorRecord { external_id, vector })
    }
}

/// The error for a record that cannot be parsed.
pub fn damaged(what: &str) -> Error {
    Error::Damaged {
        what: format!("damaged record: {what}; the store's database is corrupt — restore it from a backup or re-index"),
        path: None,
    }
}

/// Converts a sled error into isovec's error.
pub fn db_error(e: sled::Error) -> Error {
    Error::Database(format!("database error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_not_a_store_error_names_the_marker_file() {
        // error.rs writes the name out rather than depend on this module.
        let e = Error::NotAStore { path: std::path::PathBuf::from("/x") };
        assert!(e.to_string().contains(&format!("it has no {MARKER_FILE} and")), "{e}");
    }

    #[test]
    fn records_round_trip() {
        let d = DocRecord { internal_id: 42, passages: 1, text: "héllo".into() };
        assert_eq!(DocRecord::decode(&d.encode()).unwrap(), d);
        let p = DocRecord { passages: 3, ..d.clone() };
        assert_eq!(DocRecord::decode(&p.encode()).unwrap(), p);
        assert_eq!(p.internal_ids(), 42..45);
        assert!(DocRecord::decode(&p.encode()[..10]).is_err(), "passage count cut");
        let bytes = VectorRecord::encode("doc-1", &[1.5, -2.0, 0.25]);
        let v = VectorRecord::decode(&bytes).unwrap();
        assert_eq!(v.external_id, "doc-1");
        assert_eq!(v.vector, vec![1.5, -2.0, 0.25]);
        assert!(VectorRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(DocRecord::decode(&[1, 2]).is_err());
    }

    #[test]
    fn records_written_before_passages_read_as_one_passage() {
        // The layout of stores written before passages existed: internal id (u64 LE), text.
        let mut old = 7u64.to_le_bytes().to_vec();
        old.extend_from_slice("an old text".as_bytes());
        let rec = DocRecord::decode(&old).unwrap();
        assert_eq!((rec.internal_id, rec.passages, rec.text.as_str()), (7, 1, "an old text"));
        // One passage is still written that way, byte for byte.
        assert_eq!(rec.encode(), old);
    }

    #[test]
    fn internal_keys_sort_by_id() {
        let a = internal_key(VECTOR_TAG, 255);
        let b = internal_key(VECTOR_TAG, 256);
        assert!(a < b);
        assert_eq!(internal_id_of(&b).unwrap(), 256);
    }

    #[test]
    fn collection_names() {
        assert!(validate_collection_name("default").is_ok());
        assert!(validate_collection_name("a/b").is_err());
        assert!(validate_collection_name("..").is_err());
        assert!(validate_collection_name("").is_err());
        for bad in ["../..", "..", ".", "a/../b", "/etc", "a\\b", "x\0y", "ok\n"] {
            assert!(validate_collection_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stored_configs_out_of_range_are_damaged_and_named() {
        let good = serde_json::to_value(CollectionConfig::new(
            4,
            PipelineId {
                encoder: crate::EncoderId {
                    model: "m".into(),
                    weights_sha256: "00".into(),
                    files_sha256: None,
                    pooling: "mean".into(),
                    max_length: 8,
                    prefixes: Default::default(),
                },
                transform: None,
                normalize: true,
            },
        ))
        .unwrap();
        assert!(stored_config("c", &serde_json::to_vec(&good).unwrap()).is_ok());
        let cases = [
            ("/hnsw/m", 0),
            ("/hnsw/m", 1),
            ("/hnsw/m", 256),
            ("/hnsw/m", 10_000),
            ("/hnsw/ef_construction", 0),
            ("/hnsw/ef_search", 0),
            ("/hnsw/ef_search", MAX_EF + 1),
            ("/dims", 0),
            ("/dims", MAX_DIMS + 1),
        ];
        for (field, value) in cases {
            let mut bad = good.clone();
            *bad.pointer_mut(field).unwrap() = value.into();
            let err = stored_config("notes", &serde_json::to_vec(&bad).unwrap()).unwrap_err().to_string();
            assert!(err.contains("collection \"notes\"") && err.contains("damaged"), "{field}={value}: {err}");
        }
        let err = stored_config("notes", b"{not json").unwrap_err().to_string();
        assert!(err.contains("collection \"notes\""), "{err}");
    }
}
