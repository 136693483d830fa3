//! A collection: documents and vectors in sled, their HNSW index in memory, their full-text
//! index in tantivy, and every operation on them (upsert, delete, get, search in three modes,
//! compact, snapshot).
//!
//! Invariants, enforced here:
//! - one writer at a time (`writer` mutex); a write is applied to sled in one atomic batch and
//!   flushed, and fsynced (`store::durable`), before it becomes visible in memory and before
//!   the call returns;
//! - the in-memory state (`state`) changes under its write lock in one step per write, so a
//!   search sees a write entirely or not at all: new points are inserted into the graph first,
//!   under the read lock and while sled writes the batch, and stay invisible (internal id above
//!   `State::seq`) until that step; if sled refuses the batch they stay in the graph as
//!   tombstones, which the next batch makes durable, so their internal ids are never reused;
//! - internal ids are fresh sequence numbers, never reused: a replaced or deleted internal id
//!   becomes a tombstone until a compaction rebuilds the index without it;
//! - a document indexed as passages owns one internal id per passage, consecutive, and every
//!   write, delete and tombstone covers all of them; a dense search ranks a document by its best
//!   passage and reports it once, under its first internal id (the one the text index knows);
//! - a write is acknowledged once sled has it: trouble in the derived state that follows (HNSW
//!   snapshot, compaction, text index) is logged and kept in [`CollectionStats::maintenance_error`],
//!   never reported as a failed write — the next open replays or rebuilds from sled;
//! - every search result is checked against sled and the visible state, so a deleted or replaced
//!   document never appears, whichever index proposed it; a document that a write in progress
//!   replaces or deletes is reported as it was (`State::retiring`) until the write's switch, so it
//!   never vanishes from searches meanwhile, not even from lexical ones (new texts enter the text
//!   index before the switch, old ones leave it after);
//! - searches are bounded by what the collection holds (`SearchParams::bounded`): k and depth by
//!   its documents, ef by its points, whatever the caller asked;
//! - a dropped collection takes no more writes: the drop waits for the writer lock and marks the
//!   collection dropped under it, and every writer checks that mark once it holds the lock.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde_json::Value;

use crate::progress::Progress;
use crate::store::durable::Durable;
use crate::store::filter::Filter;
use crate::store::fusion::{fuse, Fusion, SearchMode, DEFAULT_DEPTH};
use crate::store::index::Index;
use crate::store::layout::{
    self, db_error, decode_u64, doc_key, encode_u64, internal_id_of, internal_key, CollectionConfig, DocRecord,
    VectorRecord, COUNT_KEY, MANIFEST_KEY, META_TAG, PASSAGE_TAG, POINTS_KEY, SEQ_KEY, TOMB_TAG, VECTOR_TAG,
};
use crate::store::metadata_index::Metadata;
use crate::store::passages::{self, Passages};
use crate::store::snapshot::{self, Manifest};
use crate::store::text_index::{TextIndex, TextIndexStats};
use crate::vector::{exact_top_k, normalized, Scored};
use crate::{Embedder, Error, Pipeline, Result};

mod documents;
mod recorded_pipeline;
pub use documents::{DocUpdate, ListParams};
pub(crate) use recorded_pipeline::check_spec;

/// A filter allowing at most this share of the collection is answered by an exact scan.
const EXACT_SCAN_SHARE: f64 = 0.05;
/// Reading one vector from sled costs about as much as looking at this many nodes of the
/// index's in-memory walk (3.7 µs against 9 ns, `isovec bench filter` on 100k documents).
const SLED_READ_IN_NODES: usize = 400;
/// Compaction starts by itself when tombstones exceed this share of the indexed points...
const COMPACT_SHARE: f64 = 0.2;
/// ...and number at least this many.
const COMPACT_MIN_TOMBSTONES: usize = 64;
/// A snapshot is written by itself when this many writes are not covered by the last one...
const AUTO_SNAPSHOT_MIN: u64 = 10_000;
/// Rebuilds of at least this many vectors are told to the progress.
const PROGRESS_MIN: u64 = 10_000;
/// Vectors read from sled and inserted per step during a rebuild.
const REBUILD_CHUNK: usize = 8_192;
/// Texts encoded per call to the embedder in [`Collection::add_texts`].
const EMBED_CHUNK: usize = 64;

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

/// One document of a write: borrowed parts, one vector or several (passages).
struct Entry<'a> {
    id: &'a str,
    text: &'a str,
    metadata: &'a Value,
    vectors: Vec<&'a [f32]>,
}

impl Collection {
    /// Opens a collection's tree and brings its index up to date (snapshot + replay, or rebuild).
    pub(crate) fn open(
        name: &str,
        config: CollectionConfig,
        shared: Shared,
        tree: sled::Tree,
        index_dir: PathBuf,
    ) -> Result<Collection> {
        let Shared { db, lock, progress, durable, encoder_options } = shared;
        let seq = decode_u64(tree.get(SEQ_KEY).map_err(db_error)?.as_deref())?;
        let count = decode_u64(tree.get(COUNT_KEY).map_err(db_error)?.as_deref())?;
        // Stores written before passages existed have one vector per document and no counter.
        let points = match tree.get(POINTS_KEY).map_err(db_error)? {
            Some(bytes) => decode_u64(Some(&bytes))?,
            None => count,
        };
        let mut owner = HashMap::new();
        for kv in tree.scan_prefix([PASSAGE_TAG]) {
            let (k, v) = kv.map_err(db_error)?;
            owner.insert(internal_id_of(&k)?, decode_u64(Some(&v))?);
        }
        let mut tombstones = HashSet::new();
        for kv in tree.scan_prefix([TOMB_TAG]) {
            let (k, _) = kv.map_err(db_error)?;
            tombstones.insert(internal_id_of(&k)?);
        }
        let mut metadata = Metadata::default();
        for kv in tree.scan_prefix([META_TAG]) {
            let (k, v) = kv.map_err(db_error)?;
            let value: Value = serde_json::from_slice(&v).map_err(|_| layout::damaged("metadata is not JSON"))?;
            metadata.insert(internal_id_of(&k)?, value);
        }
        let manifest: Option<Manifest> = match tree.get(MANIFEST_KEY).map_err(db_error)? {
            None => None,
            Some(bytes) => match serde_json::from_slice(&bytes) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::warn!("collection {name}: snapshot manifest unreadable ({e}); rebuilding");
                    None
                }
            },
        };
        let mut loaded = None;
        if let Some(m) = &manifest {
            match snapshot::load(&index_dir, m) {
                Ok(index) => loaded = Some((index, m.clone())),
                Err(e) => tracing::warn!("collection {name}: {e}; rebuilding the index from the database"),
            }
        }
        let rebuilt = loaded.is_none();
        let (index, snapshot_seq) = match loaded {
            Some((index, m)) => {
                // Writes newer than the snapshot: live vectors with a larger internal id.
                let start = internal_key(VECTOR_TAG, m.seq.saturating_add(1));
                let end = internal_key(VECTOR_TAG, u64::MAX);
                insert_range(&index, tree.range(start..=end), 0, name, progress.as_ref())?;
                snapshot::remove_stale(&index_dir, Some(&m.folder));
                (index, Some(m.seq))
            }
            None => {
                let index = Index::new(&config.hnsw, config.dims, points as usize)?;
                insert_range(&index, tree.scan_prefix([VECTOR_TAG]), points, name, progress.as_ref())?;
                (index, None)
            }
        };
        let (text, _) = TextIndex::open(&index_dir, &tree, seq, config.lexical, name, progress.as_ref())?;
        let collection = Collection {
            inner: Arc::new(Inner {
                name: name.to_string(),
                config,
                db,
                tree,
                index_dir,
                writer: Mutex::new(WriterState { snapshot_seq, lost: Vec::new() }),
                state: RwLock::new(State {
                    index,
                    tombstones,
                    metadata,
                    owner,
                    retiring: HashMap::new(),
                    count,
                    points,
                    seq,
                }),
                text,
                maintenance_error: Mutex::new(None),
                dropped: AtomicBool::new(false),
                _lock: lock,
                progress,
                durable,
                encoder_options,
                pipeline: Mutex::new(None),
            }),
        };
        if rebuilt && count > 0 {
            // The rebuilt index holds no tombstoned point: record it so the next open is fast.
            let mut writer = collection.writer()?;
            if let Err(e) = collection.persist_snapshot(&mut writer, true) {
                tracing::warn!("collection {name}: could not write a snapshot after rebuild: {e}");
            }
        }
        Ok(collection)
    }

    /// The collection's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The collection's configuration.
    pub fn config(&self) -> &CollectionConfig {
        &self.inner.config
    }

    /// Adds or replaces documents by id in one durable batch; the last of repeated ids wins.
    pub fn upsert(&self, docs: &[Doc]) -> Result<UpsertReport> {
        let entries: Vec<Entry<'_>> = docs
            .iter()
            .map(|d| Entry { id: &d.id, text: &d.text, metadata: &d.metadata, vectors: vec![d.vector.as_slice()] })
            .collect();
        self.upsert_entries(&entries)
    }

    /// Like [`Collection::upsert`], for documents with one vector per passage.
    pub fn upsert_passages(&self, docs: &[PassagesDoc]) -> Result<UpsertReport> {
        let entries: Vec<Entry<'_>> = docs
            .iter()
            .map(|d| Entry {
                id: &d.id,
                text: &d.text,
                metadata: &d.metadata,
                vectors: d.vectors.iter().map(Vec::as_slice).collect(),
            })
            .collect();
        self.upsert_entries(&entries)
    }

    fn upsert_entries(&self, docs: &[Entry<'_>]) -> Result<UpsertReport> {
        self.check_alive()?;
        let dims = self.inner.config.dims;
        let mut normalized_vectors = Vec::with_capacity(docs.len());
        for doc in docs {
            if doc.id.is_empty() {
                return Err(Error::InvalidInput("a document has an empty id; give every document an id".into()));
            }
            check_text(doc.id, doc.text)?;
            if doc.vectors.is_empty() || u32::try_from(doc.vectors.len()).is_err() {
                return Err(Error::InvalidInput(format!(
                    "document {:?} has {} vectors; give it one per passage, at least one",
                    doc.id,
                    doc.vectors.len()
                )));
            }
            if !(doc.metadata.is_object() || doc.metadata.is_null()) {
                return Err(Error::InvalidInput(format!(
                    "document {:?}: metadata must be a JSON object or null, got {}",
                    doc.id, doc.metadata
                )));
            }
            let mut vectors = Vec::with_capacity(doc.vectors.len());
            for vector in &doc.vectors {
                if vector.len() != dims {
                    return Err(Error::Dimension { expected: dims, found: vector.len() });
                }
                vectors
                    .push(normalized(vector).map_err(|e| Error::InvalidInput(format!("document {:?}: {e}", doc.id)))?);
            }
            normalized_vectors.push(vectors);
        }
        // Last occurrence of each id wins; earlier ones are reported.
        let mut last: HashMap<&str, usize> = HashMap::with_capacity(docs.len());
        let mut duplicate_ids = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            if last.insert(doc.id, i).is_some() {
                duplicate_ids.push(doc.id.to_string());
            }
        }
        duplicate_ids.sort();
        duplicate_ids.dedup();

        let mut writer = self.writer()?;
        let tree = &self.inner.tree;
        let (mut seq, mut count, mut points) = {
            let st = self.read_state()?;
            (st.seq, st.count, st.points)
        };
        let mut batch = writer.batch();
        let mut report = UpsertReport { duplicate_ids, ..Default::default() };
        let mut new_points = Vec::with_capacity(last.len());
        let mut new_texts = Vec::with_capacity(last.len());
        let mut new_meta = Vec::new();
        let mut new_owner = Vec::new();
        // Every retired internal id (tombstones), and the first of each retired document (text index).
        let mut old_ids = Vec::new();
        let mut old_docs = Vec::new();
        let mut retiring = HashMap::new();
        for (i, doc) in docs.iter().enumerate() {
            if last.get(doc.id) != Some(&i) {
                continue;
            }
            let first = seq + 1;
            let n = doc.vectors.len() as u64;
            seq += n;
            let key = doc_key(doc.id);
            match tree.get(&key).map_err(db_error)? {
                Some(old) => {
                    let old = DocRecord::decode(&old)?;
                    for iid in old.internal_ids() {
                        remove_internal(&mut batch, iid);
                        old_ids.push(iid);
                    }
                    old_docs.push(old.internal_id);
                    points = points.saturating_sub(u64::from(old.passages));
                    report.replaced += 1;
                    retiring.insert(old.internal_id, Retiring { id: doc.id.to_string(), text: old.text });
                }
                None => {
                    count += 1;
                    report.inserted += 1;
                }
            }
            let record = DocRecord { internal_id: first, passages: n as u32, text: doc.text.to_string() };
            batch.insert(key, record.encode());
            let with_meta = has_metadata(doc.metadata);
            let meta_bytes = if with_meta { Some(serde_json::to_vec(doc.metadata)?) } else { None };
            for (j, vector) in std::mem::take(&mut normalized_vectors[i]).into_iter().enumerate() {
                let iid = first + j as u64;
                batch.insert(&internal_key(VECTOR_TAG, iid), VectorRecord::encode(doc.id, doc.vectors[j]));
                if let Some(bytes) = &meta_bytes {
                    batch.insert(&internal_key(META_TAG, iid), bytes.as_slice());
                    new_meta.push((iid, doc.metadata.clone()));
                }
                if j > 0 {
                    batch.insert(&internal_key(PASSAGE_TAG, iid), &encode_u64(first));
                    new_owner.push((iid, first));
                }
                new_points.push((vector, iid));
            }
            points += n;
            report.passages += n as usize;
            new_texts.push((first, doc.text));
        }
        batch.insert(SEQ_KEY, &encode_u64(seq));
        batch.insert(COUNT_KEY, &encode_u64(count));
        batch.insert(POINTS_KEY, &encode_u64(points));
        // Replaced documents stay visible, as they were, until the switch below.
        self.write_state()?.retiring = retiring;
        // The batch goes to the database on another thread while its points enter the graph
        // (searches go on; they ignore internal ids above the visible sequence number until the
        // switch below, which waits for the database).
        let (committed, inserted) = {
            let st = self.read_state()?;
            let writer = &mut *writer;
            std::thread::scope(|s| {
                let commit = s.spawn(move || self.commit(writer, batch));
                let inserted = st.index.insert(&new_points);
                let committed =
                    commit.join().unwrap_or_else(|_| Err(Error::Background("the database write panicked".into())));
                (committed, inserted)
            })
        };
        if let Err(e) = committed {
            // The graph holds points the database refused: hide them for good.
            let lost: Vec<u64> = new_points.iter().map(|(_, iid)| *iid).collect();
            let mut st = self.write_state()?;
            st.tombstones.extend(lost.iter().copied());
            st.retiring.clear();
            st.seq = seq;
            writer.lost.extend(lost);
            return Err(e);
        }
        // The vectors were checked above, so the insert fails only past the graph's capacity;
        // the write is durable, so that is maintenance trouble (a reopen fails the same way).
        if let Err(e) = inserted {
            self.maintenance_failed(&e);
        }
        // The new texts reach the text index before the switch and the replaced ones leave it
        // after (`after_write`), so a lexical search finds a replaced document throughout: the
        // old version until the switch, the new one from then on (each hidden while invisible).
        if let Err(e) = self.inner.text.add(&new_texts) {
            self.maintenance_failed(&e);
        }
        {
            let mut st = self.write_state()?;
            st.retiring.clear();
            st.retire(&old_ids);
            for (iid, value) in new_meta {
                st.metadata.insert(iid, value);
            }
            st.owner.extend(new_owner);
            st.count = count;
            st.points = points;
            st.seq = seq;
        }
        self.after_write(&mut writer, &old_docs, seq);
        Ok(report)
    }

    /// Encodes texts with the collection's recorded pipeline ([`Collection::pipeline`]) and
    /// upserts them (one durable batch); a text longer than the encoder's limit loses its tail,
    /// counted in [`UpsertReport::truncated`].
    pub fn add_texts(&self, docs: &[TextDoc]) -> Result<UpsertReport> {
        self.add_texts_with(self.pipeline()?.as_ref(), docs)
    }

    /// Like [`Collection::add_texts`], with `embedder` (which must make the collection's
    /// vectors; a collection without a record of its pipeline records `embedder`'s).
    pub fn add_texts_with(&self, embedder: &dyn Embedder, docs: &[TextDoc]) -> Result<UpsertReport> {
        self.add_texts_split(embedder, docs, None)
    }

    /// Like [`Collection::add_texts`], but a text longer than a passage is split into
    /// overlapping passages, each encoded whole: nothing is cut, and the document's dense score
    /// is its best passage's.
    pub fn add_texts_in_passages(&self, docs: &[TextDoc], passages: Passages) -> Result<UpsertReport> {
        self.add_texts_in_passages_with(self.pipeline()?.as_ref(), docs, passages)
    }

    /// Like [`Collection::add_texts_in_passages`], with `embedder`, which must show its tokens
    /// ([`Embedder::token_spans`]).
    pub fn add_texts_in_passages_with(
        &self,
        embedder: &dyn Embedder,
        docs: &[TextDoc],
        passages: Passages,
    ) -> Result<UpsertReport> {
        self.add_texts_split(embedder, docs, Some(passages))
    }

    fn add_texts_split(
        &self,
        embedder: &dyn Embedder,
        docs: &[TextDoc],
        split: Option<Passages>,
    ) -> Result<UpsertReport> {
        self.check_pipeline(embedder)?;
        for doc in docs {
            check_text(&doc.id, &doc.text)?;
            if doc.text.trim().is_empty() {
                return Err(Error::InvalidInput(format!(
                    "document {:?} has an empty text; remove it or give it some text",
                    doc.id
                )));
            }
        }
        // Each document's pieces: the whole text, or its passages. Only splitting needs every
        // token of a text; a text encoded whole is tokenized as far as the encoder reads it.
        let mut pieces: Vec<Vec<&str>> = Vec::with_capacity(docs.len());
        for doc in docs {
            match split {
                Some(p) => {
                    let Some(tokens) = embedder.token_spans(&doc.text)? else {
                        return Err(Error::InvalidInput(format!(
                            "the embedder of {} does not show its tokens, so texts cannot be split into passages; index them whole",
                            embedder.id()
                        )));
                    };
                    let (length, stride) = p.resolve(tokens.capacity)?;
                    let ranges = passages::split(&doc.text, &tokens, length, stride);
                    pieces.push(ranges.into_iter().map(|r| &doc.text[r]).collect());
                }
                None => pieces.push(vec![doc.text.as_str()]),
            }
        }
        let flat: Vec<&str> = pieces.iter().flatten().copied().collect();
        let mut vectors = Vec::with_capacity(flat.len());
        // Passages are cut to fit, so only texts encoded whole count as truncated.
        let mut truncated = 0;
        for chunk in flat.chunks(EMBED_CHUNK) {
            let embedded = embedder.embed_counting_cuts(chunk)?;
            if split.is_none() {
                truncated += embedded.truncated;
            }
            let got = embedded.vectors;
            if got.len() != chunk.len() {
                return Err(Error::Model(format!(
                    "the embedder returned {} vectors for {} texts",
                    got.len(),
                    chunk.len()
                )));
            }
            vectors.extend(got);
        }
        let mut vectors = vectors.into_iter();
        let full: Vec<PassagesDoc> = docs
            .iter()
            .zip(&pieces)
            .map(|(doc, p)| PassagesDoc {
                id: doc.id.clone(),
                text: doc.text.clone(),
                metadata: doc.metadata.clone(),
                vectors: vectors.by_ref().take(p.len()).collect(),
            })
            .collect();
        let mut report = self.upsert_passages(&full)?;
        report.truncated = truncated;
        Ok(report)
    }

    /// Deletes documents by id in one durable batch; returns how many existed.
    pub fn delete<S: AsRef<str>>(&self, ids: &[S]) -> Result<usize> {
        self.check_alive()?;
        let mut writer = self.writer()?;
        let tree = &self.inner.tree;
        let (mut seq, mut count, mut points) = {
            let st = self.read_state()?;
            (st.seq, st.count, st.points)
        };
        let mut batch = writer.batch();
        let mut removed = Vec::new();
        let mut removed_docs = Vec::new();
        let mut retiring = HashMap::new();
        let mut seen = HashSet::new();
        for id in ids {
            let id = id.as_ref();
            if !seen.insert(id) {
                continue;
            }
            let key = doc_key(id);
            if let Some(old) = tree.get(&key).map_err(db_error)? {
                let old = DocRecord::decode(&old)?;
                seq += 1;
                count = count.saturating_sub(1);
                points = points.saturating_sub(u64::from(old.passages));
                batch.remove(key);
                for iid in old.internal_ids() {
                    remove_internal(&mut batch, iid);
                    removed.push(iid);
                }
                removed_docs.push(old.internal_id);
                retiring.insert(old.internal_id, Retiring { id: id.to_string(), text: old.text });
            }
        }
        if removed_docs.is_empty() {
            return Ok(0);
        }
        batch.insert(SEQ_KEY, &encode_u64(seq));
        batch.insert(COUNT_KEY, &encode_u64(count));
        batch.insert(POINTS_KEY, &encode_u64(points));
        // Deleted documents stay visible, as they were, until the switch below.
        self.write_state()?.retiring = retiring;
        let committed = self.commit(&mut writer, batch);
        if committed.is_err() {
            self.write_state()?.retiring.clear();
        }
        committed?;
        {
            let mut st = self.write_state()?;
            st.retiring.clear();
            st.retire(&removed);
            st.count = count;
            st.points = points;
            st.seq = seq;
        }
        self.after_write(&mut writer, &removed_docs, seq);
        Ok(removed_docs.len())
    }

    /// The document stored under `id`, if any; a document indexed as passages comes with its
    /// first passage's vector.
    pub fn get(&self, id: &str) -> Result<Option<Doc>> {
        self.check_alive()?;
        let tree = &self.inner.tree;
        let Some(rec) = tree.get(doc_key(id)).map_err(db_error)? else {
            return Ok(None);
        };
        let rec = DocRecord::decode(&rec)?;
        Ok(Some(Doc {
            id: id.to_string(),
            metadata: self.stored_metadata(rec.internal_id)?,
            vector: self.stored_vector(rec.internal_id)?,
            text: rec.text,
        }))
    }

    /// Number of live documents.
    pub fn count(&self) -> Result<u64> {
        Ok(self.read_state()?.count)
    }

    /// Every live document id, in byte order.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for kv in self.inner.tree.scan_prefix([layout::DOC_TAG]) {
            let (k, _) = kv.map_err(db_error)?;
            out.push(String::from_utf8(k[1..].to_vec()).map_err(|_| layout::damaged("id is not UTF-8"))?);
        }
        Ok(out)
    }

    /// Readies the collection for searches; nothing is left to do since the graph is searched
    /// as it is built (earlier versions took a copy of it here). Kept for callers of those.
    pub fn prepare_search(&self) -> Result<()> {
        self.check_alive()
    }

    /// The `k` documents most similar to `query` (cosine) among those the filter allows.
    ///
    /// Dense mode only: lexical and hybrid searches need the query's text
    /// ([`Collection::search_text`], [`Collection::search_lexical`], [`Collection::search_hybrid`]).
    pub fn search(&self, query: &[f32], params: &SearchParams) -> Result<Vec<Hit>> {
        self.check_alive()?;
        if params.mode != SearchMode::Dense {
            return Err(Error::InvalidInput(format!(
                "a {} search needs the query text; use search_text, search_lexical or search_hybrid",
                params.mode.name()
            )));
        }
        let q = self.query_vector(query)?;
        let st = self.read_state()?;
        let params = &params.bounded(st.count, st.points);
        if params.k == 0 {
            return Ok(Vec::new());
        }
        // A few spare candidates cover documents deleted in sled by a writer that has not yet
        // updated the in-memory state (they are skipped in `hits`).
        let scored = self.dense_scored(&st, &q, params.k + 4, params)?;
        self.hits(&st, scored, params.k)
    }

    /// The `k` documents most similar to `query` (cosine) by a scan of every vector, no index
    /// and no filter: the exact answer that approximate searches are measured against. A
    /// document indexed as passages scores as its best passage.
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        self.check_alive()?;
        let q = self.query_vector(query)?;
        let st = self.read_state()?;
        let k = k.min(usize::try_from(st.count).unwrap_or(usize::MAX));
        // Spare candidates, as in `search`; every point when passages may repeat a document.
        let want = if st.owner.is_empty() { k + 4 } else { st.points as usize };
        let mut seen = HashSet::new();
        let scored: Vec<Scored> = self
            .exact_all(&q, want, st.seq)?
            .into_iter()
            .filter_map(|s| {
                let first = st.owner.get(&s.internal_id).copied().unwrap_or(s.internal_id);
                seen.insert(first).then_some(Scored { internal_id: first, score: s.score })
            })
            .collect();
        self.hits(&st, scored, k)
    }

    /// Calls `f` with every live document and all its vectors as stored, in id byte order;
    /// writes wait until it returns, so `f` sees one state of the collection.
    pub(crate) fn for_each_document(&self, f: &mut dyn FnMut(PassagesDoc) -> Result<()>) -> Result<()> {
        self.check_alive()?;
        let writer = self.writer()?;
        self.for_each_document_locked(&writer, f)
    }

    /// [`Collection::for_each_document`] for the holder of the writer lock ([`Collection::hold_writes`]).
    pub(crate) fn for_each_document_locked(
        &self,
        _writer: &MutexGuard<'_, WriterState>,
        f: &mut dyn FnMut(PassagesDoc) -> Result<()>,
    ) -> Result<()> {
        let tree = &self.inner.tree;
        for kv in tree.scan_prefix([layout::DOC_TAG]) {
            let (key, value) = kv.map_err(db_error)?;
            let id = String::from_utf8(key[1..].to_vec()).map_err(|_| layout::damaged("id is not UTF-8"))?;
            let rec = DocRecord::decode(&value)?;
            let mut vectors = Vec::with_capacity(rec.passages as usize);
            for iid in rec.internal_ids() {
                vectors.push(self.stored_vector(iid)?);
            }
            let metadata = self.stored_metadata(rec.internal_id)?;
            f(PassagesDoc { id, text: rec.text, metadata, vectors })?;
        }
        Ok(())
    }

    /// The vector stored under internal id `iid`, which must be live.
    fn stored_vector(&self, iid: u64) -> Result<Vec<f32>> {
        let bytes = self
            .inner
            .tree
            .get(internal_key(VECTOR_TAG, iid))
            .map_err(db_error)?
            .ok_or_else(|| layout::damaged("document without vector"))?;
        Ok(VectorRecord::decode(&bytes)?.vector)
    }

    /// The metadata stored under internal id `iid` (null when it has none).
    fn stored_metadata(&self, iid: u64) -> Result<Value> {
        match self.inner.tree.get(internal_key(META_TAG, iid)).map_err(db_error)? {
            Some(m) => serde_json::from_slice(&m).map_err(|_| layout::damaged("metadata is not JSON")),
            None => Ok(Value::Null),
        }
    }

    /// The `k` best documents by BM25 for `text` among those the filter allows (only documents
    /// that share a term with the query); needs no encoder.
    pub fn search_lexical(&self, text: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        self.check_alive()?;
        check_query_text(text)?;
        let st = self.read_state()?;
        let params = &params.bounded(st.count, st.points);
        if params.k == 0 {
            return Ok(Vec::new());
        }
        let scored = self.lexical_scored(&st, text, params.k + 4, params)?;
        self.hits(&st, scored, params.k)
    }

    /// Dense and lexical rankings of the query (its vector and its text), each
    /// [`SearchParams::depth`] deep, fused by [`SearchParams::fusion`]; the filter applies to both.
    pub fn search_hybrid(&self, query: &[f32], text: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        self.check_alive()?;
        check_query_text(text)?;
        params.fusion.validate()?;
        let q = self.query_vector(query)?;
        let st = self.read_state()?;
        let params = &params.bounded(st.count, st.points);
        if params.k == 0 {
            return Ok(Vec::new());
        }
        let depth = params.side_depth();
        let pairs = |s: Vec<Scored>| s.into_iter().map(|s| (s.internal_id, s.score)).collect::<Vec<_>>();
        let dense = pairs(self.dense_scored(&st, &q, depth, params)?);
        let lexical = pairs(self.lexical_scored(&st, text, depth, params)?);
        let fused = fuse(&dense, &lexical, params.fusion)
            .into_iter()
            .map(|(internal_id, score)| Scored { internal_id, score })
            .collect();
        self.hits(&st, fused, params.k)
    }

    /// For `isovec bench filter`: seconds to find the documents `filter` allows, `repeats` times,
    /// by the metadata index and by evaluating it on every document; and how many it allows.
    pub(crate) fn time_filter_selection(&self, filter: &Filter, repeats: usize) -> Result<(f64, f64, usize)> {
        let st = self.read_state()?;
        let start = std::time::Instant::now();
        let mut allowed = 0;
        for _ in 0..repeats {
            allowed = std::hint::black_box(st.metadata.allowed(filter)).len();
        }
        let indexed = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        for _ in 0..repeats {
            std::hint::black_box(st.metadata.scanned(filter));
        }
        Ok((indexed, start.elapsed().as_secs_f64(), allowed))
    }

    fn query_vector(&self, query: &[f32]) -> Result<Vec<f32>> {
        let dims = self.inner.config.dims;
        if query.len() != dims {
            return Err(Error::Dimension { expected: dims, found: query.len() });
        }
        normalized(query)
    }

    /// BM25 candidates: visible, live, allowed by the filter.
    fn lexical_scored(&self, st: &State, text: &str, want: usize, params: &SearchParams) -> Result<Vec<Scored>> {
        // The documents the filter allows, from the metadata index, once per search.
        let allowed = params.filter.as_ref().filter(|f| !f.is_trivial()).map(|f| st.metadata.allowed(f));
        let allow = |iid: u64| {
            iid <= st.seq
                && !st.tombstones.contains(&iid)
                && allowed.as_ref().is_none_or(|a| a.binary_search(&iid).is_ok())
        };
        self.inner.text.search(text, want, &allow)
    }

    /// The `want` nearest documents by cosine among allowed ones, each scored by its best
    /// passage and named by its first internal id: passages are searched more widely until
    /// `want` distinct documents are found, or every point was looked at.
    fn dense_scored(&self, st: &State, q: &[f32], want: usize, params: &SearchParams) -> Result<Vec<Scored>> {
        let mut points = want;
        loop {
            let found = self.dense_points(st, q, points, params)?;
            if st.owner.is_empty() {
                return Ok(found);
            }
            let exhausted = found.len() < points || points as u64 >= st.points;
            let mut seen = HashSet::with_capacity(found.len());
            let mut docs: Vec<Scored> = found
                .into_iter()
                .filter_map(|s| {
                    let first = st.owner.get(&s.internal_id).copied().unwrap_or(s.internal_id);
                    seen.insert(first).then_some(Scored { internal_id: first, score: s.score })
                })
                .collect();
            if docs.len() >= want || exhausted {
                docs.truncate(want);
                return Ok(docs);
            }
            points = points.saturating_mul(4);
        }
    }

    /// The `want` nearest points (passages) by cosine (HNSW, or exact on selective filters)
    /// among allowed ones.
    fn dense_points(&self, st: &State, q: &[f32], want: usize, params: &SearchParams) -> Result<Vec<Scored>> {
        let q = q.to_vec();
        let ef = params.ef.unwrap_or(self.inner.config.hnsw.ef_search).max(want);
        let filter = params.filter.as_ref().filter(|f| !f.is_trivial());
        let scored = match filter {
            Some(f) => {
                let allowed = st.metadata.allowed(f);
                let share = allowed.len() as f64 / st.points.max(1) as f64;
                if share <= EXACT_SCAN_SHARE || allowed.len() <= ef {
                    self.exact_allowed(st, &q, want, &allowed)?
                } else {
                    // `allowed` holds only visible live ids: no tombstone or pending point passes.
                    let pass = |id: u64| allowed.binary_search(&id).is_ok();
                    let found = search_until_k(&st.index, &q, want, ef, allowed.len(), Some(&pass));
                    if found.len() < want.min(allowed.len()) {
                        self.exact_allowed(st, &q, want, &allowed)?
                    } else {
                        found
                    }
                }
            }
            None => {
                let (tomb, visible) = (&st.tombstones, st.seq);
                let pass = |id: u64| id <= visible && !tomb.contains(&id);
                // Without tombstones or points being inserted, the unfiltered search is exact.
                let filter: Option<&dyn Fn(u64) -> bool> =
                    if tomb.is_empty() && st.index.len() as u64 == st.points { None } else { Some(&pass) };
                let available = st.points as usize;
                let found = search_until_k(&st.index, &q, want, ef, available, filter);
                if found.len() < want.min(available) {
                    self.exact_all(&q, want, st.seq)?
                } else {
                    found
                }
            }
        };
        Ok(scored)
    }

    /// The first `k` candidates that are still live in sled, as hits.
    fn hits(&self, st: &State, scored: Vec<Scored>, k: usize) -> Result<Vec<Hit>> {
        let mut hits = Vec::with_capacity(k);
        for s in scored {
            if hits.len() == k {
                break;
            }
            if let Some(hit) = self.hit(st, s)? {
                hits.push(hit);
            }
        }
        Ok(hits)
    }

    /// The `k` best documents for a query text, in the params' mode, the query encoded by the
    /// collection's recorded pipeline ([`Collection::pipeline`]); a lexical search encodes
    /// nothing and needs no pipeline.
    pub fn search_text(&self, text: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        check_query_text(text)?;
        if params.mode == SearchMode::Lexical {
            return self.search_lexical(text, params);
        }
        self.search_text_with(self.pipeline()?.as_ref(), text, params)
    }

    /// Like [`Collection::search_text`], the query encoded by `embedder` (which must make the
    /// collection's vectors; a collection without a record of its pipeline records
    /// `embedder`'s).
    pub fn search_text_with(&self, embedder: &dyn Embedder, text: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        check_query_text(text)?;
        if params.mode == SearchMode::Lexical {
            return self.search_lexical(text, params);
        }
        self.check_pipeline(embedder)?;
        let vector = embedder
            .embed_queries(&[text])?
            .pop()
            .ok_or_else(|| Error::Model("the embedder returned no vector".into()))?;
        match params.mode {
            SearchMode::Hybrid => self.search_hybrid(&vector, text, params),
            _ => self.search(&vector, params),
        }
    }

    /// Rebuilds the index from the live vectors (dropping tombstones) and snapshots it.
    pub fn compact(&self) -> Result<()> {
        self.check_alive()?;
        let mut writer = self.writer()?;
        self.compact_locked(&mut writer)
    }

    /// Writes a snapshot of the index and commits the text index if writes happened since.
    pub fn snapshot(&self) -> Result<()> {
        let mut writer = match self.writer() {
            Err(Error::Dropped { .. }) => return Ok(()),
            w => w?,
        };
        self.inner.text.commit()?;
        let seq = self.read_state()?.seq;
        if writer.snapshot_seq == Some(seq) {
            return Ok(());
        }
        self.persist_snapshot(&mut writer, false)
    }

    /// Counters of the collection.
    pub fn stats(&self) -> Result<CollectionStats> {
        let snapshot_seq = self.writer()?.snapshot_seq;
        let st = self.read_state()?;
        Ok(CollectionStats {
            name: self.inner.name.clone(),
            documents: st.count,
            points: st.points,
            indexed_points: st.index.len(),
            tombstones: st.tombstones.len(),
            dims: self.inner.config.dims,
            pipeline: self.inner.config.pipeline.to_string(),
            seq: st.seq,
            snapshot_seq,
            text_index: self.inner.text.stats()?,
            maintenance_error: self.inner.maintenance_error.lock().ok().and_then(|e| e.clone()),
        })
    }

    /// The writer lock: writes of every handle wait until it is released.
    pub(crate) fn hold_writes(&self) -> Result<MutexGuard<'_, WriterState>> {
        self.writer()
    }

    /// Marks the collection dropped (replaced by a re-embedded one), under its writer lock.
    pub(crate) fn mark_dropped(&self, _writer: &MutexGuard<'_, WriterState>) {
        self.inner.dropped.store(true, Ordering::SeqCst);
        self.inner.text.shut_down();
    }

    /// Marks the collection dropped once the write in progress, if any, is done, and returns
    /// its writer lock: the store holds it while it removes the collection's data, so no write,
    /// snapshot or compaction of any handle races the removal (each gets [`Error::Dropped`]).
    pub(crate) fn begin_drop(&self) -> Result<MutexGuard<'_, WriterState>> {
        let writer = self.inner.writer.lock().map_err(|_| poisoned())?;
        self.inner.dropped.store(true, Ordering::SeqCst);
        // Nothing may write into the index folder while the store removes it.
        self.inner.text.shut_down();
        Ok(writer)
    }

    fn compact_locked(&self, writer: &mut WriterState) -> Result<()> {
        // Built aside from the live vectors while searches use the old graph; the writer lock
        // keeps writes out, so nothing is missed.
        let points = self.read_state()?.points;
        let index = Index::new(&self.inner.config.hnsw, self.inner.config.dims, points as usize)?;
        insert_range(
            &index,
            self.inner.tree.scan_prefix([VECTOR_TAG]),
            points,
            &self.inner.name,
            self.inner.progress.as_ref(),
        )?;
        self.write_state()?.index = index;
        self.persist_snapshot(writer, true)
    }

    /// Snapshots the current index; with `clear_tombstones`, the index must hold none of them.
    fn persist_snapshot(&self, writer: &mut WriterState, clear_tombstones: bool) -> Result<()> {
        let (manifest, seq) = {
            let st = self.read_state()?;
            (snapshot::write(&st.index, &self.inner.index_dir, st.seq)?, st.seq)
        };
        let mut batch = writer.batch();
        batch.insert(MANIFEST_KEY, serde_json::to_vec(&manifest)?);
        if clear_tombstones {
            for kv in self.inner.tree.scan_prefix([TOMB_TAG]) {
                batch.remove(kv.map_err(db_error)?.0);
            }
        }
        self.commit(writer, batch)?;
        if clear_tombstones {
            self.write_state()?.tombstones.clear();
        }
        writer.snapshot_seq = Some(seq);
        snapshot::remove_stale(&self.inner.index_dir, Some(&manifest.folder));
        Ok(())
    }

    /// Brings the derived state up after a durable write: the text index learns the write
    /// (`removed` internal ids go; added ones came before the switch), and compaction or a
    /// snapshot runs when due. The write is already acknowledged, so trouble is logged and kept
    /// for `stats`, not returned.
    fn after_write(&self, writer: &mut WriterState, removed: &[u64], seq: u64) {
        let text = self.inner.text.apply(removed, &[], seq);
        if let Err(e) = text.and_then(|_| self.maintain(writer)) {
            self.maintenance_failed(&e);
        }
    }

    /// Logs trouble keeping the derived state up to date after a durable write and keeps it for `stats`.
    fn maintenance_failed(&self, e: &Error) {
        tracing::warn!(
            "collection {}: the write is durable, but updating its indexes failed ({e}); the next open replays or rebuilds them",
            self.inner.name
        );
        if let Ok(mut slot) = self.inner.maintenance_error.lock() {
            *slot = Some(e.to_string());
        }
    }

    /// Compaction and snapshots that writes trigger by themselves.
    fn maintain(&self, writer: &mut WriterState) -> Result<()> {
        let (tombstones, points, seq) = {
            let st = self.read_state()?;
            (st.tombstones.len(), st.index.len(), st.seq)
        };
        if tombstones >= COMPACT_MIN_TOMBSTONES && tombstones as f64 > COMPACT_SHARE * points as f64 {
            return self.compact_locked(writer);
        }
        let pending = seq - writer.snapshot_seq.unwrap_or(0);
        if pending >= AUTO_SNAPSHOT_MIN.max(points as u64 / 4) {
            self.persist_snapshot(writer, false)?;
        }
        Ok(())
    }

    /// Applies `batch` (made by [`WriterState::batch`]) and flushes it.
    fn commit(&self, writer: &mut WriterState, batch: sled::Batch) -> Result<()> {
        self.inner.tree.apply_batch(batch).map_err(db_error)?;
        // sled flushes every 500 ms by itself; a write is acknowledged only once durable.
        self.inner.durable.flush(&self.inner.db)?;
        writer.lost.clear();
        Ok(())
    }

    fn hit(&self, st: &State, s: Scored) -> Result<Option<Hit>> {
        let metadata = || st.metadata.get(&s.internal_id).cloned().unwrap_or(Value::Null);
        if let Some(r) = st.retiring.get(&s.internal_id) {
            return Ok(Some(Hit { id: r.id.clone(), score: s.score, text: r.text.clone(), metadata: metadata() }));
        }
        let tree = &self.inner.tree;
        let Some(vec) = tree.get(internal_key(VECTOR_TAG, s.internal_id)).map_err(db_error)? else {
            return Ok(None);
        };
        let external_id = VectorRecord::decode_external_id(&vec)?;
        let Some(doc) = tree.get(doc_key(&external_id)).map_err(db_error)? else {
            return Ok(None);
        };
        let doc = DocRecord::decode(&doc)?;
        if doc.internal_id != s.internal_id {
            return Ok(None);
        }
        Ok(Some(Hit { id: external_id, score: s.score, text: doc.text, metadata: metadata() }))
    }

    /// Exact top-k over the given internal ids, vectors read from sled.
    /// Exact top-k among `allowed` (sorted, live and visible): from the vectors the index holds
    /// in memory, or from sled if the index lacks one of them (a write whose indexing failed).
    /// Few allowed ids are read from sled, as a walk over every node costs more then.
    fn exact_allowed(&self, st: &State, q: &[f32], k: usize, allowed: &[u64]) -> Result<Vec<Scored>> {
        if allowed.len().saturating_mul(SLED_READ_IN_NODES) >= st.index.len() {
            let (best, held) = st.index.exact_among(q, k, allowed);
            if held == allowed.len() {
                return Ok(best);
            }
        }
        self.exact(q, k, allowed.iter().copied())
    }

    fn exact(&self, q: &[f32], k: usize, ids: impl Iterator<Item = u64>) -> Result<Vec<Scored>> {
        let mut items = Vec::new();
        for id in ids {
            if let Some(v) = self.inner.tree.get(internal_key(VECTOR_TAG, id)).map_err(db_error)? {
                items.push((id, normalized(&VectorRecord::decode(&v)?.vector)?));
            }
        }
        Ok(exact_top_k(q, k, items.iter().map(|(id, v)| (*id, v.as_slice()))))
    }

    /// Exact top-k over every live, visible vector.
    fn exact_all(&self, q: &[f32], k: usize, visible: u64) -> Result<Vec<Scored>> {
        let mut items = Vec::new();
        for kv in self.inner.tree.scan_prefix([VECTOR_TAG]) {
            let (key, v) = kv.map_err(db_error)?;
            let id = internal_id_of(&key)?;
            if id > visible {
                break;
            }
            items.push((id, normalized(&VectorRecord::decode(&v)?.vector)?));
        }
        Ok(exact_top_k(q, k, items.iter().map(|(id, v)| (*id, v.as_slice()))))
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

/// HNSW search that widens the candidate list until `k` results pass the filter, or it cannot.
fn search_until_k(
    index: &Index,
    q: &[f32],
    k: usize,
    ef: usize,
    available: usize,
    filter: Option<&dyn Fn(u64) -> bool>,
) -> Vec<Scored> {
    let target = k.min(available);
    let mut ef = ef.max(k);
    loop {
        let found = index.search(q, k, ef, filter);
        if found.len() >= target || ef >= index.len() {
            return found;
        }
        ef = (ef * 4).min(index.len().max(k));
    }
}

impl State {
    /// Retired internal ids become tombstones and lose their metadata and owner.
    fn retire(&mut self, ids: &[u64]) {
        for id in ids {
            self.tombstones.insert(*id);
            self.metadata.remove(id);
            self.owner.remove(id);
        }
    }
}

/// Batch operations that retire an internal id: its vector, metadata and passage record go, a
/// tombstone stays.
fn remove_internal(batch: &mut sled::Batch, internal_id: u64) {
    batch.remove(&internal_key(VECTOR_TAG, internal_id));
    batch.remove(&internal_key(META_TAG, internal_id));
    batch.remove(&internal_key(PASSAGE_TAG, internal_id));
    batch.insert(&internal_key(TOMB_TAG, internal_id), &[]);
}

/// The longest document text a collection takes, in bytes (UTF-8): 16 MiB, a few thousand pages.
/// Its vector comes from its first tokens only (or from its passages), but the text index and
/// sled hold it whole.
pub const MAX_TEXT_BYTES: usize = 16 << 20;

/// The longest query text, in bytes: 1 MiB.
pub const MAX_QUERY_BYTES: usize = 1 << 20;

fn check_text(id: &str, text: &str) -> Result<()> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::InvalidInput(format!(
            "document {id:?} has a text of {} bytes, more than the {} MiB a document may hold; split it into \
             several documents (or index it in passages of several documents)",
            text.len(),
            MAX_TEXT_BYTES >> 20
        )));
    }
    Ok(())
}

/// Refuses a query text that is empty or longer than [`MAX_QUERY_BYTES`], with what to do.
pub fn check_query_text(text: &str) -> Result<()> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(Error::InvalidInput(format!(
            "the query text has {} bytes, more than the {} MiB a query may have; search with a shorter text",
            text.len(),
            MAX_QUERY_BYTES >> 20
        )));
    }
    if text.trim().is_empty() {
        return Err(Error::InvalidInput("the query text is empty; give some words to search for".into()));
    }
    Ok(())
}

fn has_metadata(m: &Value) -> bool {
    match m {
        Value::Null => false,
        Value::Object(map) => !map.is_empty(),
        _ => true,
    }
}

/// Inserts the vector records of `iter` into `index` in chunks, told to `progress` if large.
fn insert_range(
    index: &Index,
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    expected: u64,
    name: &str,
    progress: &dyn Progress,
) -> Result<()> {
    let shown = expected >= PROGRESS_MIN;
    if shown {
        progress.start(&format!("rebuilding index {name}"), expected as usize);
    }
    let mut chunk = Vec::with_capacity(REBUILD_CHUNK);
    let flush = |chunk: &mut Vec<(Vec<f32>, u64)>| -> Result<()> {
        index.insert(chunk)?;
        if shown {
            progress.advance(chunk.len());
        }
        chunk.clear();
        Ok(())
    };
    for kv in iter {
        let (key, value) = kv.map_err(db_error)?;
        let id = internal_id_of(&key)?;
        let vector = VectorRecord::decode(&value)?.vector;
        index.check_stored(&vector)?;
        chunk.push((normalized(&vector)?, id));
        if chunk.len() == REBUILD_CHUNK {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)?;
    if shown {
        progress.finish();
    }
    Ok(())
}

fn poisoned() -> Error {
    Error::Poisoned("holding the collection's lock")
}
