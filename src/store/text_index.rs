//! The full-text index of one collection: every document's whole text in tantivy, scored with
//! BM25 (k1 and b from the collection's [`LexicalParams`]).
//!
//! Like the HNSW index it is derived state. sled is the source of truth; the index lives in
//! `index/<collection>/text/` and records, as its commit payload, the sequence number it covers.
//! On open a missing, damaged (checksum) or unreadable index is rebuilt from sled, and a stale one
//! is brought up to date: documents no longer live are removed, live ones newer than the covered
//! sequence number are added. Nothing here is an error the user must act on: the worst case is
//! a rebuild.
//!
//! Writes reach tantivy's writer with the sled write they follow and are committed lazily, by the
//! next lexical search (or [`TextIndex::commit`] at snapshot and close), so bulk loads pay for
//! one commit, not one per batch. A crash before that commit loses nothing: the replay on open
//! adds what the index lacks.
//!
//! Scoring is isovec's own BM25 over tantivy's postings (tantivy's scorer has k1 = 1.2 and
//! b = 0.75 built in): for each query term t and document d,
//! `idf(t) · tf·(k1 + 1) / (tf + k1·(1 − b + b·|d| / avgdl))`, with
//! `idf(t) = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5))`. As in Lucene, document lengths are stored
//! in one byte (exact up to 40 tokens, then within a few per cent), and N, n(t) and avgdl count
//! deleted documents until tantivy merges their segment away.

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use tantivy::directory::MmapDirectory;
use tantivy::postings::Postings;
use tantivy::schema::{Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{DocSet, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term, TERMINATED};

use crate::progress::Progress;
/// Kept here too: the parameters were defined in this module before they joined the
/// collection's recorded configuration ([`crate::store::layout`]).
pub use crate::store::layout::LexicalParams;
use crate::store::layout::{db_error, internal_id_of, DocRecord, DOC_TAG, VECTOR_TAG};
use crate::vector::{Scored, TopK};
use crate::{Error, Result};

/// Folder of the text index inside the collection's index folder.
pub const TEXT_DIR: &str = "text";
/// Name under which the analyzer is registered with tantivy.
const ANALYZER: &str = "isovec_en";
/// Memory of tantivy's writer before it writes a segment (its minimum is 15 MB).
const WRITER_MEMORY: usize = 32 << 20;
/// Tokens longer than this are dropped (URLs, base64, chemical names glued together).
const MAX_TOKEN_BYTES: usize = 40;
/// Rebuilds of at least this many documents are told to the progress.
const PROGRESS_MIN: u64 = 10_000;

/// Size and coverage of a text index.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TextIndexStats {
    /// Documents in the index (live ones; replaced and deleted ones are removed).
    pub documents: u64,
    /// Bytes of the index on disk.
    pub bytes: u64,
    /// Sequence number of the last write the committed index reflects.
    pub covered_seq: u64,
}

/// The analyzer used for documents and queries: words of letters and digits, lower-cased,
/// English stop words removed, Snowball English stems.
pub fn analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .dynamic();
    let builder = match StopWordFilter::new(Language::English) {
        Some(stop) => builder.filter_dynamic(stop),
        None => builder,
    };
    builder.filter_dynamic(Stemmer::new(Language::English)).build()
}

/// The terms of `text` as the index sees them (stemmed, without stop words), in order.
pub fn terms_of(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

/// One collection's tantivy index.
pub struct TextIndex {
    dir: PathBuf,
    reader: IndexReader,
    fields: Fields,
    params: LexicalParams,
    writer: Mutex<WriterState>,
}

#[derive(Clone, Copy)]
struct Fields {
    iid: Field,
    body: Field,
}

struct WriterState {
    /// `None` once the index is shut down (its collection was dropped).
    writer: Option<IndexWriter>,
    /// Sequence number of the last write handed to the writer.
    applied_seq: u64,
    /// Sequence number the last commit recorded.
    committed_seq: u64,
    /// Documents were added ahead of their write's sequence number ([`TextIndex::add`]) since
    /// the last commit.
    added_ahead: bool,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let iid = builder.add_u64_field("iid", NumericOptions::default().set_indexed().set_fast());
    let indexing = TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqs);
    let body = builder.add_text_field("body", TextOptions::default().set_indexing_options(indexing));
    (builder.build(), Fields { iid, body })
}

fn text_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Index(format!("text index: {what}: {e}"))
}

impl TextIndex {
    /// Opens the text index in `index_dir`, rebuilding or replaying it from `tree` so that it
    /// reflects every write up to `seq`; a large rebuild is told to `progress`. Returns the index
    /// and whether it was rebuilt.
    pub fn open(
        index_dir: &Path,
        tree: &sled::Tree,
        seq: u64,
        params: LexicalParams,
        name: &str,
        progress: &dyn Progress,
    ) -> Result<(TextIndex, bool)> {
        params.validate()?;
        let dir = index_dir.join(TEXT_DIR);
        match Self::open_existing(&dir, params) {
            Ok(Some(text)) => {
                let covered = text.writer()?.committed_seq;
                if covered > seq {
                    // The index claims writes sled does not have: not ours to trust.
                    tracing::warn!("collection {name}: the text index covers writes the database lacks; rebuilding it");
                } else {
                    if covered < seq {
                        text.replay(tree, covered, seq)?;
                    }
                    return Ok((text, false));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("collection {name}: {e}; rebuilding the text index from the database"),
        }
        let text = Self::rebuild(&dir, tree, seq, params, name, progress)?;
        Ok((text, true))
    }

    /// The index in `dir` if one is there and every file's checksum holds.
    fn open_existing(dir: &Path, params: LexicalParams) -> Result<Option<TextIndex>> {
        if !dir.join("meta.json").is_file() {
            return Ok(None);
        }
        // tantivy may panic on some damaged files; a panic here only means "rebuild".
        let opened = catch_unwind(AssertUnwindSafe(|| -> Result<TextIndex> {
            let index = Index::open_in_dir(dir).map_err(|e| text_error("unreadable", e))?;
            let damaged = index.validate_checksum().map_err(|e| text_error("unreadable", e))?;
            if !damaged.is_empty() {
                let names: Vec<String> = damaged.iter().map(|p| p.display().to_string()).collect();
                return Err(text_error("damaged files", names.join(", ")));
            }
            let (expected, fields) = schema();
            if index.schema() != expected {
                return Err(text_error("unexpected schema", "written by another version"));
            }
            let covered = index
                .load_metas()
                .map_err(|e| text_error("unreadable", e))?
                .payload
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(|| text_error("no covered sequence number", "interrupted first commit"))?;
            let text = Self::wrap(dir, index, fields, params, covered)?;
            // Reading every segment once proves the postings and fast fields open.
            text.live_iids()?;
            Ok(text)
        }));
        match opened {
            Ok(Ok(text)) => Ok(Some(text)),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(text_error("unreadable", "tantivy failed while opening it")),
        }
    }

    fn wrap(dir: &Path, index: Index, fields: Fields, params: LexicalParams, covered: u64) -> Result<TextIndex> {
        index.tokenizers().register(ANALYZER, analyzer());
        let writer: IndexWriter =
            index.writer_with_num_threads(1, WRITER_MEMORY).map_err(|e| text_error("cannot open the writer", e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| text_error("cannot open the reader", e))?;
        Ok(TextIndex {
            dir: dir.to_path_buf(),
            reader,
            fields,
            params,
            writer: Mutex::new(WriterState {
                writer: Some(writer),
                applied_seq: covered,
                added_ahead: false,
                committed_seq: covered,
            }),
        })
    }

    /// A new index in `dir` (replacing whatever is there) holding every live document of `tree`.
    fn rebuild(
        dir: &Path,
        tree: &sled::Tree,
        seq: u64,
        params: LexicalParams,
        name: &str,
        progress: &dyn Progress,
    ) -> Result<TextIndex> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(|e| text_error("cannot create", e))?;
        let index = Index::create(directory, schema, Default::default()).map_err(|e| text_error("cannot create", e))?;
        let text = Self::wrap(dir, index, fields, params, 0)?;
        let total = tree.scan_prefix([DOC_TAG]).count() as u64;
        let shown = total >= PROGRESS_MIN;
        if shown {
            progress.start(&format!("rebuilding text index {name}"), total as usize);
        }
        {
            let st = text.writer()?;
            for kv in tree.scan_prefix([DOC_TAG]) {
                let (_, v) = kv.map_err(db_error)?;
                let rec = DocRecord::decode(&v)?;
                text.add_locked(&st, rec.internal_id, &rec.text)?;
                if shown {
                    progress.advance(1);
                }
            }
        }
        if shown {
            progress.finish();
        }
        text.writer()?.applied_seq = seq;
        text.commit_now()?;
        Ok(text)
    }

    /// Brings an index that covers writes up to `covered` up to `seq`.
    fn replay(&self, tree: &sled::Tree, covered: u64, seq: u64) -> Result<()> {
        let mut live = HashSet::new();
        for kv in tree.scan_prefix([VECTOR_TAG]) {
            let (k, _) = kv.map_err(db_error)?;
            live.insert(internal_id_of(&k)?);
        }
        let indexed = self.live_iids()?;
        let mut st = self.writer()?;
        for iid in indexed.iter().filter(|iid| !live.contains(iid)) {
            live_writer(&st)?.delete_term(Term::from_field_u64(self.fields.iid, *iid));
        }
        for kv in tree.scan_prefix([DOC_TAG]) {
            let (_, v) = kv.map_err(db_error)?;
            let rec = DocRecord::decode(&v)?;
            if rec.internal_id > covered && !indexed.contains(&rec.internal_id) {
                self.add_locked(&st, rec.internal_id, &rec.text)?;
            }
        }
        st.applied_seq = seq;
        drop(st);
        self.commit_now()
    }

    /// Internal ids of every document of the committed index.
    fn live_iids(&self) -> Result<HashSet<u64>> {
        let searcher = self.reader.searcher();
        let mut out = HashSet::new();
        for segment in searcher.segment_readers() {
            let column = segment.fast_fields().u64("iid").map_err(|e| text_error("unreadable ids", e))?;
            for doc in segment.doc_ids_alive() {
                if let Some(iid) = column.first(doc) {
                    out.insert(iid);
                }
            }
        }
        Ok(out)
    }

    /// Hands a write to the index: `removed` internal ids go, `added` documents come, and the
    /// index now reflects writes up to `seq` (visible to searches after the next commit).
    pub fn apply(&self, removed: &[u64], added: &[(u64, &str)], seq: u64) -> Result<()> {
        let mut st = self.writer()?;
        for iid in removed {
            live_writer(&st)?.delete_term(Term::from_field_u64(self.fields.iid, *iid));
        }
        for (iid, text) in added {
            self.add_locked(&st, *iid, text)?;
        }
        st.applied_seq = seq;
        Ok(())
    }

    /// Hands a write's new documents to the index ahead of the write's [`TextIndex::apply`],
    /// which then removes what it replaced: until then both versions are in the index, and the
    /// caller's filter shows the visible one. The sequence number covered does not move, so a
    /// commit in between records the earlier one and a replay after a crash removes or adds what
    /// differs from sled.
    pub fn add(&self, added: &[(u64, &str)]) -> Result<()> {
        let mut st = self.writer()?;
        for (iid, text) in added {
            self.add_locked(&st, *iid, text)?;
        }
        st.added_ahead |= !added.is_empty();
        Ok(())
    }

    fn add_locked(&self, st: &WriterState, iid: u64, text: &str) -> Result<()> {
        let mut doc = TantivyDocument::default();
        doc.add_u64(self.fields.iid, iid);
        doc.add_text(self.fields.body, text);
        live_writer(st)?.add_document(doc).map_err(|e| text_error("adding a document", e))?;
        Ok(())
    }

    /// Commits what was handed to the index since the last commit and makes it searchable.
    pub fn commit(&self) -> Result<()> {
        if self.has_pending() {
            self.commit_now()?;
        }
        Ok(())
    }

    /// Commits, recording the sequence number covered, even if nothing changed.
    fn commit_now(&self) -> Result<()> {
        let mut st = self.writer()?;
        let seq = st.applied_seq;
        let writer = st.writer.as_mut().ok_or_else(shut_down)?;
        let mut prepared = writer.prepare_commit().map_err(|e| text_error("commit", e))?;
        prepared.set_payload(&seq.to_string());
        prepared.commit().map_err(|e| text_error("commit", e))?;
        // Reloaded before the lock goes: a search that finds nothing pending must find the
        // commit in its searcher, or a document just switched in would be missing from it.
        self.reader.reload().map_err(|e| text_error("reloading after commit", e))?;
        st.committed_seq = seq;
        st.added_ahead = false;
        Ok(())
    }

    /// Stops the writer and waits for its background merges, so that nothing writes into the
    /// index folder any more (before the folder is removed); later writes are errors.
    pub fn shut_down(&self) {
        let writer = self.writer.lock().ok().and_then(|mut st| st.writer.take());
        if let Some(writer) = writer {
            if let Err(e) = writer.wait_merging_threads() {
                tracing::warn!("text index {}: stopping its merges: {e}", self.dir.display());
            }
        }
    }

    /// Whether writes were handed over since the last commit.
    pub fn has_pending(&self) -> bool {
        self.writer.lock().map(|st| st.applied_seq != st.committed_seq || st.added_ahead).unwrap_or(true)
    }

    /// The `k` best documents by BM25 for `query` among the internal ids `allow` accepts,
    /// best first; only documents that contain a query term are returned.
    pub fn search(&self, query: &str, k: usize, allow: &dyn Fn(u64) -> bool) -> Result<Vec<Scored>> {
        self.commit()?;
        let mut terms = terms_of(query);
        terms.sort();
        // A repeated query term counts once per occurrence, as in Lucene's BooleanQuery.
        let mut weighted: Vec<(String, f32)> = Vec::new();
        for t in terms {
            match weighted.last_mut() {
                Some((last, w)) if *last == t => *w += 1.0,
                _ => weighted.push((t, 1.0)),
            }
        }
        if k == 0 || weighted.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let (k1, b) = (self.params.k1, self.params.b);
        let mut n_docs = 0u64;
        let mut n_tokens = 0u64;
        for segment in searcher.segment_readers() {
            n_docs += u64::from(segment.max_doc());
            n_tokens +=
                segment.inverted_index(self.fields.body).map_err(|e| text_error("unreadable", e))?.total_num_tokens();
        }
        if n_docs == 0 {
            return Ok(Vec::new());
        }
        let avgdl = (n_tokens as f32 / n_docs as f32).max(f32::MIN_POSITIVE);
        let mut idf = Vec::with_capacity(weighted.len());
        for (t, w) in &weighted {
            let term = Term::from_field_text(self.fields.body, t);
            let df = searcher.doc_freq(&term).map_err(|e| text_error("unreadable", e))?;
            let x = ((n_docs - df.min(n_docs)) as f32 + 0.5) / (df as f32 + 0.5);
            idf.push((term, w * (1.0 + x).ln()));
        }
        let mut best = TopK::new(k);
        for segment in searcher.segment_readers() {
            let inverted = segment.inverted_index(self.fields.body).map_err(|e| text_error("unreadable", e))?;
            let norms = segment.get_fieldnorms_reader(self.fields.body).map_err(|e| text_error("unreadable", e))?;
            let mut scores = vec![0f32; segment.max_doc() as usize];
            let mut touched = Vec::new();
            for (term, weight) in &idf {
                let Some(mut postings) = inverted
                    .read_postings(term, IndexRecordOption::WithFreqs)
                    .map_err(|e| text_error("unreadable", e))?
                else {
                    continue;
                };
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    let tf = postings.term_freq() as f32;
                    let len = norms.fieldnorm(doc) as f32;
                    let s = weight * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len / avgdl));
                    let slot = &mut scores[doc as usize];
                    if *slot == 0.0 {
                        touched.push(doc);
                    }
                    *slot += s;
                    doc = postings.advance();
                }
            }
            if touched.is_empty() {
                continue;
            }
            let ids = segment.fast_fields().u64("iid").map_err(|e| text_error("unreadable ids", e))?;
            for doc in touched {
                if segment.is_deleted(doc) {
                    continue;
                }
                let Some(iid) = ids.first(doc) else { continue };
                let score = scores[doc as usize];
                if score > 0.0 && best.would_take(score) && allow(iid) {
                    best.push(score, iid);
                }
            }
        }
        Ok(best.into_sorted())
    }

    /// Size and coverage.
    pub fn stats(&self) -> Result<TextIndexStats> {
        let committed_seq = self.writer()?.committed_seq;
        Ok(TextIndexStats {
            documents: self.reader.searcher().num_docs(),
            bytes: dir_bytes(&self.dir),
            covered_seq: committed_seq,
        })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, WriterState>> {
        self.writer.lock().map_err(|_| Error::Poisoned("writing the text index"))
    }
}

impl Drop for TextIndex {
    /// Merges finish before the index goes, so the store can be reopened at once.
    fn drop(&mut self) {
        self.shut_down();
    }
}

fn live_writer(st: &WriterState) -> Result<&IndexWriter> {
    st.writer.as_ref().ok_or_else(shut_down)
}

fn shut_down() -> Error {
    Error::Index("the text index was shut down (its collection was dropped); open the collection again".into())
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}
