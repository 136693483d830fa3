//! Search: dense (HNSW, or an exact scan under a selective filter), lexical (BM25) and hybrid
//! (both, fused), by vector or by text, and exact search for measuring the index.
//!
//! Invariants enforced here:
//! - every search result is checked against sled and the visible state (`hit`), so a deleted or
//!   replaced document never appears, whichever index proposed it; a document a write in
//!   progress retires is reported as it was until the write's switch;
//! - only visible points are candidates: internal id at most `State::seq`, not a tombstone,
//!   allowed by the filter (the metadata index says which documents it allows);
//! - a dense search ranks a document by its best passage and reports it once, under its first
//!   internal id (the one the text index knows), widening the search until it has `k`
//!   documents or has looked at every point;
//! - searches are bounded by what the collection holds (`SearchParams::bounded`): k and depth by
//!   its documents, ef by its points, whatever the caller asked;
//! - a query text is not blank and at most [`MAX_QUERY_BYTES`].

use std::collections::HashSet;

use serde_json::Value;

use super::{Collection, Hit, SearchParams, State};
use crate::store::filter::Filter;
use crate::store::fusion::{fuse, SearchMode};
use crate::store::index::Index;
use crate::store::layout::{db_error, doc_key, internal_id_of, internal_key, DocRecord, VectorRecord, VECTOR_TAG};
use crate::vector::{exact_top_k, normalized, Scored};
use crate::{Embedder, Error, Result};

/// A filter allowing at most this share of the collection is answered by an exact scan.
const EXACT_SCAN_SHARE: f64 = 0.05;
/// Reading one vector from sled costs about as much as looking at this many nodes of the
/// index's in-memory walk (3.7 µs against 9 ns, `isovec bench filter` on 100k documents).
const SLED_READ_IN_NODES: usize = 400;

/// The longest query text, in bytes: 1 MiB.
pub const MAX_QUERY_BYTES: usize = 1 << 20;

impl Collection {
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
        let fusion = self.resolve_fusion(params.fusion)?;
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
        let fused = fuse(&dense, &lexical, fusion)
            .into_iter()
            .map(|(internal_id, score)| Scored { internal_id, score })
            .collect();
        self.hits(&st, fused, params.k)
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
        self.search_encoded(&vector, text, params)
    }

    /// A text query whose vector is `vector` (already encoded by the collection's pipeline):
    /// hybrid fuses it with BM25 on `text`, the other modes search by the vector.
    pub(crate) fn search_encoded(&self, vector: &[f32], text: &str, params: &SearchParams) -> Result<Vec<Hit>> {
        match params.mode {
            SearchMode::Hybrid => self.search_hybrid(vector, text, params),
            _ => self.search(vector, params),
        }
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
