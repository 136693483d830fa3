//! Helpers for the extension's host test: build and find the extension, find the default model.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

// isovec's rule for missing data (fail under ISOVEC_REQUIRE_DATA=1, else skip with a line), the
// same file: this crate cannot depend on isovec (see Cargo.toml), and the rule must be one.
#[path = "../../../../src/test_support/require.rs"]
mod require;
pub use require::{installed_model, missing};

/// The repository root (this crate lives in `plugin/tests/host`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../..")
}

/// The built extension: `$ISOVEC_SQLITE_EXT` if set, else the workspace's `isovec-sqlite` cdylib,
/// built first (a no-op when up to date) in the profile this test is built in.
pub fn extension() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("ISOVEC_SQLITE_EXT") {
                return Ok(PathBuf::from(p));
            }
            let file = format!("{}isovec_sqlite{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
            build(&["-p", "isovec-sqlite"], &file, Some("ISOVEC_SQLITE_EXT"))
        })
        .clone()
}

/// An in-memory connection with the extension loaded (no model needed); panics if it cannot load.
pub fn load_extension() -> rusqlite::Connection {
    let ext = extension().unwrap_or_else(|e| panic!("{e}"));
    let db = rusqlite::Connection::open_in_memory().unwrap();
    // SAFETY: loading our own extension, which only registers functions and a module.
    unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(&db).unwrap();
        db.load_extension(&ext, None::<&str>).unwrap_or_else(|e| panic!("loading {}: {e}", ext.display()));
    }
    db
}

/// Loads the extension into a new connection with the environment variable `var` set to `value`
/// (the extension reads its settings when it is loaded), then sets it to `after`. Loads through
/// this function take turns, so that each sees the value it set.
pub fn load_with_env(
    var: &str,
    value: impl AsRef<std::ffi::OsStr>,
    after: impl AsRef<std::ffi::OsStr>,
) -> rusqlite::Result<rusqlite::Connection> {
    static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let ext = extension().unwrap_or_else(|e| panic!("{e}"));
    let _env = ENV.lock().unwrap_or_else(|p| p.into_inner());
    std::env::set_var(var, value);
    let db = rusqlite::Connection::open_in_memory().unwrap();
    // SAFETY: loading our own extension, which only registers functions and a module.
    let loaded = unsafe {
        let _guard = rusqlite::LoadExtensionGuard::new(&db).unwrap();
        db.load_extension(&ext, None::<&str>)
    };
    std::env::set_var(var, after);
    loaded.map(|_| db)
}

/// The error message of `sql`, which must fail; panics if it succeeds.
pub fn error_of(db: &rusqlite::Connection, sql: &str) -> String {
    db.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
        .expect_err(&format!("{sql} should fail"))
        .to_string()
}

/// The workspace's `isovec` command, built first (a no-op when up to date) in the profile this
/// test is built in: what the extension's results are compared with.
pub fn isovec_cli() -> Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            build(&["-p", "isovec", "--bin", "isovec"], &format!("isovec{}", std::env::consts::EXE_SUFFIX), None)
        })
        .clone()
}

/// Builds `target_args` of the workspace and returns the path of its output `file`; `override_var`
/// is the variable that can name the file instead (for the error message).
fn build(target_args: &[&str], file: &str, override_var: Option<&str>) -> Result<PathBuf, String> {
    let root = repo_root();
    let release = !cfg!(debug_assertions);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build").args(target_args).arg("--manifest-path").arg(root.join("Cargo.toml"));
    if release {
        cmd.arg("--release");
    }
    let what = target_args.join(" ");
    let status = cmd.status().map_err(|e| format!("cannot run cargo to build {what}: {e}"))?;
    if !status.success() {
        return Err(format!("building {what} failed ({status}); run `cargo build {what}` to see why"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() { target } else { root.join(target) };
    let path = target.join(if release { "release" } else { "debug" }).join(file);
    if path.is_file() {
        Ok(path)
    } else {
        let hint = override_var.map(|v| format!("; set {v} to its path")).unwrap_or_default();
        Err(format!("{what} was built but {} is missing{hint}", path.display()))
    }
}

/// The default model folder, as isovec finds it (`$ISOVEC_MODEL`, else the cache's), if installed;
/// else [`missing`]'s outcome (a failure under `ISOVEC_REQUIRE_DATA=1`).
pub fn default_model() -> Option<PathBuf> {
    let dir = match std::env::var_os("ISOVEC_MODEL") {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("ISOVEC_HOME").map(PathBuf::from).or_else(|| {
                std::env::var_os("XDG_CACHE_HOME")
                    .map(PathBuf::from)
                    .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                    .map(|c| c.join("isovec"))
            });
            let Some(cache) = cache else {
                return missing(
                    "no ISOVEC_HOME, XDG_CACHE_HOME or HOME to find the default model in",
                    "set ISOVEC_MODEL to a model folder",
                );
            };
            cache.join("models").join("all-MiniLM-L6-v2")
        }
    };
    installed_model(dir)
}

/// Decodes a vector BLOB (little-endian f32) independently of the extension.
pub fn floats(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Cosine of two vectors in f64.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}
