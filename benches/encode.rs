//! Encoding throughput of the default model on the bundled corpus, by batch size.
//!
//! `cargo bench --bench encode`. The full table on the benchmark data (STS-B sentences, SciFact
//! abstracts, peak memory) is `isovec bench encode --data DIR`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use isovec::encoder::{Encoder, EncoderOptions, Pooling};
use isovec::test_support::default_model;

fn corpus() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/corpus.jsonl"))
        .expect("fixtures/corpus.jsonl");
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(String::from))
        .collect()
}

fn encode(c: &mut Criterion) {
    // Measured as the CLI runs: with its process-wide settings.
    if let Err(e) = isovec::encoder::tune_process() {
        eprintln!("measured without the CLI's process settings: {e}");
    }
    let Some(dir) = default_model() else { return };
    let texts = corpus();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let mut group = c.benchmark_group("encode_fixture_corpus");
    group.sample_size(10);
    group.throughput(Throughput::Elements(refs.len() as u64));
    for batch in [16, 32, 64, 128] {
        let encoder =
            Encoder::load(&dir, EncoderOptions { batch_size: batch, ..Default::default() }).expect("model loads");
        group.bench_with_input(BenchmarkId::from_parameter(batch), &batch, |b, _| {
            b.iter(|| encoder.encode(&refs, &[Pooling::Mean]).expect("encodes"))
        });
    }
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
