"""isovec from Python: the same pipeline (model, pooling, transform) and store as the Rust library
and the ``isovec`` command line, so vectors made here equal ``isovec embed``'s.

>>> import isovec
>>> store = isovec.Store("my-store")
>>> docs = store.collection("docs")   # created for the default model, mean pooling
>>> docs.add(["v1"], ["Vaccines train the immune system."], [{"topic": "health"}])
{'inserted': 1, 'replaced': 0}
>>> [(hit["id"], hit["metadata"]) for hit in docs.search("how do vaccines work", k=5)]
[('v1', {'topic': 'health'})]

A collection records the pipeline that made its vectors, so ``collection("docs")`` encodes with it
in any later process, whichever pipeline (``isovec index --pooling cls --transform ...`` too)
filled it. To choose the pipeline of a new collection, pass one:

>>> pipeline = isovec.Pipeline(pooling="cls")
>>> vectors = pipeline.embed(["a sentence", "another one"])   # numpy float32, shape (2, 384)
>>> other = store.collection("other", pipeline)
>>> store.collection("other").add(["s1"], ["a sentence"])    # later: the recorded pipeline (cls)
{'inserted': 1, 'replaced': 0}

Errors are ``isovec.IsovecError`` with isovec's messages.
"""

import json

import numpy as np

from . import _native
from ._native import IsovecError, tune_process

__all__ = ["Pipeline", "Store", "Collection", "IsovecError", "tune_process", "TUNING_ENV"]

#: The environment ``tune_process()`` sets, as a dict: give it to a process before it starts
#: (e.g. Ray's ``runtime_env={"env_vars": isovec.TUNING_ENV}``) when ``tune_process()`` cannot
#: set it because threads already run.
TUNING_ENV = dict(pair.split("=", 1) for pair in _native.TUNING_ENV.split())


class Pipeline:
    """Encoder + pooling + prefixes + optional fitted transform + L2 normalisation.

    ``model_dir``: a Hugging Face BERT folder (default: the model ``isovec model fetch``
    installed); ``pooling``: mean, cls, cls_before_pooler, first_last_avg, ...; ``transform``: a
    file written by ``isovec fit whiten|flow``; ``dtype``: f32, or as ``--dtype`` takes it (bf16;
    int8: the dense layers' products in 8-bit integers on a CPU with AVX2, faster, scores 0.2
    points lower); ``max_length``: the longest input in tokens; ``query_prefix`` and
    ``document_prefix``: texts put before queries and documents (as E5 models expect). A part
    left out (None) is the default (mean pooling, the model's maximum length, no prefix), or,
    with a transform, what the transform was fitted with.
    """

    def __init__(
        self,
        model_dir=None,
        pooling=None,
        transform=None,
        dtype="f32",
        max_length=None,
        query_prefix=None,
        document_prefix=None,
    ):
        self._native = _native.Pipeline(
            None if model_dir is None else str(model_dir),
            pooling,
            None if transform is None else str(transform),
            dtype,
            max_length,
            query_prefix,
            document_prefix,
        )

    @property
    def dims(self):
        """Number of dimensions of each vector."""
        return self._native.dims

    @property
    def id(self):
        """The pipeline id as JSON text: write it as ``isovec.pipeline`` in a Parquet file's
        key-value metadata so ``isovec import`` takes the vectors as they are."""
        return self._native.id

    def embed(self, texts):
        """The vectors of documents ``texts`` (a list of str): a float32 array of shape (len, dims)."""
        return self._vectors(texts, queries=False)

    def embed_queries(self, texts):
        """The vectors of queries ``texts``, with the query prefix: what a search compares with
        the documents' vectors. Without prefixes, the same as ``embed``."""
        return self._vectors(texts, queries=True)

    def _vectors(self, texts, queries):
        texts = list(texts)
        data = self._native.embed_bytes(texts, queries)
        return np.frombuffer(data, dtype="<f4").reshape(len(texts), self.dims).copy()


class Store:
    """An isovec store directory (created if missing or empty); one process at a time.

    ``dtype``: the precision the collections' recorded pipelines encode in (as ``Pipeline``'s).
    """

    def __init__(self, path, dtype="f32"):
        self._native = _native.Store(str(path), dtype)

    def collection(self, name="default", pipeline=None):
        """The collection ``name``. Without ``pipeline``, texts and queries are encoded by the
        pipeline the collection records (opened from the store, in the store's ``dtype``), and a
        missing collection is created for the default pipeline. With one, the collection must
        hold that pipeline's vectors (else ``IsovecError`` says what it holds), and a missing
        one is created for it; it then records it."""
        native = None if pipeline is None else pipeline._native
        return Collection(self._native.collection(name, native))

    def import_parquet(self, path, collection="default", pipeline=None):
        """Loads a Parquet file (``isovec export``'s, or one with the same columns) into
        ``collection``; the file is checked whole first, so a bad file changes nothing. A file
        without vectors is encoded by ``pipeline``. Returns a dict of counts."""
        native = None if pipeline is None else pipeline._native
        rows, inserted, replaced = self._native.import_parquet(collection, str(path), native)
        return {"rows": rows, "inserted": inserted, "replaced": replaced}

    def close(self):
        """Snapshots the indexes and releases the directory (once no collection taken from
        the store is alive any more)."""
        self._native.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Collection:
    """Documents of a store with the pipeline that encodes them (the collection's own)."""

    def __init__(self, native):
        self._native = native

    def add(self, ids, texts, metadata=None):
        """Encodes and adds (or replaces) documents; ``metadata`` is a list of dicts (or None),
        one per document. Returns a dict of counts."""
        meta = None if metadata is None else [None if m is None else json.dumps(m) for m in metadata]
        inserted, replaced = self._native.add(list(ids), list(texts), meta)
        return {"inserted": inserted, "replaced": replaced}

    def search(self, text, k=10, filter=None, mode="dense", ef=None):
        """The ``k`` best documents for ``text``, best first, as dicts with id, score, text and
        metadata. ``filter``: an expression (``"lang=en AND year>=2020"``) or a dict
        (``{"lang": "en"}``); ``mode``: dense, lexical, hybrid, or exact (every vector scanned,
        no filter); ``ef``: the HNSW candidate list width of a dense or hybrid search (default:
        the collection's; wider is slower and misses fewer neighbours)."""
        if isinstance(filter, dict):
            filter = json.dumps(filter)
        hits = self._native.search(text, k, filter, mode, ef)
        return [
            {"id": i, "score": s, "text": t, "metadata": None if m is None else json.loads(m)}
            for i, s, t, m in hits
        ]

    def count(self):
        """Number of documents."""
        return self._native.count()

    def export_parquet(self, path):
        """Writes the collection to a Parquet file (see ``isovec export``); returns its rows."""
        return self._native.export_parquet(str(path))

    def __len__(self):
        return self.count()
