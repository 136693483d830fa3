//! Maintenance: compaction, snapshots, the counters, the derived state after a write, and
//! dropping a collection.
//!
//! Invariants enforced here:
//! - a write is acknowledged once sled has it: trouble in the derived state that follows (text
//!   index, snapshot, compaction) is logged and kept in [`CollectionStats::maintenance_error`],
//!   never reported as a failed write — the next open replays or rebuilds from sled;
//! - compaction rebuilds the index from the live vectors in sled under the writer lock (no write
//!   is missed; searches use the old graph meanwhile) and then snapshots it without tombstones;
//!   it starts by itself past a share of tombstones, and a snapshot past a number of writes;
//! - a snapshot's manifest is committed to sled only once its files are written, and older
//!   snapshot folders are removed only after that;
//! - a dropped collection takes no more writes: the drop waits for the writer lock and marks the
//!   collection dropped under it, and every writer checks that mark once it holds the lock.

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use super::open::insert_range;
use super::{poisoned, Collection, CollectionStats, WriterState};
use crate::store::index::Index;
use crate::store::layout::{db_error, MANIFEST_KEY, TOMB_TAG, VECTOR_TAG};
use crate::store::snapshot;
use crate::{Error, Result};

/// Compaction starts by itself when tombstones exceed this share of the indexed points...
const COMPACT_SHARE: f64 = 0.2;
/// ...and number at least this many.
const COMPACT_MIN_TOMBSTONES: usize = 64;
/// A snapshot is written by itself when this many writes are not covered by the last one...
const AUTO_SNAPSHOT_MIN: u64 = 10_000;

impl Collection {
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
    pub(super) fn persist_snapshot(&self, writer: &mut WriterState, clear_tombstones: bool) -> Result<()> {
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
    pub(super) fn after_write(&self, writer: &mut WriterState, removed: &[u64], seq: u64) {
        let text = self.inner.text.apply(removed, &[], seq);
        if let Err(e) = text.and_then(|_| self.maintain(writer)) {
            self.maintenance_failed(&e);
        }
    }

    /// Logs trouble keeping the derived state up to date after a durable write and keeps it for `stats`.
    pub(super) fn maintenance_failed(&self, e: &Error) {
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
}
