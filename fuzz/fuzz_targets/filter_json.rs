//! The JSON-object form of a filter (`{"lang": "en", "year": {"gte": 2020}}`): any JSON value is
//! turned into a filter or refused, and a filter evaluates on any metadata, without a panic.
#![no_main]

use isovec::store::Filter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(filter) = Filter::from_json(&json) {
        for metadata in isovec_fuzz::sample_metadata() {
            filter.matches(&metadata);
        }
    }
});
