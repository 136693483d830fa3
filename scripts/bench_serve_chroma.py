#!/usr/bin/env python3
"""The Chroma side of scripts/bench-serve.py, run with the peers' Python (chromadb, onnxruntime:
../shared/peers/e2e/requirements-peers.txt) against a running `chroma run` server.

    load:  PY bench_serve_chroma.py load  --url URL --data DATA   # once: the 100k ANN sentences
    query: PY bench_serve_chroma.py query --url URL --data DATA --clients 1,4,16,64 --json OUT

Vectors come from ONNX Runtime on the fused all-MiniLM-L6-v2 graph (../shared/peers/ort_encoder.py,
128 tokens like the isovec store), as Chroma's users give it an embedding function: the documents
are encoded here and sent with their vectors (HNSW space cosine, Chroma's defaults otherwise), and
each client encodes its query text, then sends `query(query_embeddings=[v], n_results=k)`. Clients
are threads sharing one ONNX Runtime session (1 intra-op thread when several clients encode at
once, 2 for a lone client), each with its own `chromadb.HttpClient`. Per client count: queries/s,
p50/p99 latency of a query (encoding included) and every query's hit ids.
"""

import argparse
import gzip
import json
import os
import pathlib
import sys
import time

import concurrent_clients

PEERS = pathlib.Path(os.environ.get("ISOVEC_PEERS", pathlib.Path(__file__).resolve().parents[2] / "shared" / "peers"))
sys.path.insert(0, str(PEERS))
import ort_encoder  # noqa: E402

COLLECTION = "ann"
MAX_LENGTH = 128


def client(url):
    import chromadb
    from chromadb.config import Settings

    host, port = url.removeprefix("http://").rsplit(":", 1)
    return chromadb.HttpClient(host=host, port=int(port), settings=Settings(anonymized_telemetry=False))


def load(args):
    c = client(args.url)
    col = c.get_or_create_collection(COLLECTION, configuration={"hnsw": {"space": "cosine"}})
    with gzip.open(pathlib.Path(args.data) / "ann" / "sentences.txt.gz", "rt", encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for line in f]
    if col.count() == len(sentences):
        print(f"chroma: {COLLECTION} already holds {len(sentences)} documents", file=sys.stderr)
        return
    enc = ort_encoder.OrtEncoder(ort_encoder.FUSED_ONNX, max_length=MAX_LENGTH, threads=2)
    start = time.perf_counter()
    step = min(c.get_max_batch_size(), 5000)
    for i in range(0, len(sentences), step):
        chunk = sentences[i : i + step]
        vectors = enc.encode(chunk, batch_size=32)
        col.upsert(ids=[str(j) for j in range(i, i + len(chunk))], documents=chunk, embeddings=vectors)
        print(f"chroma: {i + len(chunk)}/{len(sentences)} loaded", file=sys.stderr, flush=True)
    print(f"chroma: loaded in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def query(args):
    queries = (pathlib.Path(args.data) / "ann" / "queries.txt").read_text(encoding="utf-8").splitlines()
    encoders = {t: ort_encoder.OrtEncoder(ort_encoder.FUSED_ONNX, max_length=MAX_LENGTH, threads=t) for t in (1, 2)}

    def run(clients, qs):
        enc = encoders[2 if clients == 1 else 1]

        def ask(col, i):
            return col.query(query_embeddings=enc.encode([qs[i]], batch_size=1), n_results=args.k, include=[])["ids"][0]

        return concurrent_clients.run_clients(lambda: client(args.url).get_collection(COLLECTION), ask, len(qs), clients)

    run(4, queries[:64])  # warm-up
    runs = [{"clients": c, **run(c, queries)} for c in [int(c) for c in args.clients.split(",")]]
    pathlib.Path(args.json).write_text(json.dumps({"runs": runs}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["load", "query"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()
    load(args) if args.step == "load" else query(args)


if __name__ == "__main__":
    main()
