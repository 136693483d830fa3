//! Where the data-backed tests find the benchmark data and the default model: isovec's test
//! support (`isovec::test_support`), which fails the test under `ISOVEC_REQUIRE_DATA=1` and
//! otherwise skips it with one stderr line saying why. Re-exported for the tests that use `common`.

#[allow(unused_imports)] // each test binary uses some of them
pub use isovec::test_support::{data_dir, default_model};
