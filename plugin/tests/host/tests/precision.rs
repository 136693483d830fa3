//! `ISOVEC_DTYPE`: the extension encodes in the precision set when it is loaded — int8 here, as
//! `isovec embed --dtype int8` does — and a later load that asks for another precision, or an
//! unknown name, fails with what to set.
//!
//! This file is its own process: the precision is process-wide, so every test loads int8 first.

use std::process::Command;

use isovec_sqlite_host_test::{cosine, default_model, error_of, floats, isovec_cli, load_with_env};
use rusqlite::Connection;

const DTYPE_VAR: &str = "ISOVEC_DTYPE";

const TEXTS: &[&str] = &[
    "Vaccines train the immune system to recognise a virus before an infection.",
    "The rover drilled into a red rock and found traces of ancient water.",
    "Knead the bread dough and let it rise for an hour.",
];

/// Loads the extension into a new connection with `ISOVEC_DTYPE` set to `dtype`.
fn load_with(dtype: &str) -> rusqlite::Result<Connection> {
    load_with_env(DTYPE_VAR, dtype, "int8")
}

/// A connection that encodes in int8 (the process's precision).
fn connect_int8() -> Connection {
    load_with("INT8").unwrap_or_else(|e| panic!("loading with {DTYPE_VAR}=INT8: {e}"))
}

/// `isovec embed` of [`TEXTS`] with `options`.
fn cli_vectors(options: &[&str]) -> Vec<Vec<f32>> {
    let out = Command::new(isovec_cli().unwrap_or_else(|e| panic!("{e}")))
        .arg("embed")
        .args(options)
        .args(TEXTS)
        .env_remove(DTYPE_VAR)
        .output()
        .unwrap();
    assert!(out.status.success(), "isovec embed failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            v["vector"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
        })
        .collect()
}

fn sql_vectors(db: &Connection) -> rusqlite::Result<Vec<Vec<f32>>> {
    TEXTS
        .iter()
        .map(|t| db.query_row("SELECT isovec_embed(?1)", [t], |r| r.get::<_, Vec<u8>>(0)).map(|b| floats(&b)))
        .collect()
}

#[test]
fn int8_embeds_as_the_command_line_does_and_near_f32() {
    let db = connect_int8();
    if default_model().is_none() {
        return;
    }
    if !std::arch::is_x86_feature_detected!("avx2") {
        let msg = error_of(&db, "SELECT isovec_embed('x')");
        assert!(msg.contains("AVX2"), "int8 on a CPU without AVX2 gave: {msg}");
        return;
    }
    let sql = sql_vectors(&db).unwrap();
    let (int8, f32) = (cli_vectors(&["--dtype", "int8"]), cli_vectors(&[]));
    for ((s, i), f) in sql.iter().zip(&int8).zip(&f32) {
        assert_eq!(s.len(), 384);
        let worst = s.iter().zip(i).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= 1e-6, "SQL int8 and `isovec embed --dtype int8` differ by {worst}");
        // int8 is near f32 but not f32 itself.
        let c = cosine(s, f);
        assert!(c > 0.98 && c < 0.99999, "cosine of int8 and f32 vectors: {c}");
    }
}

#[test]
fn another_precision_or_an_unknown_name_fails_the_load() {
    let _first = connect_int8();
    let msg = load_with("f32").map(|_| ()).expect_err("a second precision in one process").to_string();
    assert!(msg.contains("already encodes in int8") && msg.contains(DTYPE_VAR), "{msg}");
    let msg = load_with("int4").map(|_| ()).expect_err("an unknown precision").to_string();
    assert!(msg.contains("not one of f32, f16, bf16, int8") && msg.contains(DTYPE_VAR), "{msg}");
    // The process's own precision still loads, in any case.
    assert!(load_with("Int8").is_ok());
}
