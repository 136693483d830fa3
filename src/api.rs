//! The collection API in Chroma's words — add, upsert, update, get, delete, query — one request
//! at a time, on plain values. The Python package and the HTTP server (`isovec serve`) both
//! speak it, so the two transports answer every request the same way, with the same checks and
//! messages.
//!
//! Invariants enforced here, before anything is written:
//! - a write names each id once, gives one document/embedding/metadata per id (or none of a
//!   kind), embeddings of the collection's dimension; `add` of an existing id changes nothing;
//! - a query's `ef` is bounded and its `n_results` clamped to what the collection holds (by the
//!   collection),
//!   every query text passes [`check_query_text`], a filter parses (nesting is bounded);
//! - a failure is an [`ApiError`] whose [`ErrorKind`] tells the transport how to report it
//!   (Python exception class, HTTP status) and whose message says what to do.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::encoder::EncoderOptions;
use crate::store::layout::MAX_EF;
use crate::store::{
    check_query_text, Collection, Doc, DocUpdate, Filter, Fusion, Hit, ListParams, PassagesDoc, SearchMode,
    SearchParams, Store, TextDoc,
};
use crate::{Embedder, Error, Pipeline, PipelineRequest};

/// What went wrong, as a transport reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad input: a wrong argument, filter, text or document.
    InvalidInput,
    /// No collection of that name.
    NotFound,
    /// An id given twice in one request, or `add` of an id the collection has.
    DuplicateId,
    /// A vector of the wrong number of dimensions.
    Dimension,
    /// A pipeline that does not make the collection's vectors.
    PipelineMismatch,
    /// A model or transform that cannot be found, read or run.
    Model,
    /// The store cannot be read or written, or is damaged.
    Store,
    /// Another process has the store open.
    StoreLocked,
    /// A fault inside isovec (a bug): report it.
    Internal,
}

impl ErrorKind {
    /// The class of `isovec.errors` (Python) that stands for this kind.
    pub fn python_class(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "InvalidInputError",
            ErrorKind::NotFound => "NotFoundError",
            ErrorKind::DuplicateId => "DuplicateIDError",
            ErrorKind::Dimension => "DimensionError",
            ErrorKind::PipelineMismatch => "PipelineMismatchError",
            ErrorKind::Model => "ModelError",
            ErrorKind::Store => "StoreError",
            ErrorKind::StoreLocked => "StoreLockedError",
            ErrorKind::Internal => "IsovecError",
        }
    }
}

/// A failed request: its kind and a message that says what to do.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// How a transport reports it.
    pub kind: ErrorKind,
    /// isovec's message.
    pub message: String,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError { kind, message: message.into() }
    }

    /// Bad input from the caller.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidInput, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let kind = match &e {
            Error::InvalidInput(_) | Error::Data { .. } | Error::Json(_) | Error::Dropped { .. } => {
                ErrorKind::InvalidInput
            }
            Error::Dimension { .. } => ErrorKind::Dimension,
            Error::PipelineMismatch { .. } => ErrorKind::PipelineMismatch,
            Error::Model(_) | Error::Transform(_) | Error::Candle(_) => ErrorKind::Model,
            Error::Locked { .. } => ErrorKind::StoreLocked,
            Error::Poisoned(_) | Error::Background(_) => ErrorKind::Internal,
            _ => ErrorKind::Store,
        };
        ApiError::new(kind, e.to_string())
    }
}

/// What an API call returns.
pub type ApiResult<T> = std::result::Result<T, ApiError>;

/// How a write treats ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Every id is new (an existing one is a [`ErrorKind::DuplicateId`], and nothing is written).
    Add,
    /// Adds, or replaces a document whose id exists (text, vector and metadata).
    Upsert,
    /// Every id exists: a given text is encoded again (or takes the embedding given), metadata
    /// are merged key by key (a key set to null is removed).
    Update,
}

/// Documents to write: one entry per id in each list given.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WriteRequest {
    /// The documents' ids.
    pub ids: Vec<String>,
    /// Texts (encoded by the collection's pipeline unless embeddings are given).
    #[serde(default)]
    pub documents: Option<Vec<Option<String>>>,
    /// Vectors, one per id (a collection of vectors made outside isovec needs them).
    #[serde(default)]
    pub embeddings: Option<Vec<Vec<f32>>>,
    /// Metadata: JSON objects or null.
    #[serde(default)]
    pub metadatas: Option<Vec<Option<Value>>>,
}

/// What a write did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct WriteCounts {
    /// Documents that were new.
    pub inserted: usize,
    /// Documents that replaced (or updated) one with the same id.
    pub replaced: usize,
}

/// A filter as a request gives it: an expression (`lang=en AND year>=2020`) or a JSON object
/// (`{"lang": "en"}`, with isovec's or Chroma's operators).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Where {
    /// The expression form.
    Expression(String),
    /// The JSON form.
    Object(serde_json::Map<String, Value>),
}

impl Where {
    /// The parsed filter.
    pub fn parse(&self) -> ApiResult<Filter> {
        Ok(match self {
            Where::Expression(s) => s.parse::<Filter>()?,
            Where::Object(m) => Value::Object(m.clone()).to_string().parse::<Filter>()?,
        })
    }
}

/// Parses an optional filter.
fn parse_where(filter: &Option<Where>) -> ApiResult<Option<Filter>> {
    filter.as_ref().map(Where::parse).transpose()
}

/// Which parts of documents to return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Include {
    /// The texts.
    Documents,
    /// The metadata.
    Metadatas,
    /// The vectors (a document's first, for documents stored as passages).
    Embeddings,
    /// The scores of a query's hits.
    Scores,
    /// `1 − cosine` of a query's hits (dense and exact searches).
    Distances,
}

fn default_get_include() -> Vec<Include> {
    vec![Include::Documents, Include::Metadatas]
}

/// Documents by ids or filter.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GetRequest {
    /// These documents, in this order (missing ones left out); none: every document, in id order.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// Only documents whose metadata match.
    #[serde(default, rename = "where")]
    pub filter: Option<Where>,
    /// Documents skipped before the first returned.
    #[serde(default)]
    pub offset: usize,
    /// At most this many.
    #[serde(default)]
    pub limit: Option<usize>,
    /// What to return beside the ids.
    #[serde(default = "default_get_include")]
    pub include: Vec<Include>,
}

impl Default for GetRequest {
    fn default() -> Self {
        GetRequest { ids: None, filter: None, offset: 0, limit: None, include: default_get_include() }
    }
}

/// Documents, as lists in the same order; a part not asked for is `None`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct GetResult {
    /// The ids.
    pub ids: Vec<String>,
    /// The texts.
    pub documents: Option<Vec<String>>,
    /// The metadata (null for none).
    pub metadatas: Option<Vec<Value>>,
    /// The vectors.
    pub embeddings: Option<Vec<Vec<f32>>>,
}

/// Documents to delete: by ids, by filter, or the ids the filter allows.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteRequest {
    /// These documents (missing ones are no error).
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// Those whose metadata match (`{}` matches every document).
    #[serde(default, rename = "where")]
    pub filter: Option<Where>,
}

/// What a delete did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct DeleteCounts {
    /// Documents deleted.
    pub deleted: usize,
}

fn default_n_results() -> usize {
    10
}

fn default_mode() -> String {
    "dense".into()
}

fn default_query_include() -> Vec<Include> {
    vec![Include::Documents, Include::Metadatas, Include::Scores]
}

/// One or many queries: texts (encoded together by the collection's pipeline), vectors, or
/// both (a hybrid search of a collection of vectors made outside isovec).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// Query texts.
    #[serde(default)]
    pub query_texts: Option<Vec<String>>,
    /// Query vectors.
    #[serde(default)]
    pub query_embeddings: Option<Vec<Vec<f32>>>,
    /// Hits per query (clamped to the documents the collection holds).
    #[serde(default = "default_n_results")]
    pub n_results: usize,
    /// Only documents whose metadata match.
    #[serde(default, rename = "where")]
    pub filter: Option<Where>,
    /// `dense`, `lexical` (BM25 on the texts), `hybrid` (both, fused), or `exact` (every vector
    /// scanned, no filter).
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Hybrid fusion: `convex` (default), `rrf`, or `auto` (the fusion `isovec advise` chose
    /// for the collection).
    #[serde(default)]
    pub fusion: Option<String>,
    /// The dense side's weight of the convex fusion, in [0, 1].
    #[serde(default)]
    pub alpha: Option<f32>,
    /// Candidates each side of a hybrid search retrieves before fusing (default 100).
    #[serde(default)]
    pub depth: Option<usize>,
    /// The HNSW candidate list width (1..=100,000).
    #[serde(default)]
    pub ef: Option<usize>,
    /// What to return beside the ids.
    #[serde(default = "default_query_include")]
    pub include: Vec<Include>,
}

impl Default for QueryRequest {
    fn default() -> Self {
        QueryRequest {
            query_texts: None,
            query_embeddings: None,
            n_results: default_n_results(),
            filter: None,
            mode: default_mode(),
            fusion: None,
            alpha: None,
            depth: None,
            ef: None,
            include: default_query_include(),
        }
    }
}

/// Each query's hits, best first, as lists; a part not asked for is `None`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct QueryResult {
    /// The hits' ids.
    pub ids: Vec<Vec<String>>,
    /// Cosine similarity (dense, exact), the fused score (hybrid) or BM25 (lexical).
    pub scores: Option<Vec<Vec<f32>>>,
    /// `1 − cosine` (dense and exact searches only).
    pub distances: Option<Vec<Vec<f32>>>,
    /// The texts.
    pub documents: Option<Vec<Vec<String>>>,
    /// The metadata (null for none).
    pub metadatas: Option<Vec<Vec<Value>>>,
}

/// A collection with the pipeline that encodes its texts: the one given, else the one it
/// records (none for vectors made outside isovec: texts are then not encoded).
#[derive(Clone)]
pub struct ApiCollection {
    /// The collection.
    pub collection: Collection,
    /// A pipeline given when it was opened (checked against the record when used).
    pub pipeline: Option<Arc<Pipeline>>,
}

impl ApiCollection {
    /// `collection`, encoding with `pipeline` if given, else with its recorded one.
    pub fn new(collection: Collection, pipeline: Option<Arc<Pipeline>>) -> ApiCollection {
        ApiCollection { collection, pipeline }
    }

    /// The pipeline that encodes texts: the one given (checked), else the recorded one.
    pub fn encoder(&self) -> ApiResult<Arc<Pipeline>> {
        match &self.pipeline {
            Some(p) => {
                self.collection.check_pipeline(p.as_ref())?;
                Ok(p.clone())
            }
            None => Ok(self.collection.pipeline()?),
        }
    }

    fn check_dims(&self, vectors: &[Vec<f32>]) -> ApiResult<()> {
        let expected = self.collection.config().dims;
        match vectors.iter().find(|v| v.len() != expected) {
            Some(v) => Err(Error::Dimension { expected, found: v.len() }.into()),
            None => Ok(()),
        }
    }

    /// Writes documents as `mode` says; nothing is written when the request is refused.
    pub fn write(&self, mode: WriteMode, req: WriteRequest) -> ApiResult<WriteCounts> {
        let c = &self.collection;
        let WriteRequest { ids, documents, embeddings, metadatas } = req;
        let n = ids.len();
        for (what, len) in [
            ("documents", documents.as_ref().map(Vec::len)),
            ("embeddings", embeddings.as_ref().map(Vec::len)),
            ("metadatas", metadatas.as_ref().map(Vec::len)),
        ] {
            if let Some(len) = len.filter(|&l| l != n) {
                return Err(ApiError::invalid(format!("{n} ids and {len} {what}: give one per id")));
            }
        }
        let mut seen = HashSet::new();
        let repeated: Vec<&str> = ids.iter().filter(|id| !seen.insert(id.as_str())).map(String::as_str).collect();
        if !repeated.is_empty() {
            return Err(ApiError::new(
                ErrorKind::DuplicateId,
                format!("ids given more than once: {repeated:?}; give each id once"),
            ));
        }
        if let Some(v) = &embeddings {
            self.check_dims(v)?;
        }
        let metadata: Vec<Option<Value>> = match (metadatas, mode) {
            (None, WriteMode::Update) => vec![None; n],
            (None, _) => vec![Some(Value::Null); n],
            (Some(m), _) => m.into_iter().map(|m| Some(m.unwrap_or(Value::Null))).collect(),
        };
        let documents = documents.unwrap_or_else(|| vec![None; n]);
        if mode == WriteMode::Update {
            let updates: Vec<DocUpdate> = ids
                .into_iter()
                .zip(documents)
                .zip(metadata)
                .enumerate()
                .map(|(i, ((id, text), metadata))| DocUpdate {
                    id,
                    text,
                    metadata,
                    vector: embeddings.as_ref().map(|v| v[i].clone()),
                })
                .collect();
            let report = c.update(&updates)?;
            return Ok(WriteCounts { inserted: report.inserted, replaced: report.replaced });
        }
        if mode == WriteMode::Add {
            let existing = c.existing(&ids)?;
            if !existing.is_empty() {
                return Err(ApiError::new(
                    ErrorKind::DuplicateId,
                    format!("ids already in collection {:?}: {existing:?}; use upsert to replace them", c.name()),
                ));
            }
        }
        let metadata = metadata.into_iter().map(Option::unwrap_or_default);
        let report = match embeddings {
            Some(vectors) => {
                let docs: Vec<Doc> = ids
                    .into_iter()
                    .zip(documents)
                    .zip(metadata)
                    .zip(vectors)
                    .map(|(((id, text), metadata), vector)| Doc {
                        id,
                        text: text.unwrap_or_default(),
                        metadata,
                        vector,
                    })
                    .collect();
                c.upsert(&docs)?
            }
            None => {
                let mut docs = Vec::with_capacity(n);
                for ((id, text), metadata) in ids.into_iter().zip(documents).zip(metadata) {
                    let Some(text) = text else {
                        return Err(ApiError::invalid(format!(
                            "document {id:?} has neither a text nor a vector; give documents or embeddings"
                        )));
                    };
                    docs.push(TextDoc { id, text, metadata });
                }
                c.add_texts_with(self.encoder()?.as_ref(), &docs)?
            }
        };
        Ok(WriteCounts { inserted: report.inserted, replaced: report.replaced })
    }

    /// Documents by ids (in that order, missing ones left out) or all (in id order), those the
    /// filter allows, from `offset`, at most `limit`.
    pub fn get(&self, req: &GetRequest) -> ApiResult<GetResult> {
        let c = &self.collection;
        let filter = parse_where(&req.filter)?;
        let docs: Vec<PassagesDoc> = match &req.ids {
            Some(ids) => c
                .get_many(ids)?
                .into_iter()
                .flatten()
                .filter(|d| filter.as_ref().is_none_or(|f| f.matches(&d.metadata)))
                .skip(req.offset)
                .take(req.limit.unwrap_or(usize::MAX))
                .collect(),
            None => c.list(&ListParams { filter, offset: req.offset, limit: req.limit })?,
        };
        let has = |i: Include| req.include.contains(&i);
        let mut out = GetResult::default();
        if has(Include::Embeddings) {
            out.embeddings = Some(docs.iter().map(|d| d.vectors.first().cloned().unwrap_or_default()).collect());
        }
        let (mut texts, mut metadatas) = (Vec::new(), Vec::new());
        for d in docs {
            out.ids.push(d.id);
            texts.push(d.text);
            metadatas.push(d.metadata);
        }
        out.documents = has(Include::Documents).then_some(texts);
        out.metadatas = has(Include::Metadatas).then_some(metadatas);
        Ok(out)
    }

    /// Deletes the documents with the ids that the filter allows (either may be left out, not
    /// both); returns how many were deleted.
    pub fn delete(&self, req: &DeleteRequest) -> ApiResult<DeleteCounts> {
        let c = &self.collection;
        let deleted = match (&req.ids, parse_where(&req.filter)?) {
            (Some(ids), None) => c.delete(ids)?,
            (Some(ids), Some(f)) => {
                let chosen: Vec<String> =
                    c.get_many(ids)?.into_iter().flatten().filter(|d| f.matches(&d.metadata)).map(|d| d.id).collect();
                c.delete(&chosen)?
            }
            (None, Some(f)) => c.delete_where(&f)?,
            (None, None) => {
                return Err(ApiError::invalid("delete: give ids, where, or both (where {} deletes every document)"))
            }
        };
        Ok(DeleteCounts { deleted })
    }

    /// The checks of a query that need no encoding: the texts, the sizes, the search parameters.
    /// Returns the parameters a search takes (`None` for an exact search).
    pub fn plan_query(&self, req: &QueryRequest) -> ApiResult<Option<SearchParams>> {
        let texts = req.query_texts.as_deref().unwrap_or_default();
        if texts.is_empty() && req.query_embeddings.as_ref().is_none_or(Vec::is_empty) {
            return Err(ApiError::invalid("query: give query_texts or query_embeddings"));
        }
        if let Some(v) = &req.query_embeddings {
            self.check_dims(v)?;
            if !texts.is_empty() && texts.len() != v.len() {
                return Err(ApiError::invalid(format!(
                    "{} query texts and {} query vectors: give one text per vector (or only one kind)",
                    texts.len(),
                    v.len()
                )));
            }
        }
        for text in texts {
            check_query_text(text)?;
        }
        if let Some(ef) = req.ef {
            if !(1..=MAX_EF).contains(&ef) {
                return Err(ApiError::invalid(format!(
                    "ef = {ef} is out of range; give a width in 1..={MAX_EF} (32–400 is typical)"
                )));
            }
        }
        if req.mode == "exact" {
            if req.filter.is_some() {
                return Err(ApiError::invalid("an exact search takes no filter; use mode \"dense\" with a filter"));
            }
            if req.ef.is_some() {
                return Err(ApiError::invalid(
                    "an exact search scans every vector and takes no ef; give ef with mode \"dense\" or \"hybrid\"",
                ));
            }
            return Ok(None);
        }
        let mode: SearchMode = req.mode.parse()?;
        let mut params = SearchParams::k(req.n_results).with_mode(mode);
        params.ef = req.ef;
        params.depth = req.depth;
        params.filter = parse_where(&req.filter)?;
        if req.fusion.is_some() || req.alpha.is_some() {
            params.fusion = Fusion::parse(req.fusion.as_deref().unwrap_or("convex"), req.alpha)?;
        }
        match mode {
            SearchMode::Lexical if texts.is_empty() => Err(ApiError::invalid("a lexical search needs query_texts")),
            SearchMode::Hybrid if texts.is_empty() => Err(ApiError::invalid(
                "a hybrid search needs query_texts (and their query_embeddings, or a pipeline that makes them)",
            )),
            _ => Ok(Some(params)),
        }
    }

    /// Whether the query needs its texts encoded (no vectors given and not lexical).
    pub fn needs_encoding(req: &QueryRequest, params: &Option<SearchParams>) -> bool {
        req.query_embeddings.is_none() && params.as_ref().is_none_or(|p| p.mode != SearchMode::Lexical)
    }

    /// Answers a query; texts are encoded here unless `encoded` gives their vectors (the
    /// server encodes concurrent queries together and passes them in).
    pub fn query(&self, req: &QueryRequest, encoded: Option<Vec<Vec<f32>>>) -> ApiResult<QueryResult> {
        let params = self.plan_query(req)?;
        self.query_planned(req, params, encoded)
    }

    /// [`ApiCollection::query`] with the parameters [`ApiCollection::plan_query`] gave for `req`.
    pub fn query_planned(
        &self,
        req: &QueryRequest,
        params: Option<SearchParams>,
        encoded: Option<Vec<Vec<f32>>>,
    ) -> ApiResult<QueryResult> {
        let texts: Vec<&str> = req.query_texts.iter().flatten().map(String::as_str).collect();
        let vectors = match (&req.query_embeddings, encoded) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(v)) => Some(v),
            (None, None) if Self::needs_encoding(req, &params) => Some(self.encoder()?.embed_queries(&texts)?),
            (None, None) => None,
        };
        let hits: Vec<Vec<Hit>> = match (params, vectors) {
            (None, Some(v)) => {
                v.iter().map(|q| self.collection.search_exact(q, req.n_results)).collect::<crate::Result<_>>()?
            }
            (Some(p), _) if p.mode == SearchMode::Lexical => self.collection.search_texts(&texts, &p)?,
            (Some(p), Some(v)) => self.collection.search_vectors_and_texts(&v, &texts, &p)?,
            (_, None) => return Err(ApiError::new(ErrorKind::Internal, "a query without vectors to search with")),
        };
        let dense = matches!(req.mode.as_str(), "dense" | "exact");
        let has = |i: Include| req.include.contains(&i);
        let mut out = QueryResult::default();
        let scores: Vec<Vec<f32>> = hits.iter().map(|h| h.iter().map(|h| h.score).collect()).collect();
        if has(Include::Distances) && dense {
            out.distances = Some(scores.iter().map(|s| s.iter().map(|s| 1.0 - s).collect()).collect());
        }
        out.scores = has(Include::Scores).then_some(scores);
        let (mut texts, mut metadatas) = (Vec::new(), Vec::new());
        for h in hits {
            let mut ids = Vec::with_capacity(h.len());
            let (mut t, mut m) = (Vec::with_capacity(h.len()), Vec::with_capacity(h.len()));
            for hit in h {
                ids.push(hit.id);
                t.push(hit.text);
                m.push(hit.metadata);
            }
            out.ids.push(ids);
            texts.push(t);
            metadatas.push(m);
        }
        out.documents = has(Include::Documents).then_some(texts);
        out.metadatas = has(Include::Metadatas).then_some(metadatas);
        Ok(out)
    }

    /// The vectors of `texts` as the collection's pipeline makes them (queries: with its query
    /// prefix).
    pub fn embed(&self, texts: &[&str], queries: bool) -> ApiResult<Vec<Vec<f32>>> {
        let pipeline = self.encoder()?;
        Ok(if queries { pipeline.embed_queries(texts)? } else { pipeline.embed(texts)? })
    }
}

/// How to open a collection by name.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OpenCollection {
    /// Create it when missing.
    #[serde(default)]
    pub create: bool,
    /// An existing one is an error (with `create`: a new collection only).
    #[serde(default)]
    pub new_only: bool,
    /// A collection of vectors made outside isovec, of this many dimensions.
    #[serde(default)]
    pub dims: Option<usize>,
    /// The name of the model that made those vectors (with `dims`).
    #[serde(default)]
    pub model: Option<String>,
}

/// The error for a missing collection, naming those the store has.
pub fn not_found(store: &Store, name: &str) -> ApiError {
    let names: Vec<String> = match store.list_collections() {
        Ok(list) => list.into_iter().map(|(n, _)| n).collect(),
        Err(e) => return e.into(),
    };
    ApiError::new(
        ErrorKind::NotFound,
        format!(
            "no collection {name:?} in {}; existing collections: [{}]; create it with get_or_create_collection",
            store.path().display(),
            names.join(", ")
        ),
    )
}

/// Opens the collection `name` of `store` as `how` says. With `dims`, it holds vectors made
/// outside isovec; else with `given`, that pipeline's vectors (an existing collection must hold
/// them); else an existing collection encodes with its recorded pipeline and a new one is made
/// for the default pipeline, loaded with `options`.
pub fn open_collection(
    store: &Store,
    name: &str,
    how: &OpenCollection,
    given: Option<Arc<Pipeline>>,
    options: &EncoderOptions,
) -> ApiResult<ApiCollection> {
    if how.model.is_some() && how.dims.is_none() {
        return Err(ApiError::invalid("model names the model of your own vectors: give their dims too"));
    }
    let present = store.list_collections()?.iter().any(|(n, _)| n == name);
    if present && how.new_only {
        return Err(ApiError::invalid(format!(
            "collection {name:?} already exists; open it with get_collection, or delete it first"
        )));
    }
    if !present && !how.create {
        return Err(not_found(store, name));
    }
    if let Some(dims) = how.dims {
        if given.is_some() {
            return Err(ApiError::invalid("give a pipeline (isovec encodes) or dims (your own vectors), not both"));
        }
        let model = how.model.as_deref().unwrap_or("external");
        return Ok(ApiCollection::new(store.get_or_create_external_collection(name, model, dims)?, None));
    }
    if let Some(p) = given {
        return Ok(ApiCollection::new(store.get_or_create_collection_for(name, p.as_ref())?, Some(p)));
    }
    if present {
        return Ok(ApiCollection::new(store.collection(name)?, None));
    }
    let default = PipelineRequest::default().load(options)?;
    Ok(ApiCollection::new(store.get_or_create_collection_for(name, default.as_ref())?, Some(default)))
}

/// Deletes the collection `name` and its documents ([`ErrorKind::NotFound`] if there is none).
pub fn delete_collection(store: &Store, name: &str) -> ApiResult<()> {
    if store.drop_collection(name)? {
        Ok(())
    } else {
        Err(not_found(store, name))
    }
}
