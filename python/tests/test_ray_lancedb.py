"""Encoding on Ray, importing into isovec, serving from LanceDB, on the SciFact corpus.

examples/ray_encode.py encodes the corpus on a local Ray cluster of 2 workers; the vectors must
equal `isovec embed`'s to 1e-5, and the store `isovec import` makes from them must answer queries
as a store that `isovec index` filled directly. The exported Parquet file, opened by LanceDB, must
give the same exact top-10 as isovec for 20 SciFact queries.

The first ISOVEC_RAY_DOCS documents (default 1000 of 5,183) are used: encoding SciFact abstracts
runs at ~26 documents/s on the 2-core CI machine, and the test encodes the corpus three times
(Ray, `isovec embed`, `isovec index`), so the whole corpus would take ~10 minutes of CI alone.
ISOVEC_RAY_DOCS=0 takes every document.
"""

import importlib.util
import json
import os
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest

import isovec
from conftest import REPO

COLLECTION = "scifact"


def load_example():
    spec = importlib.util.spec_from_file_location("ray_encode", REPO / "examples" / "ray_encode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args):
    """Runs a command; its stderr is shown when it fails."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def scifact(tmp_path_factory, data_dir, isovec_bin, pipeline):
    """Rows of the corpus, queries, and the stores and files built from them."""
    import ray

    ray_encode = load_example()
    limit = int(os.environ.get("ISOVEC_RAY_DOCS", "1000")) or None
    rows = ray_encode.read_corpus(data_dir / "retrieval" / "scifact" / "corpus.jsonl.gz", limit)
    with open(data_dir / "retrieval" / "scifact" / "queries.jsonl", encoding="utf-8") as f:
        queries = [json.loads(line)["text"] for line in f if line.strip()][:20]
    work = tmp_path_factory.mktemp("scifact")

    ray.init(num_cpus=2, runtime_env={"env_vars": {"RAYON_NUM_THREADS": "1"}}, include_dashboard=False)
    try:
        ray_file = work / "ray.parquet"
        assert ray_encode.encode(rows, ray_file, workers=2) == len(rows)
    finally:
        ray.shutdown()
    run(isovec_bin, "import", "--store", work / "imported", "--collection", COLLECTION, ray_file)

    texts = work / "texts.txt"
    texts.write_text("".join(r["text"] + "\n" for r in rows), encoding="utf-8")
    run(isovec_bin, "embed", "--input", texts, "--out", work / "embed.npy")
    jsonl = work / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"id": r["id"], "text": r["text"]}) + "\n" for r in rows), encoding="utf-8")
    run(isovec_bin, "index", "--store", work / "direct", "--collection", COLLECTION, jsonl)
    run(isovec_bin, "export", "--store", work / "imported", "--collection", COLLECTION, "--out", work / "export.parquet")
    return {"rows": rows, "queries": queries, "work": work}


def test_ray_vectors_equal_isovec_embed(scifact):
    table = pq.read_table(scifact["work"] / "ray.parquet")
    by_id = dict(zip(table.column("id").to_pylist(), np.array(table.column("vector").to_pylist(), dtype=np.float32)))
    embedded = np.load(scifact["work"] / "embed.npy")
    assert embedded.shape == (len(scifact["rows"]), 384) and len(by_id) == len(scifact["rows"])
    ray_vectors = np.stack([by_id[r["id"]] for r in scifact["rows"]])
    assert np.abs(ray_vectors - embedded).max() <= 1e-5


def test_imported_store_answers_as_the_directly_indexed_one(scifact, pipeline):
    results = {}
    for name in ["direct", "imported"]:
        store = isovec.Store(scifact["work"] / name)
        docs = store.collection(COLLECTION, pipeline)
        assert docs.count() == len(scifact["rows"])
        results[name] = [
            [(h["id"], h["score"], h["text"]) for h in docs.search(q, k=10, mode=mode)]
            for q in scifact["queries"]
            for mode in ["exact", "lexical", "hybrid"]
        ]
        store.close()
    for direct, imported in zip(results["direct"], results["imported"]):
        assert [h[0] for h in direct] == [h[0] for h in imported]
        assert [h[2] for h in direct] == [h[2] for h in imported]
        np.testing.assert_allclose([h[1] for h in direct], [h[1] for h in imported], atol=1e-5)


def test_lancedb_exact_search_on_the_export_gives_isovecs_top_10(scifact, pipeline):
    import lancedb

    table = pq.read_table(scifact["work"] / "export.parquet")
    assert table.schema.metadata[b"isovec.pipeline"].decode() == pipeline.id
    db = lancedb.connect(str(scifact["work"] / "lance"))
    lance = db.create_table("scifact", table)
    store = isovec.Store(scifact["work"] / "imported")
    docs = store.collection(COLLECTION, pipeline)
    query_vectors = pipeline.embed(scifact["queries"])
    for text, vector in zip(scifact["queries"], query_vectors):
        ours = [h["id"] for h in docs.search(text, k=10, mode="exact")]
        # No vector index on the table: LanceDB scans every row (exact search).
        theirs = lance.search(vector, vector_column_name="vector").distance_type("cosine").limit(10).to_list()
        assert [r["id"] for r in theirs] == ours, text
    store.close()
