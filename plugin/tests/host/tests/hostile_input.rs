//! Inputs that once could kill the host process, given through SQL: a huge `k`, a deeply nested
//! filter, a text over the size limit. Each gets an error (or a bounded answer) and the
//! connection, and the store, go on answering. Needs the default model (skips with a message
//! without it, fails under `ISOVEC_REQUIRE_DATA=1`).

use isovec_sqlite_host_test::{default_model, error_of, load_extension};

#[test]
fn bad_queries_get_errors_and_the_store_answers() {
    if default_model().is_none() {
        return;
    }
    let db = load_extension();
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("st").to_str().unwrap().replace('\'', "''");
    for (i, text) in
        ["whales sing under the sea", "bread dough rises in the oven", "rovers drill red rocks"].iter().enumerate()
    {
        db.query_row(&format!("SELECT isovec_upsert('{st}', 'docs', 'd{i}', '{text}', '{{\"n\": {i}}}')"), [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap();
    }
    let answers = || {
        let id: String = db
            .query_row(&format!("SELECT id FROM isovec_search('{st}', 'docs', 'songs of whales', 1)"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(id, "d0");
    };
    // k: SQL's own cap, with a message; within it, no more rows than documents, in every mode.
    let msg = error_of(&db, &format!("SELECT count(*) FROM isovec_search('{st}', 'docs', 'whales', 1000000000)"));
    assert!(msg.contains("10000"), "{msg}");
    for mode in ["dense", "lexical", "hybrid"] {
        let n: i64 = db
            .query_row(
                &format!(
                    "SELECT count(*) FROM isovec_search('{st}', 'docs', 'whales sea bread', 10000, NULL, '{mode}')"
                ),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!((1..=3).contains(&n), "{mode}: {n} rows");
    }
    answers();
    // A filter nested 20,000 deep, in both forms.
    let deep = format!("{}n>=0{}", "(".repeat(20_000), ")".repeat(20_000));
    let json = format!("{}{{\"n\": 0}}{}", "{\"$not\": ".repeat(20_000), "}".repeat(20_000));
    for filter in [deep, json] {
        let msg =
            error_of(&db, &format!("SELECT count(*) FROM isovec_search('{st}', 'docs', 'whales', 3, '{filter}')"));
        assert!(msg.contains("filter"), "{msg}");
    }
    answers();
    // A text over the limit: refused by name; a query over its limit too.
    db.execute_batch("CREATE TABLE big(t TEXT)").unwrap();
    db.execute("INSERT INTO big VALUES (?1)", ["whales ".repeat((16 << 20) / 7 + 1)]).unwrap();
    let msg = error_of(&db, &format!("SELECT isovec_upsert('{st}', 'docs', 'huge', t) FROM big"));
    assert!(msg.contains("\"huge\"") && msg.contains("split it"), "{msg}");
    let msg = error_of(
        &db,
        &format!("SELECT count(*) FROM isovec_search('{st}', 'docs', (SELECT substr(t, 1, 2000000) FROM big), 3)"),
    );
    assert!(msg.contains("shorter text"), "{msg}");
    answers();
    let n: i64 = db
        .query_row(
            &format!("SELECT count(*) FROM isovec_search('{st}', 'docs', 'whales', 10, NULL, 'lexical')"),
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1, "the refused text was not stored");
}
