//! The CSV reader (SimCSE triplets, `fit --from x.csv`): any text is split into records or
//! refused, records start on increasing lines, and the triplet reader never panics.
#![no_main]

use isovec::train::data::{parse_csv, read_triplets};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(records) = parse_csv(text) {
            let lines: Vec<usize> = records.iter().map(|(line, _)| *line).collect();
            assert!(lines.windows(2).all(|w| w[0] < w[1]), "record lines {lines:?}");
            assert!(records.iter().all(|(_, fields)| !fields.is_empty()));
        }
    }
    let path = isovec_fuzz::scratch_file("triplets.csv", data);
    let _ = read_triplets(&path);
});
