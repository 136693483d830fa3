"""isovec from Python: the same pipeline (model, pooling, transform) and store as the Rust library
and the ``isovec`` command line, so vectors made here equal ``isovec embed``'s.

>>> import isovec
>>> pipeline = isovec.Pipeline()                      # the default model, mean pooling
>>> vectors = pipeline.embed(["a sentence", "another one"])   # numpy float32, shape (2, 384)
>>> docs = isovec.Store("my-store").collection("docs", pipeline)
>>> docs.add(["v1"], ["Vaccines train the immune system."], [{"topic": "health"}])
>>> docs.search("how do vaccines work", k=5)

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
    """Encoder + pooling + optional fitted transform + L2 normalisation.

    ``model_dir``: a Hugging Face BERT folder (default: the model ``isovec model fetch``
    installed); ``pooling``: mean, cls, cls_before_pooler, first_last_avg, ...; ``transform``: a
    file written by ``isovec fit whiten|flow``; ``dtype``: f32, or as ``--dtype`` takes it (bf16;
    int8: the dense layers' products in 8-bit integers on a CPU with AVX2, faster, scores 0.2
    points lower).
    """

    def __init__(self, model_dir=None, pooling="mean", transform=None, dtype="f32"):
        self._native = _native.Pipeline(
            None if model_dir is None else str(model_dir),
            pooling,
            None if transform is None else str(transform),
            dtype,
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
        """The vectors of ``texts`` (a list of str): a float32 array of shape (len, dims)."""
        texts = list(texts)
        data = self._native.embed_bytes(texts)
        return np.frombuffer(data, dtype="<f4").reshape(len(texts), self.dims).copy()


class Store:
    """An isovec store directory (created if missing or empty); one process at a time."""

    def __init__(self, path):
        self._native = _native.Store(str(path))

    def collection(self, name="default", pipeline=None):
        """The collection ``name``, created for ``pipeline`` if missing; ``pipeline`` (default:
        ``Pipeline()``) encodes its texts and queries and must be the collection's."""
        pipeline = Pipeline() if pipeline is None else pipeline
        return Collection(self._native.collection(name, pipeline._native))

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
    """Documents of a store with the pipeline that encodes them."""

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
