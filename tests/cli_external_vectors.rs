//! `isovec index --vectors FILE.npy` and `isovec search --query-vector FILE.npy`: a collection of
//! vectors made outside isovec, from the command line (the binary run in child processes). No
//! model is needed: the .npy files are written byte by byte here, and the expected rankings are
//! computed here by brute force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use isovec::store::Store;
use serde_json::Value;

const DIMS: usize = 4;
/// Documents: each text has a word no other has (`kilo` only in d1), so a lexical search has one answer.
const TEXTS: [&str; 6] = [
    "alpha bravo charlie",
    "delta kilo echo",
    "foxtrot golf hotel",
    "india juliet lima",
    "mike november oscar",
    "papa quebec romeo",
];

/// Runs `isovec` with an empty cache and no model from outside.
fn isovec(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(args)
        .env("ISOVEC_HOME", home)
        .env_remove("ISOVEC_MODEL")
        .env_remove("ISOVEC_MODEL_PATH")
        .output()
        .expect("run isovec");
    assert!(out.status.code().is_some(), "isovec {args:?} was killed: {:?}", out.status);
    out
}

fn ok(home: &Path, args: &[&str]) -> String {
    let out = isovec(home, args);
    assert!(out.status.success(), "isovec {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn refused(home: &Path, args: &[&str]) -> String {
    let out = isovec(home, args);
    assert!(!out.status.success(), "isovec {args:?} should have failed: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A version-1 `.npy` file: magic, version, header length, the header dict padded to 64 bytes.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| (*x as f64).to_le_bytes()).collect()
}

/// Deterministic vectors in [-1, 1).
fn vectors(rows: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    (0..rows)
        .map(|_| {
            (0..dims)
                .map(|_| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        })
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn corpus(path: &Path, texts: &[&str]) {
    let lines: Vec<String> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| serde_json::json!({"id": format!("d{i}"), "text": t, "metadata": {"n": i}}).to_string())
        .collect();
    // A blank line holds no document: rows follow documents, not lines.
    std::fs::write(path, format!("{}\n\n{}\n", lines[..2].join("\n"), lines[2..].join("\n"))).unwrap();
}

/// Every document of the collection: id → (text, stored vector).
fn contents(store: &Path, collection: &str) -> BTreeMap<String, (String, Vec<f32>)> {
    let store = Store::open_existing(store).unwrap();
    let c = store.collection(collection).unwrap();
    let mut out = BTreeMap::new();
    for id in c.ids().unwrap() {
        let doc = c.get(&id).unwrap().unwrap();
        out.insert(id, (doc.text, doc.vector));
    }
    out
}

fn hits(json_lines: &str) -> Vec<(String, f64)> {
    json_lines
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v["score"].as_f64().unwrap())
        })
        .collect()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    store: PathBuf,
    corpus: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let home = root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let corpus_path = root.join("corpus.jsonl");
        corpus(&corpus_path, &TEXTS);
        Fixture { store: root.join("store"), home, corpus: corpus_path, root, _tmp: tmp }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.root.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn index(&self, vectors: &Path, more: &[&str]) -> Vec<String> {
        let mut args = vec!["index", "--store", s(&self.store), "--collection", "ext", "--vectors", s(vectors)];
        args.extend(more);
        args.push(s(&self.corpus));
        args.into_iter().map(String::from).collect()
    }
}

fn run_ok(f: &Fixture, args: &[String]) -> String {
    ok(&f.home, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run_refused(f: &Fixture, args: &[String]) -> String {
    refused(&f.home, &args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn vectors_from_a_npy_file_are_indexed_and_searched_by_query_vector_lexically_and_hybrid() {
    let f = Fixture::new();
    let docs = vectors(TEXTS.len(), DIMS, 11);
    let flat: Vec<f32> = docs.concat();
    let v = f.write("docs.npy", &npy("<f4", &format!("({}, {DIMS})", TEXTS.len()), &f32_bytes(&flat)));
    // A new collection needs the model's name; nothing is created without it.
    let e = run_refused(&f, &f.index(&v, &[]));
    assert!(e.contains("--vectors-model"), "{e}");
    assert!(!f.store.exists(), "a refused index created the store");
    let out = isovec(
        &f.home,
        &f.index(&v, &["--vectors-model", "outside-model", "--batch", "4"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("6 new"), "{}", String::from_utf8_lossy(&out.stderr));
    let stored = contents(&f.store, "ext");
    assert_eq!(stored.len(), 6);
    // Row i is the i-th document, across the blank line and the batches of 4 (stored normalised:
    // compare directions).
    for (i, d) in docs.iter().enumerate() {
        let (text, vector) = &stored[&format!("d{i}")];
        assert_eq!(text, TEXTS[i]);
        assert!(cosine(d, vector) > 0.99999, "d{i}");
    }

    let store = s(&f.store);
    let search = |more: &[&str]| {
        ok(&f.home, &[&["search", "--store", store, "--collection", "ext", "--json"][..], more].concat())
    };
    // Lexical: the one document with the word, no model anywhere.
    let lexical = hits(&search(&["--mode", "lexical", "kilo"]));
    assert_eq!(lexical.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(), ["d1"]);

    // Dense by a query vector (float64, shape (dims,)): the brute-force cosine ranking.
    let query: Vec<f32> = docs[3].iter().zip(&vectors(1, DIMS, 99)[0]).map(|(a, b)| a + 0.3 * b).collect();
    let q = f.write("q.npy", &npy("<f8", &format!("({DIMS},)"), &f64_bytes(&query)));
    let mut expected: Vec<(String, f64)> =
        docs.iter().enumerate().map(|(i, d)| (format!("d{i}"), cosine(&query, d))).collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    let dense = hits(&search(&["--query-vector", s(&q), "-k", "6"]));
    assert_eq!(dense.iter().map(|h| &h.0).collect::<Vec<_>>(), expected.iter().map(|h| &h.0).collect::<Vec<_>>());
    for (got, want) in dense.iter().zip(&expected) {
        assert!((got.1 - want.1).abs() < 1e-4, "{got:?} vs {want:?}");
    }
    assert_eq!(dense[0].0, "d3");
    // The same vector as a (1, dims) float32 matrix gives the same answer.
    let q32 = f.write("q32.npy", &npy("<f4", &format!("(1, {DIMS})"), &f32_bytes(&query)));
    assert_eq!(
        hits(&search(&["--query-vector", s(&q32), "-k", "6"])).iter().map(|h| &h.0).collect::<Vec<_>>(),
        dense.iter().map(|h| &h.0).collect::<Vec<_>>()
    );

    // Hybrid fuses the vector's nearest (d3) with the text's only match (d1), which is not near.
    assert_ne!(expected[0].0, "d1");
    let hybrid = hits(&search(&["--mode", "hybrid", "--query-vector", s(&q), "-k", "2", "kilo"]));
    let mut top: Vec<&str> = hybrid.iter().map(|h| h.0.as_str()).collect();
    top.sort();
    assert_eq!(top, ["d1", "d3"]);

    // A dense search by text cannot encode into these vectors: the error says what to do.
    let e = refused(&f.home, &["search", "--store", store, "--collection", "ext", "kilo"]);
    assert!(e.contains("outside isovec") && e.contains("--query-vector") && e.contains("--mode lexical"), "{e}");
    let e = refused(&f.home, &["search", "--store", store, "--collection", "ext", "--mode", "hybrid", "kilo"]);
    assert!(e.contains("--query-vector"), "{e}");
    // A query vector of other dimensions, and one that is a matrix of several rows.
    let q3 = f.write("q3.npy", &npy("<f4", "(3,)", &f32_bytes(&[1.0, 0.0, 0.0])));
    let e = refused(&f.home, &["search", "--store", store, "--collection", "ext", "--query-vector", s(&q3)]);
    assert!(e.contains("3 dimensions") && e.contains("vectors of 4") && e.contains("outside-model"), "{e}");
    let e = refused(&f.home, &["search", "--store", store, "--collection", "ext", "--query-vector", s(&v)]);
    assert!(e.contains("shape (6, 4)") && e.contains("one vector"), "{e}");
    // Indexing texts into it without vectors is refused the same way.
    let e = refused(&f.home, &["index", "--store", store, "--collection", "ext", s(&f.corpus)]);
    assert!(e.contains("--vectors FILE.npy"), "{e}");
    // --vectors names no pipeline.
    let e = run_refused(&f, &f.index(&v, &["--pooling", "cls"]));
    assert!(e.contains("cannot be used with"), "{e}");

    // Indexing again without the model's name: the collection's is used; float64 works too.
    let v64 = f.write("docs64.npy", &npy("<f8", &format!("({}, {DIMS})", TEXTS.len()), &f64_bytes(&flat)));
    run_ok(&f, &f.index(&v64, &[]));
    assert_eq!(hits(&search(&["--query-vector", s(&q), "-k", "6"])), dense);
    // A name that is not the collection's is refused.
    let e = run_refused(&f, &f.index(&v, &["--vectors-model", "another-model"]));
    assert!(e.contains("outside-model") && e.contains("nothing was written"), "{e}");
}

#[test]
fn bad_vector_files_are_refused_with_what_to_do_and_leave_the_collection_unchanged() {
    let f = Fixture::new();
    let n = TEXTS.len();
    let docs = vectors(n, DIMS, 5);
    let v = f.write("docs.npy", &npy("<f4", &format!("({n}, {DIMS})"), &f32_bytes(&docs.concat())));
    run_ok(&f, &f.index(&v, &["--vectors-model", "m"]));
    let before = contents(&f.store, "ext");

    // From here on the corpus has other texts and the files other values: nothing of them may land.
    let renamed: Vec<String> = TEXTS.iter().map(|t| format!("{t} zulu")).collect();
    corpus(&f.corpus, &renamed.iter().map(String::as_str).collect::<Vec<_>>());
    let other = vectors(n + 1, DIMS, 77);
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        // One row short: rows ≠ documents.
        (
            "short",
            npy("<f4", &format!("({}, {DIMS})", n - 1), &f32_bytes(&other[..n - 1].concat())),
            vec!["5 rows", "6 documents", "one row per document", "nothing was written"],
        ),
        // One row too many.
        ("long", npy("<f4", &format!("({}, {DIMS})", n + 1), &f32_bytes(&other.concat())), vec!["7 rows"]),
        // Another dimension than the collection's.
        (
            "dims",
            npy("<f4", &format!("({n}, 3)"), &f32_bytes(&vectors(n, 3, 1).concat())),
            vec!["4 dimensions", "not 3-dimensional", "nothing was written"],
        ),
        // A 3-D array.
        (
            "cube",
            npy("<f4", &format!("({n}, 2, 2)"), &f32_bytes(&other[..n].concat())),
            vec!["shape (6, 2, 2)", "2-D array"],
        ),
        // NaN in the last row: found before the first row is written.
        (
            "nan",
            npy(
                "<f4",
                &format!("({n}, {DIMS})"),
                &f32_bytes(&[&other[..n].concat()[..n * DIMS - 1], &[f32::NAN]].concat()),
            ),
            vec!["row 5", "NaN", "nothing was written"],
        ),
        // A row of zeros has no direction.
        (
            "zero",
            npy("<f4", &format!("({n}, {DIMS})"), &f32_bytes(&[&other[..n - 1].concat()[..], &[0.0; DIMS]].concat())),
            vec!["row 5", "all zeros"],
        ),
        // Integers, big-endian floats and Fortran order.
        ("ints", npy("<i4", &format!("({n}, {DIMS})"), &vec![1u8; n * DIMS * 4]), vec!["\"<i4\"", "float32"]),
        ("big", npy(">f4", &format!("({n}, {DIMS})"), &vec![1u8; n * DIMS * 4]), vec!["\">f4\"", "little-endian"]),
        (
            "fortran",
            {
                let mut b = npy("<f4", &format!("({n}, {DIMS})"), &f32_bytes(&other[..n].concat()));
                let at = b.windows(5).position(|w| w == b"False").unwrap();
                b.splice(at..at + 5, *b"True ");
                b
            },
            vec!["Fortran", "C order"],
        ),
        // Not a .npy file at all.
        ("text", b"id,vector\n1,0.5\n".to_vec(), vec!["not a .npy file"]),
    ];
    for (name, bytes, wanted) in cases {
        let path = f.write(&format!("{name}.npy"), &bytes);
        let e = run_refused(&f, &f.index(&path, &[]));
        for w in wanted {
            assert!(e.contains(w), "{name}: {w:?} not in {e}");
        }
        assert_eq!(contents(&f.store, "ext"), before, "{name} changed the collection");
    }
    // A bad corpus line with good vectors writes nothing either, even in an earlier batch.
    let good = f.write("good.npy", &npy("<f4", &format!("({n}, {DIMS})"), &f32_bytes(&other[..n].concat())));
    let mut text = std::fs::read_to_string(&f.corpus).unwrap();
    text.push_str("{\"id\": \"d9\", \"text\": \"\"}\n");
    std::fs::write(&f.corpus, text).unwrap();
    let e = run_refused(&f, &f.index(&good, &["--batch", "2"]));
    assert!(e.contains("empty") && e.contains("nothing was written"), "{e}");
    assert_eq!(contents(&f.store, "ext"), before);
}
