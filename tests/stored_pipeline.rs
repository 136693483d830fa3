//! Collections that carry their pipeline (src/pipeline/spec.rs, open.rs, request.rs): searched
//! with nothing else said once the transform file is gone and the model moved; a flag that
//! contradicts the record refused; a different or missing model refused with a message that names
//! what was looked for and where; prefixes in the vectors and in the id; re-embedding.
//!
//! The command-line cases run the `isovec` binary in child processes, each with its own
//! `ISOVEC_HOME` (the model cache) and no `ISOVEC_MODEL`/`ISOVEC_MODEL_PATH` from outside. The
//! tiny model (test_support) stands in for a real one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use isovec::encoder::{Encoder, EncoderOptions, ModelDir, Pooling};
use isovec::store::{SearchParams, Store, TextDoc};
use isovec::test_support::tiny_model::{write_tiny_model, write_tiny_model_variant, VOCAB};
use isovec::{Embedder, Pipeline, Prefixes};

/// Runs `isovec` with `home` as its cache and `env` added; the child must end with an exit code.
fn isovec(home: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_isovec"));
    cmd.args(args).env("ISOVEC_HOME", home).env_remove("ISOVEC_MODEL").env_remove("ISOVEC_MODEL_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run isovec");
    assert!(out.status.code().is_some(), "isovec {args:?} was killed: {:?}", out.status);
    out
}

fn ok(home: &Path, env: &[(&str, &Path)], args: &[&str]) -> String {
    let out = isovec(home, env, args);
    assert!(out.status.success(), "isovec {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; its error.
fn refused(home: &Path, env: &[(&str, &Path)], args: &[&str]) -> String {
    let out = isovec(home, env, args);
    assert!(!out.status.success(), "isovec {args:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

/// 300 documents of the tiny model's words (so that their vectors differ), as JSON lines, and
/// their texts a line each beside it (`.txt`, to fit on).
fn write_corpus(path: &Path) {
    let words = &VOCAB[5..];
    let mut lines = String::new();
    let mut sentences = String::new();
    let mut s = 7u64;
    for i in 0..300 {
        let n = 3 + i % 6;
        let text: Vec<&str> = (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                words[(s >> 33) as usize % words.len()]
            })
            .collect();
        lines += &format!("{{\"id\": \"d{i}\", \"text\": \"{}\"}}\n", text.join(" "));
        sentences += &(text.join(" ") + "\n");
    }
    std::fs::write(path, lines).unwrap();
    std::fs::write(path.with_extension("txt"), sentences).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The files hash of the model in `dir`, as error messages show it (12 hex digits).
fn short_files_hash(dir: &Path) -> String {
    let m = ModelDir::open(dir).unwrap();
    m.files_sha256(&m.weights_sha256().unwrap()).unwrap()[..12].to_string()
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    store: PathBuf,
    corpus: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let corpus = root.join("corpus.jsonl");
    write_corpus(&corpus);
    Fixture { store: root.join("store"), home, corpus, root, _tmp: tmp }
}

#[test]
fn a_collection_is_searched_with_nothing_said_after_its_transform_is_deleted_and_its_model_moved() {
    let f = fixture();
    let model = f.root.join("models/tiny");
    write_tiny_model(&model);
    let transform = f.root.join("w.safetensors");
    let pipeline = ["--model", s(&model), "--pooling", "first_last_avg", "--max-length", "16"];
    let sentences = f.corpus.with_extension("txt");
    let fit = [&["fit", "whiten", "--from", s(&sentences), "--out", s(&transform)][..], &pipeline].concat();
    ok(&f.home, &[], &fit);
    let index =
        [&["index", "--store", s(&f.store)][..], &pipeline, &["--transform", s(&transform), s(&f.corpus)]].concat();
    ok(&f.home, &[], &index);
    let query = ["search", "--store", s(&f.store), "--json", "-k", "5", "the dog sat in the park"];
    let explicit = ok(&f.home, &[], &[&query[..], &pipeline, &["--transform", s(&transform)]].concat());
    assert_eq!(explicit.lines().count(), 5, "{explicit}");

    std::fs::remove_file(&transform).unwrap();
    std::fs::create_dir_all(f.home.join("models")).unwrap();
    std::fs::rename(&model, f.home.join("models/another-name")).unwrap();
    let bare = ok(&f.home, &[], &query);
    assert_eq!(bare, explicit, "the recorded pipeline gives the same ids and scores");
    // Hybrid too, and the stats name the pipeline.
    ok(&f.home, &[], &[&query[..], &["--mode", "hybrid"]].concat());

    // A flag that contradicts the record is refused, saying what the collection holds.
    let e = refused(&f.home, &[], &[&query[..], &["--pooling", "mean"]].concat());
    assert!(e.contains("pooling first_last_avg (asked: mean)") && e.contains("reembed"), "{e}");
    let e = refused(&f.home, &[], &[&query[..], &["--max-length", "12"]].concat());
    assert!(e.contains("maximum length 16 (asked: 12)"), "{e}");
    // One that agrees is fine.
    assert_eq!(ok(&f.home, &[], &[&query[..], &["--pooling", "first_last_avg"]].concat()), explicit);
}

#[test]
fn a_different_model_at_the_recorded_path_is_refused_and_a_missing_one_is_named_with_every_place_looked_at() {
    let f = fixture();
    let model = f.root.join("m");
    write_tiny_model(&model);
    let hash = short_files_hash(&model);
    ok(&f.home, &[], &["index", "--store", s(&f.store), "--model", s(&model), s(&f.corpus)]);
    let query = ["search", "--store", s(&f.store), "-k", "3", "the cat sat"];
    let found = ok(&f.home, &[], &query);

    // Other weights in the recorded folder: refused there, and found nowhere else.
    let kept = f.root.join("kept/tiny-copy");
    std::fs::create_dir_all(kept.parent().unwrap()).unwrap();
    std::fs::rename(&model, &kept).unwrap();
    write_tiny_model_variant(&model, 1);
    let e = refused(&f.home, &[], &query);
    assert!(e.contains(&format!("the model m (files sha256 {hash}…) is not on this machine")), "{e}");
    assert!(e.contains(&format!("{}: a different model", model.display())), "{e}");
    assert!(e.contains(&format!("{}", f.home.join("models").display())), "{e}");
    assert!(e.contains("ISOVEC_MODEL_PATH is not set") && e.contains("--model DIR"), "{e}");
    // Named explicitly, it is refused too.
    let e = refused(&f.home, &[], &[&query[..], &["--model", s(&model)]].concat());
    assert!(e.contains("pipeline mismatch") && e.contains("a different model"), "{e}");

    // Gone: the message says so; a search path that holds it (under any name) finds it.
    std::fs::remove_dir_all(&model).unwrap();
    let e = refused(&f.home, &[], &query);
    assert!(e.contains(&format!("{}: no folder there", model.display())) && e.contains(&hash), "{e}");
    let search_path = f.root.join("kept");
    assert_eq!(ok(&f.home, &[("ISOVEC_MODEL_PATH", &search_path)], &query), found);
    // So does the model cache, by content.
    std::fs::create_dir_all(f.home.join("models")).unwrap();
    std::fs::rename(&kept, f.home.join("models/zz-renamed")).unwrap();
    assert_eq!(ok(&f.home, &[], &query), found);
}

fn tiny_encoder(dir: &Path) -> Arc<Encoder> {
    Arc::new(Encoder::load(dir, EncoderOptions::default()).unwrap())
}

#[test]
fn prefixes_change_the_vectors_and_the_id_and_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    write_tiny_model(&model);
    let encoder = tiny_encoder(&model);
    let plain = Pipeline::new(encoder.clone(), Pooling::Mean, None).unwrap();
    let prefixes = Prefixes { query: "the cat ".into(), document: "a dog ".into() };
    let prefixed = Pipeline::with_prefixes(encoder.clone(), Pooling::Mean, prefixes.clone(), None).unwrap();
    assert_ne!(plain.id(), prefixed.id());
    assert_ne!(plain.id().fingerprint(), prefixed.id().fingerprint());
    let text = "ship sails on the sea";
    // The prefix is put before the text: checked against the plain pipeline on the joined text.
    assert_eq!(prefixed.embed(&[text]).unwrap(), plain.embed(&["a dog ship sails on the sea"]).unwrap());
    assert_eq!(prefixed.embed_queries(&[text]).unwrap(), plain.embed(&["the cat ship sails on the sea"]).unwrap());
    assert_ne!(prefixed.embed(&[text]).unwrap(), plain.embed(&[text]).unwrap());
    assert_eq!(plain.embed_queries(&[text]).unwrap(), plain.embed(&[text]).unwrap());

    // A store records them: opened again with nothing said, the pipeline has them.
    let dir = tmp.path().join("store");
    let docs: Vec<TextDoc> = ["ship sails on the sea", "bread rises in the hot oven", "music plays loud at night"]
        .iter()
        .enumerate()
        .map(|(i, t)| TextDoc { id: format!("d{i}"), text: t.to_string(), metadata: serde_json::Value::Null })
        .collect();
    {
        let store = Store::open(&dir).unwrap();
        let c = store.create_collection_for("p", &prefixed).unwrap();
        c.add_texts(&docs).unwrap();
        store.close().unwrap();
    }
    let store = Store::open_existing(&dir).unwrap();
    let c = store.collection("p").unwrap();
    let opened = c.pipeline().unwrap();
    assert_eq!(opened.prefixes(), &prefixes);
    assert_eq!(opened.id(), prefixed.id());
    let hits = c.search_text("hot bread", &SearchParams::k(3)).unwrap();
    let query = prefixed.embed_queries(&["hot bread"]).unwrap();
    assert_eq!(hits, c.search(&query[0], &SearchParams::k(3)).unwrap(), "the query gets the query prefix");
    // The unprefixed pipeline is not this collection's.
    assert!(c.search_text_with(&plain, "hot bread", &SearchParams::k(3)).is_err());
}

#[test]
fn reembedding_keeps_the_documents_and_swaps_in_the_new_pipeline() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    write_tiny_model(&model);
    let encoder = tiny_encoder(&model);
    let mean = Pipeline::new(encoder.clone(), Pooling::Mean, None).unwrap();
    let cls = Pipeline::new(encoder, Pooling::ClsBeforePooler, None).unwrap();
    let dir = tmp.path().join("store");
    let store = Store::open(&dir).unwrap();
    let old = store.create_collection_for("docs", &mean).unwrap();
    let mut docs: Vec<TextDoc> = Vec::new();
    for (i, t) in
        ["the cat sat on the mat", "a ship sails the cold sea", "rain falls in the city at night"].iter().enumerate()
    {
        docs.push(TextDoc { id: format!("d{i}"), text: t.to_string(), metadata: serde_json::json!({"n": i}) });
    }
    old.add_texts(&docs).unwrap();
    let report = store.reembed("docs", &cls, &isovec::progress::Silent).unwrap();
    assert_eq!((report.documents, report.vectors), (3, 3));
    assert_eq!(&report.from, mean.id());
    // The old handle takes no more writes; the collection, taken again, is the new one.
    assert!(matches!(old.add_texts(&docs[..1]), Err(isovec::Error::Dropped { .. })));
    let new = store.collection("docs").unwrap();
    assert_eq!(new.config().pipeline, *cls.id());
    assert_eq!(new.pipeline().unwrap().id(), cls.id());
    for d in &docs {
        let got = new.get(&d.id).unwrap().expect("kept");
        assert_eq!((&got.text, &got.metadata), (&d.text, &d.metadata));
        assert_eq!(got.vector, cls.embed(&[d.text.as_str()]).unwrap()[0], "re-encoded by the new pipeline");
    }
    drop((old, new));
    store.close().unwrap();
    // One generation is left on disk, and it reopens as the new pipeline.
    let folders: Vec<String> = std::fs::read_dir(dir.join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders, vec!["docs@1".to_string()]);
    let store = Store::open_existing(&dir).unwrap();
    let c = store.collection("docs").unwrap();
    assert_eq!(c.count().unwrap(), 3);
    // A document's own text finds it (the same vector), through the recorded pipeline.
    assert_eq!(c.search_text("a ship sails the cold sea", &SearchParams::k(1)).unwrap()[0].id, "d1");
}

#[test]
fn parquet_carries_the_pipeline_and_its_transform_into_another_store() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    write_tiny_model(&model);
    let encoder = tiny_encoder(&model);
    let corpus = tmp.path().join("corpus.jsonl");
    write_corpus(&corpus);
    let texts: Vec<String> =
        std::fs::read_to_string(corpus.with_extension("txt")).unwrap().lines().map(str::to_string).collect();
    let raw = Pipeline::new(encoder.clone(), Pooling::Mean, None).unwrap();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let whiten = isovec::transform::TransformKind::Whiten { dims: Some(8) }
        .fit(&raw.embed(&refs).unwrap(), &raw.id().encoder, &isovec::progress::Silent)
        .unwrap();
    let whitened = Pipeline::new(encoder, Pooling::Mean, Some(Arc::new(whiten))).unwrap();
    let docs: Vec<TextDoc> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| TextDoc { id: format!("d{i}"), text: t.clone(), metadata: serde_json::Value::Null })
        .collect();
    let file = tmp.path().join("docs.parquet");
    let query = "the cat sat in the park";
    let params = SearchParams::k(5);
    let expected = {
        let store = Store::open(tmp.path().join("a")).unwrap();
        let c = store.create_collection_for("docs", &whitened).unwrap();
        c.add_texts(&docs).unwrap();
        c.export_parquet(&file, &|_, _| {}).unwrap();
        c.search_text(query, &params).unwrap()
    };
    // Another store, the pipeline's transform given to nobody: imported with its record.
    let store = Store::open(tmp.path().join("b")).unwrap();
    let verified = isovec::parquet_io::ParquetImport::verify(&file, &|_, _| {}).unwrap();
    store.import_parquet("copy", &verified, None, &|_, _| {}).unwrap();
    let copy = store.collection("copy").unwrap();
    assert_eq!(copy.spec().unwrap(), whitened.spec().unwrap());
    assert_eq!(copy.search_text(query, &params).unwrap(), expected);
}
