//! The write path: upsert (one vector or one per passage), texts encoded by a pipeline, delete.
//!
//! Invariants enforced here:
//! - a write is applied to sled in one atomic batch and flushed, and fsynced
//!   (`store::durable`), before it becomes visible in memory and before the call returns;
//! - the in-memory state changes under its write lock in one step per write, so a search sees
//!   a write entirely or not at all: new points are inserted into the graph first, under the
//!   read lock and while sled writes the batch, and stay invisible (internal id above
//!   `State::seq`) until that step; if sled refuses the batch they stay in the graph as
//!   tombstones, which the next batch makes durable, so their internal ids are never reused;
//! - a replaced or deleted internal id becomes a tombstone until a compaction rebuilds the
//!   index without it;
//! - a document indexed as passages owns one internal id per passage, consecutive, and every
//!   write, delete and tombstone covers all of them;
//! - a document that a write replaces or deletes is reported as it was (`State::retiring`)
//!   until the write's switch, so it never vanishes from searches meanwhile, not even from
//!   lexical ones (new texts enter the text index before the switch, old ones leave it after);
//! - a write is acknowledged once sled has it: trouble in the derived state that follows is
//!   maintenance trouble (`maintenance`), never a failed write;
//! - documents are checked before anything is written: an id, a text within
//!   [`MAX_TEXT_BYTES`], metadata an object or null, vectors of the collection's dimension that
//!   can be normalised. Texts to encode must not be blank; turning them into vectors (tokens,
//!   passages, batches) is the pipeline's (`pipeline::passages`).

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::{Collection, Doc, PassagesDoc, Retiring, State, TextDoc, UpsertReport, WriterState};
use crate::pipeline::passages::{embed_texts, Passages};
use crate::store::layout::{
    db_error, doc_key, encode_u64, internal_key, DocRecord, VectorRecord, COUNT_KEY, META_TAG, PASSAGE_TAG, POINTS_KEY,
    SEQ_KEY, TOMB_TAG, VECTOR_TAG,
};
use crate::vector::normalized;
use crate::{Embedder, Error, Result};

/// The longest document text a collection takes, in bytes (UTF-8): 16 MiB, a few thousand pages.
/// Its vector comes from its first tokens only (or from its passages), but the text index and
/// sled hold it whole.
pub const MAX_TEXT_BYTES: usize = 16 << 20;

/// One document of a write: borrowed parts, one vector or several (passages).
struct Entry<'a> {
    id: &'a str,
    text: &'a str,
    metadata: &'a Value,
    vectors: Vec<&'a [f32]>,
}

impl Collection {
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
        // Tokens, passages and calls to the embedder are the pipeline's business.
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let embedded = embed_texts(embedder, &texts, split)?;
        let full: Vec<PassagesDoc> = docs
            .iter()
            .zip(embedded.vectors)
            .map(|(doc, vectors)| PassagesDoc {
                id: doc.id.clone(),
                text: doc.text.clone(),
                metadata: doc.metadata.clone(),
                vectors,
            })
            .collect();
        let mut report = self.upsert_passages(&full)?;
        report.truncated = embedded.truncated;
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

    /// Applies `batch` (made by [`WriterState::batch`]) and flushes it.
    pub(super) fn commit(&self, writer: &mut WriterState, batch: sled::Batch) -> Result<()> {
        self.inner.tree.apply_batch(batch).map_err(db_error)?;
        // A write is acknowledged only once durable; nothing else flushes (sled's flusher is off).
        self.inner.durable.flush(&self.inner.db)?;
        writer.lost.clear();
        Ok(())
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

fn has_metadata(m: &Value) -> bool {
    match m {
        Value::Null => false,
        Value::Object(map) => !map.is_empty(),
        _ => true,
    }
}
