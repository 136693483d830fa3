//! `isovec bench encode`: encoding throughput and peak memory on real sentences and documents,
//! and the latency of one query at a time.
//!
//! Besides the tables, each measure is printed as one `measure <name> <key>=<value> …` line
//! (parseable: names and keys have no spaces), and `--json FILE` writes them as a JSON array.

use std::time::Instant;

use clap::Args;

use super::common::{DataArgs, ModelArgs};
use crate::encoder::{Encoder, EncoderOptions, Pooling};
use crate::eval::retrieval::load_beir;
use crate::eval::sts::{load, Split, StsSet};

/// Options of `isovec bench encode`.
#[derive(Args, Debug)]
pub struct BenchEncodeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    pub batch_sizes: Vec<usize>,
    /// Runs per configuration (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Number of SciFact abstracts (title + text).
    #[arg(long, default_value_t = 1000)]
    pub docs: usize,
    /// Maximum tokens of a SciFact abstract.
    #[arg(long, default_value_t = 256)]
    pub doc_max_length: usize,
    /// Workloads to run: any of stsb, scifact, single (one query at a time).
    #[arg(long, value_delimiter = ',', default_value = "stsb,scifact,single")]
    pub only: Vec<String>,
    /// Queries timed one at a time (the first ones of ann/queries.txt).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Queries encoded before timing starts.
    #[arg(long, default_value_t = 50)]
    pub warmup_queries: usize,
    /// Maximum tokens of a query.
    #[arg(long, default_value_t = 128)]
    pub query_max_length: usize,
    /// Also write the measures as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// One measured configuration.
struct Row {
    corpus: &'static str,
    batch: usize,
    items: usize,
    tokens: usize,
    median_s: f64,
    peak_rss_mb: f64,
}

/// Runs `isovec bench encode` and prints the table.
pub fn run(args: BenchEncodeArgs) -> anyhow::Result<()> {
    for w in &args.only {
        if !["stsb", "scifact", "single"].contains(&w.as_str()) {
            anyhow::bail!("unknown workload {w:?} in --only: use stsb, scifact and/or single");
        }
    }
    let wants = |w: &str| args.only.iter().any(|o| o == w);
    let mut workloads = Vec::new();
    if wants("stsb") {
        let stsb = load(&args.data.data, StsSet::StsB, Split::Test)?;
        let sentences: Vec<String> = stsb.pairs().flat_map(|p| [p.a.clone(), p.b.clone()]).collect();
        workloads.push(("STS-B test sentences", "stsb", sentences, args.model.max_length));
    }
    if wants("scifact") {
        let scifact = load_beir(&args.data.data.join("retrieval/scifact"), "train")?;
        let docs: Vec<String> = scifact
            .corpus
            .iter()
            .take(args.docs)
            .map(|d| format!("{} {}", d.title, d.text).trim().to_string())
            .collect();
        workloads.push(("SciFact abstracts", "scifact", docs, Some(args.doc_max_length)));
    }
    let dir = args.model.model_dir();
    let base = args.model.options()?;
    let mut rows = Vec::new();
    let mut measures = Vec::new();
    for &(corpus, key, ref texts, max_length) in &workloads {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        for &batch in &args.batch_sizes {
            let encoder = Encoder::load(&dir, EncoderOptions { max_length, batch_size: batch, ..base.clone() })?;
            // The first forward pass on a GPU compiles kernels and allocates its memory pool:
            // keep it out of the timings.
            encoder.encode(&refs[..refs.len().min(batch)], &[Pooling::Mean])?;
            let tokens: usize = encoder.tokenizer().tokenize(&refs)?.iter().map(|t| t.ids.len()).sum();
            reset_peak_rss();
            let mut times = Vec::new();
            for _ in 0..args.runs.max(1) {
                let start = Instant::now();
                encoder.encode(&refs, &[Pooling::Mean])?;
                times.push(start.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let row = Row {
                corpus,
                batch,
                items: refs.len(),
                tokens,
                median_s: times[times.len() / 2],
                peak_rss_mb: peak_rss_mb(),
            };
            eprintln!("{corpus} batch {batch}: {:.1}/s", row.items as f64 / row.median_s);
            measures.push(
                Measure::new(format!("{key}_batch{batch}"))
                    .with("items", refs.len() as f64)
                    .with("items_per_s", row.items as f64 / row.median_s)
                    .with("tokens_per_s", row.tokens as f64 / row.median_s)
                    .with("median_s", row.median_s)
                    .with("peak_rss_mb", row.peak_rss_mb),
            );
            rows.push(row);
        }
    }
    if wants("single") {
        let latency = single_query_latency(&args, &dir, &base)?;
        measures.push(latency);
    }
    if !rows.is_empty() {
        print_table(&rows);
    }
    println!(
        "(median of {} runs after one warm-up batch; device {}, {}; threads: {})",
        args.runs,
        device_name(&base.device),
        if base.int8 { "int8 dense products".to_string() } else { format!("{:?}", base.dtype) },
        rayon::current_num_threads()
    );
    for m in &measures {
        println!("{}", m.line());
    }
    if let Some(path) = &args.json {
        let json = serde_json::Value::Array(measures.iter().map(Measure::json).collect());
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// One measure: a name and its figures.
struct Measure {
    name: String,
    values: Vec<(&'static str, f64)>,
}

impl Measure {
    fn new(name: String) -> Self {
        Measure { name, values: Vec::new() }
    }

    fn with(mut self, key: &'static str, value: f64) -> Self {
        self.values.push((key, value));
        self
    }

    /// `measure <name> key=value …`.
    fn line(&self) -> String {
        let values: Vec<String> = self.values.iter().map(|(k, v)| format!("{k}={v:.4}")).collect();
        format!("measure {} {}", self.name, values.join(" "))
    }

    fn json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("measure".into(), self.name.clone().into());
        for (k, v) in &self.values {
            map.insert((*k).into(), (*v).into());
        }
        map.into()
    }
}

/// Encodes each query alone (tokenise, forward, mean pooling, L2 normalisation), as a search
/// does, after some warm-up queries; reports latency percentiles.
fn single_query_latency(
    args: &BenchEncodeArgs,
    dir: &std::path::Path,
    base: &EncoderOptions,
) -> anyhow::Result<Measure> {
    let path = args.data.data.join("ann/queries.txt");
    let queries = crate::eval::text_file::read_lines(&path)?;
    let queries: Vec<&str> = queries.iter().map(String::as_str).take(args.queries).collect();
    if queries.is_empty() {
        anyhow::bail!("{}: no queries to time", path.display());
    }
    let options = EncoderOptions { max_length: Some(args.query_max_length), batch_size: 1, ..base.clone() };
    let encoder = Encoder::load(dir, options)?;
    let encode = |q: &str| -> anyhow::Result<Vec<f32>> {
        let mut v = encoder.encode(&[q], &[Pooling::Mean])?.vectors.remove(0).remove(0);
        crate::vector::normalize(&mut v);
        Ok(v)
    };
    for q in queries.iter().cycle().take(args.warmup_queries) {
        encode(q)?;
    }
    let mut latencies = Vec::with_capacity(queries.len());
    let all = Instant::now();
    for q in &queries {
        let start = Instant::now();
        std::hint::black_box(encode(q)?);
        latencies.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let wall = all.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((p / 100.0 * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1];
    let measure = Measure::new("single_query".into())
        .with("queries", queries.len() as f64)
        .with("p50_ms", pct(50.0))
        .with("p90_ms", pct(90.0))
        .with("p99_ms", pct(99.0))
        .with("mean_ms", latencies.iter().sum::<f64>() / latencies.len() as f64)
        .with("queries_per_s", queries.len() as f64 / wall);
    eprintln!(
        "one query at a time ({} queries, {} tokens max): p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms",
        queries.len(),
        args.query_max_length,
        pct(50.0),
        pct(90.0),
        pct(99.0)
    );
    Ok(measure)
}

/// Prints the throughput table.
fn print_table(rows: &[Row]) {
    let header = ["corpus", "batch", "items", "tokens/item", "items/s", "tokens/s", "peak RSS (MB)"];
    let cells = rows.iter().map(|r| {
        vec![
            r.corpus.to_string(),
            r.batch.to_string(),
            r.items.to_string(),
            format!("{:.1}", r.tokens as f64 / r.items as f64),
            format!("{:.1}", r.items as f64 / r.median_s),
            format!("{:.0}", r.tokens as f64 / r.median_s),
            format!("{:.0}", r.peak_rss_mb),
        ]
    });
    print!("{}", crate::table::markdown(&header, 1, cells));
}

/// A device's name for the table footer.
fn device_name(device: &candle_core::Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Resets the kernel's peak-RSS counter of this process (Linux; a no-op elsewhere).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process in MB (Linux `VmHWM`; 0 where unknown).
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}
