//! Opening a collection: its counters, metadata, passage owners and tombstones read from sled,
//! its HNSW index loaded from the last snapshot and brought up to date by replaying the
//! vectors written since, or rebuilt from every vector, and its full-text index opened.
//!
//! Invariants enforced here: sled is the source of truth and the indexes derived state — a
//! missing, unreadable or damaged snapshot (manifest or files) means a rebuild from sled, never
//! an error or a loss; the replay takes exactly the live vectors whose internal id is above
//! the snapshot's sequence number; every stored vector is checked against the index
//! (`Index::check_stored`) before it enters it; a rebuilt index of a non-empty collection is
//! snapshotted at once, without tombstones, so the next open is fast.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use super::{Collection, Inner, Shared, State, WriterState};
use crate::progress::Progress;
use crate::store::index::Index;
use crate::store::layout::{
    self, db_error, decode_u64, internal_id_of, internal_key, CollectionConfig, VectorRecord, COUNT_KEY, MANIFEST_KEY,
    META_TAG, PASSAGE_TAG, POINTS_KEY, SEQ_KEY, TOMB_TAG, VECTOR_TAG,
};
use crate::store::metadata_index::Metadata;
use crate::store::snapshot::{self, Manifest};
use crate::store::text_index::TextIndex;
use crate::vector::normalized;
use crate::Result;

/// Rebuilds of at least this many vectors are told to the progress.
const PROGRESS_MIN: u64 = 10_000;
/// Vectors read from sled and inserted per step during a rebuild.
const REBUILD_CHUNK: usize = 8_192;

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
}

/// Inserts the vector records of `iter` into `index` in chunks, told to `progress` if large.
pub(super) fn insert_range(
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
