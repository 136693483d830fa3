//! `isovec serve` driven over raw HTTP/1.1 (no client library between the test and the wire):
//! bad requests each get a JSON 4xx/408 and the server keeps serving; the token is required
//! where it is set; a process that finds the store locked is told where the server is; and
//! SIGKILL during writes loses no acknowledged write (the crash test's rule).
//!
//! Collections of vectors made outside isovec (no model to load), so the suite is quick.

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const DIMS: usize = 8;

/// A running `isovec serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(store: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_isovec"))
            .args(["serve", "--store"])
            .arg(store)
            .args(["--addr", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().strip_prefix("isovec serve: listening on http://").unwrap_or_else(|| {
            let _ = child.kill();
            panic!("the server did not say where it listens: {line:?}")
        });
        Server { addr: url.parse().unwrap(), child }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A request with a JSON body (or none); the status and the JSON answer.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        self.raw(method, path, &[], &body)
    }

    fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        read_response(s)
    }

    /// Only the head of a request that declares a body of `len` bytes.
    fn head_only(&self, method: &str, path: &str, len: usize) -> (u16, Value) {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let head =
            format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        read_response(s)
    }

    fn healthy(&self) {
        let (status, body) = self.call("GET", "/healthz", None);
        assert_eq!((status, body), (200, json!({"status": "ok"})), "the server stopped serving");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_response(mut s: TcpStream) -> (u16, Value) {
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let json = if body.is_empty() { Value::Null } else { serde_json::from_str(body).unwrap_or_else(|_| json!(body)) };
    (status, json)
}

/// Asserts an error answer: its status, JSON with a kind, and a message containing `says`.
fn refused(answer: (u16, Value), status: u16, says: &str) {
    let (got, body) = answer;
    assert_eq!(got, status, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_else(|| panic!("not a JSON error: {body}"));
    assert!(message.contains(says), "{message:?} does not say {says:?}");
    assert!(body["error"]["kind"].is_string() && body["error"]["class"].is_string(), "{body}");
}

fn vectors(seeds: std::ops::Range<u64>) -> Vec<Vec<f32>> {
    seeds.map(|s| common::random_unit(s, DIMS)).collect()
}

fn make_collection(server: &Server) {
    let (status, info) =
        server.call("POST", "/collections", Some(&json!({"name": "mine", "dims": DIMS, "model": "m"})));
    assert_eq!(status, 201, "{info}");
    let docs = json!({
        "ids": ["a", "b", "c"],
        "documents": ["whales swim in the sea", "bread rises in the oven", "rocks are hard"],
        "embeddings": vectors(0..3),
        "metadatas": [{"n": 1}, {"n": 2}, null],
    });
    let (status, counts) = server.call("POST", "/collections/mine/add", Some(&docs));
    assert_eq!((status, counts), (200, json!({"inserted": 3, "replaced": 0})));
}

#[test]
fn bad_requests_get_json_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-body-mib", "1", "--body-timeout-s", "2", "--max-batch", "100"]);
    make_collection(&server);
    let q = |body: Value| server.call("POST", "/collections/mine/query", Some(&body));

    // The API answers as it should (the baseline for "still serving").
    let (status, r) = q(json!({"query_embeddings": [vectors(1..2)[0]], "n_results": 1}));
    assert_eq!((status, &r["ids"]), (200, &json!([["b"]])), "{r}");

    let cases: Vec<(&str, (u16, Value), u16, &str)> = vec![
        (
            "malformed JSON",
            server.raw("POST", "/collections/mine/query", &[], b"{\"query_texts\": [\"x\""),
            400,
            "not this request's JSON",
        ),
        ("unknown field", q(json!({"query_txts": ["x"]})), 400, "unknown field"),
        ("wrong dimension", q(json!({"query_embeddings": [[1.0, 0.0]]})), 400, "dimension"),
        (
            "wrong dimension on write",
            server.call("POST", "/collections/mine/upsert", Some(&json!({"ids": ["z"], "embeddings": [[1.0]]}))),
            400,
            "dimension",
        ),
        (
            "unknown collection",
            server.call("POST", "/collections/nope/query", Some(&json!({"query_texts": ["x"]}))),
            404,
            "no collection \"nope\"",
        ),
        ("unknown route", server.call("GET", "/nothing", None), 404, "no route"),
        ("wrong method", server.call("PUT", "/collections", None), 405, "not a method"),
        (
            "duplicate add",
            server.call("POST", "/collections/mine/add", Some(&json!({"ids": ["a"], "embeddings": vectors(9..10)}))),
            409,
            "already in collection",
        ),
        ("ef out of range", q(json!({"query_embeddings": vectors(0..1), "ef": 1_000_000_000_000u64})), 400, "ef"),
        ("empty query text", q(json!({"query_texts": ["  "], "mode": "lexical"})), 400, "empty"),
        (
            "deep filter expression",
            q(
                json!({"query_embeddings": vectors(0..1), "where": format!("{}n>=0{}", "(".repeat(20_000), ")".repeat(20_000))}),
            ),
            400,
            "nested more than",
        ),
        (
            "deep JSON filter",
            server.raw(
                "POST",
                "/collections/mine/query",
                &[],
                format!(
                    "{{\"query_texts\": [\"x\"], \"where\": {}0{}}}",
                    "{\"$not\": ".repeat(20_000),
                    "}".repeat(20_000)
                )
                .as_bytes(),
            ),
            400,
            "recursion limit",
        ),
        ("batch over the limit", q(json!({"query_embeddings": vectors(0..101)})), 400, "more than the server's limit"),
        // Refused from its declared length, before a byte of it is read.
        ("body over the limit", server.head_only("POST", "/collections/mine/upsert", 3 << 20), 413, "larger than"),
    ];
    for (what, answer, status, says) in cases {
        eprintln!("case: {what}");
        refused(answer, status, says);
        server.healthy();
    }

    // k = 10⁹: a bounded answer (every document), in every mode.
    for mode in ["dense", "hybrid", "lexical", "exact"] {
        let body = json!({"query_texts": ["whales bread rocks"], "query_embeddings": vectors(0..1), "n_results": 1_000_000_000u64, "mode": mode});
        let body = if mode == "lexical" {
            json!({"query_texts": ["whales bread rocks"], "n_results": 1_000_000_000u64, "mode": mode})
        } else {
            body
        };
        let (status, r) = q(body);
        assert_eq!(status, 200, "{mode}: {r}");
        let n = r["ids"][0].as_array().unwrap().len();
        assert!((1..=3).contains(&n), "{mode}: {r}");
    }

    // A client that never finishes its body: 408 after the body timeout, others served meanwhile.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.write_all(
        b"POST /collections/mine/query HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 100\r\n\r\n{\"query",
    )
    .unwrap();
    server.healthy();
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    refused(read_response(slow), 408, "did not arrive");
    assert!(started.elapsed() < Duration::from_secs(10), "the slow body was not cut off in time");
    server.healthy();

    // The data is intact after all of it.
    let (status, got) = server.call("POST", "/collections/mine/get", Some(&json!({"include": ["metadatas"]})));
    assert_eq!(status, 200);
    assert_eq!(got["ids"], json!(["a", "b", "c"]));
    assert_eq!(got["metadatas"], json!([{"n": 1}, {"n": 2}, null]));
}

#[test]
fn the_token_is_required_and_other_addresses_need_one() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "0123456789abcdef0123\n").unwrap();
    let store = dir.path().join("store");
    let server = Server::start(&store, &["--token-file", token_file.to_str().unwrap()]);
    server.healthy(); // /healthz needs no token
    refused(server.call("GET", "/collections", None), 401, "needs a token");
    refused(server.raw("GET", "/collections", &[("Authorization", "Bearer 0123456789abcdef0124")], b""), 401, "wrong");
    let (status, body) = server.raw("GET", "/collections", &[("Authorization", "Bearer 0123456789abcdef0123")], b"");
    assert_eq!((status, body), (200, json!({"collections": []})));
    drop(server);

    // Any address but loopback without a token: refused before listening.
    let out = Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["serve", "--store"])
        .arg(&store)
        .args(["--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a loopback address") && err.contains("--token-file"), "{err}");
}

#[test]
fn a_locked_store_says_where_its_server_is() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let e = isovec::store::Store::open(dir.path()).err().expect("the store opened beside its server");
    let message = e.to_string();
    assert!(message.contains(&server.url()) && message.contains("isovec.connect"), "{message}");
    let out = Command::new(env!("CARGO_BIN_EXE_isovec")).args(["stats", "--store"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&server.url()));
}

/// Everything the model says is acknowledged is there, whole, and found by each search mode.
fn check_acknowledged(server: &Server, acked: &[(String, u64)]) {
    let ids: Vec<&str> = acked.iter().map(|(id, _)| id.as_str()).collect();
    for chunk in acked.chunks(100) {
        let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
        let (status, got) = server.call(
            "POST",
            "/collections/mine/get",
            Some(&json!({"ids": ids, "include": ["documents", "embeddings"]})),
        );
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["ids"].as_array().unwrap().len(), ids.len(), "acknowledged documents lost: {got}");
        for (i, (id, seed)) in chunk.iter().enumerate() {
            assert_eq!(got["documents"][i], json!(format!("word{seed} document {id}")));
            let v: Vec<f32> = serde_json::from_value(got["embeddings"][i].clone()).unwrap();
            assert_eq!(v, common::random_unit(*seed, DIMS), "{id} damaged");
        }
    }
    // Each search mode finds a sample of them.
    for (id, seed) in acked.iter().step_by((acked.len() / 20).max(1)) {
        for mode in ["dense", "hybrid", "lexical", "exact"] {
            let mut body = json!({"query_texts": [format!("word{seed}")], "n_results": 1, "mode": mode, "ef": 400});
            if mode != "lexical" {
                body["query_embeddings"] = json!([common::random_unit(*seed, DIMS)]);
            }
            if mode == "exact" {
                body.as_object_mut().unwrap().remove("ef");
            }
            let (status, r) = server.call("POST", "/collections/mine/query", Some(&body));
            assert_eq!(status, 200, "{r}");
            assert_eq!(r["ids"][0][0], json!(id), "{mode} search for {id}: {r}");
        }
    }
    // The batches in flight at the kills may be there too (whole or not at all).
    let (_, count) = server.call("GET", "/collections/mine/count", None);
    let count = count["count"].as_u64().unwrap() as usize;
    assert!(count >= ids.len() && count.is_multiple_of(20), "{count} documents for {} acknowledged", ids.len());
}

#[test]
fn sigkill_during_writes_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: Vec<(String, u64)> = Vec::new();
    let mut next = 0u64;
    for round in 0..3 {
        let server = Server::start(dir.path(), &[]);
        if round == 0 {
            let (status, _) = server.call("POST", "/collections", Some(&json!({"name": "mine", "dims": DIMS})));
            assert_eq!(status, 201);
        } else {
            check_acknowledged(&server, &acked);
        }
        // A writer: batches of 20 upserts, each acknowledged or not; SIGKILL at a moment that
        // depends on the round.
        let addr = server.addr;
        let start = next;
        let writer = std::thread::spawn(move || {
            let mut done = Vec::new();
            let mut seed = start;
            loop {
                let batch: Vec<u64> = (seed..seed + 20).collect();
                let ids: Vec<String> = batch.iter().map(|s| format!("d{s}")).collect();
                let body = json!({
                    "ids": ids,
                    "documents": batch.iter().zip(&ids).map(|(s, id)| format!("word{s} document {id}")).collect::<Vec<_>>(),
                    "embeddings": batch.iter().map(|s| common::random_unit(*s, DIMS)).collect::<Vec<_>>(),
                });
                let Ok(mut s) = TcpStream::connect(addr) else { return (done, seed) };
                let body = body.to_string();
                let head = format!(
                    "POST /collections/mine/upsert HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                if s.write_all(head.as_bytes()).and_then(|_| s.write_all(body.as_bytes())).is_err() {
                    return (done, seed);
                }
                let mut raw = Vec::new();
                let _ = s.read_to_end(&mut raw);
                let text = String::from_utf8_lossy(&raw);
                if text.is_empty() {
                    return (done, seed); // the server died: a connection error, no answer
                }
                // Any answer it gives is a right one: 200 with the counts.
                assert!(text.starts_with("HTTP/1.1 200"), "a wrong answer during writes: {text}");
                assert!(text.contains("\"inserted\":20"), "{text}");
                done.extend(batch.iter().map(|s| (format!("d{s}"), *s)));
                seed += 20;
            }
        });
        std::thread::sleep(Duration::from_millis(300 + 250 * round));
        let mut server = server;
        server.child.kill().unwrap(); // SIGKILL
        server.child.wait().unwrap();
        let (done, seed) = writer.join().unwrap();
        assert!(!done.is_empty(), "round {round}: no write was acknowledged before the kill");
        acked.extend(done);
        next = seed + 20; // the batch in flight may or may not be there
    }
    let server = Server::start(dir.path(), &[]);
    check_acknowledged(&server, &acked);
    eprintln!("{} acknowledged documents survived 3 SIGKILLs of the server", acked.len());
}

/// Runs the isovec command line; its stdout, or a panic with its stderr.
fn cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_isovec")).args(args).output().unwrap();
    assert!(out.status.success(), "isovec {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ids_of(json_lines: &str) -> Vec<String> {
    json_lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn the_command_line_indexes_searches_gets_and_deletes_through_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("store"), &[]);
    let url = server.url();
    make_collection(&server);
    // A collection of vectors made outside isovec: get, lexical search and delete load no model.
    let all = cli(&["get", "--server", &url, "--collection", "mine"]);
    assert_eq!(ids_of(&all), ["a", "b", "c"]);
    let filtered = cli(&["get", "--server", &url, "--collection", "mine", "--filter", "n>=2"]);
    assert_eq!(ids_of(&filtered), ["b"]);
    let found = cli(&["search", "--server", &url, "--collection", "mine", "--mode", "lexical", "--json", "oven"]);
    assert_eq!(ids_of(&found), ["b"]);
    cli(&["delete", "--server", &url, "--collection", "mine", "b"]);
    assert_eq!(ids_of(&cli(&["get", "--server", &url, "--collection", "mine", "a", "b", "c"])), ["a", "c"]);
    // Paths never travel: a model folder with --server is refused before anything is sent.
    let out = Command::new(env!("CARGO_BIN_EXE_isovec"))
        .args(["search", "--server", &url, "--model", "/etc", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("names a file"));

    // Texts encoded by the server's default pipeline (needs the installed default model).
    if isovec::test_support::default_model().is_none() {
        return;
    }
    let file = dir.path().join("docs.jsonl");
    let docs = [
        json!({"id": "v", "text": "Vaccines train the immune system to fight infections.", "metadata": {"t": "health"}}),
        json!({"id": "h", "text": "The goalie stopped the puck on the ice rink.", "metadata": {"t": "sports"}}),
        json!({"id": "o", "text": "Ocean currents carry warm water to the north.", "metadata": {"t": "nature"}}),
    ];
    std::fs::write(&file, docs.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")).unwrap();
    cli(&["index", "--server", &url, "--collection", "texts", file.to_str().unwrap()]);
    for (query, top) in [("how do vaccines work", "v"), ("ice hockey", "h"), ("sea water", "o")] {
        let hits = cli(&["search", "--server", &url, "--collection", "texts", "-k", "1", "--json", query]);
        assert_eq!(ids_of(&hits), [top], "{query}");
    }
    let hybrid = cli(&["search", "--server", &url, "--collection", "texts", "--mode", "hybrid", "--json", "puck"]);
    assert_eq!(ids_of(&hybrid)[0], "h");
}
