//! `ISOVEC_SQLITE_ROOT`: with a root set at load time, SQL opens and creates stores only inside it,
//! whatever `..` or symlinks the path holds; and `isovec_embed` is not registered deterministic.
//!
//! This file is its own process: the root is process-wide, so it is set here before the first load.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use isovec_sqlite_host_test::{default_model, error_of, load_with_env};
use rusqlite::Connection;

const ROOT_VAR: &str = "ISOVEC_SQLITE_ROOT";

/// The test's directory: `root/` (the store root) and `outside/` beside it.
fn base() -> &'static Path {
    static BASE: OnceLock<tempfile::TempDir> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/sub")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), dir.path().join("root/link")).unwrap();
        dir
    })
    .path()
}

fn root() -> PathBuf {
    base().join("root")
}

/// Loads the extension into a new connection with `ISOVEC_SQLITE_ROOT` set to `root_value`.
fn load_with(root_value: &Path) -> rusqlite::Result<Connection> {
    load_with_env(ROOT_VAR, root_value, root())
}

fn connect() -> Connection {
    load_with(&root()).unwrap_or_else(|e| panic!("loading with the root {}: {e}", root().display()))
}

fn quoted(path: &Path) -> String {
    path.to_str().unwrap().replace('\'', "''")
}

#[test]
fn stores_outside_the_root_are_refused() {
    let db = connect();
    let escapes = [
        base().join("outside/st"),
        root().join("../outside/st"),
        root().join("sub/../../outside/st"),
        root().join("new/../../outside/st"),
        root().join("link/st"),
        PathBuf::from("relative-store"),
    ];
    for store in &escapes {
        let st = quoted(store);
        for sql in [
            format!("SELECT isovec_upsert('{st}', 'docs', 'a', 'some text')"),
            format!("SELECT isovec_collection('{st}', 'docs')"),
            format!("SELECT isovec_delete('{st}', 'docs', 'a')"),
            format!("SELECT count(*) FROM isovec_search('{st}', 'docs', 'q')"),
            format!("SELECT isovec_embed('x', 'store:{st}#docs')"),
        ] {
            let msg = error_of(&db, &sql);
            assert!(msg.contains(ROOT_VAR) && msg.contains("must be inside"), "{sql}\n  gave: {msg}");
        }
    }
    // Nothing was created on the way.
    assert_eq!(std::fs::read_dir(base().join("outside")).unwrap().count(), 0);
    assert!(!Path::new("relative-store").exists());
}

#[test]
fn stores_inside_the_root_open() {
    let db = connect();
    // Past the root check: the error is about the missing store, not about where it is.
    let missing = quoted(&root().join("sub/../absent"));
    let msg = error_of(&db, &format!("SELECT isovec_delete('{missing}', 'docs', 'a')"));
    assert!(msg.contains("no store in") && !msg.contains(ROOT_VAR), "{msg}");
    if default_model().is_none() {
        eprintln!("skipping the write inside the root: the default model is not installed (run `isovec model fetch`)");
        return;
    }
    let st = quoted(&root().join("sub/../st"));
    let new: i64 =
        db.query_row(&format!("SELECT isovec_upsert('{st}', 'docs', 'a', 'whales sing')"), [], |r| r.get(0)).unwrap();
    assert_eq!(new, 1);
    assert!(root().join("st").join("isovec-store.json").is_file());
    let id: String = db
        .query_row(&format!("SELECT id FROM isovec_search('{st}', 'docs', 'songs of whales', 1)"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(id, "a");
}

#[test]
fn an_unusable_or_changed_root_fails_the_load() {
    // Kept open: SQLite unloads the extension, and its root, when its last connection closes.
    let _first = connect();
    let missing = base().join("no-such-dir");
    let e = load_with(&missing).err().expect("a missing root must fail the load").to_string();
    assert!(e.contains("not an existing directory"), "{e}");
    let e = load_with(&base().join("outside")).err().expect("another root must fail the load").to_string();
    assert!(e.contains("cannot change"), "{e}");
}

#[test]
fn only_functions_of_their_arguments_are_deterministic() {
    let db = connect();
    // SQLITE_DETERMINISTIC, as pragma function_list reports it.
    const DETERMINISTIC: i64 = 0x800;
    let mut stmt = db.prepare("SELECT name, narg, flags FROM pragma_function_list WHERE name LIKE 'isovec%'").unwrap();
    let rows: Vec<(String, i64, i64)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    let deterministic = |name: &str| -> Vec<bool> {
        let flags: Vec<bool> = rows.iter().filter(|r| r.0 == name).map(|r| r.2 & DETERMINISTIC != 0).collect();
        assert!(!flags.is_empty(), "{name} is not registered: {rows:?}");
        flags
    };
    assert!(deterministic("isovec_embed").iter().all(|d| !d), "{rows:?}");
    for name in ["isovec_upsert", "isovec_delete", "isovec_collection", "isovec_close"] {
        assert!(deterministic(name).iter().all(|d| !d), "{name}: {rows:?}");
    }
    for name in ["isovec_cosine", "isovec_dims"] {
        assert!(deterministic(name).iter().all(|d| *d), "{name}: {rows:?}");
    }
    // What the flag changes: SQLite refuses non-deterministic functions in index expressions.
    db.execute_batch("CREATE TABLE t(body TEXT, v BLOB)").unwrap();
    let e = db.execute_batch("CREATE INDEX by_embedding ON t(isovec_embed(body))").unwrap_err().to_string();
    assert!(e.contains("non-deterministic"), "{e}");
    db.execute_batch("CREATE INDEX by_dims ON t(isovec_dims(v))").unwrap();
}

#[test]
fn model_folders_and_transform_files_outside_the_root_are_refused() {
    let db = connect();
    // A transform "file" that never ends, a FIFO that would hang a read, a folder, all named
    // directly or through a symlink inside the root; and a model folder outside it.
    // (In a folder of its own: another test checks that nothing appears in `outside/`.)
    let elsewhere = base().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root().join("elsewhere-link")).unwrap();
    let fifo = elsewhere.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path, alive for the call.
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
    for (path, what) in [
        (PathBuf::from("/dev/zero"), "transform file"),
        (fifo.clone(), "transform file"),
        (root().join("elsewhere-link/fifo"), "transform file"),
        (base().join("outside"), "model folder"),
        (root().join("link"), "model folder"),
    ] {
        let prefix = if what == "model folder" { "model:" } else { "transform:" };
        let sql = format!("SELECT isovec_embed('x', '{prefix}{}')", quoted(&path));
        let msg = error_of(&db, &sql);
        assert!(msg.contains(what) && msg.contains(ROOT_VAR) && msg.contains("must be inside"), "{sql}\n  gave: {msg}");
    }
    // Inside the root, what is not a regular file is refused before anything is read.
    let inner_fifo = root().join("sub/fifo");
    let c = std::ffi::CString::new(inner_fifo.to_str().unwrap()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
    for path in [inner_fifo, root().join("sub")] {
        let msg = error_of(&db, &format!("SELECT isovec_embed('x', 'transform:{}')", quoted(&path)));
        assert!(msg.contains("not a regular file") || msg.contains("is a folder"), "{}: {msg}", path.display());
    }
    // The connection still answers.
    let one: i64 = db.query_row("SELECT isovec_dims(x'0000803f')", [], |r| r.get(0)).unwrap();
    assert_eq!(one, 1);
}

extern "C" {
    #[link_name = "mkfifo"]
    fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
}
