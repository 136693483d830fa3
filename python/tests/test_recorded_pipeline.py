"""A collection carries its pipeline: ``isovec.Store(path).collection(name)`` encodes with the
pipeline the collection records, in a new process, with nothing else said, whichever front end
filled it; and a pipeline that is not the collection's is refused with what the collection holds."""

import json
import subprocess
import sys

import numpy as np
import pytest

import isovec
from conftest import REPO

QUERY = "how do vaccines work"


def search_in_new_process(store, **search):
    """``isovec.Store(store).collection("docs").search(QUERY, **search)`` in another Python."""
    code = (
        "import json, sys, isovec\n"
        "docs = isovec.Store(sys.argv[1]).collection('docs')\n"
        "print(json.dumps(docs.search(sys.argv[2], **json.loads(sys.argv[3]))))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(store), QUERY, json.dumps(search)], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def corpus():
    with open(REPO / "fixtures" / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def assert_same_hits(got, want):
    assert [h["id"] for h in got] == [h["id"] for h in want]
    np.testing.assert_allclose([h["score"] for h in got], [h["score"] for h in want], atol=1e-6, rtol=0)


def test_a_collection_made_with_a_pipeline_answers_the_same_in_a_new_process_with_nothing_said(tmp_path):
    pipeline = isovec.Pipeline(pooling="first_last_avg")
    store = isovec.Store(tmp_path / "st")
    docs = store.collection("docs", pipeline)
    rows = corpus()
    docs.add([r["id"] for r in rows], [r["text"] for r in rows], [r["metadata"] for r in rows])
    expected = {mode: docs.search(QUERY, k=5, mode=mode) for mode in ["dense", "hybrid", "exact"]}
    # The scores are the given pipeline's cosines, computed here in f64.
    q = pipeline.embed_queries([QUERY]).astype(np.float64)[0]
    d = pipeline.embed([h["text"] for h in expected["exact"]]).astype(np.float64)
    np.testing.assert_allclose([h["score"] for h in expected["exact"]], d @ q, atol=1e-5, rtol=0)
    del docs
    store.close()
    for mode, want in expected.items():
        assert len(want) == 5
        assert_same_hits(search_in_new_process(tmp_path / "st", k=5, mode=mode), want)


def test_a_collection_the_cli_indexed_with_cls_pooling_and_whitening_needs_nothing_said(tmp_path, isovec_bin):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(r["text"] for r in corpus()), encoding="utf-8")
    transform = tmp_path / "whiten.safetensors"
    store = tmp_path / "st"
    for args in [
        ["fit", "whiten", "--pooling", "cls", "--dims", "64", "--from", texts, "--out", transform],
        ["index", "--store", store, "--collection", "docs", "--pooling", "cls", "--transform", transform, REPO / "fixtures" / "corpus.jsonl"],
    ]:
        run = subprocess.run([str(isovec_bin), *map(str, args)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    # The pipeline, built here from the transform file (its pooling comes with it), before the
    # file goes away: the collection holds its vectors.
    whitened = isovec.Pipeline(transform=transform)
    assert whitened.dims == 64 and json.loads(whitened.id)["encoder"]["pooling"] == "cls"
    transform.unlink()
    cli = subprocess.run(
        [str(isovec_bin), "search", "--store", str(store), "--collection", "docs", "-k", "5", "--json", QUERY],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 0, cli.stderr
    want = [json.loads(line) for line in cli.stdout.splitlines()]
    got = search_in_new_process(store, k=5)
    assert len(got) == 5
    assert [h["id"] for h in got] == [h["id"] for h in want]
    np.testing.assert_allclose([h["score"] for h in got], [h["score"] for h in want], atol=1e-5, rtol=0)
    q = whitened.embed_queries([QUERY]).astype(np.float64)[0]
    d = whitened.embed([h["text"] for h in got]).astype(np.float64)
    np.testing.assert_allclose([h["score"] for h in got], d @ q, atol=1e-5, rtol=0)


def test_a_pipeline_that_is_not_the_collections_is_refused_with_what_it_holds(pipeline, tmp_path):
    store = isovec.Store(tmp_path / "st")
    docs = store.collection("docs", pipeline)
    docs.add(["a"], ["Whales sing under the sea."])
    with pytest.raises(isovec.IsovecError, match=r"pipeline mismatch: expected all-MiniLM-L6-v2/mean .*collection docs"):
        store.collection("docs", isovec.Pipeline(pooling="cls"))
    # The collection's own pipeline, named or not, still opens it.
    assert store.collection("docs", isovec.Pipeline()).count() == 1
    assert store.collection("docs").search("songs of whales", k=1)[0]["id"] == "a"


def test_a_new_collection_with_nothing_said_gets_the_default_pipeline(pipeline, tmp_path):
    store = isovec.Store(tmp_path / "st")
    docs = store.collection("docs")
    docs.add(["a", "b"], ["Whales sing under the sea.", "Bread dough rises in the oven."])
    hits = docs.search("songs of whales", k=2, mode="exact")
    q, d = pipeline.embed(["songs of whales", "Whales sing under the sea."]).astype(np.float64)
    assert hits[0]["id"] == "a" and hits[0]["score"] == pytest.approx(float(q @ d), abs=1e-5)
    # The default pipeline is recorded: naming it is the same, another is refused.
    assert store.collection("docs", pipeline).count() == 2
    with pytest.raises(isovec.IsovecError, match="pipeline mismatch"):
        store.collection("docs", isovec.Pipeline(pooling="cls"))


def test_prefixes_go_before_queries_and_documents(pipeline):
    prefixed = isovec.Pipeline(query_prefix="query: ", document_prefix="passage: ")
    encoder = json.loads(prefixed.id)["encoder"]
    assert encoder["prefixes"] == {"query": "query: ", "document": "passage: "}, encoder
    np.testing.assert_allclose(prefixed.embed_queries(["a whale"]), pipeline.embed(["query: a whale"]), atol=1e-6)
    np.testing.assert_allclose(prefixed.embed(["a whale"]), pipeline.embed(["passage: a whale"]), atol=1e-6)
    assert not np.allclose(prefixed.embed_queries(["a whale"]), prefixed.embed(["a whale"]), atol=1e-3)
    # Without prefixes, queries and documents are encoded alike.
    np.testing.assert_array_equal(pipeline.embed_queries(["a whale"]), pipeline.embed(["a whale"]))
