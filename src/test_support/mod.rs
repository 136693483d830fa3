//! Support for isovec's own tests (its unit tests and the integration tests in `tests/`): where
//! the benchmark data and the default model are, and what a test does when they are missing.
//! Not part of the API; public only because integration tests are separate crates.

mod require;
pub mod tiny_model;

use std::path::{Path, PathBuf};

pub use require::{data_required, installed_model, missing, REQUIRE_DATA_ENV};

/// The benchmark data folder (`ISOVEC_DATA`, else `../shared/data` beside the checkout) if it
/// holds `needs` (a subfolder or file, `""` for the folder itself); else [`missing`]'s outcome.
pub fn data_dir(needs: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("ISOVEC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join(needs).exists() {
        Some(dir)
    } else {
        missing(
            &format!("no {} in the benchmark data", dir.join(needs).display()),
            "set ISOVEC_DATA to the data folder holding senteval/, nli/, retrieval/ and ann/, \
             or put it at ../shared/data beside the checkout",
        )
    }
}

/// The installed default model's folder (`ISOVEC_MODEL`, else the cache's), if it has weights;
/// else [`missing`]'s outcome.
pub fn default_model() -> Option<PathBuf> {
    let dir = crate::encoder::default_model_dir();
    installed_model(dir)
}
