//! The line reader of every data file (STS, BEIR, ANN sentences; plain or gzip): any bytes are
//! split into UTF-8 lines or refused, and any gzip stream is decompressed or refused.
#![no_main]

use std::path::Path;

use isovec::eval::text_file::{gunzip, split_lines};
use libfuzzer_sys::fuzz_target;

fn check_lines(bytes: &[u8]) {
    let Ok(lines) = split_lines(Path::new("fuzz.txt"), bytes) else { return };
    // No line holds a line break, and no line is invented.
    assert!(lines.iter().all(|l| !l.contains('\n')));
    assert!(lines.len() <= bytes.iter().filter(|&&b| b == b'\n').count() + 1);
}

fuzz_target!(|data: &[u8]| {
    check_lines(data);
    if let Ok(plain) = gunzip(Path::new("fuzz.txt.gz"), data) {
        check_lines(&plain);
    }
});
