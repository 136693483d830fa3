"""The 100k ANN set of the benchmark data (ann/): its sentences, query texts and exact top-10,
and recall@10 against them; shared by the query benchmarks in scripts/."""

import gzip
import pathlib

import numpy as np


def load(data):
    ann = pathlib.Path(data) / "ann"
    with gzip.open(ann / "sentences.txt.gz", "rt", encoding="utf-8") as f:
        sentences = [line.rstrip("\n") for line in f]
    queries = (ann / "queries.txt").read_text(encoding="utf-8").splitlines()
    truth = [[int(x) for x in line.split("\t")[:10]] for line in (ann / "gt_top100.tsv").read_text().splitlines()]
    return sentences, queries, truth


def recall(results, truth):
    return float(np.mean([len({int(i) for i in got[:10]} & set(want)) / 10 for got, want in zip(results, truth)]))
