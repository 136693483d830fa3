//! `isovec bench encode`: encoding throughput and peak memory on real sentences and documents.

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
    let stsb = load(&args.data.data, StsSet::StsB, Split::Test)?;
    let sentences: Vec<String> = stsb.pairs().flat_map(|p| [p.a.clone(), p.b.clone()]).collect();
    let scifact = load_beir(&args.data.data.join("retrieval/scifact"), "train")?;
    let docs: Vec<String> = scifact
        .corpus
        .iter()
        .take(args.docs)
        .map(|d| format!("{} {}", d.title, d.text).trim().to_string())
        .collect();
    let dir = args.model.model_dir();
    let base = args.model.options()?;
    let mut rows = Vec::new();
    for (corpus, texts, max_length) in [
        ("STS-B test sentences", &sentences, args.model.max_length),
        ("SciFact abstracts", &docs, Some(args.doc_max_length)),
    ] {
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
            let row = Row { corpus, batch, items: refs.len(), tokens, median_s: times[times.len() / 2], peak_rss_mb: peak_rss_mb() };
            eprintln!("{corpus} batch {batch}: {:.1}/s", row.items as f64 / row.median_s);
            rows.push(row);
        }
    }
    println!("| corpus | batch | items | tokens/item | items/s | tokens/s | peak RSS (MB) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.0} |",
            r.corpus,
            r.batch,
            r.items,
            r.tokens as f64 / r.items as f64,
            r.items as f64 / r.median_s,
            r.tokens as f64 / r.median_s,
            r.peak_rss_mb
        );
    }
    println!(
        "(median of {} runs after one warm-up batch; device {}, {:?}; threads: {})",
        args.runs,
        device_name(&base.device),
        base.dtype,
        rayon::current_num_threads()
    );
    Ok(())
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
