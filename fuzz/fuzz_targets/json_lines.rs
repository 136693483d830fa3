//! The JSON-lines readers: the documents `isovec index` reads, and a BEIR folder (corpus and
//! queries as JSON lines, judgements as TSV). The input is split at NUL bytes into the three
//! BEIR files; every line is also tried as an `index` document. Nothing may panic.
#![no_main]

use isovec::cli::store_cmds::parse_json_line;
use isovec::eval::retrieval::load_beir;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            if let Ok(doc) = parse_json_line(line) {
                assert!(!doc.id.is_empty() && !doc.text.trim().is_empty());
            }
        }
    }
    let mut parts = data.splitn(3, |&b| b == 0);
    let (corpus, queries, qrels) =
        (parts.next().unwrap_or(b""), parts.next().unwrap_or(b""), parts.next().unwrap_or(b""));
    let dir = isovec_fuzz::scratch_file("beir/corpus.jsonl", corpus);
    let dir = dir.parent().unwrap();
    isovec_fuzz::scratch_file("beir/queries.jsonl", queries);
    isovec_fuzz::scratch_file("beir/qrels/test.tsv", qrels);
    let _ = load_beir(dir, "test");
});
