//! `isovec bench ann`: the store's HNSW index on a fixed vector set — build time, recall@10
//! against exact neighbours for several `ef`, queries per second, reopen times, disk use.
//!
//! Vector files are `.npy` (`<f4`, shape `(rows, dims)`, see `store::vecfile`); the ground truth
//! is a TSV whose line i holds the 0-based base rows nearest to query i, best first. With
//! `--random N` the set is generated instead (Gaussian vectors, exact neighbours by brute force).
//! `--json PATH` also writes every figure to a JSON file, for scripts that compare runs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::cli::common::PipelineArgs;
use crate::eval::ann::load_ann_gt;
use crate::store::vecfile::{read_npy, Vectors};
use crate::store::{CollectionConfig, Doc, HnswParams, SearchParams, Store};
use crate::vector::exact_top_k;
use crate::{EncoderId, PipelineId};

/// Timed passes over the queries per `ef`; queries/s is the median pass's.
const PASSES: usize = 3;

/// Arguments of `isovec bench ann`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchAnnArgs {
    /// Base vectors (.npy, f32, rows × dims).
    #[arg(long, required_unless_present = "random")]
    pub base: Option<PathBuf>,
    /// Query vectors (.npy, f32, rows × dims).
    #[arg(long, required_unless_present = "random")]
    pub queries: Option<PathBuf>,
    /// Exact neighbours: line i = tab-separated base rows nearest to query i, best first.
    #[arg(long, required_unless_present = "random")]
    pub gt: Option<PathBuf>,
    /// Generate this many random base vectors instead of reading files.
    #[arg(long)]
    pub random: Option<usize>,
    /// Dimensions of random vectors.
    #[arg(long, default_value_t = 384)]
    pub dims: usize,
    /// Number of random queries.
    #[arg(long, default_value_t = 1000)]
    pub nq: usize,
    /// Store directory to build in (default: a temporary one, removed afterwards).
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// HNSW links per node (default: the store's default).
    #[arg(long)]
    pub m: Option<usize>,
    /// HNSW construction width (default: the store's default).
    #[arg(long)]
    pub ef_construction: Option<usize>,
    /// Search widths to measure recall at.
    #[arg(long, value_delimiter = ',', default_value = "16,32,48,64,96,128,256")]
    pub ef: Vec<usize>,
    /// Documents per upsert batch while building.
    #[arg(long, default_value_t = 10_000)]
    pub batch: usize,
    /// Query texts, one a line (e.g. ann/queries.txt, whose encodings are --queries): also time
    /// end-to-end text queries, each encoded with the pipeline below and searched on its own.
    #[arg(long)]
    pub query_texts: Option<PathBuf>,
    /// Text queries to time (the first ones of --query-texts).
    #[arg(long, default_value_t = 300)]
    pub text_queries: usize,
    /// Also write the figures as one JSON object to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// Queries/s of `threads` threads splitting `rounds` passes over the queries.
fn throughput(
    collection: &crate::store::Collection,
    queries: &Vectors,
    params: &SearchParams,
    threads: usize,
    rounds: usize,
) -> anyhow::Result<f64> {
    let nq = queries.rows();
    let start = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> crate::Result<()> {
                    for _ in 0..rounds {
                        for q in (t..nq).step_by(threads) {
                            collection.search(queries.row(q), params)?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("a search thread panicked"))??;
        }
        Ok(())
    })?;
    Ok((rounds * nq) as f64 / start.elapsed().as_secs_f64())
}

/// Runs the benchmark and prints a table.
pub fn run_ann_bench(args: BenchAnnArgs) -> anyhow::Result<()> {
    let (base, queries, gt) = match args.random {
        Some(n) => random_set(n, args.nq, args.dims),
        None => {
            let (Some(b), Some(q), Some(g)) = (&args.base, &args.queries, &args.gt) else {
                bail!("give --base, --queries and --gt, or --random N");
            };
            let base = read_npy(b)?;
            let queries = read_npy(q)?;
            let gt = read_gt(g, base.rows())?;
            (base, queries, gt)
        }
    };
    if base.dims != queries.dims {
        bail!("base vectors have {} dimensions, queries {}", base.dims, queries.dims);
    }
    if gt.len() < queries.rows() {
        bail!("the ground truth has {} lines for {} queries", gt.len(), queries.rows());
    }
    let (dir, _cleanup) = bench_dir(args.store.as_ref(), "ann");
    let mut hnsw = HnswParams::default();
    if let Some(m) = args.m {
        hnsw.m = m;
    }
    if let Some(ef) = args.ef_construction {
        hnsw.ef_construction = ef;
    }
    let pipeline = PipelineId {
        encoder: EncoderId {
            model: "bench-vectors".into(),
            weights_sha256: String::new(),
            files_sha256: None,
            pooling: "none".into(),
            max_length: 0,
            prefixes: Default::default(),
        },
        transform: None,
        normalize: true,
    };
    let config = CollectionConfig { hnsw, ..CollectionConfig::new(base.dims, pipeline) };
    let n = base.rows();
    println!(
        "ANN benchmark: {n} base × {} dims, {} queries, m={} ef_construction={} default ef={}",
        base.dims,
        queries.rows(),
        hnsw.m,
        hnsw.ef_construction,
        hnsw.ef_search
    );
    println!("threads available: {}", rayon::current_num_threads());

    // Build through the store API: sled writes + parallel HNSW insertion.
    let store = Store::open(&dir)?;
    let collection = store.create_collection("bench", config)?;
    let bar = indicatif::ProgressBar::new(n as u64);
    let start = Instant::now();
    for chunk_start in (0..n).step_by(args.batch.max(1)) {
        let end = (chunk_start + args.batch.max(1)).min(n);
        let docs: Vec<Doc> = (chunk_start..end)
            .map(|i| Doc {
                id: i.to_string(),
                text: String::new(),
                metadata: serde_json::Value::Null,
                vector: base.row(i).to_vec(),
            })
            .collect();
        collection.upsert(&docs)?;
        bar.set_position(end as u64);
    }
    bar.finish_and_clear();
    let build = start.elapsed().as_secs_f64();
    println!("{:<34} {:>10.1} s", "build (upsert, all vectors)", build);
    println!("{:<34} {:>10.0} vectors/s", "insert rate", n as f64 / build);
    let mut report = serde_json::json!({
        "base": n, "dims": base.dims, "queries": queries.rows(),
        "m": hnsw.m, "ef_construction": hnsw.ef_construction, "ef_search": hnsw.ef_search,
        "threads": rayon::current_num_threads(), "build_s": build, "vectors_per_s": n as f64 / build,
    });

    // Recall@10 and queries/s on 1 and 2 threads per ef.
    let nq = queries.rows();
    println!("\n{:>6} {:>12} {:>14} {:>14}", "ef", "recall@10", "queries/s (1t)", "queries/s (2t)");
    let mut rows = Vec::new();
    for &ef in &args.ef {
        let params = SearchParams::k(10).with_ef(ef);
        // Timed as the peers' ann_bench.py times them: passes over all queries with nothing
        // but the searches in the clock, the median of PASSES; recall is counted afterwards.
        let mut secs = Vec::with_capacity(PASSES);
        let mut results = Vec::new();
        for _ in 0..PASSES {
            let start = Instant::now();
            results = (0..nq).map(|q| collection.search(queries.row(q), &params)).collect::<crate::Result<Vec<_>>>()?;
            secs.push(start.elapsed().as_secs_f64());
        }
        secs.sort_by(f64::total_cmp);
        let secs = secs[PASSES / 2];
        let mut found = 0usize;
        for (q, hits) in results.iter().enumerate() {
            let truth = &gt[q][..10.min(gt[q].len())];
            found += hits.iter().filter(|h| h.id.parse::<usize>().is_ok_and(|id| truth.contains(&id))).count();
        }
        let two = throughput(&collection, &queries, &params, 2, 1)?;
        let recall = found as f64 / (nq * 10) as f64;
        println!("{:>6} {:>12.4} {:>14.0} {:>14.0}", ef, recall, nq as f64 / secs, two);
        rows.push(serde_json::json!({"ef": ef, "recall_at_10": recall, "qps_1t": nq as f64 / secs, "qps_2t": two}));
    }
    report["by_ef"] = rows.into();

    // Throughput at the default ef on 1 and 2 threads, two passes over the queries.
    let params = SearchParams::k(10);
    println!();
    for threads in [1usize, 2] {
        let qps = throughput(&collection, &queries, &params, threads, 2)?;
        println!("{:<34} {:>10.0} queries/s (ef={})", format!("search, {threads} thread(s)"), qps, hnsw.ef_search);
        report[format!("default_ef_qps_{threads}t")] = qps.into();
    }

    if let Some(path) = &args.query_texts {
        let texts = crate::eval::text_file::read_lines(path)?;
        let texts: Vec<&str> = texts.iter().map(String::as_str).take(args.text_queries).collect();
        let pipeline = args.pipeline.load()?;
        if crate::Embedder::dims(pipeline.as_ref()) != base.dims {
            bail!(
                "the pipeline makes {}-dimensional vectors, the base set has {}",
                crate::Embedder::dims(pipeline.as_ref()),
                base.dims
            );
        }
        crate::Embedder::embed(pipeline.as_ref(), &texts[..1.min(texts.len())])?;
        let start = Instant::now();
        for text in &texts {
            let v = crate::Embedder::embed(pipeline.as_ref(), &[text])?;
            collection.search(&v[0], &params)?;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:<34} {:>10.0} queries/s ({} texts, one at a time)",
            "text queries (encode + search)",
            texts.len() as f64 / secs,
            texts.len()
        );
        report["text_queries_per_s"] = (texts.len() as f64 / secs).into();
    }

    // Reopen from the snapshot, then from sled alone.
    drop(collection);
    let start = Instant::now();
    store.close()?;
    let close = start.elapsed().as_secs_f64();
    println!("\n{:<34} {:>10.2} s", "close (snapshot write)", close);
    let start = Instant::now();
    let store = Store::open(&dir)?;
    let collection = store.collection("bench")?;
    let from_snapshot = start.elapsed().as_secs_f64();
    println!("{:<34} {:>10.2} s", "open from snapshot", from_snapshot);
    let check = collection.search(queries.row(0), &params)?;
    drop(collection);
    drop(store);
    let (sled_bytes, index_bytes) = (dir_size(&dir.join("sled")), dir_size(&dir.join("index")));
    std::fs::remove_dir_all(dir.join("index")).context("removing the snapshot to time a rebuild")?;
    let start = Instant::now();
    let store = Store::open(&dir)?;
    let collection = store.collection("bench")?;
    let rebuilt = start.elapsed().as_secs_f64();
    println!("{:<34} {:>10.2} s", "open by rebuild (+ new snapshot)", rebuilt);
    let again = collection.search(queries.row(0), &params)?;
    let overlap = again.iter().filter(|h| check.iter().any(|c| c.id == h.id)).count();
    println!("{:<34} {:>10}/10", "rebuilt index agrees on query 0", overlap);
    for (key, value) in [("close_s", close), ("open_snapshot_s", from_snapshot), ("open_rebuild_s", rebuilt)] {
        report[key] = value.into();
    }
    report["rebuild_agrees_query0"] = overlap.into();
    report["disk_bytes_per_vector"] = ((sled_bytes + index_bytes) as f64 / n as f64).into();
    report["snapshot_bytes_per_vector"] = (index_bytes as f64 / n as f64).into();
    println!(
        "{:<34} {:>10.0} B (sled {:.0} + snapshot {:.0})",
        "disk per vector",
        (sled_bytes + index_bytes) as f64 / n as f64,
        sled_bytes as f64 / n as f64,
        index_bytes as f64 / n as f64
    );
    println!("{:<34} {:>10.0} B", "raw f32 vector", (4 * base.dims) as f64);
    drop(collection);
    drop(store);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Reads the ground-truth TSV ([`load_ann_gt`]); every id must be a base row.
pub fn read_gt(path: &Path, base_rows: usize) -> anyhow::Result<Vec<Vec<usize>>> {
    let gt = load_ann_gt(path)?;
    for (i, ids) in gt.iter().enumerate() {
        if let Some(bad) = ids.iter().find(|&&id| id >= base_rows) {
            bail!("{}:{}: row {bad} is beyond the {base_rows} base vectors", path.display(), i + 1);
        }
    }
    Ok(gt)
}

/// Random unit vectors and their exact top-100 neighbours by brute force.
fn random_set(n: usize, nq: usize, dims: usize) -> (Vectors, Vectors, Vec<Vec<usize>>) {
    let gen = |count: usize, seed: u64| {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut data = Vec::with_capacity(count * dims);
        for _ in 0..count {
            // Gaussian coordinates, then unit length: uniform on the sphere.
            let mut row: Vec<f32> = (0..dims).map(|_| rng.sample(rand_distr::StandardNormal)).collect();
            crate::vector::normalize(&mut row);
            data.extend(row);
        }
        Vectors { dims, data }
    };
    let base = gen(n, 1);
    let queries = gen(nq, 2);
    let gt = (0..nq)
        .into_par_iter()
        .map(|q| {
            let query = queries.row(q);
            exact_top_k(query, 100, (0..n).map(|i| (i as u64, base.row(i))))
                .into_iter()
                .map(|s| s.internal_id as usize)
                .collect()
        })
        .collect();
    (base, queries, gt)
}

/// The store folder of a benchmark: `given`, or a temporary one removed when the returned guard
/// drops.
pub(crate) fn bench_dir(given: Option<&PathBuf>, bench: &str) -> (PathBuf, Option<super::common::RemoveOnDrop>) {
    super::common::work_dir(given, &format!("bench-{bench}"))
}

/// Bytes of the files under `path`, 0 where it cannot be read.
pub(crate) fn dir_size(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
        })
        .sum()
}
