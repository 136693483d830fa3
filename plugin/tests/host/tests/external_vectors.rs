//! Collections of vectors made outside isovec, from SQL: `isovec_collection(store, name,
//! 'external:NAME#DIMS')` creates one, `isovec_upsert(..., metadata, vector)` and
//! `isovec_upsert_all(..., batch, vector)` fill it with BLOBs, `isovec_search` searches it by a
//! query vector (the query itself, or beside the text for hybrid) and lexically. Needs no model:
//! the vectors are made here, and the expected rankings computed here by brute force.

use std::path::Path;

use isovec_sqlite_host_test::{cosine, error_of, load_extension};
use rusqlite::{params, Connection};
use serde_json::Value as Json;

const DIMS: usize = 4;
/// Each text has a word no other has (`kilo` only in row 2).
const TEXTS: [&str; 6] = [
    "alpha bravo charlie",
    "delta kilo echo",
    "foxtrot golf hotel",
    "india juliet lima",
    "mike november oscar",
    "papa quebec romeo",
];

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

/// Little-endian f32 bytes, written here independently of the extension.
fn blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn quoted(path: &Path) -> String {
    path.to_str().unwrap().replace('\'', "''")
}

/// The host's table `docs(id, body, emb)`: ids 1–6, the texts, each row's vector as a BLOB.
fn load_docs(db: &Connection, docs: &[Vec<f32>]) {
    db.execute_batch("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT, emb BLOB)").unwrap();
    for (i, (text, v)) in TEXTS.iter().zip(docs).enumerate() {
        db.execute("INSERT INTO docs VALUES (?1, ?2, ?3)", params![i as i64 + 1, text, blob(v)]).unwrap();
    }
}

/// `(id, score)` rows of a search whose query (or vector) is `?1`.
fn search(db: &Connection, sql: &str, arg: &dyn rusqlite::ToSql) -> Vec<(String, f64)> {
    let mut stmt = db.prepare(sql).unwrap();
    stmt.query_map([arg], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn ids(hits: &[(String, f64)]) -> Vec<&str> {
    hits.iter().map(|h| h.0.as_str()).collect()
}

#[test]
fn an_external_collection_is_filled_with_blobs_and_searched_by_vector_text_and_both() {
    let db = load_extension();
    let dir = tempfile::tempdir().unwrap();
    let st = quoted(&dir.path().join("st"));
    let docs = vectors(TEXTS.len(), DIMS, 11);
    load_docs(&db, &docs);

    let info: String = db
        .query_row(&format!("SELECT isovec_collection('{st}', 'ext', 'external:outside-model#4')"), [], |r| r.get(0))
        .unwrap();
    let info: Json = serde_json::from_str(&info).unwrap();
    assert_eq!((info["dims"].as_u64(), info["documents"].as_u64()), (Some(4), Some(0)), "{info}");
    let inserted: i64 = db
        .query_row(&format!("SELECT sum(isovec_upsert('{st}', 'ext', id, body, NULL, emb)) FROM docs"), [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(inserted, 6);
    // Opening it again by the same name is fine; by another model or dimension is not.
    db.query_row(&format!("SELECT isovec_collection('{st}', 'ext', 'external:outside-model#4')"), [], |r| {
        r.get::<_, String>(0)
    })
    .unwrap();
    let e = error_of(&db, &format!("SELECT isovec_collection('{st}', 'ext', 'external:outside-model#8')"));
    assert!(e.contains("outside-model") && e.contains("4 dimensions") && e.contains("8-dimensional"), "{e}");
    let e = error_of(&db, &format!("SELECT isovec_collection('{st}', 'ext', 'external:another#4')"));
    assert!(e.contains("\"another\""), "{e}");
    let e = error_of(&db, &format!("SELECT isovec_collection('{st}', 'bad', 'external:outside-model')"));
    assert!(e.contains("external:NAME#DIMS"), "{e}");

    // Dense by a query vector given as the query: the brute-force cosine ranking, with its scores.
    let query: Vec<f32> = docs[3].iter().zip(&vectors(1, DIMS, 99)[0]).map(|(a, b)| a + 0.3 * b).collect();
    let mut expected: Vec<(String, f64)> =
        docs.iter().enumerate().map(|(i, d)| ((i + 1).to_string(), cosine(&query, d))).collect();
    expected.sort_by(|a, b| b.1.total_cmp(&a.1));
    let dense = search(&db, &format!("SELECT id, score FROM isovec_search('{st}', 'ext', ?1, 6)"), &blob(&query));
    assert_eq!(ids(&dense), ids(&expected));
    for (got, want) in dense.iter().zip(&expected) {
        assert!((got.1 - want.1).abs() < 1e-4, "{got:?} vs {want:?}");
    }
    assert_eq!(dense[0].0, "4");
    // The same vector beside a text gives the same dense ranking (the text is not encoded).
    let beside = search(
        &db,
        &format!("SELECT id, score FROM isovec_search('{st}', 'ext', 'anything', 6, NULL, 'dense', ?1)"),
        &blob(&query),
    );
    assert_eq!(beside, dense);
    // Joined with the host's table, as any search.
    let body: String = db
        .query_row(
            &format!("SELECT d.body FROM isovec_search('{st}', 'ext', ?1, 1) s JOIN docs d ON d.id = s.id"),
            [blob(&query)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(body, TEXTS[3]);

    // Lexical: the one row with the word, no model.
    let lexical =
        search(&db, &format!("SELECT id, score FROM isovec_search('{st}', 'ext', ?1, 5, NULL, 'lexical')"), &"kilo");
    assert_eq!(ids(&lexical), ["2"]);
    // Hybrid: the vector's nearest (4) and the text's only match (2), which is not near.
    assert_ne!(expected[0].0, "2");
    let hybrid = search(
        &db,
        &format!("SELECT id, score FROM isovec_search('{st}', 'ext', 'kilo', 2, NULL, 'hybrid', ?1)"),
        &blob(&query),
    );
    let mut top = ids(&hybrid);
    top.sort();
    assert_eq!(top, ["2", "4"]);

    // What cannot work says what to do.
    let e = error_of(&db, &format!("SELECT id FROM isovec_search('{st}', 'ext', 'kilo')"));
    assert!(e.contains("outside isovec") && e.contains("'lexical'") && e.contains("BLOB"), "{e}");
    let e = error_of(&db, &format!("SELECT id FROM isovec_search('{st}', 'ext', x'0000803f', 3)"));
    assert!(e.contains("wrong dimension") && e.contains("1 dimensions") && e.contains("outside-model"), "{e}");
    let e = error_of(&db, &format!("SELECT id FROM isovec_search('{st}', 'ext', x'0000803f00', 3)"));
    assert!(e.contains("5 bytes"), "{e}");
    let e = error_of(
        &db,
        &format!("SELECT id FROM isovec_search('{st}', 'ext', x'0000803f000000000000000000000000', 3, NULL, 'hybrid')"),
    );
    assert!(e.contains("needs the query text"), "{e}");
    let e = error_of(&db, &format!("SELECT isovec_upsert('{st}', 'ext', 'x', 'text only')"));
    assert!(
        e.contains("outside isovec") && e.contains("isovec_upsert(store, collection, id, text, metadata, vector)"),
        "{e}"
    );
    let e =
        error_of(&db, &format!("SELECT isovec_upsert('{st}', 'ext', 'x', 'three dims', NULL, x'{}')", "00".repeat(12)));
    assert!(e.contains("wrong dimension") && e.contains("3 dimensions") && e.contains("vectors of 4"), "{e}");
    let e = error_of(&db, &format!("SELECT isovec_upsert('{st}', 'ext', 'x', 'zero', NULL, x'{}')", "00".repeat(16)));
    assert!(e.contains("zero"), "{e}");
    let e = error_of(&db, &format!("SELECT isovec_upsert('{st}', 'ext', 'x', 'in place of metadata', x'0000803f')"));
    assert!(e.contains("metadata") && e.contains("vector is an argument of its own"), "{e}");
    let e = error_of(&db, &format!("SELECT isovec_upsert('{st}', 'missing', 'x', 'text', NULL, x'0000803f')"));
    assert!(e.contains("does not exist") && e.contains("external:MODEL#DIMS"), "{e}");
    let e = error_of(&db, "SELECT isovec_embed('text', 'external:outside-model#4')");
    assert!(e.contains("cannot encode"), "{e}");
    // None of that wrote anything.
    let count: i64 = db
        .query_row(&format!("SELECT json_extract(isovec_collection('{st}', 'ext'), '$.documents')"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 6);
    let missing: i64 = db
        .query_row(
            &format!("SELECT count(*) FROM isovec_search('{st}', 'ext', 'zero', 10, NULL, 'lexical')"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(missing, 0);

    // A row with a vector may have no text: found by vector, not by words. Replacing keeps one row.
    let new: i64 = db
        .query_row(
            &format!("SELECT isovec_upsert('{st}', 'ext', 'textless', NULL, '{{\"k\": 1}}', ?1)"),
            [blob(&query)],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(new, 1);
    let top = search(&db, &format!("SELECT id, score FROM isovec_search('{st}', 'ext', ?1, 1)"), &blob(&query));
    assert_eq!(ids(&top), ["textless"]);
    assert!((top[0].1 - 1.0).abs() < 1e-5);

    // After the store is closed, another statement opens it again and searches with nothing loaded.
    db.query_row(&format!("SELECT isovec_close('{st}')"), [], |r| r.get::<_, i64>(0)).unwrap();
    let again = search(&db, &format!("SELECT id, score FROM isovec_search('{st}', 'ext', ?1, 7)"), &blob(&query));
    assert_eq!(ids(&again)[1..], ids(&dense)[..]);
}

#[test]
fn the_bulk_upsert_takes_vectors_in_batches_and_refuses_mixed_or_wrong_rows() {
    let db = load_extension();
    let dir = tempfile::tempdir().unwrap();
    let st = quoted(&dir.path().join("st"));
    let docs = vectors(TEXTS.len(), DIMS, 23);
    load_docs(&db, &docs);
    // Vectors into a collection that does not exist: it cannot be made from a vector alone.
    let e = error_of(&db, &format!("SELECT isovec_upsert_all('{st}', 'bulk', id, body, NULL, 2, emb) FROM docs"));
    assert!(e.contains("external:MODEL#DIMS"), "{e}");
    db.query_row(&format!("SELECT isovec_collection('{st}', 'bulk', 'external:m#4')"), [], |r| r.get::<_, String>(0))
        .unwrap();
    // Texts alone cannot go into it.
    let e = error_of(&db, &format!("SELECT isovec_upsert_all('{st}', 'bulk', id, body) FROM docs"));
    assert!(e.contains("outside isovec") && e.contains("batch, vector"), "{e}");

    let report: String = db
        .query_row(&format!("SELECT isovec_upsert_all('{st}', 'bulk', id, body, NULL, 4, emb) FROM docs"), [], |r| {
            r.get(0)
        })
        .unwrap();
    let report: Json = serde_json::from_str(&report).unwrap();
    assert_eq!(
        (report["rows"].as_u64(), report["inserted"].as_u64(), report["batches"].as_u64()),
        (Some(6), Some(6), Some(2))
    );
    // Every row's vector landed with its id: each row's own vector finds it first.
    for (i, v) in docs.iter().enumerate() {
        let top = search(&db, &format!("SELECT id, score FROM isovec_search('{st}', 'bulk', ?1, 1)"), &blob(v));
        assert_eq!(ids(&top), [(i + 1).to_string().as_str()]);
    }

    // Rows with and without vectors in one statement, a row of another dimension: refused, and
    // the batches before them kept (one row each here), as for text rows.
    db.execute("UPDATE docs SET emb = NULL WHERE id = 3", []).unwrap();
    let e = error_of(
        &db,
        &format!("SELECT isovec_upsert_all('{st}', 'bulk', id, body || ' zulu', NULL, 1, emb) FROM docs ORDER BY id"),
    );
    assert!(e.contains("this row has no vector and the first row had one"), "{e}");
    assert!(e.contains("stopped at row 3") && e.contains("rows 1–2 were written"), "{e}");
    db.execute("UPDATE docs SET emb = x'0000803f' WHERE id = 3", []).unwrap();
    let e = error_of(
        &db,
        &format!("SELECT isovec_upsert_all('{st}', 'bulk', id, body, NULL, NULL, emb) FROM docs ORDER BY id"),
    );
    assert!(e.contains("wrong dimension") && e.contains("1 dimensions") && e.contains("no rows were written"), "{e}");
    let zulu: i64 = db
        .query_row(
            &format!("SELECT count(*) FROM isovec_search('{st}', 'bulk', 'zulu', 10, NULL, 'lexical')"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(zulu, 2, "rows 1 and 2 of the stopped statement were written, not row 3");
}
