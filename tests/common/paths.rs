//! Where the data-backed tests find the benchmark data and the default model; `None` (after
//! saying why) when absent, so that those tests skip.

use std::path::{Path, PathBuf};

use isovec::encoder::default_model_dir;

/// `ISOVEC_DATA`, else `../shared/data` beside the checkout, if it holds `needs` (a subfolder).
pub fn data_dir(needs: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("ISOVEC_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join(needs).is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: no {needs} in the benchmark data at {} (set ISOVEC_DATA)", dir.display());
        None
    }
}

/// The installed default model's folder.
pub fn default_model() -> Option<PathBuf> {
    let dir = default_model_dir();
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        eprintln!("skipped: default model not installed (run `isovec model fetch`)");
        None
    }
}
