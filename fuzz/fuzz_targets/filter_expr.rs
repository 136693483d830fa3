//! The filter expression parser (`--filter 'lang=en AND year>=2020'`, `isovec_search`'s filter):
//! any text is parsed or refused, and a parsed filter evaluates on any metadata, without a panic.
#![no_main]

use isovec::store::Filter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(expr) = std::str::from_utf8(data) else { return };
    if let Ok(filter) = Filter::parse(expr) {
        for metadata in isovec_fuzz::sample_metadata() {
            filter.matches(&metadata);
        }
    }
});
