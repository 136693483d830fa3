//! A collection: documents and vectors in sled, their HNSW index in memory, their full-text
//! index in tantivy, and every operation on them, in parts:
//! - `open`: opening a collection, its index from a snapshot and a replay, or rebuilt;
//! - `write`: upsert, texts to encode, delete: the write path;
//! - `search`: dense, lexical and hybrid search, exact search;
//! - `documents`: documents by id or by filter, in-place updates, many queries at once;
//! - `maintenance`: compaction, snapshots, counters, and dropping a collection;
//! - `recorded_pipeline`: the pipeline recorded with the collection.
//!
//! This file holds the public types, the collection's state and its locks. Invariants
//! enforced here:
//! - one writer at a time: every write, compaction and snapshot holds the `writer` mutex
//!   (`Collection::writer`), which also checks, once held, that the collection was not
//!   dropped meanwhile, so a dropped collection takes no more writes;
//! - the in-memory state (`state`) is read and changed only under its lock, so a search holds
//!   one state from start to end;
//! - internal ids are fresh sequence numbers, never reused: a batch also records the
//!   tombstones of points lost to a refused write, and a sequence number past them
//!   (`WriterState::batch`).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

use crate::progress::Progress;
use crate::store::durable::Durable;
use crate::store::filter::Filter;
use crate::store::fusion::{Fusion, SearchMode, DEFAULT_DEPTH};
use crate::store::index::Index;
use crate::store::layout::{encode_u64, internal_key, CollectionConfig, SEQ_KEY, TOMB_TAG};
use crate::store::metadata_index::Metadata;
use crate::store::text_index::{TextIndex, TextIndexStats};
use crate::{Error, Pipeline, Result};

mod advised_search;
mod documents;
mod maintenance;
mod open;
mod recorded_pipeline;
mod search;
mod write;

pub use advised_search::AdvisedSearch;
pub use documents::{DocUpdate, ListParams};
pub(crate) use recorded_pipeline::check_spec;
pub use search::{check_query_text, MAX_QUERY_BYTES};
pub use write::MAX_TEXT_BYTES;

/// A document as given to [`Collection::upsert`] or returned by [`Collection::get`].
#[derive(Clone, Debug, PartialEq)]
pub struct Doc {
    /// External id, unique within the collection.
    pub id: String,
    /// Text the vector was computed from.
    pub text: String,
    /// Metadata: a JSON object, or null.
    pub metadata: Value,
    /// The vector (any non-zero length; compared by cosine).
    pub vector: Vec<f32>,
}

/// A document without its vector, as given to [`Collection::add_texts`].
#[derive(Clone, Debug, PartialEq)]
pub struct TextDoc {
    /// External id, unique within the collection.
    pub id: String,
    /// Text to encode (must not be blank).
    pub text: String,
    /// Metadata: a JSON object, or null.
    pub metadata: Value,
}

/// A document with one vector per passage, as given to [`Collection::upsert_passages`].
#[derive(Clone, Debug, PartialEq)]
pub struct PassagesDoc {
    /// External id, unique within the collection.
    pub id: String,
    /// The whole text (the full-text index holds it whole).
    pub text: String,
    /// Metadata: a JSON object, or null.
    pub metadata: Value,
    /// One vector per passage (at least one); the document's dense score is its best one's.
    pub vectors: Vec<Vec<f32>>,
}

/// What an upsert did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpsertReport {
    /// Documents whose id was new.
    pub inserted: usize,
    /// Documents that replaced one with the same id.
    pub replaced: usize,
    /// Ids given more than once in the batch (the last occurrence was kept).
    pub duplicate_ids: Vec<String>,
    /// Vectors written: one per document, more for documents indexed as passages.
    pub passages: usize,
    /// Texts longer than the encoder's limit whose tail was not encoded (always 0 when they
    /// are split into passages; unknown, so 0, for an embedder that does not show its tokens).
    pub truncated: usize,
}

/// How to search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchParams {
    /// Number of results wanted.
    pub k: usize,
    /// HNSW candidate list width; `None` uses the collection's default.
    pub ef: Option<usize>,
    /// Only documents whose metadata match (in every mode).
    pub filter: Option<Filter>,
    /// Dense (vectors), lexical (BM25) or hybrid (both, fused).
    pub mode: SearchMode,
    /// How a hybrid search fuses its two rankings.
    pub fusion: Fusion,
    /// Candidates each side of a hybrid search retrieves before fusing; `None`:
    /// [`DEFAULT_DEPTH`] (at least `k`).
    pub depth: Option<usize>,
}

impl SearchParams {
    /// The `k` best, dense, default width, no filter.
    pub fn k(k: usize) -> Self {
        SearchParams { k, ef: None, filter: None, mode: SearchMode::Dense, fusion: Fusion::default(), depth: None }
    }

    /// The same, in `mode`.
    pub fn with_mode(mut self, mode: SearchMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same, with `filter`.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = Some(filter);
        self
    }

    /// The same, fusing with `fusion`.
    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }

    /// The same, with HNSW width `ef`.
    pub fn with_ef(mut self, ef: usize) -> Self {
        self.ef = Some(ef);
        self
    }

    fn side_depth(&self) -> usize {
        self.depth.unwrap_or(DEFAULT_DEPTH).max(self.k)
    }

    /// The same, with `k` and the depth at most `documents` and `ef` at most `points`: no search
    /// can return more than the collection holds, and every one of these sizes an allocation, so
    /// a huge value (`k = 10⁹`, `usize::MAX`) must not reach one. Every search goes through here.
    fn bounded(&self, documents: u64, points: u64) -> SearchParams {
        let cap = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let documents = cap(documents);
        SearchParams {
            k: self.k.min(documents),
            ef: self.ef.map(|ef| ef.min(cap(points).max(1))),
            depth: Some(self.side_depth().min(documents)),
            ..self.clone()
        }
    }
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// External id.
    pub id: String,
    /// Dense: cosine similarity to the query; lexical: BM25; hybrid: the fused score.
    pub score: f32,
    /// The document text.
    pub text: String,
    /// The document metadata (null if none).
    pub metadata: Value,
}

/// Counters describing a collection.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CollectionStats {
    /// Collection name.
    pub name: String,
    /// Live documents.
    pub documents: u64,
    /// Live vectors: one per document, more for documents indexed as passages.
    pub points: u64,
    /// Points in the HNSW graph, deleted ones included.
    pub indexed_points: usize,
    /// Deleted or replaced points still in the graph.
    pub tombstones: usize,
    /// Vector dimension.
    pub dims: usize,
    /// The pipeline, as text.
    pub pipeline: String,
    /// Last sequence number written.
    pub seq: u64,
    /// Sequence number covered by the snapshot on disk, if any.
    pub snapshot_seq: Option<u64>,
    /// The full-text index: documents, bytes on disk, sequence number covered.
    pub text_index: TextIndexStats,
    /// The last trouble keeping the derived state (snapshot, compaction, text index) up to date
    /// after a durable write, if any since the collection was opened.
    pub maintenance_error: Option<String>,
}

/// A handle to one collection; cheap to clone, shareable between threads.
#[derive(Clone)]
pub struct Collection {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    config: CollectionConfig,
    db: sled::Db,
    tree: sled::Tree,
    index_dir: PathBuf,
    writer: Mutex<WriterState>,
    state: RwLock<State>,
    text: TextIndex,
    maintenance_error: Mutex<Option<String>>,
    dropped: AtomicBool,
    /// The store's advisory lock, held while any handle lives.
    _lock: Arc<std::fs::File>,
    /// Told about index rebuilds.
    progress: Arc<dyn Progress>,
    /// Makes a flushed write durable (fsync), shared with the store.
    durable: Arc<Durable>,
    /// How the recorded pipeline runs when opened.
    encoder_options: crate::encoder::EncoderOptions,
    /// The recorded pipeline, once opened ([`Collection::pipeline`]).
    pipeline: Mutex<Option<Arc<Pipeline>>>,
}

/// What every collection of a store shares with it.
pub(crate) struct Shared {
    pub db: sled::Db,
    /// The store's advisory lock.
    pub lock: Arc<std::fs::File>,
    pub progress: Arc<dyn Progress>,
    pub durable: Arc<Durable>,
    pub encoder_options: crate::encoder::EncoderOptions,
}

/// Owned by the single writer.
pub(crate) struct WriterState {
    /// Sequence number covered by the snapshot recorded in sled.
    snapshot_seq: Option<u64>,
    /// Internal ids of points that entered the graph for a write the database then refused:
    /// tombstones in memory until the next batch makes them durable ([`WriterState::batch`]).
    lost: Vec<u64>,
}

impl WriterState {
    /// A new database batch; it also records the tombstones of lost points, if any, and a
    /// sequence number past them (a write's own, larger one replaces it), so their internal
    /// ids are never used again, not even after a reopen from a snapshot that holds them.
    fn batch(&self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        if let Some(&last) = self.lost.iter().max() {
            for &iid in &self.lost {
                batch.insert(&internal_key(TOMB_TAG, iid), &[]);
            }
            batch.insert(SEQ_KEY, &encode_u64(last));
        }
        batch
    }
}

/// In-memory derived state, read by searches.
struct State {
    index: Index,
    tombstones: HashSet<u64>,
    metadata: Metadata,
    /// Internal id of a passage after the first → its document's first internal id.
    owner: HashMap<u64, u64>,
    /// Documents a write in progress replaces or deletes, by their visible first internal id:
    /// sled no longer holds them, but searches still see them until the write's switch.
    retiring: HashMap<u64, Retiring>,
    count: u64,
    /// Live vectors (at least `count`).
    points: u64,
    seq: u64,
}

/// A visible document that a write in progress retires, as a search reports it.
struct Retiring {
    id: String,
    text: String,
}

impl Collection {
    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The collection's configuration.
    pub fn config(&self) -> &CollectionConfig {
        &self.inner.config
    }

    fn check_alive(&self) -> Result<()> {
        if self.inner.dropped.load(Ordering::SeqCst) {
            return Err(Error::Dropped { collection: self.inner.name.clone() });
        }
        Ok(())
    }

    /// The writer lock of a collection that is not dropped (checked once the lock is held).
    fn writer(&self) -> Result<MutexGuard<'_, WriterState>> {
        let writer = self.inner.writer.lock().map_err(|_| poisoned())?;
        self.check_alive()?;
        Ok(writer)
    }

    fn read_state(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.inner.state.read().map_err(|_| poisoned())
    }

    fn write_state(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.inner.state.write().map_err(|_| poisoned())
    }
}

fn poisoned() -> Error {
    Error::Poisoned("holding the collection's lock")
}
