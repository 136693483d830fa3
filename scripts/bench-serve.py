#!/usr/bin/env python3
"""Text queries through `isovec serve` against the same queries through the embedded package, at
1, 4, 16 and 64 concurrent clients, on the 100k ANN set.

    python scripts/bench-serve.py --data ../shared/data --store /tmp/ann-store [--rounds 3]

The store is the one `scripts/bench-python-query.py` builds (collection "ann": the 100,000
sentences of ann/sentences.txt.gz, default model, 128 tokens). Each client is a thread that sends
its share of the 1,000 query texts (ann/queries.txt) one at a time (`query(query_texts=[q],
n_results=10)`) and waits for each answer; the server side goes through `isovec.connect` (HTTP on
loopback, the server encoding concurrent queries together), the embedded side through
`isovec.Store(...).get_collection("ann")` (the native calls release the GIL, so the threads run
in parallel). Per client count and side: queries/s over the whole run and p50/p99 latency of a
query, medians over rounds; in each round the server and the embedded side run one after the
other on the same queries. Recall@10 against ann/gt_top100.tsv checks both answer right.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import threading
import time

import numpy as np

import isovec
from ann_set import load, recall


def run_clients(collection_for, queries, clients, k):
    """Wall seconds, per-query latencies and answers of `clients` threads sharing `queries`."""
    latencies = [0.0] * len(queries)
    answers = [None] * len(queries)
    errors = []

    def client(c):
        try:
            coll = collection_for()
            for i in range(c, len(queries), clients):
                start = time.perf_counter()
                answers[i] = coll.query(query_texts=[queries[i]], n_results=k, include=[])["ids"][0]
                latencies[i] = time.perf_counter() - start
        except Exception as e:  # reported after the run
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall, latencies, answers


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--bin", default="target/release/isovec")
    parser.add_argument("--clients", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    _, queries, truth = load(args.data)
    counts = [int(c) for c in args.clients.split(",")]
    figures = {side: {c: {"qps": [], "p50": [], "p99": [], "recall": []} for c in counts} for side in ("server", "embedded")}

    def record(side, clients, wall, latencies, answers):
        f = figures[side][clients]
        f["qps"].append(len(queries) / wall)
        f["p50"].append(float(np.percentile(latencies, 50)) * 1e3)
        f["p99"].append(float(np.percentile(latencies, 99)) * 1e3)
        f["recall"].append(recall(answers, truth))

    for r in range(args.rounds):
        server = subprocess.Popen(
            [args.bin, "serve", "--store", args.store, "--addr", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True
        )
        url = server.stdout.readline().split()[-1]
        remote = isovec.connect(url)
        run_clients(lambda: remote.get_collection("ann"), queries[:64], 4, args.k)  # warm-up: model loaded
        for clients in counts:
            record("server", clients, *run_clients(lambda: remote.get_collection("ann"), queries, clients, args.k))
        server.terminate()
        server.wait(timeout=120)
        store = isovec.Store(args.store)
        local = store.get_collection("ann")
        run_clients(lambda: local, queries[:64], 4, args.k)
        for clients in counts:
            record("embedded", clients, *run_clients(lambda: local, queries, clients, args.k))
        del local
        store.close()
        print(f"round {r + 1}/{args.rounds} done", flush=True)

    median = {
        side: {c: {m: statistics.median(v) for m, v in f.items()} for c, f in per.items()} for side, per in figures.items()
    }
    print("| clients | server q/s | embedded q/s | server / embedded | server p50 / p99 ms | embedded p50 / p99 ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c in counts:
        s, e = median["server"][c], median["embedded"][c]
        print(
            f"| {c} | {s['qps']:.0f} | {e['qps']:.0f} | {s['qps'] / e['qps']:.2f}× | {s['p50']:.1f} / {s['p99']:.1f} "
            f"| {e['p50']:.1f} / {e['p99']:.1f} |"
        )
    print("recall@10: " + ", ".join(f"{side} {median[side][counts[0]]['recall']:.4f}" for side in median))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rounds": args.rounds, "median": median}, indent=1))


if __name__ == "__main__":
    main()
