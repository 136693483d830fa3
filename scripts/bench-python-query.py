#!/usr/bin/env python3
"""Python query speed on the 100k ANN set: 1,000 query texts in one `query` call against 1,000
single calls, and Python's per-query overhead over the Rust library's own loop.

    python scripts/bench-python-query.py --data ../shared/data --store /tmp/ann-store [--rounds 3]

The store is built once (the 100,000 sentences of ann/sentences.txt.gz, default model, mean
pooling, 128 tokens, as the set's ground truth was made) and reused when it holds them. Each
round runs every side once, one after the other, on the same 1,000 queries (ann/queries.txt);
the figures are medians over rounds. Recall@10 against ann/gt_top100.tsv shows that the one-call
and single-call answers are the right ones, not only fast.
"""

import argparse
import json
import statistics
import time

import numpy as np

import isovec
from ann_set import load, recall


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    sentences, queries, truth = load(args.data)
    pipeline = isovec.Pipeline(max_length=128)
    store = isovec.Store(args.store)
    c = store.get_or_create_collection("ann", pipeline)
    if c.count() != len(sentences):
        start = time.perf_counter()
        for i in range(0, len(sentences), 2000):
            chunk = sentences[i : i + 2000]
            c.upsert(ids=[str(i + j) for j in range(len(chunk))], documents=chunk)
        print(f"built the store: {len(sentences)} sentences in {time.perf_counter() - start:.0f} s")
    vectors = pipeline.embed_queries(queries)
    k = args.k
    sides = {
        "texts, one call": lambda: c.query(query_texts=queries, n_results=k, include=[])["ids"],
        "texts, 1000 calls": lambda: [c.query(query_texts=[q], n_results=k, include=[])["ids"][0] for q in queries],
        "vectors, one call": lambda: c.query(query_embeddings=vectors, n_results=k, include=[])["ids"],
        "vectors, 1000 calls": lambda: [c.query(query_embeddings=v, n_results=k, include=[])["ids"][0] for v in vectors],
    }
    times = {name: [] for name in sides}
    times["vectors, Rust loop"] = []
    recalls = {}
    raw = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    for _ in range(args.rounds):
        for name, side in sides.items():
            start = time.perf_counter()
            results = side()
            times[name].append(time.perf_counter() - start)
            recalls[name] = recall(results, truth)
        times["vectors, Rust loop"].append(c._native.time_searches(raw, len(queries), k))
    median = {name: statistics.median(t) for name, t in times.items()}
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "queries": len(queries),
        "documents": c.count(),
        "k": k,
        "rounds": args.rounds,
        "seconds_median": median,
        "seconds_all": times,
        "recall_at_10": recalls,
        "one_call_speedup_texts": median["texts, 1000 calls"] / median["texts, one call"],
        "one_call_speedup_vectors": median["vectors, 1000 calls"] / median["vectors, one call"],
        "python_overhead_us_per_query": (median["vectors, 1000 calls"] - median["vectors, Rust loop"]) / len(queries) * 1e6,
        "rust_us_per_query": median["vectors, Rust loop"] / len(queries) * 1e6,
    }
    for name, t in median.items():
        print(f"{name:22s} {t * 1000:9.1f} ms  ({t / len(queries) * 1e6:8.1f} us/query)  recall@10 {recalls.get(name, float('nan')):.3f}")
    print(json.dumps({key: value for key, value in report.items() if key != "seconds_all"}, indent=1))


if __name__ == "__main__":
    main()
