"""The Python package: the same vectors as the command line, stores and searches, and isovec's
errors as Python exceptions."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import isovec

TEXTS = ["Vaccines train the immune system to fight infection.", "The hockey puck slid across the ice.", "naïve café"]


def cli_vectors(isovec_bin, texts, *options):
    out = subprocess.run([str(isovec_bin), "embed", *options, *texts], capture_output=True, text=True, check=True)
    return np.array([json.loads(line)["vector"] for line in out.stdout.splitlines()], dtype=np.float64)


def test_embed_equals_the_command_line(pipeline, isovec_bin):
    vectors = pipeline.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (3, pipeline.dims) == (3, 384)
    np.testing.assert_allclose(vectors, cli_vectors(isovec_bin, TEXTS), atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(vectors.astype(np.float64), axis=1), 1.0, atol=1e-6)
    assert json.loads(pipeline.id)["encoder"]["pooling"] == "mean"
    assert pipeline.embed([]).shape == (0, 384)


def test_int8_embeds_as_the_command_line_does_and_near_f32(pipeline, isovec_bin):
    if "avx2" not in pathlib.Path("/proc/cpuinfo").read_text():
        with pytest.raises(isovec.IsovecError, match="AVX2"):
            isovec.Pipeline(dtype="int8")
        return
    int8 = isovec.Pipeline(dtype="INT8")
    vectors = int8.embed(TEXTS)
    np.testing.assert_allclose(vectors, cli_vectors(isovec_bin, TEXTS, "--dtype", "int8"), atol=1e-6, rtol=0)
    cosines = np.sum(vectors.astype(np.float64) * pipeline.embed(TEXTS), axis=1)
    assert np.all(cosines > 0.98) and np.all(cosines < 0.99999), cosines


def test_store_add_search_filter_and_reopen(pipeline, tmp_path):
    store = isovec.Store(tmp_path / "st")
    docs = store.collection("docs", pipeline)
    report = docs.add(["v1", "h1", "c1"], TEXTS, metadatas=[{"topic": "health", "year": 2013}, {"topic": "sports"}, None])
    assert report == {"inserted": 3, "replaced": 0}
    hits = docs.search("how do vaccines work", k=2)
    assert [h["id"] for h in hits][0] == "v1"
    assert hits[0]["metadata"] == {"topic": "health", "year": 2013}
    assert hits[0]["text"] == TEXTS[0]
    # The score is the cosine of the two pipeline vectors, computed here in f64.
    q, d = pipeline.embed(["how do vaccines work", TEXTS[0]]).astype(np.float64)
    assert hits[0]["score"] == pytest.approx(float(q @ d), abs=1e-5)
    assert [h["id"] for h in docs.search("vaccines", k=5, filter="topic=sports")] == ["h1"]
    assert [h["id"] for h in docs.search("vaccines", k=5, filter={"topic": "sports"})] == ["h1"]
    assert [h["id"] for h in docs.search("immune system", k=1, mode="lexical")] == ["v1"]
    exact = docs.search("how do vaccines work", k=3, mode="exact")
    assert [h["id"] for h in exact] == [h["id"] for h in docs.search("how do vaccines work", k=3)]
    assert [h["id"] for h in exact] == [h["id"] for h in docs.search("how do vaccines work", k=3, ef=1)]
    assert len(docs) == 3
    # The directory stays locked while a collection handle lives.
    del docs
    store.close()
    # Reopened with nothing said: the collection's recorded pipeline.
    again = isovec.Store(tmp_path / "st").collection("docs")
    assert again.count() == 3
    reopened = again.search("how do vaccines work", k=2)
    assert [h["id"] for h in reopened] == [h["id"] for h in hits]
    assert [h["score"] for h in reopened] == pytest.approx([h["score"] for h in hits], abs=1e-6)


def test_the_docstrings_examples_run(pipeline, tmp_path, monkeypatch):
    import doctest

    import isovec._pipeline
    import isovec.langchain

    monkeypatch.chdir(tmp_path)  # their stores are made here
    for module, examples in [(isovec, 14), (isovec._pipeline, 2), (isovec.langchain, 4)]:
        result = doctest.testmod(module, report=False)
        assert result.attempted >= examples and result.failed == 0, (module.__name__, result)


def test_errors_are_python_exceptions_with_isovecs_messages(pipeline, tmp_path):
    with pytest.raises(isovec.IsovecError, match="pooling"):
        isovec.Pipeline(pooling="no-such-pooling")
    with pytest.raises(isovec.IsovecError, match="not one of f32, f16, bf16, int8"):
        isovec.Pipeline(dtype="int4")
    with pytest.raises(isovec.IsovecError, match="no model folder"):
        isovec.Pipeline(model_dir=tmp_path / "nothing-here")
    with pytest.raises(isovec.IsovecError, match="not one of f32, f16, bf16, int8"):
        isovec.Store(tmp_path / "st-int4", dtype="int4")
    docs = isovec.Store(tmp_path / "st").collection("docs", pipeline)
    docs.add(["a"], ["some text"])
    with pytest.raises(isovec.IsovecError, match="example: lang=en"):
        docs.search("x", filter="year >>= 2020")
    with pytest.raises(isovec.IsovecError, match="out of range"):
        docs.search("x", ef=0)
    with pytest.raises(isovec.IsovecError, match="takes no ef"):
        docs.search("x", mode="exact", ef=10)
    with pytest.raises(isovec.IsovecError, match="2 ids and 1 documents: give one per id"):
        docs.add(["a", "b"], ["only one text"])
    with pytest.raises(isovec.IsovecError, match="not an isovec store"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "file.txt").write_text("x")
        isovec.Store(tmp_path / "other")
    with pytest.raises(isovec.IsovecError, match="cannot be imported"):
        (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
        isovec.Store(tmp_path / "st2").import_parquet(tmp_path / "broken.parquet")


@pytest.mark.parametrize("compression", ["snappy", "zstd", "none"])
def test_parquet_written_by_pyarrow_imports_and_exports_bit_for_bit(pipeline, tmp_path, compression):
    """pyarrow's own files (snappy is its default, and Ray's and Spark's) load with their vectors
    as they are, and come back out unchanged."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vectors = pipeline.embed(TEXTS)
    metadata = [json.dumps({"topic": "health"}), None, json.dumps({"lang": "fr"})]
    schema = pa.schema(
        [("id", pa.string()), ("text", pa.string()), ("metadata", pa.string()), ("vector", pa.list_(pa.float32(), pipeline.dims))],
        metadata={"isovec.pipeline": pipeline.id},
    )
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), pipeline.dims)
    table = pa.Table.from_arrays([pa.array(["v1", "h1", "c1"]), pa.array(TEXTS), pa.array(metadata, pa.string()), column], schema=schema)
    source = tmp_path / "source.parquet"
    pq.write_table(table, source, compression=compression)
    store = isovec.Store(tmp_path / "st")
    assert store.import_parquet(source, "docs") == {"rows": 3, "inserted": 3, "replaced": 0}
    docs = store.collection("docs", pipeline)
    assert [h["id"] for h in docs.search("how do vaccines work", k=1, mode="exact")] == ["v1"]
    assert docs.export_parquet(tmp_path / "back.parquet") == 3
    back = pq.read_table(tmp_path / "back.parquet")
    order = [back.column("id").to_pylist().index(i) for i in ["v1", "h1", "c1"]]
    back = back.take(pa.array(order))
    assert back.column("text").to_pylist() == TEXTS
    assert [None if m is None else json.loads(m) for m in back.column("metadata").to_pylist()] == [{"topic": "health"}, None, {"lang": "fr"}]
    got = np.array(back.column("vector").to_pylist(), dtype=np.float32)
    assert np.array_equal(got.view(np.uint32), vectors.view(np.uint32))


# The process's own environment (os.environ is a copy Python took at start-up).
C_GETENV = "import ctypes; getenv = ctypes.CDLL(None).getenv; getenv.restype = ctypes.c_char_p"


def test_tune_process_declines_once_threads_run_and_says_what_to_set():
    # pytest's process may already run threads (the encoder's pool after the tests above); one
    # more, alive during the call, makes sure of it.
    import os
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        scope = {}
        exec(C_GETENV, scope)
        before = scope["getenv"](b"CANDLE_NUM_THREADS")
        with pytest.warns(RuntimeWarning, match="CANDLE_NUM_THREADS=1"):
            assert isovec.tune_process() is False
        assert scope["getenv"](b"CANDLE_NUM_THREADS") == before, "the environment was changed"
    finally:
        stop.set()
        other.join()
    assert isovec.TUNING_ENV["CANDLE_NUM_THREADS"] == "1" and "MALLOC_TRIM_THRESHOLD_" in isovec.TUNING_ENV


def test_tune_process_applies_in_a_process_with_one_thread():
    code = C_GETENV + "; import isovec; assert isovec.tune_process() is True; print(getenv(b'CANDLE_NUM_THREADS').decode())"
    env = {k: v for k, v in os.environ.items() if k not in isovec.TUNING_ENV}
    # numpy's BLAS starts a thread pool on import unless told to stay on one thread.
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stdout.strip() == "1", run.stderr
