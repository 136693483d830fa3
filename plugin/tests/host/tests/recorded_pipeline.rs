//! A collection carries its pipeline: filled through SQL with a transform and a pooling that are
//! not the defaults, it is searched by text from another process that never saw the transform
//! file (deleted before it starts); and a collection without a record says which pipeline to give
//! once, after which it has one. Needs the default model (skips with a message without it, fails
//! under `ISOVEC_REQUIRE_DATA=1`).

use std::path::Path;
use std::process::Command;

use isovec_sqlite_host_test::{
    cosine, default_model, error_of, extension, floats, isovec_cli, load_extension, repo_root,
};
use rusqlite::{params, Connection};
use serde_json::Value as Json;

/// The variable that tells the child process which store to search.
const CHILD_STORE: &str = "ISOVEC_TEST_RECORDED_STORE";
/// What the child prints before its results, one JSON line.
const RESULTS: &str = "RESULTS ";
const QUERY: &str = "how do vaccines work";

/// The bundled corpus as the table `docs(id, body, meta)`; returns the texts.
fn load_corpus(db: &Connection) -> Vec<String> {
    db.execute_batch("CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT NOT NULL, meta TEXT)").unwrap();
    let mut texts = Vec::new();
    for line in std::fs::read_to_string(repo_root().join("fixtures/corpus.jsonl")).unwrap().lines() {
        let doc: Json = serde_json::from_str(line).unwrap();
        let text = doc["text"].as_str().unwrap().to_string();
        db.execute("INSERT INTO docs VALUES (?1, ?2, ?3)", params![doc["id"].as_str().unwrap(), text, None::<String>])
            .unwrap();
        texts.push(text);
    }
    texts
}

/// `(id, score)` of a search, best first.
fn hits(db: &Connection, store: &str, query: &str, mode: &str) -> Vec<(String, f64)> {
    db.prepare("SELECT id, score FROM isovec_search(?1, 'docs', ?2, 5, NULL, ?3)")
        .unwrap()
        .query_map(params![store, query, mode], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_whitened_collection_is_searched_from_a_new_process_without_its_transform_file() {
    if default_model().is_none() {
        return;
    }
    let db = load_extension();
    let dir = tempfile::tempdir().unwrap();
    let texts = load_corpus(&db);
    // A whitening to 64 dimensions fitted on CLS vectors of the corpus, by the command line.
    let corpus = dir.path().join("texts.txt");
    std::fs::write(&corpus, texts.join("\n")).unwrap();
    let transform = dir.path().join("whiten.safetensors");
    let out = Command::new(isovec_cli().unwrap_or_else(|e| panic!("{e}")))
        .args(["fit", "whiten", "--pooling", "cls", "--dims", "64", "--from"])
        .arg(&corpus)
        .arg("--out")
        .arg(&transform)
        .output()
        .unwrap();
    assert!(out.status.success(), "isovec fit failed: {}", String::from_utf8_lossy(&out.stderr));

    let store = dir.path().join("st");
    let st = store.to_str().unwrap();
    let pipeline = format!("transform:{}", transform.to_str().unwrap());
    let info: String = db.query_row("SELECT isovec_collection(?1, 'docs', ?2)", [st, &pipeline], |r| r.get(0)).unwrap();
    assert!(info.contains("\"dims\":64"), "{info}");
    let report: String =
        db.query_row("SELECT isovec_upsert_all(?1, 'docs', id, body) FROM docs", [st], |r| r.get(0)).unwrap();
    assert!(report.contains("\"inserted\":250"), "{report}");
    // Each score is the cosine of the transform pipeline's vectors, recomputed here.
    let expected = hits(&db, st, QUERY, "dense");
    assert_eq!(expected.len(), 5);
    let embed = |text: &str| -> Vec<f32> {
        floats(&db.query_row("SELECT isovec_embed(?1, ?2)", [text, &pipeline], |r| r.get::<_, Vec<u8>>(0)).unwrap())
    };
    let q = embed(QUERY);
    assert_eq!(q.len(), 64);
    for (id, score) in &expected {
        let body: String = db.query_row("SELECT body FROM docs WHERE id = ?1", [id], |r| r.get(0)).unwrap();
        let want = cosine(&q, &embed(&body));
        assert!((score - want).abs() < 1e-4, "{id}: {score} vs {want}");
    }
    let hybrid = hits(&db, st, QUERY, "hybrid");
    let closed: i64 = db.query_row("SELECT isovec_close(?1)", [st], |r| r.get(0)).unwrap();
    assert_eq!(closed, 1);
    drop(db);

    // Another process, with nothing but the store: the transform file is gone.
    std::fs::remove_file(&transform).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_searches_the_store", "--ignored", "--nocapture", "--test-threads=1"])
        .env("ISOVEC_SQLITE_EXT", extension().unwrap_or_else(|e| panic!("{e}")))
        .env(CHILD_STORE, &store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find_map(|l| l.find(RESULTS).map(|at| &l[at + RESULTS.len()..])).expect(&stdout);
    let got: Json = serde_json::from_str(line).unwrap();
    let same = |got: &Json, want: &[(String, f64)]| {
        let got: Vec<(String, f64)> = serde_json::from_value(got.clone()).unwrap();
        assert_eq!(got.iter().map(|h| &h.0).collect::<Vec<_>>(), want.iter().map(|h| &h.0).collect::<Vec<_>>());
        for (g, w) in got.iter().zip(want) {
            assert!((g.1 - w.1).abs() < 1e-6, "{g:?} vs {w:?}");
        }
    };
    same(&got["dense"], &expected);
    same(&got["hybrid"], &hybrid);
    assert_eq!(got["dims"], 64, "the collection's pipeline, by name, is the whitened one");
    // A document upserted by the child went through the recorded pipeline: its own text finds it.
    assert_eq!(got["new"][0][0], "new");
    assert!(got["new"][0][1].as_f64().unwrap() > 0.9999, "{}", got["new"]);
}

#[test]
#[ignore = "a child process of a_whitened_collection_is_searched_from_a_new_process_without_its_transform_file"]
fn child_searches_the_store() {
    let store = std::env::var(CHILD_STORE).expect("run by a_whitened_collection_is_searched_…");
    let db = load_extension();
    let dense = hits(&db, &store, QUERY, "dense");
    let hybrid = hits(&db, &store, QUERY, "hybrid");
    let dims: i64 = db
        .query_row("SELECT isovec_dims(isovec_embed('x', 'store:' || ?1 || '#docs'))", [&store], |r| r.get(0))
        .unwrap();
    let text = "A lighthouse keeper counts the ships that pass at night.";
    let inserted: i64 =
        db.query_row("SELECT isovec_upsert(?1, 'docs', 'new', ?2)", [&store, text], |r| r.get(0)).unwrap();
    assert_eq!(inserted, 1);
    let new = hits(&db, &store, text, "dense");
    let results = serde_json::json!({"dense": dense, "hybrid": hybrid, "dims": dims, "new": new});
    println!("{RESULTS}{results}");
}

#[test]
fn a_collection_without_a_record_says_which_pipeline_to_give_and_then_has_one() {
    if default_model().is_none() {
        return;
    }
    let db = load_extension();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("st");
    let st = store.to_str().unwrap();
    let inserted: i64 = db
        .query_row("SELECT isovec_upsert(?1, 'docs', 'a', 'Whales sing under the sea.')", [st], |r| r.get(0))
        .unwrap();
    assert_eq!(inserted, 1);
    db.query_row("SELECT isovec_close(?1)", [st], |r| r.get::<_, i64>(0)).unwrap();
    forget_pipeline(&store);

    let msg = error_of(&db, &format!("SELECT * FROM isovec_search('{}', 'docs', 'whales')", st.replace('\'', "''")));
    assert!(msg.contains("no record of the pipeline") && msg.contains("isovec_collection("), "{msg}");
    // A pooling that is not the collection's is refused with what it holds.
    let model = default_model().unwrap();
    let cls = format!("model:{}#cls", model.to_str().unwrap());
    let msg = error_of(&db, &format!("SELECT isovec_collection('{}', 'docs', '{}')", st, cls.replace('\'', "''")));
    assert!(msg.contains("pipeline mismatch") && msg.contains("mean"), "{msg}");
    // The right one, named once, is recorded: searches and upserts need nothing more, here and
    // in the command line.
    db.query_row("SELECT isovec_collection(?1, 'docs', 'default')", [st], |r| r.get::<_, String>(0)).unwrap();
    let inserted: i64 = db
        .query_row("SELECT isovec_upsert(?1, 'docs', 'b', 'Bread dough rises in the oven.')", [st], |r| r.get(0))
        .unwrap();
    assert_eq!(inserted, 1);
    assert_eq!(hits(&db, st, "songs of whales", "dense")[0].0, "a");
    db.query_row("SELECT isovec_close(?1)", [st], |r| r.get::<_, i64>(0)).unwrap();
    let out = Command::new(isovec_cli().unwrap_or_else(|e| panic!("{e}")))
        .args(["search", "--collection", "docs", "--json", "-k", "1", "--store"])
        .arg(&store)
        .arg("baking bread")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "isovec search failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"id\":\"b\""), "{stdout}");
}

/// Deletes the record of the pipeline of collection `docs` in the (closed) store `dir`, as a
/// store written before isovec recorded pipelines has none.
fn forget_pipeline(dir: &Path) {
    let db = sled::open(dir.join("sled")).unwrap();
    let tree = db.open_tree("col/docs").unwrap();
    assert!(tree.remove("#pipeline").unwrap().is_some(), "the collection had a record");
    db.flush().unwrap();
}
