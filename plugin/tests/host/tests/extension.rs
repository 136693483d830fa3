//! The extension loaded into a rusqlite connection: embed, upsert, search joined with a table,
//! delete, and the error paths. Needs the default model (skips with a message without it, fails under
//! `ISOVEC_REQUIRE_DATA=1`).

use std::path::Path;

use isovec_sqlite_host_test::{cosine, default_model, error_of, floats, load_extension};
use rusqlite::{params, Connection};

/// A connection with the extension loaded, or `None` (after saying why) without the model; a
/// failure then under `ISOVEC_REQUIRE_DATA=1`.
fn connect() -> Option<Connection> {
    default_model()?;
    Some(load_extension())
}

/// A few documents with integer ids, as a host application would have them.
const DOCS: &[(i64, &str, &str)] = &[
    (
        1,
        "Vaccines train the immune system to recognise a virus before an infection.",
        r#"{"topic": "health", "year": 2021}"#,
    ),
    (2, "The rover drilled into a red rock and found traces of ancient water.", r#"{"topic": "space", "year": 2002}"#),
    (3, "Whales sing long songs that travel for miles under the sea.", r#"{"topic": "ocean", "year": 2015}"#),
    (4, "Knead the bread dough and let it rise for an hour.", r#"{"topic": "cooking", "year": 2019}"#),
    (5, "Antibodies made after a vaccination protect against the disease.", r#"{"topic": "health", "year": 2010}"#),
    (6, "The orchestra tuned their violins before the concert.", r#"{"topic": "music", "year": 2021}"#),
];

fn load_docs(db: &Connection, store: &Path) {
    db.execute_batch("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT NOT NULL, meta TEXT)").unwrap();
    for (id, body, meta) in DOCS {
        db.execute("INSERT INTO docs VALUES (?1, ?2, ?3)", params![id, body, meta]).unwrap();
    }
    let inserted: i64 = db
        .query_row("SELECT sum(isovec_upsert(?1, 'docs', id, body, meta)) FROM docs", [store.to_str().unwrap()], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(inserted, DOCS.len() as i64, "every document is new");
}

fn embed(db: &Connection, text: &str) -> Vec<f32> {
    let blob: Vec<u8> = db.query_row("SELECT isovec_embed(?1)", [text], |r| r.get(0)).unwrap();
    floats(&blob)
}

#[test]
fn embed_cosine_and_dims() {
    let Some(db) = connect() else { return };
    let dims: i64 = db.query_row("SELECT isovec_dims(isovec_embed('hello world'))", [], |r| r.get(0)).unwrap();
    assert_eq!(dims, 384);
    let a = embed(&db, "A vaccine protects people from a disease.");
    let b = embed(&db, "Immunisation shields you against illness.");
    let c = embed(&db, "The guitarist tuned her strings.");
    // Unit length, recomputed here in f64.
    let norm: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    // isovec_cosine agrees with an independent f64 computation on the decoded vectors.
    let sql_cos: f64 = db
        .query_row(
            "SELECT isovec_cosine(isovec_embed('A vaccine protects people from a disease.'), isovec_embed('Immunisation shields you against illness.'))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!((sql_cos - cosine(&a, &b)).abs() < 1e-9, "{sql_cos} vs {}", cosine(&a, &b));
    assert!(cosine(&a, &b) > cosine(&a, &c) + 0.2, "paraphrases are closer than unrelated texts");
    // The default pipeline, named three ways, gives the same bytes.
    let model = default_model().unwrap();
    let same: i64 = db
        .query_row(
            "SELECT isovec_embed('x') = isovec_embed('x', 'default') AND isovec_embed('x') = isovec_embed('x', ?1) \
             AND isovec_embed('x') = isovec_embed('x', 'model:' || ?1 || '#mean')",
            [model.to_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(same, 1);
    // Another pooling is another pipeline.
    let cls_differs: i64 = db
        .query_row(
            "SELECT isovec_embed('x') <> isovec_embed('x', 'model:' || ?1 || '#first_last_avg')",
            [model.to_str().unwrap()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cls_differs, 1);
    let null: Option<Vec<u8>> = db.query_row("SELECT isovec_embed(NULL)", [], |r| r.get(0)).unwrap();
    assert!(null.is_none());
}

#[test]
fn upsert_search_join_delete() {
    let Some(db) = connect() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("st");
    let st = store.to_str().unwrap();
    load_docs(&db, &store);
    // Upserting again replaces: 0 new.
    let again: i64 =
        db.query_row("SELECT sum(isovec_upsert(?1, 'docs', id, body, meta)) FROM docs", [st], |r| r.get(0)).unwrap();
    assert_eq!(again, 0);

    // Search joined with the host's table (integer ids meet the TEXT id column).
    let mut stmt = db
        .prepare(
            "SELECT d.id, d.body, s.score, s.metadata FROM isovec_search(?1, 'docs', 'how do vaccines work', 3) s \
             JOIN docs d ON d.id = s.id ORDER BY s.score DESC",
        )
        .unwrap();
    let rows: Vec<(i64, String, f64, String)> = stmt
        .query_map([st], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 3);
    let top: Vec<i64> = rows.iter().take(2).map(|r| r.0).collect();
    assert!(top.contains(&1) && top.contains(&5), "the two vaccine documents come first: {rows:?}");
    assert!(rows.windows(2).all(|w| w[0].2 >= w[1].2), "best first");
    // Each score is the exact cosine of the query and the document (recomputed from embeddings).
    let q = embed(&db, "how do vaccines work");
    for (_, body, score, _) in &rows {
        let expected = cosine(&q, &embed(&db, body));
        assert!((score - expected).abs() < 1e-4, "{body}: {score} vs {expected}");
    }
    assert!(rows[0].3.contains("\"topic\":\"health\""), "metadata comes back as JSON: {}", rows[0].3);

    // Defaults (k = 10 → all 6) and a filter in both forms.
    let n: i64 =
        db.query_row("SELECT count(*) FROM isovec_search(?1, 'docs', 'anything')", [st], |r| r.get(0)).unwrap();
    assert_eq!(n, DOCS.len() as i64);
    for filter in ["topic=health AND year>=2015", r#"{"topic": "health", "year": {"gte": 2015}}"#] {
        let ids: Vec<String> = db
            .prepare("SELECT id FROM isovec_search(?1, 'docs', 'medicine', 5, ?2)")
            .unwrap()
            .query_map([st, filter], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(ids, vec!["1".to_string()], "filter {filter}");
    }

    // The collection's own pipeline, by name, embeds like the default.
    let same: i64 = db
        .query_row("SELECT isovec_embed('x', 'store:' || ?1 || '#docs') = isovec_embed('x')", [st], |r| r.get(0))
        .unwrap();
    assert_eq!(same, 1);
    let info: String = db.query_row("SELECT isovec_collection(?1, 'docs')", [st], |r| r.get(0)).unwrap();
    assert!(info.contains("\"documents\":6") && info.contains("\"dims\":384"), "{info}");

    // Delete: 1 the first time, 0 after; the document no longer comes back.
    let deleted: i64 = db.query_row("SELECT isovec_delete(?1, 'docs', 1)", [st], |r| r.get(0)).unwrap();
    assert_eq!(deleted, 1);
    let deleted: i64 = db.query_row("SELECT isovec_delete(?1, 'docs', '1')", [st], |r| r.get(0)).unwrap();
    assert_eq!(deleted, 0);
    let top: String = db
        .query_row("SELECT id FROM isovec_search(?1, 'docs', 'how do vaccines work', 1)", [st], |r| r.get(0))
        .unwrap();
    assert_eq!(top, "5", "ids come back as TEXT");

    // Closing lets go of the store; the next call reopens it from disk with the same content.
    let closed: i64 = db.query_row("SELECT isovec_close(?1)", [st], |r| r.get(0)).unwrap();
    assert_eq!(closed, 1);
    let n: i64 =
        db.query_row("SELECT count(*) FROM isovec_search(?1, 'docs', 'anything', 100)", [st], |r| r.get(0)).unwrap();
    assert_eq!(n, DOCS.len() as i64 - 1);
}

#[test]
fn errors_are_sql_errors() {
    let Some(db) = connect() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("st");
    let st = store.to_str().unwrap().replace('\'', "''");
    load_docs(&db, &store);
    let missing = dir.path().join("nowhere").to_str().unwrap().replace('\'', "''");
    let cases: Vec<(String, &str)> = vec![
        (format!("SELECT * FROM isovec_search('{missing}', 'docs', 'q')"), "no store in"),
        (format!("SELECT isovec_delete('{missing}', 'docs', 'a')"), "no store in"),
        (format!("SELECT * FROM isovec_search('{st}', 'nope', 'q')"), "no collection \"nope\""),
        (format!("SELECT * FROM isovec_search('{st}', 'docs', 'q', 5, 'year >>= 3')"), "isovec_search:"),
        (format!("SELECT * FROM isovec_search('{st}', 'docs', 'q', 5, '{{not json')"), "filter is not valid JSON"),
        (format!("SELECT * FROM isovec_search('{st}', 'docs', 'q', 0)"), "k must be between 1"),
        (format!("SELECT * FROM isovec_search('{st}', 'docs', 'q', 'ten')"), "k must be an integer"),
        (format!("SELECT * FROM isovec_search('{st}', 'docs', '   ')"), "query text is empty"),
        (format!("SELECT * FROM isovec_search('{st}', 'docs')"), "the query argument is missing"),
        ("SELECT * FROM isovec_search()".into(), "the store argument is missing"),
        ("SELECT isovec_cosine(isovec_embed('a'), zeroblob(8))".into(), "wrong dimension"),
        ("SELECT isovec_dims(x'010203')".into(), "3 bytes"),
        ("SELECT isovec_cosine('text', 'text')".into(), "must be a BLOB"),
        ("SELECT isovec_embed('a', '/no/such/model')".into(), "/no/such/model"),
        ("SELECT isovec_embed('a', 'model:/x#nopool')".into(), "unknown pooling"),
        ("SELECT isovec_embed('a', 'transform:/no/such/file')".into(), "/no/such/file"),
        (format!("SELECT isovec_upsert('{st}', 'docs', 'z', 'text', '[1,2]')"), "must be a JSON object"),
        (format!("SELECT isovec_upsert('{st}', 'docs', 'z', 'text', '{{oops')"), "not valid JSON"),
        (format!("SELECT isovec_upsert('{st}', 'docs', NULL, 'text')"), "the id is NULL"),
        (format!("SELECT isovec_upsert('{st}', 'docs', 'z', x'00')"), "must be TEXT"),
        (format!("SELECT isovec_upsert('{st}', 'docs', 'z', '  ')"), "empty text"),
        (
            format!(
                "SELECT isovec_collection('{st}', 'docs', 'model:{}#cls_before_pooler')",
                default_model().unwrap().display()
            ),
            "pipeline mismatch",
        ),
    ];
    for (sql, expected) in &cases {
        let msg = error_of(&db, sql);
        assert!(msg.contains(expected), "{sql}\n  gave: {msg}\n  expected it to mention: {expected}");
    }
    // Nothing above broke the connection or the store.
    let n: i64 =
        db.query_row(&format!("SELECT count(*) FROM isovec_search('{st}', 'docs', 'q')"), [], |r| r.get(0)).unwrap();
    assert_eq!(n, DOCS.len() as i64);
}

/// A store whose collection `docs` has a stored configuration with `field` (of `hnsw`) set to
/// `value`, written with sled directly as damage would leave it.
fn damaged_store(dir: &Path, field: &str, value: u64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("isovec-store.json"), r#"{"kind": "isovec", "format": 1}"#).unwrap();
    let mut hnsw = serde_json::json!({"m": 24, "ef_construction": 100, "ef_search": 48});
    hnsw[field] = value.into();
    let config = serde_json::json!({
        "dims": 384,
        "metric": "cosine",
        "pipeline": {
            "encoder": {"model": "all-MiniLM-L6-v2", "weights_sha256": "0".repeat(64), "pooling": "mean", "max_length": 256},
            "transform": null,
            "normalize": true
        },
        "hnsw": hnsw
    });
    let db = sled::open(dir.join("sled")).unwrap();
    db.open_tree("collections").unwrap().insert("docs", serde_json::to_vec(&config).unwrap()).unwrap();
    db.flush().unwrap();
}

#[test]
fn a_damaged_stored_config_is_an_sql_error_and_the_host_survives() {
    let db = load_extension();
    let dir = tempfile::tempdir().unwrap();
    // hnsw_rs 0.3 exits the process on m > 256; the others loop, panic or exhaust memory.
    for (i, (field, value)) in
        [("m", 10_000), ("m", 0), ("ef_construction", 0), ("ef_search", u64::MAX)].into_iter().enumerate()
    {
        let store = dir.path().join(format!("st{i}"));
        damaged_store(&store, field, value);
        let st = store.to_str().unwrap().replace('\'', "''");
        let msg = error_of(&db, &format!("SELECT isovec_delete('{st}', 'docs', 'a')"));
        assert!(msg.contains("collection \"docs\"") && msg.contains("damaged"), "{field} = {value}: {msg}");
        let closed: i64 = db.query_row("SELECT isovec_close(?1)", [&st], |r| r.get(0)).unwrap();
        assert_eq!(closed, 1, "the store itself opened");
    }
    // Still alive and answering.
    let one: i64 = db.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
    assert_eq!(one, 1);
}

#[test]
fn lexical_and_hybrid_modes() {
    let Some(db) = connect() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("st");
    let st = store.to_str().unwrap();
    load_docs(&db, &store);
    let ids = |sql: &str, args: &[&str]| -> Vec<(String, f64)> {
        db.prepare(sql)
            .unwrap()
            .query_map(rusqlite::params_from_iter(args), |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    // BM25: only the documents with the (stemmed) word, whichever form it takes ("Vaccines",
    // "vaccination"); the shorter document first.
    let lexical = ids("SELECT id, score FROM isovec_search(?1, 'docs', 'vaccine', 10, NULL, 'lexical')", &[st]);
    assert_eq!(lexical.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["5", "1"], "{lexical:?}");
    let words = ids("SELECT id, score FROM isovec_search(?1, 'docs', 'songs of whales', 10, NULL, 'lexical')", &[st]);
    assert_eq!(words.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), ["3"]);
    // Hybrid: the dense and the lexical evidence both count; a convex fusion with all weight on
    // the dense side ranks as the dense search does.
    let dense = ids("SELECT id, score FROM isovec_search(?1, 'docs', 'how do vaccines work', 6)", &[st]);
    let hybrid =
        ids("SELECT id, score FROM isovec_search(?1, 'docs', 'how do vaccines work', 6, NULL, 'hybrid')", &[st]);
    let mut top2: Vec<&str> = hybrid.iter().take(2).map(|r| r.0.as_str()).collect();
    top2.sort();
    assert_eq!(top2, ["1", "5"], "the documents with the word and the meaning: {hybrid:?}");
    let all_dense = ids(
        "SELECT id, score FROM isovec_search(?1, 'docs', 'how do vaccines work', 6, NULL, 'hybrid:convex=1')",
        &[st],
    );
    let order = |r: &[(String, f64)]| r.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(order(&all_dense), order(&dense));
    let rrf =
        ids("SELECT id, score FROM isovec_search(?1, 'docs', 'how do vaccines work', 6, NULL, 'hybrid:rrf')", &[st]);
    // Documents 1 and 5 are first and second in the two rankings, in opposite orders.
    assert!((rrf[0].1 - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-6 && (rrf[1].1 - rrf[0].1).abs() < 1e-9, "{rrf:?}");
    // Filters apply in every mode.
    let filtered = ids("SELECT id, score FROM isovec_search(?1, 'docs', 'vaccines', 5, 'year<2015', 'hybrid')", &[st]);
    assert_eq!(order(&filtered), ["5", "2"], "only the documents before 2015");
    let st = st.replace('\'', "''");
    for (mode, want) in [
        ("semantic", "use 'dense', 'lexical', 'hybrid'"),
        ("lexical:rrf", "only a hybrid"),
        ("hybrid:convex=3", "[0, 1]"),
    ] {
        let msg = error_of(&db, &format!("SELECT * FROM isovec_search('{st}', 'docs', 'q', 5, NULL, '{mode}')"));
        assert!(msg.contains(want), "{mode}: {msg}");
    }
}
