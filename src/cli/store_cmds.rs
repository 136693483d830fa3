//! `isovec index`, `search`, `delete`, `stats` and `compact`: the store from the command line.
//!
//! `index` and `search` need an embedder (the caller loads the model); the others do not, nor do
//! `index --vectors` and `search --query-vector`, which take vectors made outside isovec.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde_json::Value;

use super::common::BarProgress;
use crate::encoder::EncoderOptions;
use crate::store::{
    Collection, Doc, Filter, Fusion, Hit, Passages, SearchMode, SearchParams, Store, TextDoc, UpsertReport,
    MAX_TEXT_BYTES,
};
use crate::{Embedder, Error};

/// Which store and collection a command works on.
#[derive(clap::Args, Debug, Clone)]
pub struct StoreArgs {
    /// Store directory (created by `index` if missing).
    #[arg(long)]
    pub store: PathBuf,
    /// Collection name.
    #[arg(long, default_value = "default")]
    pub collection: String,
}

/// The store of `index`, `search`, `get` and `delete`: a directory, or the server that owns one.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TargetArgs {
    /// Store directory (created by `index` if missing).
    #[arg(long, required_unless_present = "server", conflicts_with = "server")]
    pub store: Option<PathBuf>,
    /// The `isovec serve` that owns the store (e.g. http://127.0.0.1:8750), instead of --store.
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// A file holding the server's bearer token.
    #[arg(long, requires = "server")]
    pub token_file: Option<PathBuf>,
    /// Collection name.
    #[arg(long, default_value = "default")]
    pub collection: String,
}

impl TargetArgs {
    /// The store directory `dir`'s collection `collection` (for tests).
    #[cfg(feature = "test-support")]
    pub fn local(dir: &Path, collection: &str) -> TargetArgs {
        TargetArgs { store: Some(dir.to_path_buf()), collection: collection.to_string(), ..TargetArgs::default() }
    }

    /// The store directory (an error when a server was given instead).
    pub fn dir(&self) -> anyhow::Result<&Path> {
        self.store.as_deref().ok_or_else(|| anyhow::anyhow!("give the store directory with --store DIR"))
    }
}

/// Input format of `isovec index`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// One JSON object a line: `{"id": ..., "text": ..., "metadata": {...}}`.
    Jsonl,
    /// One document a line; its id is `<file name>:<line number>`.
    Text,
}

/// `isovec index`: add or replace documents from a file.
#[derive(clap::Args, Debug, Clone)]
pub struct IndexArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// JSON lines (`id`, `text`, optional `metadata`) or plain text, one document a line.
    pub file: PathBuf,
    /// Input format; by default JSON lines if the first non-blank line starts with `{`.
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,
    /// Documents per durable batch.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Split texts longer than the encoder's limit into overlapping passages, one vector each
    /// (a document scores as its best passage), instead of cutting their tail.
    #[arg(long)]
    pub passages: bool,
    /// Tokens per passage (default: the encoder's limit, 254 for the default model).
    #[arg(long, requires = "passages")]
    pub passage_tokens: Option<usize>,
    /// Tokens from one passage's start to the next's (default: 3/4 of the passage, a quarter of overlap).
    #[arg(long, requires = "passages")]
    pub passage_stride: Option<usize>,
}

/// `isovec search`: the documents nearest to a query text.
#[derive(clap::Args, Debug, Clone)]
pub struct SearchArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Number of results.
    #[arg(short = 'k', long, default_value_t = 10)]
    pub k: usize,
    /// HNSW candidate list width (default: the collection's).
    #[arg(long)]
    pub ef: Option<usize>,
    /// dense (vectors), lexical (BM25; loads no model) or hybrid (both rankings fused).
    #[arg(long, default_value = "dense")]
    pub mode: String,
    /// Hybrid fusion: convex (weighted min–max normalised scores), rrf (reciprocal ranks), or
    /// auto (the fusion `isovec advise` chose for the collection).
    #[arg(long, default_value = "convex")]
    pub fusion: String,
    /// The dense side's weight in the convex fusion, in [0, 1] (default 0.5), or `auto`: the
    /// fusion `isovec advise` chose for the collection on its own texts (same as --fusion auto).
    #[arg(long)]
    pub alpha: Option<String>,
    /// Candidates each side of a hybrid search retrieves before fusing (default 100).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Metadata filter, e.g. `topic=space AND year>=2020 AND lang IN (en,fr)`; or a JSON object.
    #[arg(long)]
    pub filter: Option<String>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The query text (several words are joined with spaces); may be left out for a dense search
    /// by --query-vector.
    #[arg(required_unless_present = "query_vector", num_args = 1..)]
    pub query: Vec<String>,
}

impl SearchArgs {
    /// The fusion `--fusion` and `--alpha` ask for (`--alpha auto` is `--fusion auto`).
    pub fn fusion(&self) -> crate::Result<Fusion> {
        match self.alpha.as_deref().map(str::trim) {
            Some("auto") if self.fusion == "convex" || self.fusion == "auto" => Fusion::parse("auto", None),
            Some("auto") => Err(Error::InvalidInput(format!(
                "--alpha auto takes the fusion `isovec advise` chose; leave out --fusion {}",
                self.fusion
            ))),
            Some(a) => {
                let alpha = a.parse::<f32>().map_err(|_| {
                    Error::InvalidInput(format!("--alpha {a}: give the dense side's weight in [0, 1], or auto"))
                })?;
                Fusion::parse(&self.fusion, Some(alpha))
            }
            None => Fusion::parse(&self.fusion, None),
        }
    }
}

/// `isovec index --vectors`: the documents' vectors, made outside isovec.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct VectorsArgs {
    /// The documents' vectors, made by another model: a .npy file (float32 or float64, C order) of
    /// shape (documents, dims), row i for the corpus's i-th document (blank lines hold none). The
    /// collection then holds that model's vectors: search it with --query-vector or --mode lexical;
    /// isovec encodes no text into it. The file and the corpus are checked whole first: a bad row
    /// or line writes nothing.
    #[arg(
        long,
        value_name = "FILE.npy",
        conflicts_with_all = ["model", "pooling", "transform", "query_prefix", "document_prefix", "max_length", "passages"]
    )]
    pub vectors: Option<PathBuf>,
    /// The model that made --vectors (any name that tells its vectors apart, e.g.
    /// text-embedding-3-small): needed to create the collection; for an existing one, its
    /// recorded name, and a name given must match it.
    #[arg(long, value_name = "NAME", requires = "vectors")]
    pub vectors_model: Option<String>,
}

/// `isovec search --query-vector`: the query's vector, made outside isovec.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct QueryVectorArgs {
    /// The query's vector, made by the collection's model (.npy, float32 or float64, shape (dims,)
    /// or (1, dims)): a dense search by it (the query text may be left out), or with --mode hybrid,
    /// fused with the lexical ranking of the query text. Loads no model; a collection of vectors
    /// made outside isovec (`isovec index --vectors`) needs it for dense and hybrid searches.
    #[arg(
        long,
        value_name = "FILE.npy",
        conflicts_with_all = ["model", "pooling", "transform", "query_prefix", "document_prefix", "max_length"]
    )]
    pub query_vector: Option<PathBuf>,
}

/// `isovec delete`: remove documents by id.
#[derive(clap::Args, Debug, Clone)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Ids of the documents to delete.
    #[arg(required = true, num_args = 1..)]
    pub ids: Vec<String>,
}

/// `isovec get`: documents by id, or those a filter allows, as JSON lines.
#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Metadata filter (as `isovec search --filter`).
    #[arg(long)]
    pub filter: Option<String>,
    /// Documents skipped (in id order) before the first printed.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// At most this many documents.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Ids of the documents (in this order; missing ones are left out); none: every document.
    pub ids: Vec<String>,
}

/// `isovec stats`: counts per collection.
#[derive(clap::Args, Debug, Clone)]
pub struct StatsArgs {
    /// Store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// Only this collection (default: all).
    #[arg(long)]
    pub collection: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `isovec compact`: rebuild a collection's index without deleted entries.
#[derive(clap::Args, Debug, Clone)]
pub struct CompactArgs {
    #[command(flatten)]
    pub target: StoreArgs,
}

/// Gives the embedder of a collection (`None`: of a collection to be created).
pub type EmbedderFor<'a> = dyn Fn(Option<&Collection>) -> anyhow::Result<Arc<dyn Embedder>> + 'a;

/// Runs `isovec index`; returns what it wrote (cut texts and passages included). `embedder`
/// gives the existing collection's embedder, or the new collection's (whose pipeline the
/// collection then records); `options` run the collection's recorded pipeline.
pub fn index(args: &IndexArgs, options: &EncoderOptions, embedder: &EmbedderFor<'_>) -> anyhow::Result<UpsertReport> {
    let store = open_store(args.target.dir()?, true, options)?;
    let name = &args.target.collection;
    let existing = store.list_collections()?.iter().any(|(n, _)| n == name);
    let (collection, embedder) = if existing {
        let collection = store.collection(name)?;
        let embedder = embedder(Some(&collection))?;
        (collection, embedder)
    } else {
        let embedder = embedder(None)?;
        (store.create_collection_for(name, embedder.as_ref())?, embedder)
    };
    let mut lines = DocLines::open(args)?;
    let bar = indicatif::ProgressBar::new(lines.total_bytes);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let mut totals = UpsertReport::default();
    let mut done = false;
    let batch_size = args.batch.max(1);
    while !done {
        // Parse a whole batch before writing any of it, so a bad line leaves no half batch.
        let mut batch: Vec<(usize, TextDoc)> = Vec::with_capacity(batch_size);
        while batch.len() < batch_size {
            match lines.next()? {
                None => {
                    done = true;
                    break;
                }
                Some(Ok(doc)) => batch.push((lines.line_no, doc)),
                Some(Err(m)) => {
                    return Err(data_error(&args.file, lines.line_no, &m, totals.inserted + totals.replaced))
                }
            }
        }
        if batch.is_empty() {
            break;
        }
        let docs: Vec<TextDoc> = batch.iter().map(|(_, d)| d.clone()).collect();
        let written = if args.passages {
            let passages = Passages { length: args.passage_tokens, stride: args.passage_stride };
            collection.add_texts_in_passages_with(embedder.as_ref(), &docs, passages)
        } else {
            collection.add_texts_with(embedder.as_ref(), &docs)
        };
        let report = written.map_err(|e| {
            let first = batch.first().map(|b| b.0).unwrap_or(0);
            anyhow::anyhow!("{e}\n(batch of lines {first}–{} not written; earlier batches were)", lines.line_no)
        })?;
        for id in &report.duplicate_ids {
            let lines: Vec<String> = batch.iter().filter(|(_, d)| &d.id == id).map(|(l, _)| l.to_string()).collect();
            bar.suspend(|| {
                eprintln!("warning: id {id:?} appears on lines {}; the last one was kept", lines.join(", "))
            });
        }
        totals.inserted += report.inserted;
        totals.replaced += report.replaced;
        totals.duplicate_ids.extend(report.duplicate_ids);
        totals.passages += report.passages;
        totals.truncated += report.truncated;
        let docs_done = totals.inserted + totals.replaced;
        bar.set_position(lines.bytes_read);
        bar.set_message(format!(
            "{docs_done} docs, {:.0} docs/s",
            docs_done as f64 / start.elapsed().as_secs_f64().max(1e-9)
        ));
    }
    bar.finish_and_clear();
    drop(collection);
    store.close()?;
    let secs = start.elapsed().as_secs_f64();
    let docs = totals.inserted + totals.replaced;
    eprintln!(
        "indexed {docs} documents into {}/{} ({} new, {} replaced, {} repeated ids) in {secs:.1} s, {:.0} docs/s",
        args.target.dir()?.display(),
        args.target.collection,
        totals.inserted,
        totals.replaced,
        totals.duplicate_ids.len(),
        docs as f64 / secs.max(1e-9)
    );
    if args.passages {
        eprintln!("{} passages (vectors) for {docs} documents; no text was cut", totals.passages);
    } else if totals.truncated > 0 {
        eprintln!(
            "{} of {docs} texts were longer than the encoder's limit ({} tokens) and lost their tail in the dense index \
             (the full-text index has them whole); --passages indexes long texts whole, as overlapping passages",
            totals.truncated,
            embedder.id().encoder.max_length
        );
    } else {
        eprintln!("no text was longer than the encoder's limit ({} tokens)", embedder.id().encoder.max_length);
    }
    Ok(totals)
}

/// Runs `isovec index --vectors`: the corpus's documents with their vectors made outside isovec,
/// into a collection of that model's vectors ([`Store::get_or_create_external_collection`]);
/// returns what it wrote. The vectors and every line are checked before anything is written (the
/// store and the collection are created only then), so a bad file writes nothing.
pub fn index_vectors(args: &IndexArgs, vectors: &VectorsArgs) -> anyhow::Result<UpsertReport> {
    let Some(vectors_path) = &vectors.vectors else {
        anyhow::bail!("no --vectors FILE.npy given");
    };
    if args.passages {
        anyhow::bail!(
            "--passages splits texts that isovec encodes; with --vectors each document has the one vector its row gives"
        );
    }
    let matrix = super::npy::document_vectors(vectors_path)?;
    let dims = matrix.dims;
    let mut lines = DocLines::open(args)?;
    let mut docs: Vec<(usize, TextDoc)> = Vec::new();
    while let Some(doc) = lines.next()? {
        let doc = doc.and_then(|d| {
            if d.text.len() > MAX_TEXT_BYTES {
                Err(format!(
                    "document {:?} has a text of {} bytes, more than the {} MiB a document may hold; split it",
                    d.id,
                    d.text.len(),
                    MAX_TEXT_BYTES >> 20
                ))
            } else {
                Ok(d)
            }
        });
        match doc {
            Ok(d) => docs.push((lines.line_no, d)),
            Err(m) => return Err(anyhow::Error::new(Error::Data {
                path: args.file.clone(),
                line: lines.line_no,
                message: m,
            })
            .context(
                "nothing was written (the corpus and the vectors are checked whole first): fix the line and run again",
            )),
        }
    }
    if docs.len() != matrix.rows() {
        anyhow::bail!(
            "{} has {} rows of vectors, {} has {} documents; give one row per document, in the corpus's order              (blank lines hold no document); nothing was written",
            vectors_path.display(),
            matrix.rows(),
            args.file.display(),
            docs.len()
        );
    }
    let name = &args.target.collection;
    // A new store or collection needs the model's name; an existing collection has it.
    let dir = args.target.dir()?;
    let store = open_store(dir, vectors.vectors_model.is_some(), &EncoderOptions::default()).map_err(|e| match e {
        Error::NoStore { .. } => anyhow::anyhow!(
            "no store in {} yet: name the model that made the vectors with --vectors-model NAME to create \
                 collection {name:?} for them",
            dir.display()
        ),
        other => other.into(),
    })?;
    let model = match &vectors.vectors_model {
        Some(m) => m.clone(),
        None => {
            let existing = store.list_collections()?.into_iter().find(|(n, _)| n == name);
            match existing {
                None => anyhow::bail!(
                    "collection {name:?} does not exist yet: name the model that made the vectors with \
                     --vectors-model NAME to create it"
                ),
                Some((_, config)) if config.pipeline.is_external() => config.pipeline.encoder.model.clone(),
                Some((_, config)) => anyhow::bail!(
                    "collection {name:?} holds vectors isovec encodes with {}: index its texts without --vectors, or \
                     give these vectors to another collection (--collection NEW --vectors-model NAME)",
                    config.pipeline
                ),
            }
        }
    };
    let collection = store
        .get_or_create_external_collection(name, &model, dims)
        .with_context(|| format!("{}: nothing was written", vectors_path.display()))?;
    let start = Instant::now();
    let bar = super::common::progress_bar(docs.len() as u64, "indexing");
    let mut totals = UpsertReport::default();
    for (b, chunk) in docs.chunks(args.batch.max(1)).enumerate() {
        let first_row = b * args.batch.max(1);
        let batch: Vec<Doc> = chunk
            .iter()
            .enumerate()
            .map(|(i, (_, d))| Doc {
                id: d.id.clone(),
                text: d.text.clone(),
                metadata: d.metadata.clone(),
                vector: matrix.row(first_row + i).to_vec(),
            })
            .collect();
        let report = collection.upsert(&batch).map_err(|e| {
            let (first, last) = (chunk.first().map_or(0, |c| c.0), chunk.last().map_or(0, |c| c.0));
            anyhow::anyhow!("{e}\n(batch of lines {first}–{last} not written; earlier batches were)")
        })?;
        for id in &report.duplicate_ids {
            let lines: Vec<String> = chunk.iter().filter(|(_, d)| &d.id == id).map(|(l, _)| l.to_string()).collect();
            bar.suspend(|| {
                eprintln!("warning: id {id:?} appears on lines {}; the last one was kept", lines.join(", "))
            });
        }
        totals.inserted += report.inserted;
        totals.replaced += report.replaced;
        totals.duplicate_ids.extend(report.duplicate_ids);
        totals.passages += report.passages;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    drop(collection);
    store.close()?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "indexed {} documents with their vectors ({model:?}, {dims} dimensions) into {}/{name} ({} new, {} replaced, \
         {} repeated ids) in {secs:.1} s; search it with --query-vector FILE.npy or --mode lexical",
        totals.inserted + totals.replaced,
        args.target.dir()?.display(),
        totals.inserted,
        totals.replaced,
        totals.duplicate_ids.len(),
    );
    Ok(totals)
}

/// Runs `isovec search`; `embedder` gives the collection's embedder (not called for a lexical
/// search); `options` run the collection's recorded pipeline. For tests: the CLI calls
/// [`search_with`].
#[cfg(feature = "test-support")]
pub fn search(args: &SearchArgs, options: &EncoderOptions, embedder: &EmbedderFor<'_>) -> anyhow::Result<()> {
    search_with(args, &QueryVectorArgs::default(), options, embedder)
}

/// Runs `isovec search`, by the vector of `--query-vector` when one is given (then `embedder` is
/// not called).
pub fn search_with(
    args: &SearchArgs,
    query_vector: &QueryVectorArgs,
    options: &EncoderOptions,
    embedder: &EmbedderFor<'_>,
) -> anyhow::Result<()> {
    let mode: SearchMode = args.mode.parse()?;
    let fusion = args.fusion()?;
    if mode != SearchMode::Hybrid && (args.alpha.is_some() || args.depth.is_some()) {
        anyhow::bail!("--alpha and --depth shape a hybrid search; add --mode hybrid");
    }
    let query = args.query.join(" ");
    let vector = match &query_vector.query_vector {
        Some(_) if mode == SearchMode::Lexical => anyhow::bail!(
            "a lexical search ranks by the query text alone: leave out --query-vector, or search with --mode dense or hybrid"
        ),
        Some(path) => Some((path, super::npy::query_vector(path)?)),
        None => None,
    };
    if mode != SearchMode::Dense && query.trim().is_empty() {
        anyhow::bail!("a {} search needs the query text: give it after the options", mode.name());
    }
    let store = open_store(args.target.dir()?, false, options)?;
    let collection = store.collection(&args.target.collection)?;
    let filter = args.filter.as_deref().map(str::parse::<Filter>).transpose()?;
    let params = SearchParams { ef: args.ef, filter, mode, fusion, depth: args.depth, ..SearchParams::k(args.k) };
    let pipeline = &collection.config().pipeline;
    if let Some((path, v)) = &vector {
        let dims = collection.config().dims;
        if v.len() != dims {
            anyhow::bail!(
                "{}: the query vector has {} dimensions, collection {:?} holds vectors of {dims}; make the query \
                 vector with the collection's model ({})",
                path.display(),
                v.len(),
                args.target.collection,
                if pipeline.is_external() { format!("{:?}", pipeline.encoder.model) } else { pipeline.to_string() }
            );
        }
    }
    let hits = match (mode, vector) {
        (SearchMode::Lexical, _) => collection.search_lexical(&query, &params)?,
        (SearchMode::Hybrid, Some((_, v))) => collection.search_hybrid(&v, &query, &params)?,
        (_, Some((_, v))) => collection.search(&v, &params)?,
        (_, None) if pipeline.is_external() => anyhow::bail!(
            "collection {:?} holds vectors made outside isovec (model {:?}, {} dimensions), so isovec cannot \
             encode the query: give that model's vector of the query with --query-vector FILE.npy, or search with \
             --mode lexical",
            args.target.collection,
            pipeline.encoder.model,
            collection.config().dims
        ),
        (_, None) => collection.search_text_with(embedder(Some(&collection))?.as_ref(), &query, &params)?,
    };
    if args.json {
        for h in &hits {
            println!("{}", serde_json::json!({"id": h.id, "score": h.score, "text": h.text, "metadata": h.metadata}));
        }
    } else {
        print!("{}", hits_table(&hits));
    }
    Ok(())
}

/// Runs `isovec delete`.
pub fn delete(args: &DeleteArgs) -> anyhow::Result<()> {
    let store = open_store(args.target.dir()?, false, &EncoderOptions::default())?;
    let collection = store.collection(&args.target.collection)?;
    let n = collection.delete(&args.ids)?;
    drop(collection);
    store.close()?;
    eprintln!("deleted {n} of {} ids from {}", args.ids.len(), args.target.collection);
    Ok(())
}

/// Runs `isovec stats`.
pub fn stats(args: &StatsArgs) -> anyhow::Result<()> {
    let store = open_store(&args.store, false, &EncoderOptions::default())?;
    let names: Vec<String> = match &args.collection {
        Some(n) => vec![n.clone()],
        None => store.list_collections()?.into_iter().map(|(n, _)| n).collect(),
    };
    let mut rows = Vec::new();
    for name in names {
        rows.push(store.collection(&name)?.stats()?);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>5} {:>10} {:>12}  pipeline",
        "collection", "documents", "indexed", "deleted", "dims", "text docs", "text bytes"
    );
    for s in &rows {
        println!(
            "{:<16} {:>10} {:>10} {:>10} {:>5} {:>10} {:>12}  {}",
            s.name,
            s.documents,
            s.indexed_points,
            s.tombstones,
            s.dims,
            s.text_index.documents,
            s.text_index.bytes,
            s.pipeline
        );
    }
    for s in &rows {
        if let Some(e) = &s.maintenance_error {
            eprintln!("warning: {}: the last index update after a write failed: {e}", s.name);
        }
    }
    Ok(())
}

/// Runs `isovec compact`.
pub fn compact(args: &CompactArgs) -> anyhow::Result<()> {
    let store = open_store(&args.target.store, false, &EncoderOptions::default())?;
    let collection = store.collection(&args.target.collection)?;
    let before = collection.stats()?;
    let start = Instant::now();
    collection.compact()?;
    let after = collection.stats()?;
    eprintln!(
        "compacted {}: {} → {} indexed points in {:.1} s",
        args.target.collection,
        before.indexed_points,
        after.indexed_points,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The store at `path` (created if `create` and missing), with its index rebuilds drawn as bars
/// and its collections' recorded pipelines run with `options`.
pub(crate) fn open_store(path: &Path, create: bool, options: &EncoderOptions) -> crate::Result<Store> {
    let store = if create { Store::open(path)? } else { Store::open_existing(path)? };
    Ok(store.with_progress(Arc::new(BarProgress::default())).with_encoder_options(options.clone()))
}

/// Search hits as an aligned text table.
pub fn hits_table(hits: &[Hit]) -> String {
    let rows = hits.iter().enumerate().map(|(i, h)| {
        let meta = if h.metadata.is_null() { String::new() } else { h.metadata.to_string() };
        vec![(i + 1).to_string(), format!("{:.3}", h.score), clip(&h.id, 20), clip(&h.text, 60), meta]
    });
    crate::table::plain(&["rank", "score", "id", "text", "metadata"], &[0, 1], rows)
}

fn clip(s: &str, width: usize) -> String {
    let s = s.replace(['\n', '\t'], " ");
    if s.chars().count() <= width {
        s
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// One JSON line as a document; the error message says what is wrong. Public for the fuzz
/// target `json_lines`.
pub fn parse_json_line(line: &str) -> Result<TextDoc, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(mut obj) = v else {
        return Err("expected an object like {\"id\": \"a\", \"text\": \"...\", \"metadata\": {...}}".into());
    };
    let id = match obj.remove("id") {
        Some(Value::String(s)) if !s.is_empty() => s,
        Some(Value::Number(n)) => n.to_string(),
        _ => return Err("missing \"id\" (a non-empty string or a number)".into()),
    };
    let text = match obj.remove("text") {
        Some(Value::String(s)) => s,
        _ => return Err(format!("document {id:?}: missing \"text\" (a string)")),
    };
    if text.trim().is_empty() {
        return Err(format!("document {id:?}: \"text\" is empty"));
    }
    let metadata = match obj.remove("metadata") {
        None | Some(Value::Null) => Value::Null,
        Some(m @ Value::Object(_)) => m,
        Some(other) => return Err(format!("document {id:?}: \"metadata\" must be an object, got {other}")),
    };
    Ok(TextDoc { id, text, metadata })
}

fn data_error(path: &Path, line: usize, message: &str, written: usize) -> anyhow::Error {
    anyhow::Error::new(Error::Data {
        path: path.to_path_buf(),
        line,
        message: message.to_string(),
    })
    .context(format!(
        "indexing stopped; {written} documents before this line's batch were written (upserts are idempotent: fix the line and run again)"
    ))
}

/// The documents of `isovec index`'s file, a line at a time.
pub(crate) struct DocLines {
    path: PathBuf,
    reader: BufReader<File>,
    format: InputFormat,
    /// The file's name, for the ids of plain text lines.
    file_name: String,
    total_bytes: u64,
    bytes_read: u64,
    /// The number of the line read last (from 1).
    pub(crate) line_no: usize,
    buf: Vec<u8>,
}

impl DocLines {
    pub(crate) fn open(args: &IndexArgs) -> anyhow::Result<DocLines> {
        let path = &args.file;
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
        let format = match args.format {
            Some(f) => f,
            None => detect_format(path)?,
        };
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "input".into());
        Ok(DocLines {
            path: path.clone(),
            reader: BufReader::new(file),
            format,
            file_name,
            total_bytes,
            bytes_read: 0,
            line_no: 0,
            buf: Vec::new(),
        })
    }

    /// The next document (blank lines skipped), `None` at the end, or what is wrong with line
    /// [`DocLines::line_no`].
    pub(crate) fn next(&mut self) -> anyhow::Result<Option<Result<TextDoc, String>>> {
        loop {
            self.buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.buf)
                .with_context(|| format!("reading {}", self.path.display()))?;
            if n == 0 {
                return Ok(None);
            }
            self.bytes_read += n as u64;
            self.line_no += 1;
            let line = match std::str::from_utf8(&self.buf) {
                Ok(line) => line.trim_end_matches(['\n', '\r']),
                Err(e) => return Ok(Some(Err(format!("not valid UTF-8 ({e}); convert the file to UTF-8")))),
            };
            if line.trim().is_empty() {
                continue;
            }
            return Ok(Some(match self.format {
                InputFormat::Text => Ok(TextDoc {
                    id: format!("{}:{}", self.file_name, self.line_no),
                    text: line.to_string(),
                    metadata: Value::Null,
                }),
                InputFormat::Jsonl => parse_json_line(line),
            }));
        }
    }
}

fn detect_format(path: &Path) -> anyhow::Result<InputFormat> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    for line in BufReader::new(file).split(b'\n') {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let trimmed = line.iter().position(|b| !b.is_ascii_whitespace());
        if let Some(start) = trimmed {
            return Ok(if line[start] == b'{' { InputFormat::Jsonl } else { InputFormat::Text });
        }
    }
    Ok(InputFormat::Text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_are_checked() {
        let d = parse_json_line(r#"{"id": 7, "text": "hello", "metadata": {"a": 1}}"#).unwrap();
        assert_eq!((d.id.as_str(), d.text.as_str()), ("7", "hello"));
        assert!(parse_json_line(r#"{"id": "x", "text": ""}"#).unwrap_err().contains("empty"));
        assert!(parse_json_line(r#"{"text": "t"}"#).unwrap_err().contains("id"));
        assert!(parse_json_line(r#"{"id": "x", "text": "t", "metadata": 3}"#).is_err());
        assert!(parse_json_line("{not json").unwrap_err().contains("JSON"));
    }
}
