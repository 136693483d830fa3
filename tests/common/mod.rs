//! Test helpers: a small deterministic embedder and document generators.
#![allow(dead_code)]

pub mod paths;

use isovec::store::{CollectionConfig, Doc};
use isovec::{Embedder, EncoderId, PipelineId};
use serde_json::json;

/// Hashed bag of words → L2-normalised vector; deterministic, no model needed.
pub struct BagOfWords {
    id: PipelineId,
    dims: usize,
}

impl BagOfWords {
    pub fn new(dims: usize) -> Self {
        Self::named("test-bag-of-words", dims)
    }

    pub fn named(model: &str, dims: usize) -> Self {
        BagOfWords {
            id: PipelineId {
                encoder: EncoderId {
                    model: model.into(),
                    // Ids are by content, not name: each name stands for other weights.
                    weights_sha256: format!("{:016x}", fnv(model)).repeat(4),
                    files_sha256: None,
                    pooling: "sum".into(),
                    max_length: 128,
                    prefixes: Default::default(),
                },
                transform: None,
                normalize: true,
            },
            dims,
        }
    }

    pub fn config(&self) -> CollectionConfig {
        CollectionConfig::new(self.dims, self.id.clone())
    }

    pub fn vector(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dims];
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let h = fnv(&word.to_lowercase());
            let sign = if (h >> 63) & 1 == 1 { 1.0 } else { -1.0 };
            v[(h % self.dims as u64) as usize] += sign;
        }
        // Texts without words still get a non-zero vector.
        if v.iter().all(|x| *x == 0.0) {
            v[0] = 1.0;
        }
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }
}

impl Embedder for BagOfWords {
    fn id(&self) -> &PipelineId {
        &self.id
    }
    fn dims(&self) -> usize {
        self.dims
    }
    fn embed(&self, texts: &[&str]) -> isovec::Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|t| self.vector(t)).collect())
    }
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// A deterministic pseudo-random unit vector.
pub fn random_unit(seed: u64, dims: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(0x1234567) | 1;
    let v: Vec<f32> = (0..dims)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// Document `i` with a random vector and metadata `{"group": i % groups, "n": i}`.
pub fn doc(i: u64, dims: usize, groups: u64) -> Doc {
    Doc {
        id: format!("doc-{i}"),
        text: format!("document number {i}"),
        metadata: json!({"group": i % groups, "n": i}),
        vector: random_unit(i, dims),
    }
}

/// Exact top-k ids by cosine among `docs` (f64), best first.
pub fn exact_ids(query: &[f32], docs: &[Doc], k: usize) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = docs
        .iter()
        .map(|d| {
            let dot: f64 = d.vector.iter().zip(query).map(|(a, b)| *a as f64 * *b as f64).sum();
            let na: f64 = d.vector.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = query.iter().map(|a| (*a as f64).powi(2)).sum::<f64>().sqrt();
            (dot / (na * nb), d.id.as_str())
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(k).map(|(_, id)| id.to_string()).collect()
}

/// Copies a directory tree (a store fixture) to `to`. A file that vanishes while it is copied
/// is left out: the tree may belong to a store still open (the text index's background merges
/// remove files), as a crash can leave it.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let Ok(entry) = entry else { continue };
        let target = to.join(entry.file_name());
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            match std::fs::copy(entry.path(), target) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => {
                    other.unwrap();
                }
            }
        }
    }
}

/// Opens the store's sled database directly (waiting for the closed store's threads to let go).
pub fn open_sled(dir: &std::path::Path) -> sled::Db {
    let start = std::time::Instant::now();
    loop {
        match sled::open(dir.join("sled")) {
            Ok(db) => return db,
            Err(_) if start.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("opening sled: {e}"),
        }
    }
}

/// A child process: this test binary re-run for the one test `test`, whose stdout lines are
/// collected as they come (its stderr is dropped). The crash and power-cut tests use it.
pub struct ChildRun {
    child: std::process::Child,
    rx: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<()>,
    /// The lines read so far.
    pub lines: Vec<String>,
}

impl ChildRun {
    /// Starts `test` of this binary with the environment variables `envs` added.
    pub fn spawn(test: &str, envs: &[(&str, &std::ffi::OsStr)]) -> ChildRun {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(l) = line else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        ChildRun { child, rx, reader, lines: Vec::new() }
    }

    /// Waits (up to `timeout`) for a line ending in `ready` (the harness prints
    /// "test NAME ... " before the child's first line); panics, naming `what`, if none comes.
    pub fn wait_ready(&mut self, timeout: std::time::Duration, what: &str) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.lines.iter().any(|l| l.ends_with("ready")) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(l) => self.lines.push(l),
                Err(_) => panic!("{what}: the child did not open the store: {:?}", self.child.try_wait()),
            }
        }
    }

    /// Kills the child with SIGKILL and returns every line it printed.
    pub fn kill(mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader.join().unwrap();
        self.lines.extend(self.rx.try_iter());
        self.lines
    }
}
