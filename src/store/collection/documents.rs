//! Documents by id or by filter: read one or many, count them, walk them all, page through
//! them, change their text or metadata in place, delete those a filter selects, and answer
//! many queries in one call.
//!
//! Invariants enforced here: reads of several records (many documents, a walk, a page) hold
//! the writer lock while they read, so each returns one state of the collection (a document
//! and its vectors from the same write); a document read as a `PassagesDoc` comes with every
//! vector it owns, in passage order; writes go through `upsert_entries` and `delete`
//! (`write`), and keep their invariants.

use std::sync::MutexGuard;

use rayon::prelude::*;
use serde_json::Value;

use super::{Collection, Doc, Hit, PassagesDoc, SearchParams, UpsertReport, WriterState};
use crate::store::filter::Filter;
use crate::store::fusion::SearchMode;
use crate::store::layout::{self, db_error, doc_key, internal_key, DocRecord, VectorRecord, META_TAG, VECTOR_TAG};
use crate::{Embedder, Error, Result};

/// A change to one document, as given to [`Collection::update`]: the parts left `None` stay.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DocUpdate {
    /// The document's id; it must exist.
    pub id: String,
    /// A new text. Its vector is the one given, else the collection's pipeline encodes the text
    /// (a collection of vectors made outside isovec needs the vector).
    pub text: Option<String>,
    /// Metadata keys to set, merged into the document's metadata; a key set to null is removed.
    pub metadata: Option<Value>,
    /// A new vector (the document's dense score then comes from it alone).
    pub vector: Option<Vec<f32>>,
}

/// Which documents [`Collection::list`] returns.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    /// Only documents whose metadata match.
    pub filter: Option<Filter>,
    /// Documents skipped (in id byte order) before the first returned.
    pub offset: usize,
    /// At most this many documents; `None`: all.
    pub limit: Option<usize>,
}

impl Collection {
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

    /// The documents stored under `ids`, in the order asked (`None` for a missing id); a document
    /// indexed as passages comes with its first passage's vector.
    pub fn get_many<S: AsRef<str>>(&self, ids: &[S]) -> Result<Vec<Option<PassagesDoc>>> {
        self.check_alive()?;
        let _writer = self.writer()?;
        ids.iter().map(|id| self.read_document(id.as_ref())).collect()
    }

    /// The ids among `ids` that the collection holds, in the order given (no document is read).
    pub fn existing<'a, S: AsRef<str>>(&self, ids: &'a [S]) -> Result<Vec<&'a str>> {
        self.check_alive()?;
        let mut out = Vec::new();
        for id in ids {
            if self.inner.tree.contains_key(doc_key(id.as_ref())).map_err(db_error)? {
                out.push(id.as_ref());
            }
        }
        Ok(out)
    }

    /// The documents the filter allows, in id byte order, from `offset`, at most `limit`. A
    /// filter is answered by the metadata index, so only the documents it allows are read.
    pub fn list(&self, params: &ListParams) -> Result<Vec<PassagesDoc>> {
        self.check_alive()?;
        let _writer = self.writer()?;
        let limit = params.limit.unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        if let Some(filter) = params.filter.as_ref().filter(|f| !f.is_trivial()) {
            // Writes wait for the writer lock held here, so the state matches sled.
            let firsts: Vec<u64> = {
                let st = self.read_state()?;
                st.metadata.allowed(filter).into_iter().filter(|iid| !st.owner.contains_key(iid)).collect()
            };
            let mut ids = Vec::with_capacity(firsts.len());
            for iid in firsts {
                let record = self.inner.tree.get(internal_key(VECTOR_TAG, iid)).map_err(db_error)?;
                let record = record.ok_or_else(|| layout::damaged("allowed document without vector"))?;
                ids.push(VectorRecord::decode_external_id(&record)?);
            }
            ids.sort_unstable();
            let mut out = Vec::new();
            for id in ids.iter().skip(params.offset).take(limit) {
                out.extend(self.read_document(id)?);
            }
            return Ok(out);
        }
        let mut out = Vec::new();
        for kv in self.inner.tree.scan_prefix([layout::DOC_TAG]).skip(params.offset).take(limit) {
            let (key, value) = kv.map_err(db_error)?;
            let rec = DocRecord::decode(&value)?;
            let id = String::from_utf8(key[1..].to_vec()).map_err(|_| layout::damaged("id is not UTF-8"))?;
            let vectors = rec.internal_ids().map(|iid| self.stored_vector(iid)).collect::<Result<_>>()?;
            let metadata = self.stored_metadata(rec.internal_id)?;
            out.push(PassagesDoc { id, text: rec.text, metadata, vectors });
        }
        Ok(out)
    }

    /// Deletes every document the filter allows (one durable batch); returns how many.
    pub fn delete_where(&self, filter: &Filter) -> Result<usize> {
        let ids: Vec<String> = self
            .list(&ListParams { filter: Some(filter.clone()), ..Default::default() })?
            .into_iter()
            .map(|d| d.id)
            .collect();
        self.delete(&ids)
    }

    /// Changes the text, metadata or vector of existing documents in one durable batch; an id
    /// that does not exist is an error and changes nothing. A new text without a vector is
    /// encoded by the collection's pipeline; a document indexed as passages keeps its passages'
    /// vectors unless its text or vector changes.
    pub fn update(&self, updates: &[DocUpdate]) -> Result<UpsertReport> {
        self.check_alive()?;
        let ids: Vec<&str> = updates.iter().map(|u| u.id.as_str()).collect();
        let current = self.get_many(&ids)?;
        let missing: Vec<&str> = ids.iter().zip(&current).filter(|(_, d)| d.is_none()).map(|(id, _)| *id).collect();
        if !missing.is_empty() {
            return Err(Error::InvalidInput(format!(
                "update: no document with id {missing:?} in collection {:?}; add them instead (or upsert)",
                self.inner.name
            )));
        }
        // Texts that need encoding, encoded together.
        let to_encode: Vec<&str> =
            updates.iter().filter(|u| u.vector.is_none()).filter_map(|u| u.text.as_deref()).collect();
        let mut encoded = if to_encode.is_empty() {
            Vec::new()
        } else {
            for text in &to_encode {
                if text.trim().is_empty() {
                    return Err(Error::InvalidInput(
                        "update: a new text is empty; give some text, or a vector with it".into(),
                    ));
                }
            }
            self.pipeline()?.embed(&to_encode)?
        }
        .into_iter();
        let mut docs = Vec::with_capacity(updates.len());
        for (update, doc) in updates.iter().zip(current) {
            let mut doc = doc.ok_or_else(|| Error::InvalidInput("update: a document vanished".into()))?;
            if let Some(vector) = &update.vector {
                doc.vectors = vec![vector.clone()];
            } else if update.text.is_some() {
                doc.vectors =
                    vec![encoded.next().ok_or_else(|| Error::Model("the pipeline returned too few vectors".into()))?];
            }
            if let Some(text) = &update.text {
                doc.text = text.clone();
            }
            if let Some(changes) = &update.metadata {
                doc.metadata = merged(&update.id, doc.metadata, changes)?;
            }
            docs.push(doc);
        }
        self.upsert_passages(&docs)
    }

    /// The best documents for each query vector, searched in parallel: what [`Collection::search`]
    /// returns for each, in order.
    pub fn search_many(&self, queries: &[Vec<f32>], params: &SearchParams) -> Result<Vec<Vec<Hit>>> {
        queries.par_iter().map(|q| self.search(q, params)).collect()
    }

    /// Like [`Collection::search_many`] for query texts, in the params' mode: encoded together by
    /// the collection's pipeline (a lexical search encodes nothing), then searched in parallel.
    pub fn search_texts(&self, texts: &[&str], params: &SearchParams) -> Result<Vec<Vec<Hit>>> {
        if params.mode == SearchMode::Lexical {
            return texts.par_iter().map(|t| self.search_lexical(t, params)).collect();
        }
        self.search_texts_with(self.pipeline()?.as_ref(), texts, params)
    }

    /// Like [`Collection::search_texts`], the queries encoded by `embedder` (which must make the
    /// collection's vectors).
    pub fn search_texts_with(
        &self,
        embedder: &dyn Embedder,
        texts: &[&str],
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        for text in texts {
            super::check_query_text(text)?;
        }
        if params.mode == SearchMode::Lexical {
            return texts.par_iter().map(|t| self.search_lexical(t, params)).collect();
        }
        self.check_pipeline(embedder)?;
        let vectors = if texts.is_empty() { Vec::new() } else { embedder.embed_queries(texts)? };
        self.search_vectors_and_texts(&vectors, texts, params)
    }

    /// Hybrid (or dense, by the params' mode) searches of query vectors with their texts, in
    /// parallel; `texts` may be empty for a dense search.
    pub fn search_vectors_and_texts(
        &self,
        vectors: &[Vec<f32>],
        texts: &[&str],
        params: &SearchParams,
    ) -> Result<Vec<Vec<Hit>>> {
        for text in texts {
            super::check_query_text(text)?;
        }
        match params.mode {
            SearchMode::Dense => self.search_many(vectors, params),
            SearchMode::Hybrid if texts.len() == vectors.len() => {
                // The advised fusion (`Fusion::Auto`) is read once for the batch, not per query.
                let params = &SearchParams { fusion: self.resolve_fusion(params.fusion)?, ..params.clone() };
                vectors.par_iter().zip(texts.par_iter()).map(|(v, t)| self.search_hybrid(v, t, params)).collect()
            }
            SearchMode::Hybrid => Err(Error::InvalidInput(format!(
                "a hybrid search needs each query's vector and its text: got {} vectors and {} texts",
                vectors.len(),
                texts.len()
            ))),
            SearchMode::Lexical => texts.par_iter().map(|t| self.search_lexical(t, params)).collect(),
        }
    }

    /// The document under `id` with all its vectors; the caller holds the writer lock.
    fn read_document(&self, id: &str) -> Result<Option<PassagesDoc>> {
        let Some(rec) = self.inner.tree.get(doc_key(id)).map_err(db_error)? else {
            return Ok(None);
        };
        let rec = DocRecord::decode(&rec)?;
        let vectors = rec.internal_ids().map(|iid| self.stored_vector(iid)).collect::<Result<_>>()?;
        let metadata = self.stored_metadata(rec.internal_id)?;
        Ok(Some(PassagesDoc { id: id.to_string(), text: rec.text, metadata, vectors }))
    }
}

/// `current` metadata with `changes` merged in: keys set, keys set to null removed.
fn merged(id: &str, current: Value, changes: &Value) -> Result<Value> {
    let Some(changes) = changes.as_object() else {
        if changes.is_null() {
            return Ok(current);
        }
        return Err(Error::InvalidInput(format!("update of {id:?}: metadata must be a JSON object, got {changes}")));
    };
    let mut out = match current {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    for (key, value) in changes {
        if value.is_null() {
            out.remove(key);
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    Ok(if out.is_empty() { Value::Null } else { Value::Object(out) })
}
