#!/usr/bin/env python3
"""Text queries from 1, 4, 16 and 64 concurrent clients on the 100k ANN set, four ways in one run:
`isovec serve` (HTTP), the embedded async API (Rust `AsyncStore`), the embedded Python package, and
Chroma's server (`chroma run`).

    python scripts/bench-serve.py --data ../shared/data --store /tmp/ann-store \
        --peers-python /tmp/e2e-venv/bin/python --chroma-path /tmp/chroma-ann [--rounds 3]

The store is the one `scripts/bench-python-query.py` builds (collection "ann": the 100,000
sentences of ann/sentences.txt.gz, default model, 128 tokens). Each client sends its share of the
1,000 query texts (ann/queries.txt) one at a time, top 10, and waits for each answer:
- serve: a thread per client, `isovec.connect(url)` (HTTP on loopback); the server encodes
  concurrent queries together;
- async: `isovec bench queries` (a tokio task per client through `AsyncStore`, which batches the
  same way): the server's work without HTTP and JSON;
- python: a thread per client on `isovec.Store(...).get_collection("ann")` (the native calls
  release the GIL);
- chroma: `scripts/bench_serve_chroma.py` with the peers' Python (chromadb, onnxruntime): each
  client encodes its query with ONNX Runtime and sends the vector to `chroma run` (the 100k
  sentences loaded once into `--chroma-path`, with ONNX Runtime's vectors).
Per side and client count: queries/s over the run and p50/p99 latency of a query, medians over
rounds; in each round the sides run one after the other on the same queries, nothing else on the
machine. Recall@10 against ann/gt_top100.tsv checks that every side answers right.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import concurrent_clients
import isovec
from ann_set import load, recall

HERE = pathlib.Path(__file__).resolve().parent
SIDES = ("serve", "async", "python", "chroma")


def run_clients(collection_for, queries, clients, k):
    """`clients` threads asking `collection_for()`'s collection the text `queries`."""
    ask = lambda coll, i: coll.query(query_texts=[queries[i]], n_results=k, include=[])["ids"][0]  # noqa: E731
    return concurrent_clients.run_clients(collection_for, ask, len(queries), clients)


def side_serve(args, queries, counts):
    server = subprocess.Popen([args.bin, "serve", "--store", args.store, "--addr", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().split()[-1]
        remote = isovec.connect(url)
        run_clients(lambda: remote.get_collection("ann"), queries[:64], 4, args.k)  # warm-up: model loaded
        return {c: run_clients(lambda: remote.get_collection("ann"), queries, c, args.k) for c in counts}
    finally:
        server.terminate()
        server.wait(timeout=120)


def side_python(args, queries, counts):
    store = isovec.Store(args.store)
    try:
        local = store.get_collection("ann")
        run_clients(lambda: local, queries[:64], 4, args.k)
        return {c: run_clients(lambda: local, queries, c, args.k) for c in counts}
    finally:
        store.close()


def runs_by_clients(path):
    return {r["clients"]: r for r in json.loads(pathlib.Path(path).read_text())["runs"]}


def side_async(args, queries, counts):
    with tempfile.TemporaryDirectory() as tmp:
        qfile, out = pathlib.Path(tmp, "queries.txt"), pathlib.Path(tmp, "runs.json")
        qfile.write_text("\n".join(queries) + "\n", encoding="utf-8")
        subprocess.run([args.bin, "bench", "queries", "--store", args.store, "--collection", "ann",
                        "--queries", str(qfile), "--clients", ",".join(map(str, counts)), "-k", str(args.k),
                        "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        return runs_by_clients(out)


def start_chroma(args):
    chroma = str(pathlib.Path(args.peers_python).parent / "chroma")
    port = 8790
    server = subprocess.Popen([chroma, "run", "--path", args.chroma_path, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin"})
    url = f"http://localhost:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/api/v2/heartbeat", timeout=1)
            return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("chroma run did not answer within 60 s")


def side_chroma(args, queries, counts):
    server, url = start_chroma(args)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = pathlib.Path(tmp, "runs.json")
            subprocess.run([args.peers_python, str(HERE / "bench_serve_chroma.py"), "query", "--url", url,
                            "--data", args.data, "--clients", ",".join(map(str, counts)), "--k", str(args.k),
                            "--json", str(out)], check=True)
            return runs_by_clients(out)
    finally:
        server.terminate()
        server.wait(timeout=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--bin", default="target/release/isovec")
    parser.add_argument("--peers-python", required=True, help="a Python with chromadb and onnxruntime")
    parser.add_argument("--chroma-path", required=True, help="Chroma's data folder (loaded on first use)")
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    if args.rounds < 3:
        sys.exit(f"--rounds {args.rounds} is too few for a median; give at least 3")
    _, queries, truth = load(args.data)
    counts = [int(c) for c in args.clients.split(",")]

    server, url = start_chroma(args)  # the 100k sentences into Chroma, once
    try:
        subprocess.run([args.peers_python, str(HERE / "bench_serve_chroma.py"), "load", "--url", url,
                        "--data", args.data], check=True)
    finally:
        server.terminate()
        server.wait(timeout=120)

    figures = {s: {c: {"qps": [], "p50_ms": [], "p99_ms": [], "recall": []} for c in counts} for s in SIDES}
    runners = {"serve": side_serve, "async": side_async, "python": side_python, "chroma": side_chroma}
    for r in range(args.rounds):
        for side in SIDES:
            for c, run in runners[side](args, queries, counts).items():
                f = figures[side][c]
                for m in ("qps", "p50_ms", "p99_ms"):
                    f[m].append(run[m])
                f["recall"].append(recall(run["ids"], truth))
            print(f"round {r + 1}/{args.rounds}: {side} done", file=sys.stderr, flush=True)

    median = {s: {c: {m: statistics.median(v) for m, v in f.items()} for c, f in per.items()} for s, per in figures.items()}
    print("| clients | serve q/s | async q/s | python q/s | chroma q/s | serve / chroma | serve / async "
          "| serve p50 / p99 ms | chroma p50 / p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in counts:
        s, a, p, ch = (median[side][c] for side in SIDES)
        print(f"| {c} | {s['qps']:.0f} | {a['qps']:.0f} | {p['qps']:.0f} | {ch['qps']:.0f} | {s['qps'] / ch['qps']:.2f}× "
              f"| {s['qps'] / a['qps']:.2f}× | {s['p50_ms']:.1f} / {s['p99_ms']:.1f} | {ch['p50_ms']:.1f} / {ch['p99_ms']:.1f} |")
    print("recall@10 (1 client): " + ", ".join(f"{side} {median[side][counts[0]]['recall']:.4f}" for side in SIDES))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rounds": args.rounds, "median": median}, indent=1))


if __name__ == "__main__":
    main()
