"""``Store``: a store directory and its collections, by name."""

from __future__ import annotations

from os import PathLike
from typing import Dict, List, Optional, Union

from . import _native
from ._collection import Collection
from ._pipeline import Pipeline
from .errors import InvalidInputError

StrPath = Union[str, "PathLike[str]"]


class Store:
    """An isovec store directory (created if missing or empty); one process at a time, any
    number of threads.

    ``dtype``: the precision the collections' recorded pipelines encode in (as ``Pipeline``'s).
    """

    def __init__(self, path: StrPath, dtype: str = "f32") -> None:
        self._native = _native.Store(str(path), dtype)

    def _collection(self, name, pipeline, dims, model, create, new_only) -> Collection:
        if model is not None and dims is None:
            raise InvalidInputError("model= names the model of your own vectors: give their dims= too")
        external = None if dims is None else (model or "external", int(dims))
        native = None if pipeline is None else pipeline._native
        return Collection(self._native.collection(name, native, external, create, new_only))

    def get_or_create_collection(
        self, name: str, pipeline: Optional[Pipeline] = None, *, dims: Optional[int] = None, model: Optional[str] = None
    ) -> Collection:
        """The collection ``name``, created if missing.

        - ``dims=N`` (and ``model=``, a name that tells your vectors apart): a collection of
          your own N-dimensional vectors, given with ``embeddings=``; queries give
          ``query_embeddings`` (and texts, for lexical or hybrid search). isovec encodes nothing.
        - ``pipeline``: the collection holds that pipeline's vectors (an existing one must, else
          ``PipelineMismatchError`` says what it holds) and records it.
        - neither: an existing collection encodes with the pipeline it records (in any later
          process); a new one is made for the default pipeline.
        """
        return self._collection(name, pipeline, dims, model, create=True, new_only=False)

    def create_collection(
        self, name: str, pipeline: Optional[Pipeline] = None, *, dims: Optional[int] = None, model: Optional[str] = None
    ) -> Collection:
        """Like ``get_or_create_collection``, but an existing ``name`` is an error."""
        return self._collection(name, pipeline, dims, model, create=True, new_only=True)

    def get_collection(self, name: str, pipeline: Optional[Pipeline] = None) -> Collection:
        """The existing collection ``name`` (``NotFoundError`` if there is none)."""
        return self._collection(name, pipeline, None, None, create=False, new_only=False)

    def collection(self, name: str = "default", pipeline: Optional[Pipeline] = None) -> Collection:
        """``get_or_create_collection(name, pipeline)``."""
        return self.get_or_create_collection(name, pipeline)

    def list_collections(self) -> List[str]:
        """The names of the store's collections."""
        return self._native.list_collections()

    def delete_collection(self, name: str) -> None:
        """Deletes the collection ``name`` and its documents (``NotFoundError`` if none)."""
        self._native.delete_collection(name)

    def import_parquet(
        self, path: StrPath, collection: str = "default", pipeline: Optional[Pipeline] = None
    ) -> Dict[str, int]:
        """Loads a Parquet file (``isovec export``'s, or one with the same columns) into
        ``collection``; the file is checked whole first, so a bad file changes nothing. A file
        without vectors is encoded by ``pipeline`` (else the collection's). Returns counts."""
        native = None if pipeline is None else pipeline._native
        rows, inserted, replaced = self._native.import_parquet(collection, str(path), native)
        return {"rows": rows, "inserted": inserted, "replaced": replaced}

    def close(self) -> None:
        """Snapshots the indexes and releases the directory (once no collection taken from
        the store is alive any more)."""
        self._native.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> bool:
        self.close()
        return False
