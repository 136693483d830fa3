"""isovec from Python: the same pipeline (model, pooling, transform) and store as the Rust library
and the ``isovec`` command line, with a collection API in Chroma's words.

>>> import isovec
>>> store = isovec.Store("my-store")
>>> docs = store.get_or_create_collection("docs")   # the default model, mean pooling
>>> docs.add(
...     ids=["v1", "h1"],
...     documents=["Vaccines train the immune system.", "The puck slid across the ice."],
...     metadatas=[{"topic": "health", "year": 2013}, {"topic": "sports"}],
... )
{'inserted': 2, 'replaced': 0}
>>> result = docs.query(query_texts=["how do vaccines work", "ice hockey"], n_results=1)
>>> result["ids"]
[['v1'], ['h1']]
>>> docs.query(query_texts=["vaccines"], where={"topic": {"$ne": "health"}}, n_results=1)["ids"]
[['h1']]
>>> docs.update(ids=["h1"], metadatas=[{"year": 2020}])
{'inserted': 0, 'replaced': 1}
>>> docs.get(ids=["h1"])["metadatas"]
[{'topic': 'sports', 'year': 2020}]
>>> docs.delete(ids=["h1"])
1
>>> docs.count()
1

A collection records the pipeline that made its vectors, so ``get_collection("docs")`` encodes
with it in any later process, whichever pipeline (``isovec index --pooling cls --transform ...``
too) filled it. Your own vectors (any model's) go into a collection made with their ``dims``:

>>> mine = store.get_or_create_collection("mine", dims=3, model="my-model")
>>> mine.add(ids=["a", "b"], embeddings=[[1, 0, 0], [0, 1, 0]], documents=["alpha", "beta"])
{'inserted': 2, 'replaced': 0}
>>> mine.query(query_embeddings=[[0.9, 0.1, 0]], n_results=2)["ids"]
[['a', 'b']]
>>> mine.query(query_texts=["beta"], mode="lexical", n_results=1)["ids"]
[['b']]

Errors are ``isovec.errors`` exceptions (all ``isovec.IsovecError``) with isovec's messages.
"""

from . import _native
from ._client import HttpCollection, HttpStore, connect
from ._collection import Collection
from ._native import tune_process
from ._pipeline import Pipeline
from ._store import Store
from . import errors
from .errors import *  # noqa: F401,F403 - the exception classes, listed in errors.__all__

__all__ = [
    "Pipeline",
    "Store",
    "Collection",
    "connect",
    "HttpStore",
    "HttpCollection",
    "tune_process",
    "TUNING_ENV",
    *errors.__all__,
]

#: The environment ``tune_process()`` sets, as a dict: give it to a process before it starts
#: (e.g. Ray's ``runtime_env={"env_vars": isovec.TUNING_ENV}``) when ``tune_process()`` cannot
#: set it because threads already run.
TUNING_ENV = dict(pair.split("=", 1) for pair in _native.TUNING_ENV.split())
