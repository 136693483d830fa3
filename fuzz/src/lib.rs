//! What the fuzz targets share: a scratch folder for the readers that take a path, and metadata
//! to run parsed filters against.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::{json, Value};

/// A folder of this process's own under the system's temporary folder, made once.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("isovec-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating the fuzz scratch folder");
        dir
    })
}

/// Writes `bytes` to `name` (a relative path, folders made as needed) in the scratch folder.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("creating a scratch subfolder");
    }
    std::fs::write(&path, bytes).expect("writing a scratch file");
    path
}

/// Document metadata of every JSON shape a filter may meet: matching, absent, mistyped, nested.
pub fn sample_metadata() -> Vec<Value> {
    vec![
        Value::Null,
        json!({}),
        json!({"lang": "en", "year": 2021, "tag": ["a", "b"], "score": 0.5, "ok": true}),
        json!({"lang": ["en", "de"], "year": "2021", "tag": null, "score": -1e300}),
        json!({"a": {"b": {"c": 1}}, "a.b": 2, "": "", "year": [1999, 2020, {"x": 1}]}),
        json!([1, 2, 3]),
        json!("text"),
    ]
}
