//! `isovec bench hybrid`: the full-text index beside the HNSW index on a fixed text set — the
//! text index's build time and disk use, and end-to-end text query latency (encode + search, one
//! query at a time) in dense, lexical and hybrid mode.
//!
//! The documents' vectors are precomputed (`isovec embed --input DOCS --out B.npy` with the same
//! pipeline options), so that building the store does not spend minutes encoding; the queries are
//! encoded at query time, as a user's would be. `--json PATH` also writes every figure to a JSON
//! file, for scripts that compare runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::cli::bench_ann::{bench_dir, dir_size};
use crate::cli::common::PipelineArgs;
use crate::store::text_index::TEXT_DIR;
use crate::store::vecfile::read_npy;
use crate::store::{CollectionConfig, Doc, SearchMode, SearchParams, Store};
use crate::Embedder;

/// Name of the collection the benchmark builds.
const COLLECTION: &str = "bench";
/// Rows of `--base` re-encoded to check that they come from the pipeline given.
const CHECKED_ROWS: usize = 8;
/// Lowest cosine between a stored row and its re-encoding that counts as the same pipeline.
const SAME_PIPELINE_COSINE: f64 = 0.99;
/// Queries run untimed in every mode first (model weights and index pages into the caches).
const WARMUP: usize = 10;
/// The modes timed, in the order of the table.
const MODES: [SearchMode; 3] = [SearchMode::Dense, SearchMode::Lexical, SearchMode::Hybrid];

/// Arguments of `isovec bench hybrid`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchHybridArgs {
    /// Documents, one text a line (`.gz` is gunzipped), e.g. ann/sentences.txt.gz.
    #[arg(long)]
    pub docs: PathBuf,
    /// The documents' vectors (.npy, f32, row i = line i of --docs), made by
    /// `isovec embed --input DOCS --out B.npy` with the pipeline options below.
    #[arg(long)]
    pub base: PathBuf,
    /// Query texts, one a line, e.g. ann/queries.txt.
    #[arg(long)]
    pub queries: PathBuf,
    /// Time only the first N queries (default: all).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Documents per upsert batch while building.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Store directory to build in; must be new or empty (default: a temporary one, removed
    /// afterwards).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Also write the figures as one JSON object to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Latencies of one kind of query, in milliseconds, sorted ascending.
pub(crate) struct Latencies(Vec<f64>);

impl Latencies {
    pub(crate) fn new(durations: &[Duration]) -> Self {
        let mut ms: Vec<f64> = durations.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Latencies(ms)
    }

    pub(crate) fn p(&self, p: f64) -> f64 {
        percentile(&self.0, p)
    }

    /// `{"p50_ms", "p90_ms", "p99_ms", "mean_ms"}`.
    pub(crate) fn json(&self) -> serde_json::Value {
        let mean = self.0.iter().sum::<f64>() / self.0.len().max(1) as f64;
        serde_json::json!({"p50_ms": self.p(50.0), "p90_ms": self.p(90.0), "p99_ms": self.p(99.0), "mean_ms": mean})
    }
}

/// The `p`-th percentile (0 < p ≤ 100) of ascending `sorted` values by the nearest-rank rule:
/// the smallest value with at least p % of the values at or below it; NaN when empty.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs the benchmark and prints one Markdown table.
pub fn run(args: BenchHybridArgs) -> anyhow::Result<()> {
    let texts = crate::eval::text_file::read_lines(&args.docs)?;
    let base = read_npy(&args.base)?;
    if base.rows() != texts.len() {
        bail!(
            "{} has {} vectors for the {} lines of {}: make it with `isovec embed --input {} --out {}`",
            args.base.display(),
            base.rows(),
            texts.len(),
            args.docs.display(),
            args.docs.display(),
            args.base.display()
        );
    }
    let mut queries = crate::eval::text_file::read_lines(&args.queries)?;
    queries.retain(|q| !q.trim().is_empty());
    if let Some(limit) = args.limit {
        queries.truncate(limit);
    }
    if queries.is_empty() {
        bail!("{} holds no query text", args.queries.display());
    }
    let pipeline = args.pipeline.load()?;
    check_base(pipeline.as_ref(), &texts, &base)?;

    let (dir, _cleanup) = bench_dir(args.store.as_ref(), "hybrid");
    let n = texts.len();
    eprintln!("building a store of {n} documents in {}", dir.display());
    let store = Store::open(&dir)?;
    let collection = store.create_collection(COLLECTION, CollectionConfig::new(base.dims, pipeline.id().clone()))?;
    let bar = crate::cli::common::progress_bar(n as u64, "upserting");
    let start = Instant::now();
    let batch = args.batch.max(1);
    for first in (0..n).step_by(batch) {
        let docs: Vec<Doc> = (first..(first + batch).min(n))
            .map(|i| Doc {
                id: i.to_string(),
                text: texts[i].clone(),
                metadata: serde_json::Value::Null,
                vector: base.row(i).to_vec(),
            })
            .collect();
        collection.upsert(&docs)?;
        bar.inc(docs.len() as u64);
    }
    bar.finish_and_clear();
    let upsert_secs = start.elapsed().as_secs_f64();
    drop(collection);
    store.close()?;

    // The text index's build time, isolated: the same open with and without it on disk. Both
    // load the HNSW snapshot and read the same sled records; only the second rebuilds the text
    // index from sled (every document's text through the analyzer into tantivy, one commit).
    let text_dir = dir.join("index").join(COLLECTION).join(TEXT_DIR);
    let (open_with_text, _) = timed_open(&dir)?;
    std::fs::remove_dir_all(&text_dir)
        .with_context(|| format!("removing {} to time its rebuild", text_dir.display()))?;
    let (open_rebuilding_text, store) = timed_open(&dir)?;
    let collection = store.collection(COLLECTION)?;
    let stats = collection.stats()?;
    if stats.text_index.documents != n as u64 {
        bail!("the rebuilt text index holds {} documents, the store {n}", stats.text_index.documents);
    }
    let docs = stats.documents.max(1) as f64;
    let text_bytes = stats.text_index.bytes as f64;
    let snapshot_bytes = dir_size(&dir.join("index").join(COLLECTION)) as f64 - text_bytes;
    let sled_bytes = dir_size(&dir.join("sled")) as f64;
    collection.prepare_search()?;

    // One query at a time on this thread. Each query runs in every mode back to back, the
    // mode order rotating, so that load from other processes falls on all modes alike.
    let params: Vec<SearchParams> = MODES.iter().map(|&m| SearchParams::k(args.k).with_mode(m)).collect();
    for q in queries.iter().take(WARMUP) {
        for p in &params {
            collection.search_text_with(pipeline.as_ref(), q, p)?;
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(queries.len()); MODES.len() + 1];
    let mut empty = [0usize; MODES.len()];
    let bar = crate::cli::common::progress_bar(queries.len() as u64, "querying");
    for (i, q) in queries.iter().enumerate() {
        for j in 0..=MODES.len() {
            let slot = (i + j) % (MODES.len() + 1);
            let start = Instant::now();
            if slot == MODES.len() {
                // Encoding alone: the share of a dense query that is not search.
                pipeline.embed(&[q.as_str()])?;
                times[slot].push(start.elapsed());
            } else {
                let hits = collection.search_text_with(pipeline.as_ref(), q, &params[slot])?;
                times[slot].push(start.elapsed());
                if hits.is_empty() {
                    empty[slot] += 1;
                }
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let lat: Vec<Latencies> = times.iter().map(|t| Latencies::new(t)).collect();
    let (dense, lexical, hybrid, encode) = (&lat[0], &lat[1], &lat[2], &lat[3]);

    let command: Vec<String> = std::env::args().collect();
    let ms = |l: &Latencies| format!("{:.2} / {:.2} / {:.2}", l.p(50.0), l.p(90.0), l.p(99.0));
    println!(
        "Hybrid benchmark: {n} documents, {} queries, k = {}, {} (fusion {}), one query at a time on 1 thread",
        queries.len(),
        args.k,
        stats.pipeline,
        params[2].fusion.name()
    );
    println!("command: `{}`\n", command.join(" "));
    let mut rows = vec![
        vec!["upsert of all documents with precomputed vectors (sled + HNSW + text)".to_string(), format!("{upsert_secs:.1} s")],
        vec![
            format!("text-index build from sled (open after deleting it {open_rebuilding_text:.2} s − open with it {open_with_text:.2} s)"),
            format!(
                "{:.2} s ({:.0} documents/s)",
                open_rebuilding_text - open_with_text,
                n as f64 / (open_rebuilding_text - open_with_text).max(f64::MIN_POSITIVE)
            ),
        ],
        vec!["text index on disk".into(), format!("{:.0} B/document ({:.1} MB)", text_bytes / docs, text_bytes / 1e6)],
        vec!["HNSW snapshot on disk".into(), format!("{:.0} B/document ({:.1} MB)", snapshot_bytes / docs, snapshot_bytes / 1e6)],
        vec!["sled (texts, vectors, records) on disk".into(), format!("{:.0} B/document ({:.1} MB)", sled_bytes / docs, sled_bytes / 1e6)],
        vec!["query encoding alone, p50 / p90 / p99".into(), format!("{} ms", ms(encode))],
    ];
    for (mode, l) in MODES.iter().zip([dense, lexical, hybrid]) {
        let what = if *mode == SearchMode::Lexical { "search (no encoding)" } else { "encode + search" };
        rows.push(vec![format!("{} text query, {what}, p50 / p90 / p99", mode.name()), format!("{} ms", ms(l))]);
    }
    rows.push(vec!["hybrid p50 / dense p50 (target ≤ 1.25)".into(), format!("{:.3}", hybrid.p(50.0) / dense.p(50.0))]);
    rows.push(vec!["lexical p50 (target < 2 ms)".into(), format!("{:.3} ms", lexical.p(50.0))]);
    rows.push(vec![
        "queries with no result: dense / lexical / hybrid".into(),
        format!("{} / {} / {}", empty[0], empty[1], empty[2]),
    ]);
    print!("{}", crate::table::markdown(&["figure", "value"], 1, rows));
    if let Some(path) = &args.json {
        let text_build = open_rebuilding_text - open_with_text;
        let mut report = serde_json::json!({
            "documents": n, "queries": queries.len(), "k": args.k, "pipeline": stats.pipeline.to_string(),
            "fusion": params[2].fusion.name(), "command": command,
            "upsert_s": upsert_secs, "open_with_text_s": open_with_text, "open_rebuilding_text_s": open_rebuilding_text,
            "text_index_build_s": text_build,
            "text_index_bytes_per_doc": text_bytes / docs, "snapshot_bytes_per_doc": snapshot_bytes / docs,
            "sled_bytes_per_doc": sled_bytes / docs,
            "encode": encode.json(),
            "hybrid_over_dense_p50": hybrid.p(50.0) / dense.p(50.0),
        });
        for (i, (mode, l)) in MODES.iter().zip([dense, lexical, hybrid]).enumerate() {
            let mut m = l.json();
            m["empty_results"] = empty[i].into();
            report[mode.name()] = m;
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    drop(collection);
    store.close()?;
    Ok(())
}

/// Opens the store and the benchmark collection; returns the seconds it took and the store.
fn timed_open(dir: &Path) -> anyhow::Result<(f64, Store)> {
    let start = Instant::now();
    let store = Store::open(dir)?;
    drop(store.collection(COLLECTION)?);
    Ok((start.elapsed().as_secs_f64(), store))
}

/// Errors unless the first rows of `base` are the pipeline's vectors of the first texts.
fn check_base(pipeline: &dyn Embedder, texts: &[String], base: &crate::store::vecfile::Vectors) -> anyhow::Result<()> {
    if pipeline.dims() != base.dims {
        bail!("the pipeline makes {}-dimensional vectors, the base vectors have {}", pipeline.dims(), base.dims);
    }
    let rows = CHECKED_ROWS.min(texts.len());
    let sample: Vec<&str> = texts[..rows].iter().map(String::as_str).collect();
    for (i, v) in pipeline.embed(&sample)?.iter().enumerate() {
        let cos = crate::vector::cosine(v, base.row(i));
        if cos < SAME_PIPELINE_COSINE {
            bail!(
                "row {i} of the base vectors is not this pipeline's vector of line {} (cosine {cos:.3}): \
                 make them with `isovec embed` and the same --model, --pooling, --max-length and --transform",
                i + 1
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{percentile, Latencies};
    use std::time::Duration;

    #[test]
    fn latencies_json_gives_the_percentiles_and_mean_in_ms() {
        // 1..=100 ms, scrambled: p50 50, p90 90, p99 99, mean 50.5.
        let durations: Vec<Duration> = (0..100u64).map(|i| Duration::from_millis((i * 37) % 100 + 1)).collect();
        let json = Latencies::new(&durations).json();
        for (key, want) in [("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("mean_ms", 50.5)] {
            let got = json[key].as_f64().unwrap_or(f64::NAN);
            assert!((got - want).abs() < 1e-9, "{key}: {got}, expected {want}");
        }
    }

    /// Checks the nearest-rank definition directly: at least p % of the values are ≤ the result,
    /// and fewer than p % are below it.
    fn check(values: &[f64], p: f64) {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let got = percentile(&sorted, p);
        let n = values.len() as f64;
        let at_or_below = values.iter().filter(|&&v| v <= got).count() as f64;
        let below = values.iter().filter(|&&v| v < got).count() as f64;
        assert!(at_or_below >= p / 100.0 * n, "p{p}: only {at_or_below} of {n} ≤ {got}");
        assert!(below < p / 100.0 * n, "p{p}: {below} of {n} already < {got}");
    }

    #[test]
    fn percentiles_follow_the_nearest_rank_rule() {
        // 1..=1000 in a scrambled order: p50 is 500, p90 900, p99 990.
        let values: Vec<f64> = (0..1000u64).map(|i| ((i * 617) % 1000 + 1) as f64).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(percentile(&sorted, 50.0), 500.0);
        assert_eq!(percentile(&sorted, 90.0), 900.0);
        assert_eq!(percentile(&sorted, 99.0), 990.0);
        assert_eq!(percentile(&sorted, 100.0), 1000.0);
        for p in [1.0, 33.3, 50.0, 90.0, 99.0, 99.9, 100.0] {
            check(&values, p);
            check(&[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0], p);
            check(&[7.0], p);
        }
        assert!(percentile(&[], 50.0).is_nan());
    }
}
