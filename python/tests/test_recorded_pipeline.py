"""A collection carries its pipeline: ``isovec.Store(path).collection(name)`` encodes with the
pipeline the collection records, in a new process, with nothing else said, whichever front end
filled it; and a pipeline that is not the collection's is refused with what the collection holds."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import isovec
from conftest import REPO, missing

QUERY = "how do vaccines work"


def search_in_new_process(store, env=None, **search):
    """``isovec.Store(store).collection("docs").search(QUERY, **search)`` in another Python
    (with the environment ``env``, by default this one's)."""
    code = (
        "import json, sys, isovec\n"
        "docs = isovec.Store(sys.argv[1]).collection('docs')\n"
        "print(json.dumps(docs.search(sys.argv[2], **json.loads(sys.argv[3]))))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(store), QUERY, json.dumps(search)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
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
    docs.add([r["id"] for r in rows], [r["text"] for r in rows], metadatas=[r["metadata"] for r in rows])
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


def test_cli_python_and_sql_search_a_collection_with_nothing_said_after_its_transform_and_model_move(
    tmp_path, isovec_bin, default_model_dir
):
    """The three front ends on one store: indexed by the CLI with cls pooling and whitening from
    a model folder; then the transform file is deleted and the model folder moved into the model
    cache under another name; the CLI (no flags), Python and SQL (a new connection), each in a
    new process, return the ids and scores the explicit pipeline did."""
    sqlite3 = shutil.which("sqlite3")
    extension = REPO / "target" / "release" / "libisovec_sqlite.so"
    if sqlite3 is None or not extension.is_file():
        missing(f"no sqlite3 shell or no {extension}", "apt-get install sqlite3; cargo build --release --workspace")
    model = tmp_path / "models" / "minilm"
    shutil.copytree(default_model_dir, model)
    home = tmp_path / "home"  # the model cache of every process from here on
    env = {k: v for k, v in os.environ.items() if k not in ("ISOVEC_MODEL", "ISOVEC_MODEL_PATH")}
    env["ISOVEC_HOME"] = str(home)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(r["text"] for r in corpus()), encoding="utf-8")
    transform = tmp_path / "whiten.safetensors"
    store = tmp_path / "st"
    pipeline = ["--model", model, "--pooling", "cls"]

    def cli(*args):
        run = subprocess.run([str(isovec_bin), *map(str, args)], capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr
        return run.stdout

    cli("fit", "whiten", *pipeline, "--dims", "64", "--from", texts, "--out", transform)
    cli("index", "--store", store, "--collection", "docs", *pipeline, "--transform", transform, REPO / "fixtures" / "corpus.jsonl")
    search = ["search", "--store", store, "--collection", "docs", "-k", "5", "--json", QUERY]
    explicit = [json.loads(line) for line in cli(*search, *pipeline, "--transform", transform).splitlines()]
    assert len(explicit) == 5

    transform.unlink()
    (home / "models").mkdir(parents=True)
    model.rename(home / "models" / "renamed")

    assert_same_hits([json.loads(line) for line in cli(*search).splitlines()], explicit)
    assert_same_hits(search_in_new_process(store, env=env, k=5), explicit)
    sql = f"SELECT id, score FROM isovec_search('{store}', 'docs', '{QUERY}', 5) ORDER BY score DESC;"
    run = subprocess.run(
        [sqlite3, "-bail", "-json", ":memory:", f".load {extension}", sql], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert_same_hits(json.loads(run.stdout), explicit)


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
