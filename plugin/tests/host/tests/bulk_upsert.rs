//! `isovec_upsert_all`, the bulk form of `isovec_upsert`: the store it fills equals the one
//! `isovec index` fills from the same documents; a row is durable once its batch is written (a
//! SIGKILL in the middle of a statement keeps the batches before, one after the statement keeps
//! every row); a bad row in the middle keeps the batches before it and says so. Needs the default
//! model (skips with a message without it, fails under `ISOVEC_REQUIRE_DATA=1`).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use isovec_sqlite_host_test::{default_model, error_of, extension, isovec_cli, load_extension, repo_root};
use rusqlite::{params, Connection};
use serde_json::Value as Json;

/// A connection with the extension loaded, or `None` (after saying why) without the model.
fn connect() -> Option<Connection> {
    default_model()?;
    Some(load_extension())
}

fn quoted(path: &Path) -> String {
    path.to_str().unwrap().replace('\'', "''")
}

/// The bundled corpus as the table `docs(id, body, meta)`, in file order; returns its rows.
fn load_corpus(db: &Connection) -> usize {
    db.execute_batch("CREATE TABLE docs(id TEXT PRIMARY KEY, body TEXT NOT NULL, meta TEXT)").unwrap();
    let text = std::fs::read_to_string(repo_root().join("fixtures/corpus.jsonl")).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Json = serde_json::from_str(line).unwrap();
        let meta = (!doc["metadata"].is_null()).then(|| doc["metadata"].to_string());
        db.execute(
            "INSERT INTO docs VALUES (?1, ?2, ?3)",
            params![doc["id"].as_str().unwrap(), doc["text"].as_str().unwrap(), meta],
        )
        .unwrap();
        n += 1;
    }
    n
}

/// Ten short documents with ids 1–10.
fn load_ten(db: &Connection) {
    db.execute_batch("CREATE TABLE docs(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").unwrap();
    for i in 1..=10 {
        db.execute(
            "INSERT INTO docs VALUES (?1, ?2)",
            params![i, format!("Document {i} is about the number {i} and its uses.")],
        )
        .unwrap();
    }
}

/// A connection with [`load_ten`]'s table and a store path in a new temporary directory (kept
/// while the `TempDir` lives); `None` without the model.
fn ten_docs() -> Option<(Connection, tempfile::TempDir, std::path::PathBuf)> {
    let db = connect()?;
    load_ten(&db);
    let dir = tempfile::tempdir().unwrap();
    let st = dir.path().join("st");
    Some((db, dir, st))
}

/// The ids in the collection, sorted as numbers.
fn ids_in(db: &Connection, store: &str, collection: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = db
        .prepare("SELECT id FROM isovec_search(?1, ?2, 'number', 100)")
        .unwrap()
        .query_map([store, collection], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|id| id.unwrap().parse().unwrap())
        .collect();
    ids.sort();
    ids
}

fn report(db: &Connection, sql: &str, store: &str) -> Json {
    let text: String = db.query_row(sql, [store], |r| r.get(0)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// One search: `(id, score, text, metadata)` best first.
fn search(db: &Connection, store: &str, query: &str, k: usize) -> Vec<(String, f64, String, Option<String>)> {
    db.prepare("SELECT id, score, text, metadata FROM isovec_search(?1, 'docs', ?2, ?3)")
        .unwrap()
        .query_map(params![store, query, k as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn the_store_equals_isovec_index_on_the_same_documents() {
    let Some(db) = connect() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (cli_store, sql_store) = (dir.path().join("cli"), dir.path().join("sql"));
    let n = load_corpus(&db);
    assert_eq!(n, 250);
    let out = Command::new(isovec_cli().unwrap_or_else(|e| panic!("{e}")))
        .args(["index", "--collection", "docs", "--batch", "100", "--store"])
        .arg(&cli_store)
        .arg(repo_root().join("fixtures/corpus.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "isovec index failed: {}", String::from_utf8_lossy(&out.stderr));
    let (cli, sql) = (cli_store.to_str().unwrap(), sql_store.to_str().unwrap());
    let got = report(
        &db,
        "SELECT isovec_upsert_all(?1, 'docs', id, body, meta, 100) FROM (SELECT * FROM docs ORDER BY rowid)",
        sql,
    );
    assert_eq!(
        got,
        serde_json::json!({"rows": 250, "inserted": 250, "replaced": 0, "duplicate_ids": [], "truncated": 0, "batches": 3})
    );

    // The same collection: documents, vectors, pipeline, sequence numbers.
    let stats = |store: &str| -> Json {
        let text: String = db.query_row("SELECT isovec_collection(?1, 'docs')", [store], |r| r.get(0)).unwrap();
        let s: Json = serde_json::from_str(&text).unwrap();
        serde_json::json!([s["documents"], s["points"], s["dims"], s["pipeline"], s["seq"]])
    };
    assert_eq!(stats(sql), stats(cli));
    assert_eq!(stats(sql)[0], 250);
    // The same documents with the same vectors: every document's score for several queries, its
    // text and its metadata (k covers the whole collection).
    for query in ["how do vaccines work", "a telescope looks at distant galaxies", "bread and cooking", "music"] {
        let (mut a, mut b) = (search(&db, cli, query, 250), search(&db, sql, query, 250));
        assert_eq!(a.len(), 250, "{query}: the CLI's store returned {} documents", a.len());
        assert_eq!(b.len(), 250, "{query}: the SQL store returned {} documents", b.len());
        a.sort_by(|x, y| x.0.cmp(&y.0));
        b.sort_by(|x, y| x.0.cmp(&y.0));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!((&x.0, &x.2, &x.3), (&y.0, &y.2, &y.3), "{query}: document, text and metadata");
            assert!(
                (x.1 - y.1).abs() < 1e-5,
                "{query}: document {} scores {} (isovec index) and {} (SQL)",
                x.0,
                x.1,
                y.1
            );
        }
    }
}

#[test]
fn a_bad_row_keeps_the_batches_before_it_and_says_so() {
    let Some((db, _dir, st)) = ten_docs() else { return };
    let (s, q) = (st.to_str().unwrap(), quoted(&st));
    // Batches of 4: rows 1–4 are written when row 4 is read; row 7 stops the statement.
    let sql = |text: &str| {
        format!("SELECT isovec_upsert_all('{q}', 'docs', id, {text}, NULL, 4) FROM (SELECT * FROM docs ORDER BY id)")
    };
    let msg = error_of(&db, &sql("CASE WHEN id = 7 THEN NULL ELSE body END"));
    for part in [
        "isovec_upsert_all: the text is NULL",
        "stopped at row 7",
        "rows 1–4 were written (1 durable batch)",
        "rows 5–7 and any after were not written",
    ] {
        assert!(msg.contains(part), "expected {part:?} in: {msg}");
    }
    assert_eq!(ids_in(&db, s, "docs"), [1, 2, 3, 4]);
    // An empty text is found when its batch (rows 5–8) is encoded: that whole batch is not written.
    let msg = error_of(&db, &sql("CASE WHEN id = 6 THEN '  ' ELSE body END"));
    for part in [
        "document \"6\" has an empty text",
        "stopped at row 8",
        "rows 1–4 were written",
        "rows 5–8 and any after were not written",
    ] {
        assert!(msg.contains(part), "expected {part:?} in: {msg}");
    }
    assert_eq!(ids_in(&db, s, "docs"), [1, 2, 3, 4]);
    // Bad metadata in the first row: nothing is written.
    let msg = error_of(&db, &format!("SELECT isovec_upsert_all('{q}', 'docs', id, body, '[1]') FROM docs"));
    assert!(msg.contains("must be a JSON object") && msg.contains("stopped at row 1: no rows were written"), "{msg}");
    // Fixed, run again: the first four are replaced.
    let got = report(&db, "SELECT isovec_upsert_all(?1, 'docs', id, body, NULL, 4) FROM docs", s);
    assert_eq!(
        (got["rows"].as_u64(), got["inserted"].as_u64(), got["replaced"].as_u64(), got["batches"].as_u64()),
        (Some(10), Some(6), Some(4), Some(3))
    );
    assert_eq!(ids_in(&db, s, "docs"), (1..=10).collect::<Vec<_>>());
}

#[test]
fn arguments_groups_and_no_rows() {
    let Some((db, _dir, st)) = ten_docs() else { return };
    let (s, q) = (st.to_str().unwrap(), quoted(&st));
    // No rows: nothing is opened or created.
    let none = report(&db, "SELECT isovec_upsert_all(?1, 'docs', id, body) FROM docs WHERE id > 100", s);
    assert_eq!(none["rows"], 0);
    assert!(!st.exists(), "a statement without rows created the store");
    // One statement, one collection; GROUP BY makes one aggregate per group.
    let msg = error_of(&db, &format!("SELECT isovec_upsert_all('{q}', 'c' || (id % 2), id, body) FROM docs"));
    assert!(
        msg.contains("the target changed") && msg.contains("GROUP BY") && msg.contains("stopped at row 2"),
        "{msg}"
    );
    let groups: Vec<(String, String)> = db
        .prepare(&format!(
            "SELECT c, isovec_upsert_all('{q}', c, id, body) FROM (SELECT *, CASE WHEN id % 2 THEN 'odd' ELSE 'even' END AS c FROM docs) GROUP BY c ORDER BY c"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(ids_in(&db, s, "even"), [2, 4, 6, 8, 10]);
    assert_eq!(ids_in(&db, s, "odd"), [1, 3, 5, 7, 9]);
    for (batch, want) in [("0", "between 1 and 100000"), ("'four'", "batch must be an integer")] {
        let msg = error_of(&db, &format!("SELECT isovec_upsert_all('{q}', 'docs', id, body, NULL, {batch}) FROM docs"));
        assert!(msg.contains(want), "batch {batch}: {msg}");
    }
}

/// Where the child process runs its statement, and the row id at which it hangs (0: never).
const CHILD_STORE: &str = "ISOVEC_BULK_TEST_STORE";
const CHILD_HANG_AT: &str = "ISOVEC_BULK_TEST_HANG_AT";
/// What the child prints (then sleeps, to be killed) when it hangs or when its statement returns.
const HANGING: &str = "isovec-bulk-child: hanging";
const RETURNED: &str = "isovec-bulk-child: returned";

/// Run by [`durable_once_the_batch_or_the_statement_is_written`] in a child process: upserts ten
/// rows in batches of 4, printing and sleeping at the row with id `$ISOVEC_BULK_TEST_HANG_AT`, or
/// after the statement returns.
#[test]
#[ignore = "a child process of durable_once_the_batch_or_the_statement_is_written"]
fn child_upserts_and_sleeps_until_killed() {
    let store = std::env::var(CHILD_STORE).expect("run by durable_once_the_batch_or_the_statement_is_written");
    let hang_at: i64 = std::env::var(CHILD_HANG_AT).unwrap().parse().unwrap();
    let db = load_extension();
    load_ten(&db);
    db.create_scalar_function("hang_at", 3, rusqlite::functions::FunctionFlags::SQLITE_UTF8, |ctx| {
        if ctx.get::<i64>(0)? == ctx.get::<i64>(1)? {
            println!("{HANGING}");
            loop {
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        }
        ctx.get::<String>(2)
    })
    .unwrap();
    let got: String = db
        .query_row(
            "SELECT isovec_upsert_all(?1, 'docs', id, hang_at(id, ?2, body), NULL, 4) FROM (SELECT * FROM docs ORDER BY id)",
            params![store, hang_at],
            |r| r.get(0),
        )
        .unwrap();
    println!("{RETURNED} {got}");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

/// Runs the child until it prints `HANGING` or `RETURNED`, then kills it (SIGKILL): no
/// destructor, no snapshot, no flush runs after that line.
fn kill_child_at(store: &Path, hang_at: i64) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_upserts_and_sleeps_until_killed", "--ignored", "--nocapture", "--test-threads=1"])
        .env("ISOVEC_SQLITE_EXT", extension().unwrap_or_else(|e| panic!("{e}")))
        .env(CHILD_STORE, store)
        .env(CHILD_HANG_AT, hang_at.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        // libtest writes "test NAME ... " before the test runs, on the same line.
        if let Some(at) = line.find(HANGING).or_else(|| line.find(RETURNED)) {
            seen = Some(line[at..].to_string());
            break;
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    seen.unwrap_or_else(|| panic!("the child ended ({status}) before hanging or returning; see its output above"))
}

#[test]
fn durable_once_the_batch_or_the_statement_is_written() {
    let Some(db) = connect() else { return };
    let dir = tempfile::tempdir().unwrap();
    // Killed while reading row 9: the batches of rows 1–4 and 5–8 were written, rows 9 and 10 not.
    let st = dir.path().join("mid");
    let line = kill_child_at(&st, 9);
    assert_eq!(line, HANGING);
    assert_eq!(ids_in(&db, st.to_str().unwrap(), "docs"), (1..=8).collect::<Vec<_>>());
    // Killed right after the statement returned: every row, the last partial batch included.
    let st = dir.path().join("end");
    let line = kill_child_at(&st, 0);
    assert!(line.starts_with(RETURNED) && line.contains("\"rows\":10"), "{line}");
    assert_eq!(ids_in(&db, st.to_str().unwrap(), "docs"), (1..=10).collect::<Vec<_>>());
}
