"""Concurrent clients for the query benchmarks in scripts/: threads sharing a list of queries, each
sending its share one at a time and waiting for each answer; queries/s over the run and the
latency of a query. Standard library and numpy only, so that isovec's and the peers' Pythons can
both import it."""

import threading
import time

import numpy as np


def run_clients(connect, ask, n_queries, clients):
    """`clients` threads: thread c calls `connect()` once, then `ask(connection, i)` for queries
    i = c, c + clients, …; returns {"qps", "p50_ms", "p99_ms", "ids"} (`ids[i]` what ask returned)."""
    latencies = [0.0] * n_queries
    answers = [None] * n_queries
    errors = []

    def client(c):
        try:
            connection = connect()
            for i in range(c, n_queries, clients):
                start = time.perf_counter()
                answers[i] = ask(connection, i)
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
    return {"qps": n_queries / wall, "p50_ms": float(np.percentile(latencies, 50)) * 1e3,
            "p99_ms": float(np.percentile(latencies, 99)) * 1e3, "ids": answers}
