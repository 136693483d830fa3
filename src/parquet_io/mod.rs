//! Parquet export and import: a collection as one Parquet file that other engines read
//! (LanceDB, DuckDB, Spark, pandas), and Parquet files made elsewhere (Ray, Spark) loaded into a
//! collection.
//!
//! A file holds one row per vector, with the columns
//! - `id` (UTF-8, not null): the document's id;
//! - `text` (UTF-8, not null): its whole text;
//! - `metadata` (UTF-8, nullable): its metadata as JSON text (null when it has none);
//! - `passage` (UInt32, not null): the vector's passage number, 0 for a document with one vector;
//!   a document indexed as `n` passages is `n` consecutive rows numbered 0..n;
//! - `vector` (fixed-size list of `dims` Float32): the vector as stored, bit for bit;
//!
//! and these key-value metadata, which say what the vectors are:
//! `isovec.pipeline` (the [`PipelineId`] as JSON), `isovec.dims`, `isovec.metric` (`cosine`),
//! `isovec.rows`, and `isovec.sha256`, a digest of every row ([`RowDigest`]) that import checks
//! before it writes anything, so a damaged file is refused with the store unchanged; and
//! `isovec.pipeline_spec`, the collection's [`crate::PipelineSpec`] with its transform (when the
//! collection records one), which import records in a new collection, so it is searchable by
//! text with nothing else said. The spec is checked against `isovec.pipeline` (and its transform
//! against its own checksum) rather than covered by the digest, so files written before it
//! existed keep their digest.
//!
//! Import also takes files written by other tools: `vector` may be any list of Float32 (its
//! length must be the dimension), `passage`, `metadata` and the digest may be missing, and a file
//! without a `vector` column is encoded by a pipeline. Files are read and written one row group
//! at a time, so memory stays bounded by the row group size, whatever the file's size.

mod export;
mod import;

pub use export::ExportReport;
pub use import::{ImportReport, ParquetImport};

use sha2::{Digest, Sha256};

use crate::PipelineId;

/// Column of document ids.
pub const ID_COLUMN: &str = "id";
/// Column of texts.
pub const TEXT_COLUMN: &str = "text";
/// Column of metadata as JSON text.
pub const METADATA_COLUMN: &str = "metadata";
/// Column of passage numbers.
pub const PASSAGE_COLUMN: &str = "passage";
/// Column of vectors.
pub const VECTOR_COLUMN: &str = "vector";

/// Key of the pipeline id (JSON) in the file's key-value metadata.
pub const PIPELINE_KEY: &str = "isovec.pipeline";
/// Key of the collection's recorded pipeline (JSON, see [`crate::PipelineSpec`]).
pub const PIPELINE_SPEC_KEY: &str = "isovec.pipeline_spec";
/// Key of the number of dimensions.
pub const DIMS_KEY: &str = "isovec.dims";
/// Key of the metric (`cosine`).
pub const METRIC_KEY: &str = "isovec.metric";
/// Key of the number of rows.
pub const ROWS_KEY: &str = "isovec.rows";
/// Key of the rows' digest (hex sha256, see [`RowDigest`]).
pub const DIGEST_KEY: &str = "isovec.sha256";

/// Rows per row group written by export: about 13 MB of 384-dimensional vectors, the most an
/// export or import holds in memory at once.
pub const ROW_GROUP_ROWS: usize = 8_192;
/// Rows per Arrow batch, reading and writing.
const BATCH_ROWS: usize = 1_024;

/// What a Parquet file says about its vectors.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    /// The pipeline that made the vectors (`None` in a file without it, which may not have vectors).
    pub pipeline: Option<PipelineId>,
    /// The recorded pipeline of the collection exported, if it had one (checked against `pipeline`).
    pub spec: Option<crate::PipelineSpec>,
    /// Number of dimensions of the vectors; `None` in a file without vectors.
    pub dims: Option<usize>,
    /// Number of rows (vectors, or texts in a file without vectors).
    pub rows: u64,
    /// Whether the file has a `vector` column.
    pub has_vectors: bool,
    /// Whether the file carries isovec's digest (files isovec exported do).
    pub has_digest: bool,
}

/// sha256 over what a file says its vectors are and over its rows: first the values of
/// [`PIPELINE_KEY`], [`DIMS_KEY`] and [`METRIC_KEY`], then for each row, in order, its id, text and
/// metadata, each of these strings as a u64 little-endian byte length and the UTF-8 bytes (a null
/// metadata: length `u64::MAX`, no bytes), its passage number (u32 LE) and its vector (f32 LE each).
pub struct RowDigest(Sha256);

impl RowDigest {
    /// A digest that starts with the file's pipeline, dimension and metric values.
    pub fn new(pipeline: &str, dims: &str, metric: &str) -> Self {
        let mut digest = RowDigest(Sha256::new());
        for s in [pipeline, dims, metric] {
            digest.bytes(s.as_bytes());
        }
        digest
    }

    /// Adds one row.
    pub fn row(&mut self, id: &str, text: &str, metadata: Option<&str>, passage: u32, vector: &[f32]) {
        for s in [id, text] {
            self.bytes(s.as_bytes());
        }
        match metadata {
            Some(m) => self.bytes(m.as_bytes()),
            None => self.0.update(u64::MAX.to_le_bytes()),
        }
        self.0.update(passage.to_le_bytes());
        for x in vector {
            self.0.update(x.to_le_bytes());
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
    }

    /// The digest, hex.
    pub fn finish(self) -> String {
        hex::encode(self.0.finalize())
    }
}
