//! The one rule for a test whose benchmark data or model is missing: with `ISOVEC_REQUIRE_DATA=1`
//! (set by `.ci/run`) it fails, saying what is missing and how to get it; otherwise it is skipped
//! with one line on stderr, so a developer without the data still gets a green run and knows what
//! did not run.
//!
//! This file uses only `std`: the SQLite extension's host test, a separate workspace that does
//! not depend on isovec, compiles the same file with `#[path]` so that both follow one rule.

/// The environment variable that turns a missing input into a failure.
pub const REQUIRE_DATA_ENV: &str = "ISOVEC_REQUIRE_DATA";

/// Whether missing data or a missing model must fail the test (`ISOVEC_REQUIRE_DATA=1`).
pub fn data_required() -> bool {
    std::env::var_os(REQUIRE_DATA_ENV).is_some_and(|v| v == "1")
}

/// Reports that `what` is missing (`how` says how to get it): panics under
/// `ISOVEC_REQUIRE_DATA=1`, else prints one `skipped:` line naming the running test. Returns
/// `None` so that a caller can write `let Some(x) = find() else { return };`.
pub fn missing<T>(what: &str, how: &str) -> Option<T> {
    // libtest runs each test on a thread named after it.
    let thread = std::thread::current();
    let test = match thread.name() {
        Some(name) if name != "main" => format!("{name}: "),
        _ => String::new(),
    };
    if data_required() {
        panic!("{test}{what} ({how}); {REQUIRE_DATA_ENV}=1 makes this a failure instead of a skip");
    }
    // Straight to stderr, not `eprintln!`: libtest captures that, and a skip must be seen.
    let line = format!("skipped: {test}{what} ({how}; {REQUIRE_DATA_ENV}=1 makes this a failure)\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    None
}

/// `dir` if it holds a model's weights (`model.safetensors`); else [`missing`]'s outcome, saying
/// how to install the default model.
pub fn installed_model(dir: std::path::PathBuf) -> Option<std::path::PathBuf> {
    if dir.join("model.safetensors").is_file() {
        Some(dir)
    } else {
        missing(
            &format!("the default model is not installed at {}", dir.display()),
            "run `isovec model fetch`, or set ISOVEC_MODEL to a model folder",
        )
    }
}
